"""Alignment metrics against independent implementations.

* top-k metrics: the set/list definitions on explicit rankings, averaged by
  brute force over every order of tied features (itertools.permutations per
  tie group), independently in a and b;
* spearman, pearson, cosine: scipy; rbo: the PyPI package ``rbo`` (skipped
  when it is not installed) and hand-computed values;
* hypothesis properties: ranges, symmetry, identical vectors.
"""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cosine as cosine_distance
from scipy.stats import hypergeom, pearsonr, spearmanr

from trusteq.metrics.alignment import (RBO_P, TOP_K_METRICS, VECTOR_METRICS, _overlap_pmf, _tie_groups, metric_names,
                                       pair_metrics, top_k)

NAN = float("nan")


def sign(v):
    return int(v > 0) - int(v < 0)


def naive_ranked(ra, rb, a, b, k):
    """Direct transcription of the definitions (Krishna et al. 2022; Rai et al. 2025) for full rankings ra, rb."""
    ra, rb = ra[:k], rb[:k]
    sa, sb = set(ra), set(rb)
    return {
        f"jaccard@{k}": len(sa & sb) / len(sa | sb),
        f"feature_agreement@{k}": len(sa & sb) / k,
        f"rank_agreement@{k}": sum(ra[r] == rb[r] for r in range(k)) / k,
        f"sign_agreement@{k}": sum(sign(a[f]) == sign(b[f]) for f in sa & sb) / k,
        f"signed_rank_agreement@{k}": sum(ra[r] == rb[r] and sign(a[ra[r]]) == sign(b[rb[r]]) for r in range(k)) / k,
    }


def by_index(x):
    return sorted(range(len(x)), key=lambda i: (-abs(x[i]), i))


def tie_orders(x):
    """Every ranking of x by |x|, largest first, with each tie group in every order (all equally likely)."""
    values = sorted({abs(v) for v in x}, reverse=True)
    groups = [[i for i in range(len(x)) if abs(x[i]) == v] for v in values]
    for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield tuple(i for part in parts for i in part)


def brute(a, b, k):
    """Mean of the definitions over all pairs of tie orders of a and b (only the top-k prefix matters)."""
    if len(a) <= k:
        return {f"{m}@{k}": NAN for m in TOP_K_METRICS}
    pa, pb = Counter(o[:k] for o in tie_orders(a)), Counter(o[:k] for o in tie_orders(b))
    assume(len(pa) * len(pb) <= 5000)
    total, n = Counter(), 0
    for (ra, ca), (rb, cb) in itertools.product(pa.items(), pb.items()):
        for name, v in naive_ranked(list(ra), list(rb), a, b, k).items():
            total[name] += ca * cb * v
        n += ca * cb
    return {f"{m}@{k}": total[f"{m}@{k}"] / n for m in TOP_K_METRICS}


def same(x, y, tol=1e-12):
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol


tied = st.integers(2, 8).flatmap(lambda d: st.tuples(
    *[st.lists(st.sampled_from([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0]), min_size=d, max_size=d)] * 2))
distinct = st.integers(1, 30).flatmap(lambda d: st.tuples(
    *[st.lists(st.floats(-1, 1), min_size=d, max_size=d, unique_by=abs)] * 2))
real = st.integers(1, 30).flatmap(lambda d: st.tuples(
    *[st.lists(st.integers(-1000, 1000).map(lambda i: i / 1000), min_size=d, max_size=d)] * 2))


# ---- top-k metrics ---------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(tied, st.integers(1, 8))
def test_ties_match_brute_force_over_all_tie_orders(ab, k):
    a, b = ab
    ours, expected = pair_metrics(a, b, ks=(k,)), brute(a, b, k)
    for name, value in expected.items():
        assert same(ours[name], value), (name, ours[name], value)


@settings(max_examples=200, deadline=None)
@given(distinct, st.integers(1, 12))
def test_without_ties_equals_the_plain_definitions_exactly(ab, k):
    a, b = ab
    ours = pair_metrics(a, b, ks=(k,))
    if len(a) <= k:
        assert all(math.isnan(ours[f"{m}@{k}"]) for m in TOP_K_METRICS)
    else:
        assert {n: ours[n] for n in naive_ranked(by_index(a), by_index(b), a, b, k)} == \
               naive_ranked(by_index(a), by_index(b), a, b, k)


def test_at_most_k_features_give_nan_for_every_top_k_metric():
    m = pair_metrics([0.3, -0.1, 0.2], [0.2, 0.1, 0.3], ks=(2, 3, 10))
    assert all(math.isnan(m[f"{name}@{k}"]) for name in TOP_K_METRICS for k in (3, 10))
    assert m["jaccard@2"] == 1.0 and m["rank_agreement@2"] == 0.0 and m["sign_agreement@2"] == 1.0
    assert not math.isnan(m["spearman"]) and not math.isnan(m["rbo"])


