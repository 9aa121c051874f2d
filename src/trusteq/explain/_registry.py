"""What each explainer is: how it depends on the seed, how it is batched, what its budget means.

Code that handles explainers generically (the comparison, the report) reads
these specs instead of testing explainer names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ._lime import explain_lime
from ._shap import SHAP_BLOCK, explain_partition, explain_permutation

__all__ = ["ExplainerSpec", "REGISTRY", "EXPLAINERS"]


@dataclass(frozen=True)
class ExplainerSpec:
    """An explainer's properties.

    Attributes
    ----------
    name : str
        The name used in options and reports.
    deterministic : bool
        The seed does not change its result: explained once, never repeated over seeds.
    block : int
        Examples explained together (their model calls joined); 1: one at a time.
    budget_option : {"lime_samples", "shap_evals"}
        The option of :func:`trusteq.compare` that sets its budget.
    budget_unit : str
        What one unit of that budget is, for reports.
    run : callable
        ``run(models, examples, features, targets, seeds, budget)`` -> per example
        ``{model name: (weights (d,), evaluations)}``.
    """

    name: str
    deterministic: bool
    block: int
    budget_option: str
    budget_unit: str
    run: Callable


REGISTRY: dict[str, ExplainerSpec] = {
    "lime": ExplainerSpec("lime", False, 1, "lime_samples", "samples", explain_lime),
    "shap": ExplainerSpec("shap", True, SHAP_BLOCK, "shap_evals", "evaluations", explain_partition),
    "shap-permutation": ExplainerSpec("shap-permutation", False, 1, "shap_evals", "evaluations",
                                      explain_permutation),
}

#: Explainer names, in the order options list them.
EXPLAINERS = tuple(REGISTRY)
