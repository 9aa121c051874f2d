"""LIME and SHAP explanations of sentence-pair and single-text classifiers (over words) and image classifiers
(over regions).

Pair-aware perturbation
-----------------------
Both sentences are split into words by one model-independent segmentation
(:func:`segment`), so models with different tokenizers are explained over the
same features and their attributions are comparable. Each feature knows its
sentence (``"a"`` or ``"b"``) and its position there: a word present in both
sentences is two features. A perturbation removes a set of words from their
own sentence and hands the model the two perturbed sentences as a *pair*: the
separator is never a feature, is never removed, and the sentences are never
merged (a sentence may become empty). A single text is one sentence ``"a"``:
the same words, sampling and hierarchy, with no second sentence.

Image regions
-------------
An image's features are the regions of a fixed 7 x 7 grid (:mod:`._regions`), the same for every
model; a perturbation erases regions to the image's mean colour. LIME samples regions as lime's
``LimeImageExplainer`` does; SHAP's hierarchy is the grid's quadtree (:mod:`._hierarchy`), whose
exact Owen values cost 1,804 evaluations on a 7 x 7 grid. :func:`features` and :func:`perturb`
give any example's features and perturbed inputs, so the explainers never test the input kind.

Explainers (one module each; :data:`REGISTRY` describes them)
-------------------------------------------------------------
* ``"lime"`` (:mod:`._lime`): LIME through ``lime.lime_base.LimeBase`` with
  ``LimeTextExplainer``'s settings; seeded.
* ``"shap"`` (:mod:`._shap`): Owen values over a pair-aware hierarchy, exact
  (``shap.PartitionExplainer`` fully expanded) where the budget allows it,
  else estimated by ``shap.PermutationExplainer`` over the same hierarchy;
  seeded where estimated.
* ``"shap-permutation"`` (:mod:`._shap`): ``shap.PermutationExplainer``
  without the hierarchy (Shapley values); seeded.

The paper's protocol
--------------------
:mod:`._paper` reproduces the explanation settings of Rai et al. (2025)
(LIME and SHAP on the merged text, their top-10 unique-word Jaccard);
:func:`explain_paper_cached` runs them over models and examples with the
cache, for ``trusteq.compare(..., protocol="paper")``.

An explanation is a pure function of (model, examples, settings), so
:func:`explain_examples` can be spread over processes or machines.
"""

from __future__ import annotations

from ._cached import explain_cached
from ._features import WORD, Explanation, Feature, example_seed, features, perturb, render, segment
from ._regions import GRID, Region, image_regions
from ._paper import BUDGETS as PAPER_BUDGETS
from ._paper import SEPARATORS
from ._paper import paper_jaccard
from ._paper_cached import PAPER_EXPLAINERS, PaperExplanation, explain_paper_cached, paper_cost, paper_jaccards
from ._registry import EXPLAINERS, REGISTRY, ExplainerSpec
from ._run import explain_examples
from ._hierarchy import exact_cost, linkage_cost, pair_linkage, region_linkage, sentence_sizes

__all__ = ["EXPLAINERS", "REGISTRY", "ExplainerSpec", "WORD", "Feature", "Explanation", "segment",
           "render", "features", "perturb", "GRID", "Region", "image_regions", "region_linkage", "linkage_cost",
           "example_seed", "pair_linkage", "exact_cost", "sentence_sizes", "explain_examples", "explain_cached",
           "PAPER_EXPLAINERS", "PAPER_BUDGETS", "PaperExplanation", "explain_paper_cached", "paper_jaccard",
           "paper_jaccards", "paper_cost", "PAPER_TASKS"]

#: Tasks the paper's protocol is defined for (Rai et al. 2025 explain NLI and PI pairs only).
PAPER_TASKS = tuple(SEPARATORS)
