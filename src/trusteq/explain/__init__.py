"""Word-level LIME and SHAP explanations of sentence-pair classifiers.

Pair-aware perturbation
-----------------------
Both sentences are split into words by one model-independent segmentation
(:func:`segment`), so models with different tokenizers are explained over the
same features and their attributions are comparable. Each feature knows its
sentence (``"a"`` or ``"b"``) and its position there: a word present in both
sentences is two features. A perturbation removes a set of words from their
own sentence and hands the model the two perturbed sentences as a *pair*: the
separator is never a feature, is never removed, and the sentences are never
merged (a sentence may become empty).

Explainers (one module each; :data:`REGISTRY` describes them)
-------------------------------------------------------------
* ``"lime"`` (:mod:`._lime`): LIME through ``lime.lime_base.LimeBase`` with
  ``LimeTextExplainer``'s settings; seeded.
* ``"shap"`` (:mod:`._shap`): ``shap.PartitionExplainer`` over a pair-aware
  hierarchy; deterministic; examples explained in blocks whose model calls
  are joined (:mod:`._lockstep`).
* ``"shap-permutation"`` (:mod:`._shap`): ``shap.PermutationExplainer``; seeded.

An explanation is a pure function of (model, examples, settings), so
:func:`explain_examples` can be spread over processes or machines.
"""

from __future__ import annotations

from ._cached import explain_cached
from ._features import WORD, Explanation, Feature, example_seed, render, segment
from ._lockstep import Lockstep, run_in_lockstep
from ._registry import EXPLAINERS, REGISTRY, ExplainerSpec
from ._run import explain_examples
from ._shap import SHAP_BLOCK, pair_linkage

__all__ = ["EXPLAINERS", "REGISTRY", "ExplainerSpec", "SHAP_BLOCK", "WORD", "Feature", "Explanation", "segment",
           "render", "example_seed", "pair_linkage", "explain_examples", "explain_cached", "Lockstep",
           "run_in_lockstep"]
