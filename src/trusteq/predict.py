"""Probabilities of a model on a dataset, cached on disk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cache
from .data import Dataset
from .models import TaskModel

__all__ = ["Predictions", "predict"]


@dataclass
class Predictions:
    """A model's output on a dataset.

    Attributes
    ----------
    model : str
        Model name.
    probs : ndarray, shape (n, K)
        Probabilities in the dataset's class order.
    truncated : int
        Pairs longer than the model's ``max_length`` (truncated before the
        forward pass).
    cached : bool
        Whether the probabilities came from the on-disk cache.
    """

    model: str
    probs: np.ndarray
    truncated: int
    cached: bool


def predict(model: TaskModel, dataset: Dataset, use_cache: bool = True, progress: bool = False) -> Predictions:
    """Run ``model`` on every pair of ``dataset``, reusing a cached result.

    The cache key combines the model fingerprint (weights, tokenizer,
    max length, label alignment), the data file hash and the example ids.
    Models without a fingerprint are never cached.

    Raises
    ------
    ModelError
        The model returns invalid probabilities.
    """
    fp = model.fingerprint
    path = None
    if use_cache and fp is not None:
        k = cache.key("predict", fp, dataset.sha256, dataset.ids)
        path = cache.cache_dir() / "predictions" / f"{k}.npz"
        hit = cache.load_arrays(path)
        if hit is not None:
            return Predictions(model.name, hit["probs"], int(hit["truncated"]), True)
    pairs = dataset.pairs
    probs = model(pairs, progress=progress)
    truncated = model.model.count_truncated(pairs)
    if path is not None:
        cache.save_arrays(path, {"probs": probs, "truncated": np.array(truncated)})
    return Predictions(model.name, probs, truncated, False)
