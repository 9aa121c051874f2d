"""The hierarchies SHAP's Owen values run over, as SciPy linkage matrices, and what their exact values cost.

* Words of a pair (:func:`pair_linkage`): adjacent words joined within a
  sentence, bottom-up; the two sentences only at the root.
* Regions of an image (:func:`region_linkage`): the quadtree of the grid
  (:mod:`._regions`): halves by rows, then by columns, and so on; two binary
  levels make one quadtree level, the larger half first where a side is odd.

:func:`feature_hierarchy` gives either from an example's features, and
:func:`features_cost` the model evaluations of its exact Owen values
(:mod:`._shap` computes them where the budget allows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._features import Feature
from ._regions import Region

__all__ = ["pair_linkage", "region_linkage", "sorted_by_height", "exact_cost", "linkage_cost", "sentence_sizes",
           "feature_hierarchy", "features_cost", "is_exact"]


def pair_linkage(n_a: int, n_b: int) -> np.ndarray:
    """Hierarchy over the d = n_a + n_b features as a SciPy linkage matrix.

    Within each sentence adjacent spans are joined pairwise, bottom-up (a
    balanced binary tree over word order); the two sentence trees are joined
    last. Heights increase with level, so the matrix is monotone.

    Returns
    -------
    ndarray, shape (d - 1, 4): ``[left, right, height, size]`` rows.

    Raises
    ------
    ValueError
        d < 2.
    """
    if n_a + n_b < 2:
        raise ValueError("a pair needs at least two word features to build a hierarchy")
    rows: list[list[float]] = []
    next_id = n_a + n_b

    def build(leaves: list[int]) -> tuple[int, int, int]:
        nonlocal next_id
        nodes = [(leaf, 1, 0) for leaf in leaves]  # (id, size, level)
        while len(nodes) > 1:
            merged = []
            for i in range(0, len(nodes) - 1, 2):
                (left, ls, ll), (right, rs, rl) = nodes[i], nodes[i + 1]
                level = max(ll, rl) + 1
                rows.append([left, right, level, ls + rs])
                merged.append((next_id, ls + rs, level))
                next_id += 1
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
        return nodes[0]

    roots = [build(list(range(0, n_a)))] if n_a else []
    if n_b:
        roots.append(build(list(range(n_a, n_a + n_b))))
    if len(roots) == 2:
        (left, ls, ll), (right, rs, rl) = roots
        rows.append([left, right, max(ll, rl) + 1, ls + rs])
    return sorted_by_height(np.array(rows, dtype=np.float64), n_a + n_b)


def sorted_by_height(z: np.ndarray, d: int) -> np.ndarray:
    """Rows ordered by height (a valid linkage), cluster ids relabelled to match."""
    order = np.argsort(z[:, 2], kind="stable")
    if np.array_equal(order, np.arange(len(z))):
        return z
    new_id = {d + old: d + new for new, old in enumerate(order)}
    z = z[order]
    for row in z:
        row[0] = new_id.get(int(row[0]), row[0])
        row[1] = new_id.get(int(row[1]), row[1])
    return z


def exact_cost(n_a: int, n_b: int) -> int:
    """Model evaluations of the exact Owen values of the pair hierarchy (full Partition expansion).

    shap's Partition recursion evaluates two masks for each visit of an inner
    node, and a node at depth D is visited in 2**D contexts (each ancestor's
    sibling present or absent); plus the empty and the full pair. So the cost
    is 2 + 2 * sum over inner nodes of 2**depth: 1,500 for 20 + 21 words,
    2,476 for 30 + 30, about 0.6 d**2 to 0.9 d**2 (checked against shap's own
    count in ``tests/test_explain.py``). d <= 1 costs 2 (or 0 with no word).
    """
    d = n_a + n_b
    return 2 * d if d <= 1 else linkage_cost(pair_linkage(n_a, n_b))


def linkage_cost(z: np.ndarray) -> int:
    """Model evaluations of the exact Owen values over the hierarchy ``z`` (a linkage, shape (d - 1, 4)):
    2 + 2 * sum over inner nodes of 2**depth (see :func:`exact_cost`)."""
    d = len(z) + 1
    depth = {d + len(z) - 1: 0}
    total = 2
    for i in range(len(z) - 1, -1, -1):  # parents come after their children in a linkage
        node_depth = depth[d + i]
        total += 2 * 2 ** node_depth
        for child in z[i, :2].astype(int):
            if child >= d:
                depth[child] = node_depth + 1
    return total


def sentence_sizes(features: Sequence[Feature]) -> tuple[int, int]:
    """(n_a, n_b): the word features of sentence a and of sentence b (a's come first)."""
    n_a = sum(f.sentence == "a" for f in features)
    return n_a, len(features) - n_a


def feature_hierarchy(features: Sequence) -> np.ndarray:
    """The hierarchy of an example's features (d >= 2) as a linkage: the pair hierarchy of words
    (:func:`pair_linkage`), or the quadtree of image regions (:func:`._regions.region_linkage`)."""
    if isinstance(features[0], Region):
        return region_linkage(features)
    return pair_linkage(*sentence_sizes(features))


def features_cost(features: Sequence) -> int:
    """Model evaluations of the exact Owen values of an example with these features (2 for one, 0 for none)."""
    return 2 * len(features) if len(features) <= 1 else linkage_cost(feature_hierarchy(features))


def is_exact(features: Sequence, budget: int) -> bool:
    """Whether SHAP computes exact Owen values for these features within ``budget`` evaluations."""
    return features_cost(features) <= budget


def region_linkage(regions: Sequence[Region]) -> np.ndarray:
    """The quadtree over a grid's regions as a SciPy linkage matrix, shape (d - 1, 4), heights by level.

    Raises
    ------
    ValueError
        Fewer than two regions.
    """
    d = len(regions)
    if d < 2:
        raise ValueError("an image needs at least two regions to build a hierarchy")
    n_rows = len({r.row for r in regions})
    n_cols = d // n_rows
    rows: list[list[float]] = []

    def split(r0: int, r1: int, c0: int, c1: int, by_rows: bool) -> tuple[int, int, int]:
        """(node id, size, level) of the cells [r0, r1) x [c0, c1)."""
        if r1 - r0 == 1 and c1 - c0 == 1:
            return r0 * n_cols + c0, 1, 0
        if (by_rows and r1 - r0 > 1) or c1 - c0 == 1:
            mid = r0 + (r1 - r0 + 1) // 2
            parts = split(r0, mid, c0, c1, False), split(mid, r1, c0, c1, False)
        else:
            mid = c0 + (c1 - c0 + 1) // 2
            parts = split(r0, r1, c0, mid, True), split(r0, r1, mid, c1, True)
        (left, ls, ll), (right, rs, rl) = parts
        rows.append([left, right, max(ll, rl) + 1, ls + rs])
        return d + len(rows) - 1, ls + rs, max(ll, rl) + 1

    split(0, n_rows, 0, n_cols, True)
    return sorted_by_height(np.array(rows, dtype=np.float64), d)
