"""Betting confidence sequences (trusteq.metrics.sequences): agreement with confseq and with a loop-by-loop
re-derivation of the paper, exactness of the refined grid, time-uniform coverage, optional stopping, widths,
errors."""

import math

import numpy as np
import pytest
from scipy import stats

from trusteq.metrics.sequences import SIDES, ConfidenceSequence, betting_cs


def _uniforms(seed, n):
    """Uniforms on [0, 1) from PCG64's raw 64-bit stream (fixed across numpy versions, unlike its distributions)."""
    return (np.random.PCG64(seed).random_raw(n) >> np.uint64(11)) * 2.0 ** -53


def _confseq_data(name, n=2000):
    u = _uniforms({"uniform": 1, "bernoulli-0.3": 2, "skewed": 3, "cubed": 4}[name], n)
    return {"uniform": u, "bernoulli-0.3": (u < 0.3).astype(float), "skewed": np.where(u < 0.05, 0.0, 0.95),
            "cubed": u ** 3}[name]


#: confseq's own code on the data of _confseq_data: (t, 1000 lower_t, 1000 upper_t) at t = 10, 100, 1000, 2000.
#: gostevehoward/confseq at commit 70b1ef3 (version 0.0.11), src/confseq/betting.py with betting_strategies.py
#: and misc.py, loaded without the C++ extension (numpy 2.4: np.float_ aliased to float64, multiprocess stubbed;
#: neither is used on this path). Two-sided: betting_cs(x, alpha=alpha, breaks=1000, running_intersection=True)
#: (= hedged_cs(x, alpha)); lower: betting_lower_cs(x, alpha, running_intersection=True); upper:
#: 1 - betting_lower_cs(1 - x, alpha, running_intersection=True). Every t of all 16 sequences agreed to 1e-16.
CONFSEQ = {
    ("uniform", "two-sided", 0.05): [(10, 257, 790), (100, 441, 597), (1000, 472, 535), (2000, 478, 527)],
    ("uniform", "two-sided", 0.1): [(10, 290, 762), (100, 449, 588), (1000, 474, 533), (2000, 480, 525)],
    ("bernoulli-0.3", "two-sided", 0.05): [(10, 209, 959), (100, 210, 443), (1000, 265, 370), (2000, 276, 357)],
    ("bernoulli-0.3", "lower", 0.05): [(10, 244, 1000), (100, 244, 1000), (1000, 271, 1000), (2000, 280, 1000)],
    ("skewed", "two-sided", 0.05): [(10, 502, 1000), (100, 858, 962), (1000, 888, 928), (2000, 891, 921)],
    ("skewed", "upper", 0.05): [(10, 0, 1000), (100, 0, 959), (1000, 0, 926), (2000, 0, 920)],
    ("cubed", "two-sided", 0.05): [(10, 113, 698), (100, 229, 388), (1000, 252, 310), (2000, 252, 292)],
    ("cubed", "lower", 0.05): [(10, 135, 1000), (100, 239, 1000), (1000, 257, 1000), (2000, 257, 1000)],
}


@pytest.mark.parametrize("case", list(CONFSEQ), ids=lambda c: "-".join(map(str, c)))
def test_fixed_grid_reproduces_confseq(case):
    name, side, alpha = case
    x = _confseq_data(name)
    fixed = betting_cs(x, alpha=alpha, side=side, refine=False)
    refined = betting_cs(x, alpha=alpha, side=side)
    for t, lo, hi in CONFSEQ[case]:
        assert (fixed.lower[t - 1], fixed.upper[t - 1]) == pytest.approx((lo / 1000, hi / 1000), abs=1e-12)
        # refining only adds grid points: never looser, and within a cell (1/1000) of the fixed grid's bounds
        assert lo / 1000 - 1e-12 <= refined.lower[t - 1] < lo / 1000 + 1e-3
        assert hi / 1000 - 1e-3 < refined.upper[t - 1] <= hi / 1000 + 1e-12


