"""SHAP over the word features of a pair, with the ``shap`` package's explainers.

* Partition (``shap.PartitionExplainer``, Owen values over a hierarchy; the
  paper's choice): the hierarchy (:func:`pair_linkage`) joins adjacent words
  within a sentence, and the two sentences only at the root. Deterministic:
  seeds do not change it. shap evaluates a handful of masks per call (about
  10), so :data:`SHAP_BLOCK` examples are explained in threads whose model
  calls are joined into one batch per round (:mod:`._lockstep`); which masks
  share a batch depends only on the inputs, so results stay reproducible.
* Permutation (``shap.PermutationExplainer``) over plain random permutations
  (seeded; shap's hierarchy-respecting shuffle draws from numba's unseeded
  generator), at least 2d+1 evaluations (one forward and backward
  permutation). It draws from numpy's global generator, so it runs one
  example at a time.

Both restore numpy's global random state afterwards (shap's ``owen`` breaks
queue ties with ``np.random.randn``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..data import Example
from ._features import Feature, render
from ._lockstep import run_in_lockstep

__all__ = ["SHAP_BLOCK", "pair_linkage", "explain_partition", "explain_permutation"]

#: Examples explained together by SHAP Partition (threads per round of batched model calls).
SHAP_BLOCK = 16


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
    return _sorted_by_height(np.array(rows, dtype=np.float64), n_a + n_b)


def _sorted_by_height(z: np.ndarray, d: int) -> np.ndarray:
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


def explain_partition(models: Mapping[str, callable], examples: Sequence[Example],
                      features: Sequence[list[Feature]], targets: Sequence[int], seeds: Sequence[int],
                      n_evals: int) -> list[dict[str, tuple]]:
    """Per example, ``{model name: (Owen values (d,), evaluations)}``; blocks of :data:`SHAP_BLOCK` in lockstep."""
    items = list(zip(examples, features, (int(t) for t in targets)))
    per_model = {}
    with _global_random_state():
        for name, fn in models.items():
            per_model[name] = []
            for start in range(0, len(items), SHAP_BLOCK):
                block = items[start:start + SHAP_BLOCK]
                per_model[name] += run_in_lockstep(fn, block, lambda f, ex, feats, t: _partition(f, ex, feats, t,
                                                                                                   n_evals))
    return [{name: per_model[name][i] for name in models} for i in range(len(items))]


def explain_permutation(models: Mapping[str, callable], examples: Sequence[Example],
                        features: Sequence[list[Feature]], targets: Sequence[int], seeds: Sequence[int],
                        n_evals: int) -> list[dict[str, tuple]]:
    """Per example, ``{model name: (SHAP values (d,), evaluations)}``; one example at a time."""
    items = list(zip(examples, features, targets, seeds))
    with _global_random_state():
        per_model = {name: [_permutation(fn, ex, feats, int(t), s, n_evals) for ex, feats, t, s in items]
                     for name, fn in models.items()}
    return [{name: per_model[name][i] for name in models} for i in range(len(items))]


class _global_random_state:
    """Restore numpy's global random state on exit (shap draws from and may reseed it)."""

    def __enter__(self):
        self.state = np.random.get_state()

    def __exit__(self, *exc):
        np.random.set_state(self.state)


def _masked_model(fn, ex, feats, calls: list):
    def f(x: np.ndarray) -> np.ndarray:
        calls[0] += len(x)
        return np.asarray(fn([render(ex.text_a, ex.text_b, feats, row > 0.5) for row in x]))
    return f


def _trivial(fn, ex, feats, target):
    """d <= 1: no features, or one word whose attribution is the full change in probability."""
    if not feats:
        return np.zeros(0), 0
    full, empty = fn([render(ex.text_a, ex.text_b, feats, np.array([k])) for k in (True, False)])
    return np.array([full[target] - empty[target]]), 2


def _partition(fn, ex, feats, target, n_evals):
    import shap

    d = len(feats)
    if d <= 1:
        return _trivial(fn, ex, feats, target)
    n_a = sum(f.sentence == "a" for f in feats)
    calls = [0]
    masker = shap.maskers.Partition(np.zeros((1, d)), clustering=pair_linkage(n_a, d - n_a))
    explainer = shap.PartitionExplainer(_masked_model(fn, ex, feats, calls), masker)
    values = explainer(np.ones((1, d)), max_evals=n_evals, silent=True).values[0]
    return np.asarray(values)[:, target].astype(np.float64), calls[0]


def _permutation(fn, ex, feats, target, seed, n_evals):
    import shap

    d = len(feats)
    if d <= 1:
        return _trivial(fn, ex, feats, target)
    calls = [0]
    # No hierarchy here: shap shuffles along a hierarchy with numba's own random state, which its seed does not reach.
    masker = shap.maskers.Independent(np.zeros((1, d)), max_samples=1)
    explainer = shap.PermutationExplainer(_masked_model(fn, ex, feats, calls), masker, seed=seed)
    values = explainer(np.ones((1, d)), max_evals=max(n_evals, 2 * d + 1), silent=True).values[0]
    return np.asarray(values)[:, target].astype(np.float64), calls[0]
