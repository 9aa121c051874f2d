"""Behaviour of the verdict's intervals: degenerate inputs, containment, independent cross-checks, errors."""

import numpy as np
import pytest
from scipy.stats import binomtest

from trusteq.metrics.intervals import (calibration_error, paired_accuracy_difference,
                                       paired_calibration_difference, proportion_interval, squared_calibration_error)


def _newcombe_reference(a, b, c, d, z):
    """Newcombe (1998) method 10 written out from Altman et al. (2000), Statistics with Confidence, p. 52."""
    n = a + b + c + d
    def wilson(x):
        p = x / n
        centre, half = (2 * n * p + z * z), z * np.sqrt(z * z + 4 * n * p * (1 - p))
        return (centre - half) / (2 * (n + z * z)), (centre + half) / (2 * (n + z * z))
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    big_b = a * d - b * c
    big_c = big_b - n / 2 if big_b > n / 2 else (big_b if big_b < 0 else 0)
    den = (a + b) * (c + d) * (a + c) * (b + d)
    phi = big_c / np.sqrt(den) if den else 0.0
    dd = p1 - p2
    low = dd - np.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = dd + np.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return -high, -low  # as candidate (second) minus reference (first)


def _tango_reference(b, c, n, delta):
    """Tango (1998) eq. 3-5 for Delta = (b - c)/n, written out again (restricted MLE of the (0, 1) cell)."""
    aa, bb, cc = 2 * n, -b - c + (2 * n - b + c) * delta, -c * delta * (1 - delta)
    q = (-bb + np.sqrt(bb ** 2 - 4 * aa * cc)) / (2 * aa)
    return (b - c - n * delta) / np.sqrt(n * (2 * q + delta * (1 - delta)))


@pytest.mark.parametrize("cells", [(36, 12, 2, 0), (263, 15, 3, 20), (100, 0, 0, 200), (5, 3, 7, 1)])
def test_paired_accuracy_difference_is_the_union_of_newcombe_and_tango(cells):
    from trusteq.metrics.intervals import _newcombe, _tango

    a, b, c, d = cells
    n = sum(cells)
    z = 1.959963984540054
    assert list(_newcombe(a, b, c, d, 0.95)) == pytest.approx(list(_newcombe_reference(a, b, c, d, z)), abs=1e-12)
    lo, hi = _tango(b, c, n, 0.95)
    for bound, target in ((-hi, z), (-lo, -z)):  # Delta = (b - c)/n: its low bound solves T = z, its high T = -z
        if abs(bound) < 1 - 1e-9:
            assert _tango_reference(b, c, n, bound) == pytest.approx(target, abs=1e-6)
    ref = np.repeat([True, True, False, False], cells)
    cand = np.repeat([True, False, True, False], cells)
    out = paired_accuracy_difference(ref, cand, level=0.95)
    assert out["value"] == pytest.approx((c - b) / n) and (out["b"], out["c"]) == (b, c)
    assert out["interval"] == pytest.approx([min(_newcombe(a, b, c, d, 0.95)[0], lo),
                                             max(_newcombe(a, b, c, d, 0.95)[1], hi)])
    assert out["interval"][0] <= out["value"] <= out["interval"][1]


def test_identical_predictions_give_a_narrow_interval_around_zero():
    ok = np.random.default_rng(0).random(1000) < 0.8
    lo, hi = paired_accuracy_difference(ok, ok, level=0.90)["interval"]
    assert lo < 0 < hi and hi - lo < 0.01


def test_proportion_interval_is_wilson_and_never_zero_width():
    lo, hi = proportion_interval(0, 300, level=0.90)
    assert lo == 0 and 0.005 < hi < 0.02
    ci = binomtest(7, 300).proportion_ci(confidence_level=0.90, method="wilson")
    assert proportion_interval(7, 300, level=0.90) == pytest.approx([ci.low, ci.high], abs=1e-12)
    with pytest.raises(ValueError, match="count"):
        proportion_interval(5, 3)


def test_mean_cs_degenerate_values():
    from trusteq.metrics.sequences import mean_cs

    empty = mean_cs([], lower=-1, upper=1, alpha=0.05)
    assert empty["value"] is None and empty["interval"] == [-1.0, 1.0] and empty["n"] == 0
    same = mean_cs(np.full(400, 0.2), lower=-1, upper=1, alpha=0.05)  # constant values: a narrowing interval
    assert same["interval"][0] < 0.2 < same["interval"][1] and same["interval"][1] - same["interval"][0] < 0.2
    out = mean_cs(np.random.default_rng(0).uniform(-1, 1, 200), lower=-1, upper=1, alpha=0.05)
    assert out["interval"][0] < out["value"] < out["interval"][1] and out["n"] == 200
    with pytest.raises(ValueError, match="alpha"):
        mean_cs([0.1], lower=-1, upper=1, alpha=0.5)


