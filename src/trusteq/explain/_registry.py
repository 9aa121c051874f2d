"""What each explainer is: how it depends on the seed, how it is batched, what its budget means.

Code that handles explainers generically (the comparison, the report) reads
these specs instead of testing explainer names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ._features import Feature
from ._lime import explain_lime
from ._shap import explain_owen, explain_permutation, is_exact

__all__ = ["ExplainerSpec", "REGISTRY", "EXPLAINERS"]


def _never(features: Sequence[Feature], budget: int) -> bool:
    return False


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
    """

    name: str
    exact: Callable[[Sequence[Feature], int], bool]
    budget_option: str
    budget_unit: str
    run: Callable


REGISTRY: dict[str, ExplainerSpec] = {
    "lime": ExplainerSpec("lime", _never, "lime_samples", "samples", explain_lime),
    "shap": ExplainerSpec("shap", is_exact, "shap_evals", "evaluations", explain_owen),
    "shap-permutation": ExplainerSpec("shap-permutation", _never, "shap_evals", "evaluations", explain_permutation),
}

#: Explainer names, in the order options list them.
EXPLAINERS = tuple(REGISTRY)