def test_confseq_case_in_other_units():
    x = 2 * _confseq_data("uniform") - 1  # values in [-1, 1]: the bounds are -1 + 2 * confseq's on (x + 1) / 2
    cs = betting_cs(x, lower=-1, upper=1, refine=False)
    for t, lo, hi in CONFSEQ["uniform", "two-sided", 0.05]:
        assert (cs.lower[t - 1], cs.upper[t - 1]) == pytest.approx((-1 + lo / 500, -1 + hi / 500), abs=1e-12)


def test_data_without_a_common_mean_cross_the_bounds_where_confseq_does():
    # 300 zeros then 300 ones: no constant mean fits, and the bounds cross (lower > upper). confseq (as above)
    # first crosses at t = 403 and ends at [0.052, 0.025]; here the bounds stop moving once no grid point is
    # left between them, so they cross at the same t and end less far apart (conservative).
    x = np.repeat([0.0, 1.0], 300)
    cs = betting_cs(x, refine=False)
    assert np.argmax(cs.lower > cs.upper) + 1 == 403
    assert cs.upper[-1] == pytest.approx(0.025, abs=1e-12) and 0.025 < cs.lower[-1] <= 0.052
    refined = betting_cs(x)
    assert refined.lower[-1] > refined.upper[-1]


def _paper_cs(x, alpha, grid, side="two-sided", c=0.5):
    """Waudby-Smith & Ramdas (2024) Theorem 3 written out again with plain loops over t and the grid.

    Bets lambda^PrPl-EB (Sec. 3): sqrt(2 log(1/a) / (s2_{t-1} t log(1 + t))), s2_t = (1/4 + sum_{i<=t}
    (x_i - mu_i)^2) / (t + 1), mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1), truncated at c/m (K+) and c/(1 - m)
    (K-). The set B_t = {m on the grid: max(theta K+_t(m), (1 - theta) K-_t(m)) < 1/alpha} (theta = 1/2, a =
    alpha/2; one-sided theta = 1 or 0, a = alpha), its hull widened by one cell, then the running intersection.
    """
    theta = {"two-sided": 0.5, "lower": 1.0, "upper": 0.0}[side]
    a = alpha / 2 if side == "two-sided" else alpha
    ms = [k / grid for k in range(grid + 1)]
    k_plus, k_minus = [1.0] * len(ms), [1.0] * len(ms)
    total = squares = 0.0
    low, high, lows, highs = 0.0, 1.0, [], []
    for t, xt in enumerate(x, start=1):
        lam = math.sqrt(2 * math.log(1 / a) / ((0.25 + squares) / t * t * math.log(1 + t)))
        kept = []
        for j, m in enumerate(ms):
            k_plus[j] *= 1 + (min(lam, c / m) if m > 0 else lam) * (xt - m)
            k_minus[j] *= 1 - (min(lam, c / (1 - m)) if m < 1 else lam) * (xt - m)
            if max(theta * k_plus[j], (1 - theta) * k_minus[j]) < 1 / alpha:
                kept.append(m)
        total += xt
        squares += (xt - (0.5 + total) / (t + 1)) ** 2
        if kept:
            low, high = max(low, kept[0] - 1 / grid), min(high, kept[-1] + 1 / grid)
        lows.append(max(low, 0.0))
        highs.append(min(high, 1.0))
    return np.array(lows), np.array(highs)


