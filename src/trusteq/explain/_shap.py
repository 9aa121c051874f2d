"""SHAP over an example's features (words of a pair, regions of an image): exact Owen values where the budget
allows, a seeded estimate where not.

Both explainers of ``"shap"`` compute the same quantity, the Owen values of
the example's hierarchy (:mod:`._hierarchy`: the pair hierarchy of words,
adjacent words joined within a sentence and the two sentences only at the
root; or the quadtree of an image's regions), for the explained class:

* **exact** when the full expansion of ``shap.PartitionExplainer`` costs at
  most the budget (:func:`exact_cost`; 20 + 21 words: 1,500 evaluations). The
  expansion visits every node of the hierarchy in every context, so the values
  do not depend on the order of expansion, on the seed or on batching.
* **estimated** otherwise, by ``shap.PermutationExplainer`` over the same
  hierarchy: permutations consistent with it (each a random order of the two
  children of every node, run forward and backward), which average to the
  Owen values (Owen 1977; for a binary hierarchy the sibling of each ancestor
  precedes with probability 1/2, exactly the contexts the Partition recursion
  weighs). Seeded: shap's hierarchical shuffle draws from numba's generator,
  seeded here in the calling thread, so two seeds give two independent
  estimates and their agreement is a true noise floor.

The cut-short Partition explainer is not used: under a binding budget its
unexpanded nodes share credit equally (tied weights) and its expansion order
follows tiny output differences, which measured the budget, not the models.

``"shap-permutation"`` is ``shap.PermutationExplainer`` with no hierarchy
(Shapley values; plain random permutations), seeded.

Every run restores numpy's global random state (shap's ``owen`` breaks queue
ties with ``np.random.randn``; it is seeded per example, so runs repeat bit
for bit).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..data import Example
from ._features import Feature, perturb
from ._hierarchy import feature_hierarchy, features_cost, is_exact

__all__ = ["explain_owen", "explain_permutation", "PARTITION_BATCH"]

#: Masks per model call when the hierarchy is fully expanded (the order of expansion does not matter there).
PARTITION_BATCH = 256


def explain_owen(models: Mapping[str, callable], examples: Sequence[Example], features: Sequence[list[Feature]],
                 targets: Sequence[int], seeds: Sequence[int], budget: int) -> list[dict[str, tuple]]:
    """Per example, ``{model name: (Owen values (d,), evaluations)}``: exact within ``budget``, else estimated."""
    out = []
    with _global_random_state():
        for ex, feats, target, seed in zip(examples, features, targets, seeds):
            exact = is_exact(feats, budget)
            out.append({name: (_partition(fn, ex, feats, int(target), seed) if exact
                               else _permutation(fn, ex, feats, int(target), seed, budget, hierarchy=True))
                        for name, fn in models.items()})
    return out


def explain_permutation(models: Mapping[str, callable], examples: Sequence[Example],
                        features: Sequence[list[Feature]], targets: Sequence[int], seeds: Sequence[int],
                        budget: int) -> list[dict[str, tuple]]:
    """Per example, ``{model name: (Shapley value estimates (d,), evaluations)}``; plain permutations."""
    with _global_random_state():
        return [{name: _permutation(fn, ex, feats, int(t), s, budget, hierarchy=False) for name, fn in models.items()}
                for ex, feats, t, s in zip(examples, features, targets, seeds)]


class _global_random_state:
    """Restore numpy's global random state on exit (shap draws from and reseeds it)."""

    def __enter__(self):
        self.state = np.random.get_state()

    def __exit__(self, *exc):
        np.random.set_state(self.state)


def _seed_numba(seed: int) -> None:
    """Seed numba's generator of the calling thread (shap's hierarchical shuffle draws from it)."""
    global _numba_seed
    if _numba_seed is None:
        import numba

        @numba.njit(cache=False)
        def _seed(s):
            np.random.seed(s)

        _numba_seed = _seed
    _numba_seed(seed)


_numba_seed = None


def _masked_model(fn, ex, feats, target, calls: list):
    """The explained class's probability for binary feature masks (n, d) -> (n, 1)."""
    def f(x: np.ndarray) -> np.ndarray:
        calls[0] += len(x)
        return np.asarray(fn(perturb(ex, feats, x > 0.5)))[:, [target]]
    return f


def _trivial(fn, ex, feats, target):
    """d <= 1: no features, or one word whose attribution is the full change in probability."""
    if not feats:
        return np.zeros(0), 0
    full, empty = fn(perturb(ex, feats, np.array([[True], [False]])))
    return np.array([full[target] - empty[target]]), 2


def _first_output(values) -> np.ndarray:
    """(d,) values of the single output (shap drops a trailing axis of length 1 in some explainers)."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)[:, 0]


def _partition(fn, ex, feats, target, seed):
    """Exact Owen values: the hierarchy fully expanded (``max_evals`` = its :func:`exact_cost`)."""
    import shap

    d = len(feats)
    if d <= 1:
        return _trivial(fn, ex, feats, target)
    calls = [0]
    masker = shap.maskers.Partition(np.zeros((1, d)), clustering=feature_hierarchy(feats))
    explainer = shap.PartitionExplainer(_masked_model(fn, ex, feats, target, calls), masker)
    np.random.seed(seed)  # queue ties: they change the order of the additions only, never which are made
    values = explainer(np.ones((1, d)), max_evals=features_cost(feats), batch_size=PARTITION_BATCH,
                       silent=True).values[0]
    return _first_output(values), calls[0]


def _permutation(fn, ex, feats, target, seed, budget, hierarchy: bool):
    """Antithetic permutation estimate with ``max(budget, 2d + 1)`` evaluations; over the pair hierarchy or not."""
    import shap

    d = len(feats)
    if d <= 1:
        return _trivial(fn, ex, feats, target)
    calls = [0]
    if hierarchy:
        masker = shap.maskers.Partition(np.zeros((1, d)), clustering=feature_hierarchy(feats))
        _seed_numba(seed)
    else:
        masker = shap.maskers.Independent(np.zeros((1, d)), max_samples=1)
    explainer = shap.PermutationExplainer(_masked_model(fn, ex, feats, target, calls), masker, seed=seed)
    values = explainer(np.ones((1, d)), max_evals=max(budget, 2 * d + 1), silent=True).values[0]
    return _first_output(values), calls[0]