def test_identical_and_disjoint():
    a = np.arange(20, dtype=float)
    m = pair_metrics(a, a, ks=(5, 10))
    assert all(v == 1.0 for v in m.values())
    m = pair_metrics(a, a[::-1].copy(), ks=(5,))
    assert m["jaccard@5"] == 0 and m["feature_agreement@5"] == 0 and m["spearman"] == -1.0


def test_identical_with_boundary_tie_is_not_one():
    """Two runs tie-broken at random disagree on the tied features: intended."""
    a = [3.0, -2.0, 1.0, 1.0]  # k = 3: features 0, 1 sure; one of 2, 3 at random, independently in each copy
    m = pair_metrics(a, a, ks=(3,))
    assert m["jaccard@3"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 4)
    assert m["feature_agreement@3"] == pytest.approx((2 + 0.5 * 0.5 * 2) / 3)
    assert m["rank_agreement@3"] == pytest.approx((2 + 0.5 * 0.5 * 2) / 3)
    assert m["sign_agreement@3"] == m["feature_agreement@3"]


def test_identical_with_ties_inside_top_k():
    """A tie wholly inside the top k keeps the set metrics at 1; its order is random, so ranks agree half the time."""
    a = [5.0, 4.0, 4.0, 1.0, 0.5]
    m = pair_metrics(a, a, ks=(3,))
    assert m["jaccard@3"] == m["feature_agreement@3"] == m["sign_agreement@3"] == 1.0
    assert m["rank_agreement@3"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["signed_rank_agreement@3"] == m["rank_agreement@3"]
    b = [5.0, 4.0, 3.0, 1.0, 1.0]  # tie below the top k: no effect on top-k metrics
    assert all(v == 1.0 for n, v in pair_metrics(b, b, ks=(3,)).items() if "@" in n)


@pytest.mark.parametrize("g,m,c", [(35, 5, 5), (40, 10, 0), (12, 3, 7)])
def test_large_boundary_tie_against_scipy_hypergeom(g, m, c):
    """Identical vectors, c features above a tie group of g at the boundary: X - c ~ Hypergeometric(g, m, m)."""
    k = c + m
    a = np.r_[np.arange(c, 0, -1) + 1.0, np.full(g, 0.5), np.full(3, 0.1)]
    j = np.arange(m + 1)
    expected = np.sum(hypergeom.pmf(j, g, m, m) * (c + j) / (2 * k - c - j))
    assert pair_metrics(a, -a, ks=(k,))[f"jaccard@{k}"] == pytest.approx(expected, rel=1e-12)
    assert pair_metrics(a, a, ks=(k,))[f"feature_agreement@{k}"] == pytest.approx((c + m * m / g) / k, rel=1e-12)
    assert pair_metrics(a, -a, ks=(k,))[f"sign_agreement@{k}"] == 0.0


@settings(max_examples=100, deadline=None)
@given(tied, st.integers(1, 7))
def test_overlap_distribution_sums_to_one_and_gives_feature_agreement(ab, k):
    a, b = np.array(ab[0]), np.array(ab[1])
    assume(len(a) > k)
    pmf = _overlap_pmf(*_tie_groups(a), *_tie_groups(b), k)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12) and (pmf >= 0).all()
    assert np.dot(np.arange(k + 1), pmf) / k == pytest.approx(pair_metrics(a, b, (k,))[f"feature_agreement@{k}"])


def test_top_k_ties_by_index():
    assert top_k(np.array([0.5, -0.5, 0.1, 0.5]), 3).tolist() == [0, 1, 3]


# ---- whole-vector metrics --------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(real)
def test_cosine_pearson_spearman_match_scipy(ab):
    a, b = np.array(ab[0]), np.array(ab[1])
    m = pair_metrics(a, b, ks=(10,))
    if not a.any() or not b.any():
        assert math.isnan(m["cosine"])
    else:
        assert m["cosine"] == pytest.approx(1 - cosine_distance(a, b), abs=1e-12)
    for name, x, y, scipy_fn in (("pearson", a, b, pearsonr), ("spearman", np.abs(a), np.abs(b), spearmanr)):
        if len(a) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            assert math.isnan(m[name]), name
        else:
            assert m[name] == pytest.approx(scipy_fn(x, y).statistic, abs=1e-12), name