def _loop_squared_error(y, p, n_bins):
    """Equal-width bins (e_b, e_b+1] written out, per bin mean^2 - variance/n_b."""
    conf = p.max(axis=1)
    resid = (p.argmax(axis=1) == y) - conf
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        e = resid[bins == b]
        if len(e) >= 2:
            total += len(e) * (e.mean() ** 2 - e.var(ddof=1) / len(e))
    return total / len(y)


def test_jackknife_interval_matches_leaving_each_example_out():
    from scipy.stats import norm

    from trusteq.metrics.intervals import squared_calibration_error

    rng = np.random.default_rng(5)
    p = rng.dirichlet([2, 1], size=60)
    q = rng.dirichlet([1, 2], size=60)
    y = rng.integers(0, 2, 60)
    out = paired_calibration_difference(y, p, q, level=0.90)
    keep = ~np.eye(60, dtype=bool)
    loo = np.array([squared_calibration_error(y[k], q[k]) - squared_calibration_error(y[k], p[k]) for k in keep])
    half = norm.ppf(0.95) * np.sqrt(59 / 60 * np.sum((loo - loo.mean()) ** 2))
    assert out["interval"] == pytest.approx([out["value"] - half, out["value"] + half], abs=1e-12)


def test_newcombe_matches_a_published_example():
    """Cavo et al. table (59, 6, 16, 80): Newcombe's method 10 gives 0.0046 to 0.1186 at 95% for the difference
    (16 - 6) / 161, as in the contingencytables package's tests."""
    from trusteq.metrics.intervals import _newcombe

    lo, hi = _newcombe(59, 6, 16, 80, 0.95)
    assert (lo, hi) == pytest.approx((0.0046, 0.1186), abs=5e-5)


def test_squared_calibration_error_matches_a_loop_and_is_unbiased():
    rng = np.random.default_rng(1)
    p = rng.dirichlet([1, 1, 1], size=500)
    y = rng.integers(0, 3, 500)
    assert squared_calibration_error(y, p, n_bins=7) == pytest.approx(_loop_squared_error(y, p, 7), abs=1e-12)
    # a perfectly calibrated binary model: the estimates average to 0 (the plug-in ECE would not)
    estimates = []
    for _ in range(400):
        c = rng.uniform(0.5, 1, 200)
        ok = rng.random(200) < c
        probs = np.where(ok[:, None], np.stack([1 - c, c], 1), np.stack([c, 1 - c], 1))
        estimates.append(squared_calibration_error(np.ones(200, int), probs))
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(400)
    x = _loop_squared_error(y, p, 15)  # the independent loop (15 bins, the default), not the code under test
    assert calibration_error(y, p) == pytest.approx(np.sign(x) * np.sqrt(abs(x)), abs=1e-12)


def test_calibration_difference_identical_copy_and_temperature():
    rng = np.random.default_rng(2)
    n = 400
    logits = rng.normal(0, 2.5, (n, 2))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.where(rng.random(n) < p[:, 1], 1, 0)  # calibrated by construction
    same = paired_calibration_difference(y, p, p)
    assert same["value"] == 0 and same["interval"] == [0.0, 0.0]
    flat = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)
    hot = paired_calibration_difference(y, p, flat)
    assert hot["interval"][0] > 0.0025 and hot["interval"][0] <= hot["value"] <= hot["interval"][1]
    with pytest.raises(ValueError, match="sum to 1"):
        paired_calibration_difference(y, p, p * 2)


def test_paired_accuracy_difference_at_a_million_examples():
    """Real test sets are that large: the Newcombe denominator (a product of four counts) once overflowed into
    a Python int that np.sqrt refused (TypeError from n ~ 200,000)."""
    rng = np.random.default_rng(0)
    n = 1_000_000
    ref = rng.random(n) < 0.8
    cand = np.where(rng.random(n) < 0.02, ~ref, ref)  # 2% flipped, about evenly both ways
    out = paired_accuracy_difference(ref, cand)
    lo, hi = out["interval"]
    assert out["n"] == n and lo < out["value"] < hi and hi - lo < 0.001
    assert abs(out["value"] - (cand.mean() - ref.mean())) < 1e-12
