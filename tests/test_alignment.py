"""Alignment metrics against a set-based reference implementation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trusteq.metrics.alignment import metric_names, pair_metrics, top_k


def naive(a, b, k):
    """Direct transcription of the definitions (Krishna et al. 2022; Rai et al. 2025)."""
    ra = sorted(range(len(a)), key=lambda i: (-abs(a[i]), i))[:k]
    rb = sorted(range(len(b)), key=lambda i: (-abs(b[i]), i))[:k]
    kk = len(ra)
    sa, sb = set(ra), set(rb)
    sign = lambda v: int(v > 0) - int(v < 0)  # noqa: E731
    return {
        f"jaccard@{k}": len(sa & sb) / len(sa | sb),
        f"feature_agreement@{k}": len(sa & sb) / kk,
        f"rank_agreement@{k}": sum(ra[r] == rb[r] for r in range(kk)) / kk,
        f"sign_agreement@{k}": sum(sign(a[f]) == sign(b[f]) for f in sa & sb) / kk,
        f"signed_rank_agreement@{k}": sum(ra[r] == rb[r] and sign(a[ra[r]]) == sign(b[rb[r]]) for r in range(kk)) / kk,
    }


def spearman_by_ranks(x, y):
    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ties
        for val in np.unique(v):
            idx = v == val
            r[idx] = r[idx].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    return np.corrcoef(rx, ry)[0, 1]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 30).flatmap(lambda d: st.tuples(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=d, max_size=d),
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=d, max_size=d))), st.integers(1, 12))
def test_matches_naive(ab, k):
    a, b = np.array(ab[0]), np.array(ab[1])
    ours = pair_metrics(a, b, ks=(k,))
    for name, value in naive(a, b, k).items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    for name, value in ours.items():
        if name != "spearman":
            assert 0 <= value <= 1
    if not np.isnan(ours["spearman"]):
        assert ours["spearman"] == pytest.approx(spearman_by_ranks(np.abs(a), np.abs(b)), abs=1e-9)


def test_identical_and_disjoint():
    a = np.arange(20, dtype=float)
    m = pair_metrics(a, a, ks=(5, 10))
    assert all(v == pytest.approx(1.0) for v in m.values())
    b = a[::-1].copy()
    m = pair_metrics(a, b, ks=(5,))
    assert m["jaccard@5"] == 0 and m["feature_agreement@5"] == 0


def test_fewer_features_than_k():
    m = pair_metrics([0.3, -0.1, 0.2], [0.2, 0.1, 0.3], ks=(10,))
    assert m["jaccard@10"] == 1.0 and m["feature_agreement@10"] == 1.0
    assert m["sign_agreement@10"] == pytest.approx(2 / 3)


def test_top_k_ties_by_index():
    assert top_k(np.array([0.5, -0.5, 0.1, 0.5]), 3).tolist() == [0, 1, 3]


def test_names_and_errors():
    assert metric_names([10])[0] == "jaccard@10"
    with pytest.raises(ValueError, match="same length"):
        pair_metrics([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        pair_metrics([np.nan, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="k must be"):
        pair_metrics([1.0], [1.0], ks=(0,))