def test_tiny_weights_do_not_underflow():
    a, b = np.array([3.0, -1.0, 2.0, 0.5]), np.array([1.0, 1.0, -2.0, 0.25])
    big, tiny = pair_metrics(a, b), pair_metrics(a * 1e-200, b * 1e-200)
    for name in ("pearson", "cosine", "spearman"):
        assert tiny[name] == pytest.approx(big[name], abs=1e-12)


def rbo_by_hand(ra, rb, p=RBO_P):
    """Webber et al. 2010, Eq. 32, for two full rankings of the same d items."""
    d = len(ra)
    return p ** d + (1 - p) * sum(p ** (i - 1) * len(set(ra[:i]) & set(rb[:i])) / i for i in range(1, d + 1))


def test_rbo_by_hand():
    assert pair_metrics([2.0, 1.0], [1.0, 2.0])["rbo"] == pytest.approx(0.81 + 0.1 * 0.9 * 2 / 2)
    assert pair_metrics([3.0, 2.0, 1.0], [3.0, 2.0, 1.0])["rbo"] == pytest.approx(1.0)
    # identical vectors, two tied features at the top: X_1 = 1 with probability 1/2
    assert pair_metrics([1.0, 1.0, 0.5], [1.0, -1.0, 0.5])["rbo"] == pytest.approx(
        0.9 ** 3 + 0.1 * (0.5 + 0.9 * 2 / 2 + 0.81 * 3 / 3))


@settings(max_examples=150, deadline=None)
@given(tied)
def test_rbo_matches_eq_32_over_all_tie_orders(ab):
    a, b = ab
    oa, ob = list(tie_orders(a)), list(tie_orders(b))
    assume(len(oa) * len(ob) <= 3000)
    assert pair_metrics(a, b)["rbo"] == pytest.approx(np.mean([rbo_by_hand(x, y) for x in oa for y in ob]), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(tied)
def test_rbo_matches_the_rbo_package_over_all_tie_orders(ab):
    """Against the PyPI package ``rbo`` (``pip install --no-deps rbo tqdm``: rbo 0.1.3 pins numpy < 2)."""
    rbo = pytest.importorskip("rbo")
    a, b = ab
    oa, ob = list(tie_orders(a)), list(tie_orders(b))
    assume(len(oa) * len(ob) <= 3000)
    values = [rbo.RankingSimilarity(list(x), list(y)).rbo_ext(p=RBO_P) for x in oa for y in ob]
    assert pair_metrics(a, b)["rbo"] == pytest.approx(np.mean(values), abs=1e-12)


# ---- properties, names, errors ---------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.one_of(tied, real), st.integers(1, 12))
def test_ranges_and_symmetry(ab, k):
    a, b = ab
    m, swapped = pair_metrics(a, b, ks=(k,)), pair_metrics(b, a, ks=(k,))
    assert list(m) == metric_names((k,))
    for name, v in m.items():
        low = -1 if name in ("spearman", "pearson", "cosine") else 0
        assert math.isnan(v) or low <= v <= 1, (name, v)
        assert same(v, swapped[name]), name
    assert math.isnan(m[f"jaccard@{k}"]) == (len(a) <= k)


@settings(max_examples=200, deadline=None)
@given(st.one_of(tied, real), st.integers(1, 12))
def test_identical_vectors_give_one(ab, k):
    a = np.array(ab[0])
    m = pair_metrics(a, a, ks=(k,))
    s, g = _tie_groups(a)
    if len(a) > k and not np.any((s < k) & (s + g > k)):  # no tie across the top-k boundary
        assert m[f"jaccard@{k}"] == m[f"feature_agreement@{k}"] == m[f"sign_agreement@{k}"] == 1.0
        if np.all(g[s < k] == 1):  # no tie inside the top k either
            assert m[f"rank_agreement@{k}"] == m[f"signed_rank_agreement@{k}"] == 1.0
    if np.all(g == 1):
        assert m["rbo"] == pytest.approx(1.0)
    for name in ("spearman", "pearson", "cosine"):
        assert math.isnan(m[name]) or m[name] == pytest.approx(1.0)


def test_names_and_errors():
    assert metric_names((10,)) == ["jaccard@10", "feature_agreement@10", "rank_agreement@10", "sign_agreement@10",
                                   "signed_rank_agreement@10", "spearman", "pearson", "cosine", "rbo"]
    assert metric_names((5, 10))[:6] == [f"{m}@5" for m in TOP_K_METRICS] + ["jaccard@10"]
    assert metric_names((5, 10))[-4:] == list(VECTOR_METRICS)
    assert list(pair_metrics(np.arange(12.0), np.ones(12), ks=(5, 10))) == metric_names((5, 10))
    with pytest.raises(ValueError, match="same length"):
        pair_metrics([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        pair_metrics([np.nan, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="k must be"):
        pair_metrics([1.0], [1.0], ks=(0,))
