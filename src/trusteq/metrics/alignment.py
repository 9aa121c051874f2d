"""Agreement between two attribution vectors over the same features.

An attribution vector ``w`` has shape (d,): one weight per word feature of a
sentence pair (see :mod:`trusteq.explain`). Features are ranked by ``|w|``,
largest first. T_k(x) is x's top-k list and S_k(x) its set.

Top-k metrics, ``<name>@k`` (for two vectors ``a`` and ``b``):

* ``jaccard@k``: |S_k(a) ∩ S_k(b)| / |S_k(a) ∪ S_k(b)| (Rai et al. 2025,
  Sec. 3.1, with K = 10);
* ``feature_agreement@k``: |S_k(a) ∩ S_k(b)| / k;
* ``rank_agreement@k``: share of positions r < k with the same feature at rank r;
* ``sign_agreement@k``: share of k features in both top-k sets with the same sign;
* ``signed_rank_agreement@k``: share of k positions with the same feature at
  that rank and the same sign
  (all four from Krishna et al. 2022, "The Disagreement Problem in
  Explainable Machine Learning", Sec. 3.1). Signs are ``numpy.sign`` (0 for 0).

**Pairs with d <= k features** get NaN for every ``@k`` metric: every feature
is then in both top-k sets and the set metrics are 1 by definition, which
would inflate means. Means over examples skip NaN; callers count such pairs.

**Ties.** Features with exactly equal ``|w|`` (``==``; SHAP gives whole blocks
of words one weight when its budget binds) have no order. Every top-k metric
is the *expected value over all orders of tied features, equally likely,
drawn independently in a and b* (random tie-breaking), computed exactly:
with s(f) the number of features with larger ``|w|`` and g(f) the size of
f's tie group, f's rank is uniform on [s(f), s(f) + g(f)), so

* P(rank_x(f) = r) = 1/g_x(f) for r in that interval, and
  P(f in S_k(x)) = p_x(f) = clip(k - s_x(f), 0, g_x(f)) / g_x(f);
* E[feature_agreement] = sum_f p_a(f) p_b(f) / k, and E[sign_agreement] the
  same sum over features with sign(a_f) = sign(b_f);
* E[rank_agreement] = sum_f |[s_a, s_a+g_a) ∩ [s_b, s_b+g_b) ∩ [0, k)| /
  (g_a(f) g_b(f)) / k, and E[signed_rank_agreement] the same sum over
  features with equal signs;
* E[jaccard] = sum_x P(X = x) x / (2k - x) with X = |S_k(a) ∩ S_k(b)|, whose
  distribution is a two-stage hypergeometric (see :func:`_overlap_pmf`).

Without ties these equal the plain definitions exactly. With ties at the
top-k boundary even identical vectors get jaccard@k < 1 (two runs broken at
random disagree there), and with ties inside the top k rank_agreement@k < 1:
intended. :func:`top_k` breaks ties by feature index, for display only.

Whole-vector metrics (no d <= k rule):

* ``spearman``: Spearman correlation of ``|a|`` and ``|b|``, average ranks for
  ties (NaN when d < 2 or either is constant);
* ``pearson``: Pearson correlation of the signed ``a`` and ``b`` (NaN when
  d < 2 or either is constant);
* ``cosine``: cosine similarity a.b / (|a| |b|) (NaN when either is all zero);
* ``rbo``: extrapolated rank-biased overlap of the ``|w|`` rankings, p = 0.9
  (Webber, Moffat and Zobel 2010, "A Similarity Measure for Indefinite
  Rankings", Eq. 32): for full rankings of the same d features
  RBO = p^d + (1 - p) sum_{i=1..d} p^(i-1) X_i / i with X_i the overlap of
  the top-i sets; tie-aware as above, E[X_i] = sum_f p_a(f; i) p_b(f; i)
  (not Webber's Eq. 28 tie rule).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from ..validation import check_at_least, check_same_shape

__all__ = ["top_k", "pair_metrics", "metric_names", "TOP_K_METRICS", "VECTOR_METRICS", "RBO_P"]

#: The top-k metrics, in the order :func:`pair_metrics` returns them for each k.
TOP_K_METRICS = ("jaccard", "feature_agreement", "rank_agreement", "sign_agreement", "signed_rank_agreement")
#: The whole-vector metrics, returned after all top-k metrics, in this order.
VECTOR_METRICS = ("spearman", "pearson", "cosine", "rbo")
#: Persistence p of rank-biased overlap (top 10 ranks carry about 86% of the weight; Webber et al. 2010, Eq. 21).
RBO_P = 0.9


def top_k(w: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``min(k, d)`` largest ``|w|``, most important first, shape (min(k, d),).

    Ties are broken by the lower feature index: a deterministic order for
    display. The metrics of :func:`pair_metrics` do not use it; they average
    over all tie orders.

    Examples
    --------
    >>> top_k([0.5, -0.4, 0.1, 0.0], 2).tolist()
    [0, 1]
    >>> top_k([0.1, -0.3, 0.3], 2).tolist()  # |-0.3| ties |0.3|: the lower index first
    [1, 2]
    """
    w = np.asarray(w, dtype=np.float64)
    order = np.lexsort((np.arange(len(w)), -np.abs(w)))
    return order[: min(k, len(w))]


