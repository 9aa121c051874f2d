"""Explanations kept in the on-disk cache, one entry per (model, batching, example, explainer, seed, budget, class).

An exact explanation (see ``ExplainerSpec.exact``) is kept under neither seed
nor budget: every seed and every larger budget reuses it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import cache
from ..models import TaskModel
from ._features import Explanation, segment
from ._registry import REGISTRY
from ._run import explain_examples

__all__ = ["explain_cached", "EXPLAIN_VERSION"]

EXPLAIN_VERSION = 2  # bump when explanation code changes what it computes


def explain_cached(models: Sequence[TaskModel], examples, targets, *, explainer: str, seed: int, budget: int,
                   progress: bool = False, label: str = "") -> dict[str, list[Explanation]]:
    """Explanations of every model on every example, each cached as soon as it is done.

    Only what the cache lacks is computed, so an interrupted run resumes
    where it stopped.

    Returns
    -------
    dict model name -> list of Explanation, in example order.
    """
    by_name = {m.name: m for m in models}
    items = list(zip(examples, (int(t) for t in targets)))
    runs: dict[str, list] = {m.name: [None] * len(items) for m in models}
    with _progress_bar(len(items), progress, f"{explainer} ({label})") as bar:
        for i in range(len(items)):
            todo, paths = _lookup(models, items, [i], runs, explainer, seed, budget)
            for names, idx in todo.items():
                result = explain_examples({n: by_name[n] for n in names}, [items[i][0] for i in idx],
                                          [items[i][1] for i in idx], explainer=explainer, seed=seed,
                                          n_samples=budget)
                for n in names:
                    for e, i in zip(result[n], idx):
                        if paths[n, i] is not None:
                            cache.save_arrays(paths[n, i], {"weights": e.weights, "n_evals": np.array(e.n_evals)})
                        runs[n][i] = e
            bar.update(1)
    return runs


def _lookup(models, items, indices, runs, explainer, seed, budget):
    """Fill ``runs`` from the cache; return {models still to explain: [example indices]} and their cache paths."""
    todo: dict[tuple[str, ...], list[int]] = {}
    paths = {}
    for i in indices:
        ex, target = items[i]
        missing = []
        for m in models:
            path = _path(m, ex, explainer, seed, budget, target)
            hit = cache.load_arrays(path) if path is not None else None
            if hit is None:
                missing.append(m.name)
                paths[m.name, i] = path
            else:
                runs[m.name][i] = Explanation(ex.id, m.name, explainer, seed, target, segment(ex.text_a, ex.text_b),
                                              hit["weights"], int(hit["n_evals"]))
        if missing:
            todo.setdefault(tuple(missing), []).append(i)
    return todo, paths


def _path(model: TaskModel, ex, explainer, seed, budget, target):
    fp = model.fingerprint
    if fp is None:
        return None
    if REGISTRY[explainer].exact(segment(ex.text_a, ex.text_b), budget):
        seed = budget = "exact"
    k = cache.key("explain", EXPLAIN_VERSION, fp, model.batching, ex.id, ex.text_a, ex.text_b, explainer, seed, budget,
                  target)
    return cache.cache_dir() / "explanations" / k[:2] / f"{k}.npz"


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair", leave=False, disable=not enabled)
