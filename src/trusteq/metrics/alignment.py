"""Agreement between two attribution vectors over the same features.

An attribution vector ``w`` has shape (d,): one weight per word feature of a
sentence pair (see :mod:`trusteq.explain`). The top-k features are the k
largest ``|w|``, ties broken by the lower feature index; when d < k the
effective k is d.

Metrics (for two vectors ``a`` and ``b``; T_k(x) is x's top-k list):

* ``jaccard@k``: |T_k(a) ∩ T_k(b)| / |T_k(a) ∪ T_k(b)| (Rai et al. 2025,
  Sec. 3.1, with K = 10);
* ``feature_agreement@k``: |T_k(a) ∩ T_k(b)| / k;
* ``rank_agreement@k``: share of positions r < k with the same feature at rank r;
* ``sign_agreement@k``: share of k features in both top-k lists with the same sign;
* ``signed_rank_agreement@k``: share of k positions with the same feature at
  that rank and the same sign
  (all four from Krishna et al. 2022, "The Disagreement Problem in
  Explainable Machine Learning", Sec. 3.1);
* ``spearman``: Spearman rank correlation of ``|a|`` and ``|b|`` over all d
  features (NaN when either is constant).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import spearmanr

from ..validation import check_at_least, check_same_shape

__all__ = ["top_k", "pair_metrics", "metric_names", "TOP_K_METRICS"]


def top_k(w: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``min(k, d)`` largest ``|w|``, most important first, shape (k',)."""
    w = np.asarray(w, dtype=np.float64)
    order = np.lexsort((np.arange(len(w)), -np.abs(w)))
    return order[: min(k, len(w))]


#: The top-k metrics, in the order :func:`pair_metrics` returns them for each k.
TOP_K_METRICS = ("jaccard", "feature_agreement", "rank_agreement", "sign_agreement", "signed_rank_agreement")


def metric_names(ks) -> list[str]:
    """Names of the metrics :func:`pair_metrics` returns for top-k sizes ``ks``."""
    return [f"{m}@{k}" for k in ks for m in TOP_K_METRICS] + ["spearman"]


def pair_metrics(a, b, ks=(10,)) -> dict[str, float]:
    """All alignment metrics between attribution vectors ``a`` and ``b``.

    Parameters
    ----------
    a, b : array-like of float, shape (d,)
        Attributions of the same d >= 1 features by two models (or two runs).
    ks : iterable of int >= 1
        Top-k sizes.

    Returns
    -------
    dict mapping each name of :func:`metric_names` to a float in [0, 1]
    (``spearman`` in [-1, 1] or NaN).

    Raises
    ------
    ValueError
        Shapes differ, d = 0, non-finite weights, or k < 1.
    """
    a, b = check_same_shape(a, b, ndim=1, what="attributions")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("attributions contain NaN or infinite values")
    out: dict[str, float] = {}
    sa, sb = np.sign(a), np.sign(b)
    for k in ks:
        check_at_least("k", k, 1)
        ta, tb = top_k(a, k), top_k(b, k)
        kk = len(ta)
        common = np.intersect1d(ta, tb)
        same_rank = ta == tb
        values = (len(common) / len(np.union1d(ta, tb)), len(common) / kk, float(same_rank.sum()) / kk,
                  float(np.sum(sa[common] == sb[common])) / kk, float(np.sum(same_rank & (sa[ta] == sb[tb]))) / kk)
        out.update({f"{m}@{k}": v for m, v in zip(TOP_K_METRICS, values)})
    if a.size < 2 or np.ptp(np.abs(a)) == 0 or np.ptp(np.abs(b)) == 0:
        out["spearman"] = float("nan")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["spearman"] = float(spearmanr(np.abs(a), np.abs(b)).statistic)
    return out
