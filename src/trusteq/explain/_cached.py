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
from ..models import TaskModel
from ._features import Explanation, segment
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
        As :func:`~._run.explain_examples` (``budget`` is its ``n_samples``).
    executor : trusteq.executors.Executor, optional
        Where missing explanations are computed; default: in this process.

    Returns
    -------
    dict model name -> list of n Explanation, in example order.
    """
    from ..executors import LocalExecutor, Unit

    spec = REGISTRY[explainer]
    targets = [int(t) for t in targets]
    features = [segment(ex.text_a, ex.text_b) for ex in examples]
    found: dict[tuple[str, int], Explanation] = {}
    missing: list[tuple[TaskModel, int, object]] = []  # (model, example index, cache file)
    for i, (ex, target) in enumerate(zip(examples, targets)):
        key = ("exact", "exact") if spec.exact(features[i], budget) else (seed, budget)
        for m in models:
            path = _path(m, ex, explainer, target, *key)
            hit = cache.load_arrays(path) if path is not None else None
            if hit is None:
                missing.append((m, i, path))
            else:
                found[m.name, i] = Explanation(ex.id, m.name, explainer, seed, target, features[i], hit["weights"],
                                               int(hit["n_evals"]))
    order = {m.name: k for k, m in enumerate(models)}
    missing.sort(key=lambda job: order[job[0].name])  # model by model: a worker loads each model once
    units = [Unit("explain", m, (explainer, seed, budget, [examples[i]], [targets[i]])) for m, i, _ in missing]
    with _progress_bar(len(examples) * len(models), progress, f"{explainer} ({label})") as bar:
        bar.update(len(found))
        for u, [(weights, n_evals)] in (executor or LocalExecutor()).run(units):
            m, i, path = missing[u]
            if path is not None:
                cache.save_arrays(path, {"weights": weights, "n_evals": np.array(n_evals)})
            found[m.name, i] = Explanation(examples[i].id, m.name, explainer, seed, targets[i], features[i], weights,
                                           int(n_evals))
            bar.update(1)
    return {m.name: [found[m.name, i] for i in range(len(examples))] for m in models}


def explain_unit(model: TaskModel, examples, targets, *, explainer: str, seed: int,
                 budget: int) -> list[tuple[np.ndarray, int]]:
    """What a worker computes for one unit: per example, (weights (d,), evaluations) of ``model``'s explanation
    (:func:`~._run.explain_examples` of this model alone; nothing cached)."""
    out = explain_examples({model.name: model}, examples, targets, explainer=explainer, seed=seed,
                           n_samples=budget)[model.name]
    return [(e.weights, e.n_evals) for e in out]


def _path(model: TaskModel, ex, explainer, target, seed, budget):
    """Cache file of one explanation; an exact one is keyed with seed and budget "exact". None: not cached."""
    if model.fingerprint is None:
        return None
    return entry_path("explain", EXPLAIN_VERSION, model.fingerprint, model.batching, ex.id, ex.text_a, ex.text_b,
                      explainer, seed, budget, target)


def entry_path(*parts):
    """The file of the explanation cache entry keyed by ``parts`` (also used by the paper protocol)."""
    k = cache.key(*parts)
    return cache.cache_dir() / "explanations" / k[:2] / f"{k}.npz"


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair", leave=False, disable=not enabled)
