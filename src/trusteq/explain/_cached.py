"""Explanations kept in the on-disk cache, one entry per (model, batching, example, explainer, seed, budget, class).

An exact explanation (see ``ExplainerSpec.exact``) is kept under neither seed
nor budget: every seed and every larger budget reuses it.

What the cache lacks is computed by an executor (:mod:`trusteq.executors`),
one unit per (model, example); results are written here, by the driver, as
they arrive, whichever executor computed them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import cache
from ..executors import LocalExecutor, Unit
from ..models import TaskModel
from ._features import Explanation, features as features_of
from ._registry import REGISTRY
from ._run import explain_examples

__all__ = ["explain_cached", "explain_unit", "EXPLAIN_VERSION"]

EXPLAIN_VERSION = 2  # bump when explanation code changes what it computes


def explain_cached(models: Sequence[TaskModel], examples, targets, *, explainer: str, seed: int, budget: int,
                   progress: bool = False, label: str = "", executor=None) -> dict[str, list[Explanation]]:
    """Explanations of every model on every example, each cached as soon as it is done.

    Only what the cache lacks is computed, so an interrupted run resumes
    where it stopped.

    Parameters
    ----------
    models : sequence of TaskModel
    examples : sequence of Example, length n
    targets : sequence of int, length n
        Class explained per example.
    explainer, seed, budget
        As :func:`~._run.explain_examples`.
    executor : trusteq.executors.Executor, optional
        Where missing explanations are computed; default: in this process.

    Returns
    -------
    dict model name -> list of n Explanation, in example order.
    """
    spec = REGISTRY[explainer]
    targets = [int(t) for t in targets]
    features = [features_of(ex) for ex in examples]

    def path(m, i):
        key = ("exact", "exact") if spec.exact(features[i], budget) else (seed, budget)
        return _path(m, examples[i], explainer, targets[i], *key)

    def unit(m, i):
        return Unit(explain_unit, m, ([examples[i]], [targets[i]], explainer, seed, budget))

    def arrays(result):
        [(weights, n_evals)] = result
        return {"weights": weights, "n_evals": np.array(n_evals)}

    done = per_model_and_example(models, len(examples), path, unit, arrays, executor, progress,
                                 f"{explainer} ({label})")
    out: dict[str, list[Explanation]] = {m.name: [] for m in models}
    for (m, i), a in done:
        out[m.name].append(Explanation(examples[i].id, m.name, explainer, seed, targets[i], features[i], a["weights"],
                                       int(a["n_evals"])))
    return out


def per_model_and_example(models, n: int, path, unit, arrays, executor=None, progress: bool = False,
                           desc: str = "") -> list[tuple[tuple, dict]]:
    """``((model, example index), arrays)`` of every model on every one of ``n`` examples, model by model (a
    worker loads each model once): from the cache where ``path(model, i)`` has an entry, else computed by
    ``unit(model, i)`` (a :class:`~trusteq.executors.Unit`) on ``executor`` (default: this process), its result
    turned into arrays by ``arrays(result)`` and stored as it arrives (:func:`trusteq.cache.load_or_compute`)."""
    jobs = [(m, i) for m in models for i in range(n)]

    def compute(missing):
        for u, result in (executor or LocalExecutor()).run([unit(*jobs[j]) for j in missing]):
            yield missing[u], arrays(result)

    with _progress_bar(len(jobs), progress, desc) as bar:
        found = cache.load_or_compute([path(m, i) for m, i in jobs], compute, done=lambda *_: bar.update(1))
    return list(zip(jobs, found))


def explain_unit(model: TaskModel, examples, targets, explainer: str, seed: int,
                 budget: int) -> list[tuple[np.ndarray, int]]:
    """An explanation unit (:class:`trusteq.executors.Unit`): per example, (weights (d,), evaluations) of
    ``model``'s explanation (:func:`~._run.explain_examples` of this model alone; nothing cached)."""
    out = explain_examples({model.name: model}, examples, targets, explainer=explainer, seed=seed,
                           budget=budget)[model.name]
    return [(e.weights, e.n_evals) for e in out]


def _path(model: TaskModel, ex, explainer, target, seed, budget):
    """Cache file of one explanation; an exact one is keyed with seed and budget "exact". None: not cached."""
    if model.fingerprint is None:
        return None
    return entry_path("explain", EXPLAIN_VERSION, model.fingerprint, model.batching, ex.id, *ex.key, explainer, seed,
                      budget, target)


def entry_path(*parts):
    """The file of the explanation cache entry keyed by ``parts`` (also used by the paper protocol)."""
    return cache.entry("explanations", *parts)


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="example", leave=False, disable=not enabled)
