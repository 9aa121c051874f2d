"""Explain examples with any registered explainer."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..data import Example
from ..validation import check_at_least, check_option
from ._features import Explanation, example_seed, features as features_of
from ._registry import EXPLAINERS, REGISTRY

__all__ = ["explain_examples"]

ModelFn = Callable[[list[tuple[str, str]]], np.ndarray]


def explain_examples(models: Mapping[str, ModelFn], examples: Sequence[Example], targets: Sequence[int], *,
                     explainer: str = "lime", seed: int = 0, budget: int = 1000) -> dict[str, list[Explanation]]:
    """Explain each example's ``targets[i]`` class for every model.

    Parameters
    ----------
    models : mapping name -> fn
        Each fn maps a list of pairs to probabilities (m, K) in task order.
    examples : sequence of Example, length n
    targets : sequence of int, length n
        Class index to explain for each example (same for all models).
    explainer : {"lime", "shap", "shap-permutation"}, default="lime"
    seed : int, default=0
        Seeds each example's perturbations (through :func:`example_seed`).
    budget : int, default=1000
        The explainer's budget (the option its registry entry names,
        :attr:`ExplainerSpec.budget_option`): LIME's perturbed samples per example (the
        original included); SHAP's evaluations per example (a cap: exact Owen
        values where they cost at most this, else an estimate with this many).

    Returns
    -------
    dict name -> list of n Explanation, in example order.

    Raises
    ------
    ValueError
        Unknown explainer, fewer targets than examples, ``budget < 2``.
    """
    check_option("explainer", explainer, EXPLAINERS)
    if len(targets) != len(examples):
        raise ValueError(f"{len(targets)} targets for {len(examples)} examples")
    check_at_least("budget", budget, 2)
    features = [features_of(ex) for ex in examples]
    seeds = [example_seed(seed, ex.id) for ex in examples]
    per_example = REGISTRY[explainer].run(models, examples, features, targets, seeds, budget)
    out: dict[str, list[Explanation]] = {name: [] for name in models}
    for ex, feats, target, results in zip(examples, features, targets, per_example):
        for name, (weights, n_evals) in results.items():
            out[name].append(Explanation(ex.id, name, explainer, seed, int(target), feats, weights, n_evals))
    return out
