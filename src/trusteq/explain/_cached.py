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
    runs: dict[str, list] = {m.name: [] for m in models}
    spec = REGISTRY[explainer]
    with _progress_bar(len(examples), progress, f"{explainer} ({label})") as bar:
        for ex, target in zip(examples, (int(t) for t in targets)):
            features = segment(ex.text_a, ex.text_b)
            key = ("exact", "exact") if spec.exact(features, budget) else (seed, budget)
            paths = {m.name: _path(m, ex, explainer, target, *key) for m in models}
            hits = {name: cache.load_arrays(path) if path is not None else None for name, path in paths.items()}
            missing = [m for m in models if hits[m.name] is None]
            fresh = explain_examples({m.name: m for m in missing}, [ex], [target], explainer=explainer, seed=seed,
                                     n_samples=budget) if missing else {}
            for m in models:
                if m.name in fresh:
                    e = fresh[m.name][0]
                    if paths[m.name] is not None:
                        cache.save_arrays(paths[m.name], {"weights": e.weights, "n_evals": np.array(e.n_evals)})
                else:
                    hit = hits[m.name]
                    e = Explanation(ex.id, m.name, explainer, seed, target, features, hit["weights"],
                                    int(hit["n_evals"]))
                runs[m.name].append(e)
            bar.update(1)
    return runs


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
