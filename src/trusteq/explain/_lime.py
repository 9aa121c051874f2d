"""LIME over the word features of a pair, or the regions of an image (Ribeiro et al. 2016), with lime's ``LimeBase``.

Settings of ``lime.lime_text.LimeTextExplainer``: the number of removed words
drawn uniformly from 1..d, cosine distance x 100 between binary masks, kernel
``sqrt(exp(-D^2 / 25^2))``, weighted ridge regression over all d features.
Images follow ``lime.lime_image.LimeImageExplainer``: each region kept with
probability 1/2, cosine distance with kernel width 0.25 (the same kernel as
the text's x 100 and 25), over the regions of :mod:`._regions`.
Masks are drawn once per (example, seed) and shared by every model explained
on that example; identical perturbed pairs are evaluated once.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..data import Example
from ._features import Feature, perturb
from ._regions import Region

__all__ = ["explain_lime"]

KERNEL_WIDTH = 25  # LimeTextExplainer's default


def explain_lime(models: Mapping[str, callable], examples: Sequence[Example], features: Sequence[list[Feature]],
                 targets: Sequence[int], seeds: Sequence[int], budget: int) -> list[dict[str, tuple]]:
    """Per example, ``{model name: (weights (d,), evaluations)}``; one example at a time."""
    return [_lime(models, ex, feats, int(t), s, budget)  # the budget: perturbed samples per example
            for ex, feats, t, s in zip(examples, features, targets, seeds)]


def _masks(d: int, n_samples: int, seed: int, image: bool = False) -> np.ndarray:
    """LimeTextExplainer's sampling: row 0 keeps every word; each other row removes 1..d words; for an image,
    LimeImageExplainer's: each other row keeps each region with probability 1/2. (n_samples, d)"""
    rng = np.random.default_rng(seed)
    if image:
        masks = rng.integers(0, 2, size=(n_samples, d)).astype(bool)
        masks[0] = True
        return masks
    masks = np.ones((n_samples, d), dtype=bool)
    sizes = rng.integers(1, d + 1, size=n_samples - 1)
    for i, size in enumerate(sizes, start=1):
        masks[i, rng.choice(d, size=size, replace=False)] = False
    return masks


def _lime(models, ex, feats, target, seed, n_samples):
    from lime.lime_base import LimeBase
    from sklearn.metrics.pairwise import cosine_distances

    d = len(feats)
    if d == 0:
        return {name: (np.zeros(0), 0) for name in models}
    masks = _masks(d, n_samples, seed, image=isinstance(feats[0], Region))
    unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pairs = perturb(ex, feats, unique)
    data = masks.astype(np.float64)
    distances = cosine_distances(data, data[:1]).ravel() * 100
    base = LimeBase(lambda dist: np.sqrt(np.exp(-(dist ** 2) / KERNEL_WIDTH ** 2)), random_state=seed)
    results = {}
    for name, fn in models.items():
        probs = np.asarray(fn(pairs))[inverse]
        # lime 0.2.0.x returns (intercept, [(feature, weight)], score, local_pred); pyproject pins that range.
        _, exp, _, _ = base.explain_instance_with_data(data, probs, distances, target, d, feature_selection="none")
        weights = np.zeros(d)
        for idx, w in exp:
            weights[idx] = w
        results[name] = (weights, len(unique))
    return results