def _datasets(n=150):
    rng = np.random.default_rng(7)
    u = rng.random(n)
    return {
        "uniform": u,
        "bernoulli-0.2": (u < 0.2).astype(float),
        "beta-0.5-0.5": rng.beta(0.5, 0.5, n),
        "skewed-3%-zeros": np.where(rng.random(n) < 0.03, 0.0, rng.uniform(0.8, 1.0, n)),
        "extremes-2%": np.where(u < 0.01, 0.0, np.where(u > 0.99, 1.0, rng.normal(0.5, 0.02, n).clip(0, 1))),
        "constant-0.3": np.full(n, 0.3),
        "constant-0": np.zeros(n),
        "constant-1": np.ones(n),
        "alternating": np.tile([0.0, 1.0], n // 2),
    }


@pytest.mark.parametrize("name", list(_datasets()))
@pytest.mark.parametrize("side,alpha", [("two-sided", 0.05), ("two-sided", 0.2), ("lower", 0.1), ("upper", 0.1)])
def test_fixed_grid_matches_the_paper_written_as_loops(name, side, alpha):
    x = _datasets()[name]
    lows, highs = _paper_cs(x, alpha, grid=100, side=side)
    cs = betting_cs(x, alpha=alpha, side=side, grid=100, refine=False)
    np.testing.assert_allclose(cs.lower, lows, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cs.upper, highs, rtol=0, atol=1e-12)


def _exact_bounds(y, alpha, t, c=0.5):
    """The exact two-sided bounds A_t, B_t (no grid) by bisection: K+ is non-increasing in m, K- non-decreasing."""
    a = alpha / 2
    i = np.arange(1, t + 1)
    mu = (0.5 + np.cumsum(y[:t])) / (i + 1)
    s2 = np.concatenate(([0.25], (0.25 + np.cumsum((y[:t] - mu) ** 2)) / (i + 1)))[:-1]
    lam = np.sqrt(2 * np.log(1 / a) / (s2 * i * np.log(1 + i)))

    def rejected(m, sign):  # sign +1: K+ ever >= 1/a by time t; -1: K-
        cap = c / m if (sign > 0 and m > 0) else c / (1 - m) if (sign < 0 and m < 1) else np.inf
        return np.cumsum(np.log1p(sign * np.minimum(lam, cap) * (y[:t] - m))).max() >= np.log(1 / a)

    bounds = []
    for sign, edge in ((1, 0.0), (-1, 1.0)):
        if not rejected(edge, sign):
            bounds.append(edge)
            continue
        out, inn = edge, 1.0 - edge  # rejected; kept (no factor of K+(1) or K-(0) exceeds 1)
        for _ in range(50):
            mid = (out + inn) / 2
            out, inn = (mid, inn) if rejected(mid, sign) else (out, mid)
        bounds.append(out)
    return bounds


@pytest.mark.parametrize("name", ["uniform", "bernoulli-0.1", "narrow", "constant", "skewed"])
def test_refined_bounds_are_conservative_and_within_one_percent_of_the_exact_ones(name):
    rng = np.random.default_rng(11)
    n = 8000
    y = {"uniform": rng.random(n), "bernoulli-0.1": (rng.random(n) < 0.1).astype(float),
         "narrow": rng.normal(0.5, 0.02, n).clip(0, 1), "constant": np.full(n, 0.3),
         "skewed": np.where(rng.random(n) < 0.05, 0.0, 0.95)}[name]
    cs = betting_cs(y, alpha=0.05)
    fixed = betting_cs(y, alpha=0.05, refine=False)
    for t in (10, 100, 1000, 8000):
        lo, hi = _exact_bounds(y, 0.05, t)
        width = hi - lo
        assert fixed.lower[t - 1] <= cs.lower[t - 1] <= lo + 1e-12  # refined: tighter, still conservative
        assert hi - 1e-12 <= cs.upper[t - 1] <= fixed.upper[t - 1]
        assert lo - cs.lower[t - 1] <= 0.01 * width and cs.upper[t - 1] - hi <= 0.01 * width


def _misses(draw, mean, *, reps, n, alpha, side="two-sided", grid=250, lower=0.0, upper=1.0, seed=0):
    """Fraction of reps whose sequence excludes ``mean`` at some t <= n (on ``side``: lower above, upper below)."""
    rng = np.random.default_rng(seed)
    missed = 0
    for _ in range(reps):
        cs = betting_cs(draw(rng, n), alpha=alpha, side=side, grid=grid, lower=lower, upper=upper)
        missed += bool(np.any(cs.lower > mean) or np.any(cs.upper < mean))
    return missed / reps


def _skewed(rng, n):  # 95% near 0.95 (uniform on [0.9, 1]), 5% at 0: mean 0.9025
    return np.where(rng.random(n) < 0.05, 0.0, rng.uniform(0.9, 1.0, n))


def _differences(rng, n):  # a Brier-like difference in [-1, 1]: mostly 0, mean 0.02
    return rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.04, 0.90, 0.06])


