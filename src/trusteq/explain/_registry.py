"""What each explainer is: how it depends on the seed, how it is batched, what its budget means.

Code that handles explainers generically (the comparison, the report) reads
these specs instead of testing explainer names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ._features import Feature
from ._lime import explain_lime
from ._hierarchy import features_cost, is_exact
from ._shap import explain_owen, explain_permutation

__all__ = ["ExplainerSpec", "REGISTRY", "EXPLAINERS"]


def _never(features: Sequence[Feature], budget: int) -> bool:
    return False


#: Share of LIME's samples that reach the model: identical masks are evaluated once (measured on SNLI and MRPC
#: pairs with 1,000 samples, benchmarks/explain_speed.py).
LIME_DISTINCT = 0.87


def _lime_cost(features: Sequence[Feature], budget: int) -> tuple[float, float]:
    return 0.0, LIME_DISTINCT * budget


def _permutation_cost(features: Sequence[Feature], budget: int) -> tuple[float, float]:
    """Whole antithetic permutations that fit the budget (each 2d + 1 evaluations)."""
    step = 2 * len(features) + 1
    return 0.0, float(max(budget // step, 1) * step)


def _owen_cost(features: Sequence[Feature], budget: int) -> tuple[float, float]:
    """Exact Owen values where they fit (computed once per model, shared by every seed), else permutations."""
    cost = features_cost(features)
    return (float(cost), 0.0) if cost <= budget else _permutation_cost(features, budget)


@dataclass(frozen=True)
class ExplainerSpec:
    """An explainer's properties.

    Attributes
    ----------
    name : str
        The name used in options and reports.
    exact : callable
        ``exact(features, budget) -> bool``: the explanation of an example
        with these word features is exact at this budget, so it depends on
        neither the seed nor the budget beyond it (computed once per model
        and shared by every seed; its noise floor is 1 because the explainer
        adds no noise). Otherwise it is a seeded estimate.
    budget_option : {"lime_samples", "shap_evals"}
        The option of :func:`trusteq.compare` that sets its budget.
    budget_unit : str
        What one unit of that budget is, for reports.
    run : callable
        ``run(models, examples, features, targets, seeds, budget)`` -> per example
        ``{model name: (weights (d,), evaluations)}``.
    cost : callable
        ``cost(features, budget) -> (once, per_run)``: model evaluations of one
        model's explanation of an example with these features, computed once
        per model (exact, shared by every seed) and per seeded run; what
        ``trusteq study --estimate`` counts.
    """

    name: str
    exact: Callable[[Sequence[Feature], int], bool]
    budget_option: str
    budget_unit: str
    run: Callable
    cost: Callable[[Sequence[Feature], int], tuple[float, float]]


REGISTRY: dict[str, ExplainerSpec] = {
    "lime": ExplainerSpec("lime", _never, "lime_samples", "samples", explain_lime, _lime_cost),
    "shap": ExplainerSpec("shap", is_exact, "shap_evals", "evaluations", explain_owen, _owen_cost),
    "shap-permutation": ExplainerSpec("shap-permutation", _never, "shap_evals", "evaluations", explain_permutation,
                                      _permutation_cost),
}

#: Explainer names, in the order options list them.
EXPLAINERS = tuple(REGISTRY)
