"""The paper's explanation protocol (:mod:`._paper`) run over models and examples, each explanation cached.

One cache entry per (model fingerprint, batching, example, protocol, task,
explainer, seed, budget, explained class), written as soon as it is computed,
so an interrupted run resumes where it stopped. A model without a fingerprint
is explained every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..executors import Unit
from ..models import TaskModel
from ._cached import entry_path, per_model_and_example
from ._features import example_seed, segment
from ._paper import explain_paper_lime, explain_paper_shap, paper_jaccard

__all__ = ["PAPER_EXPLAINERS", "PaperExplanation", "explain_paper_cached", "paper_jaccards", "paper_cost",
           "PAPER_VERSION"]

PAPER_VERSION = 1  # bump when the paper protocol's code changes what it computes

#: The authors' explainers by the name of the matching pair-protocol explainer: ``run(fn, examples, targets,
#: seeds, budget, task) -> per example [(word, weight), ...]``.
_RUNNERS: dict[str, Callable] = {"lime": explain_paper_lime, "shap": explain_paper_shap}
#: Explainers the paper protocol offers, in the order options list them.
PAPER_EXPLAINERS = tuple(_RUNNERS)


def paper_cost(explainer: str, example, budget: int) -> float:
    """Model evaluations of one paper-protocol explanation of ``example``: LIME all ``budget`` samples (no
    de-duplication); SHAP ``budget`` raised to 2d + 1 (d its words, counted as trusteq segments them)."""
    if explainer not in _RUNNERS:
        raise ValueError(f"unknown explainer {explainer!r} for the paper protocol")
    if _RUNNERS[explainer] is explain_paper_lime:
        return float(budget)
    return float(max(budget, 2 * len(segment(example.text_a, example.text_b)) + 1))


@dataclass
class PaperExplanation:
    """One model's explanation of one example under the paper's protocol (merged text, the authors' settings).

    Attributes
    ----------
    example_id, model, explainer : str
    seed : int
        The run's seed (the example's own seed is ``example_seed(seed, example_id)``).
    explained_class : int
        Index into the task's label names.
    words : list of str, length m
        LIME's words (at most 20) or every shap masker token, as the explainer returned them.
    weights : ndarray, shape (m,)
        Each word's weight for the explained class (LIME coefficient; SHAP value in probability units).
    n_evals : int
        Pairs the model was given for this explanation.
    """

    example_id: str
    model: str
    explainer: str
    seed: int
    explained_class: int
    words: list[str]
    weights: np.ndarray
    n_evals: int

    @property
    def pairs(self) -> list[tuple[str, float]]:
        """``[(word, weight), ...]``, what :func:`~._paper.paper_jaccard` reads."""
        return [(w, float(v)) for w, v in zip(self.words, self.weights)]

    def to_record(self, label_names: Sequence[str]) -> dict:
        """The ``explanations.jsonl`` form: like :meth:`Explanation.to_record`, with ``protocol`` "paper" and
        features of ``word`` and ``weight`` only (words of the merged text, not of one sentence)."""
        return {"example_id": self.example_id, "model": self.model, "explainer": self.explainer, "protocol": "paper",
                "seed": self.seed, "explained_class": label_names[self.explained_class], "n_evals": self.n_evals,
                "features": [{"word": w, "weight": v} for w, v in self.pairs]}


def explain_paper_cached(models: Sequence[TaskModel], examples, targets, *, task: str, explainer: str, seed: int,
                         budget: int, progress: bool = False, label: str = "",
                         executor=None) -> dict[str, list[PaperExplanation]]:
    """Every model's paper-protocol explanation of every example, each cached as soon as it is done.

    Parameters
    ----------
    models : sequence of TaskModel
        Called on lists of pairs, ``(m, K)`` probabilities in task order.
    examples : sequence of Example, length n
    targets : sequence of int, length n
        Class explained per example.
    task : {"nli", "pi"}
    explainer : one of :data:`PAPER_EXPLAINERS`
    seed : int
        Example ``e`` is explained with ``example_seed(seed, e.id)``.
    budget : int
        LIME samples or SHAP evaluations (for PI SHAP a floor, raised to 2d + 1).
    executor : trusteq.executors.Executor, optional
        Where missing explanations are computed, one unit per (model, example); default: in this process.

    Returns
    -------
    dict model name -> list of n PaperExplanation, in example order.

    Raises
    ------
    ValueError
        Unknown task or explainer, or lengths differ.
    """
    if explainer not in _RUNNERS:
        raise ValueError(f"unknown explainer {explainer!r} for the paper protocol; expected one of "
                         f"{list(PAPER_EXPLAINERS)}")
    if len(targets) != len(examples):
        raise ValueError(f"{len(targets)} targets for {len(examples)} examples")
    targets = [int(t) for t in targets]

    def path(m, i):
        return _path(m, examples[i], task, explainer, seed, budget, targets[i])

    def unit(m, i):
        return Unit(paper_unit, m, (examples[i], targets[i], task, explainer, seed, budget))

    def arrays(result):
        words, weights, n_evals = result
        return {"words": np.array(words, dtype=str), "weights": weights, "n_evals": np.array(n_evals)}

    done = per_model_and_example(models, len(examples), path, unit, arrays, executor, progress,
                                 f"{explainer}, paper protocol ({label})")
    out: dict[str, list] = {m.name: [] for m in models}
    for (m, i), a in done:
        out[m.name].append(PaperExplanation(examples[i].id, m.name, explainer, seed, targets[i],
                                            [str(w) for w in a["words"]], a["weights"], int(a["n_evals"])))
    return out


def paper_unit(model: TaskModel, ex, target: int, task: str, explainer: str, seed: int,
               budget: int) -> tuple[list[str], np.ndarray, int]:
    """A paper-protocol unit (:class:`trusteq.executors.Unit`): words (m,), weights (m,) and the pairs evaluated,
    of one model on one example (nothing cached)."""
    evaluated = [0]

    def fn(pairs):
        evaluated[0] += len(pairs)
        return model(pairs)

    [result] = _RUNNERS[explainer](fn, [ex], [target], [example_seed(seed, ex.id)], budget, task)
    return [w for w, _ in result], np.array([v for _, v in result], dtype=np.float64), evaluated[0]


def _path(model: TaskModel, ex, task, explainer, seed, budget, target):
    fp = model.fingerprint
    if fp is None:
        return None
    return entry_path("explain-paper", PAPER_VERSION, fp, model.batching, ex.id, ex.text_a, ex.text_b, task,
                      explainer, seed, budget, target)


def paper_jaccards(a: Sequence[PaperExplanation], b: Sequence[PaperExplanation], task: str, k: int) -> np.ndarray:
    """Per example, the authors' top-k unique-word Jaccard of two runs (:func:`~._paper.paper_jaccard`).

    Parameters
    ----------
    a, b : sequence of PaperExplanation, length n, of one explainer, in the same example order
    task : {"nli", "pi"}
    k : int

    Returns
    -------
    ndarray, shape (n,), values in [0, 1].

    Raises
    ------
    ValueError
        The runs differ in length, examples or explainer.
    """
    if len(a) != len(b):
        raise ValueError(f"runs of {len(a)} and {len(b)} explanations")
    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b)):
        if x.example_id != y.example_id or x.explainer != y.explainer:
            raise ValueError(f"explanation {i} differs in example or explainer: {x.example_id}/{x.explainer} and "
                             f"{y.example_id}/{y.explainer}")
        out[i] = paper_jaccard(x.pairs, y.pairs, task, x.explainer, k)
    return out