DISTRIBUTIONS = {  # name: (draw, true mean, data bounds)
    "bernoulli-0.3": (lambda rng, n: (rng.random(n) < 0.3).astype(float), 0.3, (0.0, 1.0)),
    "beta-2-5": (lambda rng, n: rng.beta(2, 5, n), 2 / 7, (0.0, 1.0)),
    "skewed": (_skewed, 0.9025, (0.0, 1.0)),
    "differences": (_differences, 0.02, (-1.0, 1.0)),
}


def _assert_coverage(name, side, *, reps, n, alpha, grid):
    draw, mean, (lower, upper) = DISTRIBUTIONS[name]
    rate = _misses(draw, mean, reps=reps, n=n, alpha=alpha, side=side, grid=grid, lower=lower, upper=upper)
    se = math.sqrt(alpha * (1 - alpha) / reps)
    assert rate <= alpha + 2 * se, f"{name} {side}: missed the mean at some t in {rate:.3f} of {reps} runs"


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("side", SIDES)
def test_time_uniform_coverage_quick(name, side):
    _assert_coverage(name, side, reps=150, n=300, alpha=0.1, grid=200)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("side", SIDES)
def test_time_uniform_coverage(name, side):
    _assert_coverage(name, side, reps=1000, n=1000, alpha=0.05, grid=250)


def _stops(rule, draws, mean):
    """Fraction of streams stopped by ``rule`` (interval bounds at every t -> lower, upper) with the mean excluded."""
    stopped = 0
    for x in draws:
        lower, upper = rule(x)
        stopped += bool(np.any((lower > mean) | (upper < mean)))
    return stopped / len(draws)


def _peeked_t_intervals(x, alpha):
    """The fixed-n Student t interval recomputed after every value (what optional stopping must not use)."""
    t = np.arange(1, x.size + 1)
    mean = np.cumsum(x) / t
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(np.cumsum(x * x) - t * mean ** 2, 0) / (t - 1))
        half = stats.t.ppf(1 - alpha / 2, np.maximum(t - 1, 1)) * sd / np.sqrt(t)
    half[:9] = np.inf  # begin at t = 10
    return mean - half, mean + half


@pytest.mark.parametrize("slow", [pytest.param(False), pytest.param(True, marks=pytest.mark.slow)])
def test_optional_stopping_at_the_first_exclusion_of_the_truth(slow):
    # an analyst looks after every example and stops as soon as the interval excludes the (true) mean 0.3
    reps, n, alpha = (1000, 2000, 0.05) if slow else (200, 500, 0.1)
    rng = np.random.default_rng(3)
    draws = [(rng.random(n) < 0.3).astype(float) for _ in range(reps)]
    rate = _stops(lambda x: (lambda cs: (cs.lower, cs.upper))(betting_cs(x, alpha=alpha, grid=200)), draws, 0.3)
    assert rate <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / reps)
    # the same stopping rule with a fixed-n interval stops far more often: the check has teeth
    assert _stops(lambda x: _peeked_t_intervals(x, alpha), draws, 0.3) > 2.5 * alpha