def metric_names(ks) -> list[str]:
    """Names of the metrics :func:`pair_metrics` returns for top-k sizes ``ks``, in its order."""
    return [f"{m}@{k}" for k in ks for m in TOP_K_METRICS] + list(VECTOR_METRICS)


def _tie_groups(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, shape (d,) each: s = how many features have a larger ``|w|``, g = size of its tie group."""
    _, inverse, counts = np.unique(-np.abs(w), return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return starts[inverse], counts[inverse]


def _p_in_top(s: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """P(feature in the top-k set) under random tie-breaking, shape (d,)."""
    return np.clip(k - s, 0, g) / g


def _overlap_pmf(sa, ga, sb, gb, k: int) -> np.ndarray:
    """Distribution of X = |S_k(a) ∩ S_k(b)| under independent random tie-breaking, shape (k + 1,).

    ``sa, ga, sb, gb``: (d,) arrays from :func:`_tie_groups`; requires k < d.
    Each top-k set is C (features whose whole tie group is in the top k) plus
    a uniform random m-subset R of the boundary group G (m = k - |C|; G empty
    and m = 0 when no tie group straddles rank k). With n1, n2, n3 the sizes
    of G_a ∩ C_b, G_a ∩ G_b and the rest of G_a, and X = |C_a ∩ C_b| + U + Y:

    * stage 1, a's draw (multivariate hypergeometric): U = |R_a ∩ C_b|,
      V = |R_a ∩ G_b|, P(U=u, V=v) = C(n1,u) C(n2,v) C(n3,m_a-u-v) / C(|G_a|,m_a);
    * stage 2, b's draw given V: S_k(a) holds t = |C_a ∩ G_b| + V features of
      G_b, and Y = |S_k(a) ∩ R_b| has P(Y=y) = C(t,y) C(|G_b|-t,m_b-y) / C(|G_b|,m_b).
    """
    ca, cb = sa + ga <= k, sb + gb <= k
    bound_a, bound_b = (sa < k) & ~ca, (sb < k) & ~cb
    ma, mb = k - int(ca.sum()), k - int(cb.sum())
    na, nb = int(bound_a.sum()), int(bound_b.sum())
    n_cc, t0 = int(np.sum(ca & cb)), int(np.sum(ca & bound_b))
    n1, n2 = int(np.sum(bound_a & cb)), int(np.sum(bound_a & bound_b))
    n3 = na - n1 - n2
    den_a, den_b = math.comb(na, ma), math.comb(nb, mb)
    pmf = np.zeros(k + 1)
    for u in range(min(n1, ma) + 1):
        for v in range(min(n2, ma - u) + 1):
            p_uv = math.comb(n1, u) * math.comb(n2, v) * math.comb(n3, ma - u - v) / den_a
            if p_uv == 0:
                continue
            t = t0 + v
            for y in range(min(t, mb) + 1):
                pmf[n_cc + u + y] += p_uv * (math.comb(t, y) * math.comb(nb - t, mb - y) / den_b)
    return pmf


def _top_k_values(ta, tb, same_sign: np.ndarray, k: int) -> tuple[float, ...]:
    """Expected values of :data:`TOP_K_METRICS` for k < d; ``ta``, ``tb`` from :func:`_tie_groups`."""
    (sa, ga), (sb, gb) = ta, tb
    both = _p_in_top(sa, ga, k) * _p_in_top(sb, gb, k)  # P(f in both top-k sets)
    lo, hi = np.maximum(sa, sb), np.minimum(np.minimum(sa + ga, sb + gb), k)
    ranks = np.maximum(hi - lo, 0) / (ga * gb)  # expected positions r < k where f is at rank r in both
    if np.any((sa < k) & (sa + ga > k)) or np.any((sb < k) & (sb + gb > k)):
        pmf = _overlap_pmf(sa, ga, sb, gb, k)
        jaccard = float(sum(pmf[x] * (x / (2 * k - x)) for x in range(k + 1) if pmf[x]))
    else:  # no tie at the boundary: both sets are fixed
        x = int(np.sum((sa < k) & (sb < k)))
        jaccard = x / (2 * k - x)
    values = (jaccard, float(both.sum()) / k, float(ranks.sum()) / k, float(both[same_sign].sum()) / k,
              float(ranks[same_sign].sum()) / k)
    return tuple(min(max(v, 0.0), 1.0) for v in values)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two (d,) vectors in [-1, 1]; NaN when d < 2 or either is constant."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    x, y = x / np.abs(x).max(), y / np.abs(y).max()  # scaled, so that tiny weights do not underflow
    return min(max(float(x @ y) / math.sqrt(float(x @ x) * float(y @ y)), -1.0), 1.0)


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    """Cosine similarity of two (d,) vectors in [-1, 1]; NaN when either is all zero."""
    mx, my = np.abs(x).max(), np.abs(y).max()
    if mx == 0 or my == 0:
        return float("nan")
    x, y = x / mx, y / my
    return min(max(float(x @ y) / math.sqrt(float(x @ x) * float(y @ y)), -1.0), 1.0)


def _rbo(ta, tb, p: float = RBO_P) -> float:
    """Expected extrapolated RBO (Webber et al. 2010, Eq. 32) of two full |w| rankings, in [0, 1]."""
    (sa, ga), (sb, gb) = ta, tb
    depth = np.arange(1, sa.size + 1)
    qa = np.clip(depth - sa[:, None], 0, ga[:, None]) / ga[:, None]  # P(f in top i of a), shape (d, d)
    qb = np.clip(depth - sb[:, None], 0, gb[:, None]) / gb[:, None]
    overlap = (qa * qb).sum(axis=0)  # E[X_i], i = 1..d
    value = p ** sa.size + (1 - p) * float(np.sum(p ** (depth - 1) * overlap / depth))
    return min(max(value, 0.0), 1.0)


def pair_metrics(a, b, ks=(10,)) -> dict[str, float]:
    """All alignment metrics between attribution vectors ``a`` and ``b`` (definitions: module docstring).

    Parameters
    ----------
    a, b : array-like of float, shape (d,)
        Attributions of the same d >= 1 features by two models (or two runs).
    ks : iterable of int >= 1
        Top-k sizes.

    Returns
    -------
    dict mapping each name of :func:`metric_names` (in its order) to a float:
    ``<metric>@k`` in [0, 1], the expectation over random tie-breaking, NaN
    when d <= k; ``spearman``, ``pearson``, ``cosine`` in [-1, 1] or NaN;
    ``rbo`` in [0, 1].

    Raises
    ------
    ValueError
        Shapes differ, d = 0, non-finite weights, or k < 1.

    Examples
    --------
    The top 2 by ``|w|`` are features {0, 1} in ``a`` and {0, 2} in ``b``: one
    shared of three, jaccard@2 = 1/3, and feature 0 is first in both
    (rank_agreement@2 = 1/2) but with opposite signs (sign_agreement@2 = 0).

    >>> a, b = [0.5, -0.4, 0.1, 0.0], [-0.3, 0.05, 0.2, 0.01]
    >>> m = pair_metrics(a, b, ks=(2,))
    >>> [round(m[name], 4) for name in ("jaccard@2", "feature_agreement@2", "rank_agreement@2",
    ...                                 "sign_agreement@2")]
    [0.3333, 0.5, 0.5, 0.0]

    Ties are broken at random, in expectation: a vector against itself, with
    features 1 and 2 tied for the second place, draws the same second feature
    half of the time (jaccard 1) and the other one otherwise (jaccard 1/3).

    >>> w = [2.0, 1.0, 1.0, 0.1]
    >>> round(pair_metrics(w, w, ks=(2,))["jaccard@2"], 4)  # 1/2 * 1 + 1/2 * 1/3
    0.6667
    >>> pair_metrics([1.0, 2.0], [2.0, 1.0], ks=(2,))["jaccard@2"]  # d <= k: undefined
    nan
    """
    a, b = check_same_shape(a, b, ndim=1, what="attributions")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("attributions contain NaN or infinite values")
    ta, tb = _tie_groups(a), _tie_groups(b)
    same_sign = np.sign(a) == np.sign(b)
    out: dict[str, float] = {}
    for k in ks:
        check_at_least("k", k, 1)
        values = _top_k_values(ta, tb, same_sign, k) if a.size > k else (float("nan"),) * len(TOP_K_METRICS)
        out.update({f"{m}@{k}": v for m, v in zip(TOP_K_METRICS, values)})
    out["spearman"] = _pearson(rankdata(np.abs(a)), rankdata(np.abs(b)))  # average ranks for ties
    out["pearson"] = _pearson(a, b)
    out["cosine"] = _cosine(a, b)
    out["rbo"] = _rbo(ta, tb)
    return out
