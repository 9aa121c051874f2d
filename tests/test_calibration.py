"""Calibration metrics, cross-checked against independent implementations."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from trusteq.metrics.calibration import (
    bin_indices,
    brier_score,
    classwise_ece,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)


def random_probs(n, k, seed, sharp=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * sharp
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    return y, p


def naive_binned(y, p, n_bins, strategy):
    """Independent loop implementation: list of (count, conf, acc) per bin."""
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    n = len(y)
    if strategy == "equal_width":
        groups = [[] for _ in range(n_bins)]
        for i, c in enumerate(conf):
            b = 0
            while b < n_bins - 1 and c > (b + 1) / n_bins:
                b += 1
            groups[b].append(i)
    else:
        order = sorted(range(n), key=lambda i: (conf[i], i))
        size, extra = divmod(n, n_bins)
        groups, start = [], 0
        for b in range(n_bins):
            end = start + size + (1 if b < extra else 0)
            groups.append(order[start:end])
            start = end
    return [(len(g), float(np.mean(conf[g])), float(np.mean(correct[g]))) for g in groups if g]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_ece_mce_equal_width_match_torchmetrics(k, n_bins):
    y, p = random_probs(2000, k, seed=k * 100 + n_bins)
    ours_ece = expected_calibration_error(y, p, n_bins=n_bins)
    ours_mce = maximum_calibration_error(y, p, n_bins=n_bins)
    tp, ty = torch.tensor(p, dtype=torch.float64), torch.tensor(y)
    ref_ece = multiclass_calibration_error(tp, ty, num_classes=k, n_bins=n_bins, norm="l1").item()
    ref_mce = multiclass_calibration_error(tp, ty, num_classes=k, n_bins=n_bins, norm="max").item()
    assert ours_ece == pytest.approx(ref_ece, abs=1e-6)
    assert ours_mce == pytest.approx(ref_mce, abs=1e-6)


@pytest.mark.parametrize("strategy", ["equal_width", "equal_mass"])
@pytest.mark.parametrize("n", [7, 100, 1001])
def test_ece_mce_match_naive_loops(strategy, n):
    y, p = random_probs(n, 3, seed=n)
    bins = naive_binned(y, p, 10, strategy)
    ece = sum(c / n * abs(a - f) for c, f, a in bins)
    mce = max(abs(a - f) for c, f, a in bins)
    assert expected_calibration_error(y, p, n_bins=10, strategy=strategy) == pytest.approx(ece, abs=1e-12)
    assert maximum_calibration_error(y, p, n_bins=10, strategy=strategy) == pytest.approx(mce, abs=1e-12)


def test_confidence_one_lands_in_last_bin():
    conf = np.array([0.0, 0.1, 0.15, 0.5, 0.999, 1.0])
    assert bin_indices(conf, n_bins=10).tolist() == [0, 0, 1, 4, 9, 9]
    y = np.array([0, 0])
    p = np.array([[1.0, 0.0], [1.0, 0.0]])
    rows = reliability_diagram(y, p, n_bins=10)
    assert len(rows) == 1 and rows[0]["bin"] == 9 and rows[0]["count"] == 2
    assert expected_calibration_error(y, p) == 0.0


def test_equal_mass_bins_have_equal_counts():
    y, p = random_probs(1003, 3, seed=1)
    counts = np.bincount(bin_indices(p.max(axis=1), n_bins=10, strategy="equal_mass"))
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1003


def test_brier_matches_sklearn():
    y, p = random_probs(500, 2, seed=2)
    # sklearn's binary Brier uses the positive class only: ours is twice it.
    assert brier_score(y, p) == pytest.approx(2 * brier_score_loss(y, p[:, 1]), abs=1e-12)
    y3, p3 = random_probs(500, 3, seed=3)
    onehot = np.eye(3)[y3]
    assert brier_score(y3, p3) == pytest.approx(sum(((p3[i] - onehot[i]) ** 2).sum() for i in range(500)) / 500)


def test_nll_matches_sklearn():
    y, p = random_probs(500, 3, seed=4)
    assert negative_log_likelihood(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1, 2]), abs=1e-10)


def test_classwise_ece_matches_loop():
    y, p = random_probs(800, 3, seed=5)
    total = 0.0
    for c in range(3):
        groups = {}
        for i in range(800):
            b = min(max(math.ceil(p[i, c] * 10) - 1, 0), 9)
            groups.setdefault(b, []).append(i)
        total += sum(len(g) / 800 * abs(np.mean(y[g] == c) - np.mean(p[g, c])) for g in groups.values())
    assert classwise_ece(y, p) == pytest.approx(total / 3, abs=1e-9)


def test_reliability_wilson_interval():
    y, p = random_probs(300, 2, seed=6)
    for row in reliability_diagram(y, p, n_bins=10, strategy="equal_mass"):
        n, phat = row["count"], row["accuracy"]
        z = 1.959963984540054
        centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
        assert row["accuracy_ci"] == pytest.approx([centre - half, centre + half], abs=1e-9)
        assert row["low"] <= row["confidence"] <= row["high"]


@pytest.mark.parametrize("bad,match", [
    ((np.array([0, 1]), np.array([0.5, 0.5])), "2-D"),
    ((np.array([0, 3]), np.array([[0.5, 0.5], [0.5, 0.5]])), r"\[0, 2\)"),
    ((np.array([0]), np.array([[0.7, 0.7]])), "sum to 1"),
    ((np.array([0]), np.array([[np.nan, 1.0]])), "NaN"),
    ((np.array([], dtype=int), np.zeros((0, 2))), "empty"),
    ((np.array([0, 1, 0]), np.array([[0.5, 0.5], [0.5, 0.5]])), "3 entries"),
])
def test_input_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(*bad)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown binning strategy"):
        expected_calibration_error([0], [[0.6, 0.4]], strategy="quantile")


probs_strategy = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, 2), min_size=n, max_size=n),
                        st.lists(st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3), min_size=n, max_size=n)))


@settings(max_examples=80, deadline=None)
@given(probs_strategy, st.sampled_from(["equal_width", "equal_mass"]), st.integers(1, 15))
def test_properties(data, strategy, n_bins):
    y, raw = np.array(data[0]), np.array(data[1])
    p = raw / raw.sum(axis=1, keepdims=True)
    ece = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
    mce = maximum_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
    assert 0 <= ece <= mce + 1e-12 <= 1 + 1e-12
    assert 0 <= brier_score(y, p) <= 2
    assert negative_log_likelihood(y, p) >= 0
    perm = np.random.default_rng(0).permutation(len(y))
    if strategy == "equal_width":  # equal-mass bins may split ties differently after a permutation
        assert expected_calibration_error(y[perm], p[perm], n_bins=n_bins, strategy=strategy) == pytest.approx(ece, abs=1e-12)
    assert brier_score(y[perm], p[perm]) == pytest.approx(brier_score(y, p))


def test_perfect_calibration_gives_zero():
    # Within each bin, accuracy equals confidence exactly: 4 examples at 0.75 confidence, 3 right.
    p = np.array([[0.75, 0.25]] * 4 + [[1.0, 0.0]] * 2)
    y = np.array([0, 0, 0, 1, 0, 0])
    for strategy in ("equal_width",):
        assert expected_calibration_error(y, p, n_bins=10, strategy=strategy) == pytest.approx(0.0, abs=1e-12)
        assert maximum_calibration_error(y, p, n_bins=10, strategy=strategy) == pytest.approx(0.0, abs=1e-12)