def test_widths_shrink_like_sqrt_log_t_over_t():
    x = (np.random.default_rng(2).random(16000) < 0.5).astype(float)
    cs = betting_cs(x)
    width = cs.upper - cs.lower
    assert np.all(np.diff(cs.lower) >= 0) and np.all(np.diff(cs.upper) <= 0)  # the running intersection
    t = np.array([100, 1000, 4000, 16000])
    scaled = width[t - 1] * np.sqrt(t / np.log(t))  # about 1.4-1.8 for sd 1/2 (measured)
    assert np.all((1.0 < scaled) & (scaled < 2.5)), scaled
    assert cs.lower[-1] < 0.5 < cs.upper[-1]


@pytest.mark.parametrize("value,lower,upper", [(0.3, 0.0, 1.0), (0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (0.25, -1.0, 1.0),
                                               (-2.0, -2.0, 2.0)])
def test_constant_values_give_an_interval_around_them_whose_width_goes_to_zero(value, lower, upper):
    x = np.full(10000, value)
    cs = betting_cs(x, lower=lower, upper=upper)
    assert np.all(cs.lower <= value) and np.all(cs.upper >= value)
    width = (cs.upper - cs.lower) / (upper - lower)
    assert width[99] < 0.1 and width[999] < 0.01 and width[-1] < 1e-3


def test_one_sided_bounds_are_those_of_the_two_sided_sequence_at_twice_alpha():
    x = np.random.default_rng(4).beta(2, 5, 3000)
    both = betting_cs(x, alpha=0.1)
    lower, upper = betting_cs(x, alpha=0.05, side="lower"), betting_cs(x, alpha=0.05, side="upper")
    np.testing.assert_array_equal(lower.lower, both.lower)
    np.testing.assert_array_equal(upper.upper, both.upper)
    assert np.all(lower.upper == 1.0) and np.all(upper.lower == 0.0)


def test_result_shapes_units_and_interval():
    x = np.random.default_rng(5).random(500)
    cs = betting_cs(x, alpha=0.1)
    assert isinstance(cs, ConfidenceSequence) and (cs.alpha, cs.side) == (0.1, "two-sided")
    assert cs.lower.shape == cs.upper.shape == (500,)
    assert cs.interval == (cs.lower[-1], cs.upper[-1]) and all(type(v) is float for v in cs.interval)
    assert (cs.lower[0], cs.upper[0]) == (0.0, 1.0)  # one value decides nothing at 10%
    scaled = betting_cs(-2 + 4 * x, lower=-2, upper=2, alpha=0.1)  # a [-2, 2] alignment gap: same sequence
    np.testing.assert_allclose(scaled.lower, -2 + 4 * cs.lower, atol=1e-9)
    np.testing.assert_allclose(scaled.upper, -2 + 4 * cs.upper, atol=1e-9)
    single = betting_cs([0.4])
    assert single.interval == (0.0, 1.0)


@pytest.mark.parametrize("x,kwargs,match", [
    ([0.2, 1.2], {}, r"x\[1\] = 1.2"),
    ([0.2, -0.1], {}, r"x\[1\] = -0.1"),
    ([0.5, 3.0], {"lower": -2, "upper": 2}, r"\[-2, 2\]"),
    ([0.2, np.nan], {}, "NaN"),
    ([0.2, np.inf], {}, "x must lie in"),
    ([], {}, "n >= 1"),
    ([[0.2, 0.3]], {}, "1-D"),
    ([0.2], {"alpha": 0.0}, "alpha"),
    ([0.2], {"alpha": 1.0}, "alpha"),
    ([0.2], {"alpha": -0.1}, "alpha"),
    ([0.2], {"lower": 1.0, "upper": 1.0}, "lower < upper"),
    ([0.2], {"upper": np.inf}, "lower < upper"),
    ([0.2], {"side": "both"}, "side"),
    ([0.2], {"grid": 1}, "grid"),
    ([0.2], {"truncation": 1.0}, "truncation"),
])
def test_input_errors(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        betting_cs(x, **kwargs)
