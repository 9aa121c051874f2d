"""The verdict's decisions with the truth ON each margin (known by construction), and controls with known answers.

On a margin, "equivalent" is a type I error: each test must say it at most alpha of the time (checked as
``rate <= alpha + 2 Monte Carlo standard errors``), and so must the other one-sided tail ("not equivalent" of a
one-sided test), checked on its own. Truths sit exactly on a margin by construction: a finite population of
100,000 examples whose statistic is the margin to 1e-12, sampled i.i.d. with replacement (accuracy, flip rate and
calibration: i.i.d. draws from a model whose statistic is the margin analytically). Skewed, mixture and noisy-floor
populations are where a normal or t interval would fail and the betting confidence sequences must not.

Slow cases (2,000 replications unless stated) call the decision functions where one call is cheap enough, and
otherwise the confidence sequence the decision reads: the agreement part of ``decide_explanations`` says
"equivalent" exactly when the lower bound of ``mean_cs(cross - (1 - m) floor)`` is above 0 (the test at the
margin, see ``_invert``), which ``test_agreement_decision_is_one_sequence_at_the_margin`` checks against the
function itself.
"""

import functools
import math

import numpy as np
import pytest

from trusteq.metrics.sequences import VERDICT_TRUNCATION, betting_cs, mean_cs
from trusteq.metrics.verdict import (EQUIVALENT, GROSS_COSINE, MARGINS, NOT_EQUIVALENT, decide_calibration,
                                     decide_explanations, decide_predictions, gross_disagreements)

ALPHA = 0.05
POP = 100_000
M_EXP = MARGINS["explanation"]
K_EXP = 1 + (-M_EXP)  # the floor's factor at the margin, as _invert forms it (1 + d0 with d0 = -m)
SCALE_EXP = 1 + abs(K_EXP)  # and its bound of |cross - K_EXP floor|


def bound(reps: int, alpha: float = ALPHA) -> float:
    """alpha + 2 Monte Carlo standard errors of a rate estimated from ``reps`` replications."""
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / reps)


def assert_level(rates: dict, reps: int, what: str) -> None:
    """Each one-sided tail (e.g. {"equivalent": 0.01, "not equivalent": 0.02}) at most alpha + 2 MC se."""
    for tail, rate in rates.items():
        assert rate <= bound(reps), (f"{what}: P({tail}) = {rate:.4f} over {reps} replications exceeds "
                                     f"alpha + 2 se = {bound(reps):.4f} (all rates: {rates})")


def tuned(cross_of, fr, fc, margin=M_EXP):
    """``cross_of(s)`` (non-decreasing in s) at the s where mean(cross) / mean((fr + fc) / 2) - 1 = -margin."""
    target = (1 - margin) * ((fr + fc) / 2).mean()
    lo, hi = -3.0, 3.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cross_of(mid).mean() < target else (lo, mid)
    c = cross_of(hi)
    delta = c.mean() / ((fr + fc) / 2).mean() - 1
    assert abs(delta + margin) < 1e-12 and np.all(np.abs(c) <= 1), delta
    return c


AGREEMENT_POPULATIONS = ["beta-skewed, exact floors", "0.95 +- 0.05 clipped, exact floors",
                         "5% complete disagreement, floors 0.97", "noisy floors 0.6, cross tracking floor",
                         "floors differ: reference 1.0, candidate 0.6"]


@functools.lru_cache(maxsize=None)
def population(name: str):
    """(cross, floor_reference, floor_candidate) of POP examples with delta exactly -M_EXP."""
    rng = np.random.default_rng(100 + AGREEMENT_POPULATIONS.index(name))
    clip, ones = (lambda x: np.clip(x, -1, 1)), np.ones(POP)
    if name == "beta-skewed, exact floors":  # long left tail: 1 - s Beta(0.4, 4)
        e = rng.beta(0.4, 4, POP)
        return tuned(lambda s: clip(1 + s * e), ones, ones), ones, ones
    if name == "0.95 +- 0.05 clipped, exact floors":  # spread like real data
        z = rng.normal(0, 0.05, POP)
        return tuned(lambda s: clip(0.95 + s + z), ones, ones), ones, ones
    if name == "5% complete disagreement, floors 0.97":  # cosine -0.5..0.1 on 5,000 examples, the rest high
        fr, fc = clip(rng.normal(0.97, 0.02, POP)), clip(rng.normal(0.97, 0.02, POP))
        low, z = rng.uniform(-0.5, 0.1, POP // 20), rng.normal(0, 0.02, POP - POP // 20)
        return tuned(lambda s: np.concatenate([low, clip(s + z)]), fr, fc), fr, fc
    if name == "noisy floors 0.6, cross tracking floor":
        fr, fc = clip(rng.normal(0.6, 0.1, POP)), clip(rng.normal(0.6, 0.1, POP))
        z = 0.95 * ((fr + fc) / 2 - 0.6) + rng.normal(0, 0.1, POP)
        return tuned(lambda s: clip(s + z), fr, fc), fr, fc
    if name == "floors differ: reference 1.0, candidate 0.6":
        fc, z = clip(rng.normal(0.6, 0.1, POP)), rng.normal(0, 0.1, POP)
        return tuned(lambda s: clip(s + z), ones, fc), ones, fc
    raise KeyError(name)


@functools.lru_cache(maxsize=None)
def gross_population():
    """(cross, floor, floor) with exactly 5% of examples below GROSS_COSINE (uniform on [0, 0.49]), the rest
    at 0.97 +- 0.02: the gross-disagreement share exactly on its margin."""
    rng = np.random.default_rng(7)
    bad = POP // 20
    c = np.concatenate([rng.uniform(0, 0.49, bad), np.clip(rng.normal(0.97, 0.02, POP - bad), 0.5, 1)])
    assert np.mean(c < GROSS_COSINE) == MARGINS["gross_disagreement"]
    return c, np.ones(POP), np.ones(POP)


def agreement_values(c, fr, fc):
    """Per-example values of the agreement test at the margin: mean > 0 is delta > -m."""
    return np.nan_to_num(c, nan=0.0) - K_EXP * (np.nan_to_num(fr, nan=1.0) + np.nan_to_num(fc, nan=1.0)) / 2


def agreement_at_margin(c, fr, fc):
    """(equivalent, not equivalent) of the agreement part, read from the one sequence it inverts at the margin."""
    lo, hi = mean_cs(agreement_values(c, fr, fc), lower=-SCALE_EXP, upper=SCALE_EXP, alpha=ALPHA)["interval"]
    return lo > 0, hi < 0


def gross_at_margin(c):
    """(equivalent, not equivalent) of the gross-disagreement part: the sequence of its indicator (exact floors, as
    the gross population has)."""
    lo, hi = mean_cs(gross_disagreements(c, np.ones(c.size), np.ones(c.size)), lower=0.0, upper=1.0,
                     alpha=ALPHA)["interval"]
    m = MARGINS["gross_disagreement"]
    return hi < m, lo > m


def draws(pop, reps, n, seed):
    """``reps`` samples of n examples drawn with replacement from the population arrays ``pop``."""
    idx = np.random.default_rng(seed).integers(0, pop[0].size, (reps, n))
    return [tuple(a[i] for a in pop) for i in idx]


def rates(outcomes):
    """Rates of (equivalent, not equivalent) pairs of booleans."""
    eq, neq = np.mean(np.asarray(outcomes, dtype=bool), axis=0)
    return {EQUIVALENT: float(eq), NOT_EQUIVALENT: float(neq)}


# --------------------------------------------------------------------------------------------------------------
# optional stopping: look after every block of 25 examples, stop at the first "equivalent"


def first_look_equivalent(x, lower, upper, equivalent, looks):
    """First look t at which ``equivalent(lo, hi)`` holds for mean_cs of ``x[:t]`` (what decide_explanations
    reads on the first t examples), or None. The bounds at every look are read off one run of the sequence (the
    sequence of a prefix is the run's prefix; ``check_prefix`` asserts it) and recomputed on the prefix where
    they come within 10% of the width of deciding, so every decision is the prefix's own."""
    run = betting_cs(x, lower=lower, upper=upper, alpha=2 * ALPHA, truncation=VERDICT_TRUNCATION)
    for t in looks:
        lo, hi = run.lower[t - 1], run.upper[t - 1]
        slack = 0.1 * (hi - lo)
        if equivalent(lo + slack, hi - slack):
            lo, hi = mean_cs(x[:t], lower=lower, upper=upper, alpha=ALPHA)["interval"]
        if equivalent(lo, hi):
            return t
    return None


def check_prefix(x, lower, upper, looks):
    """The one-run bounds at each look equal mean_cs on that prefix."""
    run = betting_cs(x, lower=lower, upper=upper, alpha=2 * ALPHA, truncation=VERDICT_TRUNCATION)
    for t in looks:
        got = mean_cs(x[:t], lower=lower, upper=upper, alpha=ALPHA)["interval"]
        want = sorted([run.lower[t - 1], run.upper[t - 1]])
        assert np.allclose(got, want, rtol=0, atol=1e-12), f"prefix {t}: {got} != run {want}"


LOOKS = range(25, 501, 25)


# --------------------------------------------------------------------------------------------------------------
# predictions, calibration and Brier score: samples with a known truth


def paired_predictions(n, cells, rng):
    """(y_true, p_ref, p_cand) of n examples whose (ref right, cand right) cells (both, ref only, cand only,
    neither) are multinomial with probabilities ``cells``: accuracy difference cells[2] - cells[1], flip rate
    cells[1] + cells[2]."""
    counts = rng.multinomial(n, cells)
    right, wrong = [1.0, 0.0], [0.0, 1.0]
    p_ref = np.repeat([right, right, wrong, wrong], counts, axis=0)
    p_cand = np.repeat([right, wrong, right, wrong], counts, axis=0)
    return np.zeros(n, dtype=int), p_ref, p_cand


def miscalibrated(n, gap_ref, gap_cand, rng):
    """(y_true, p_ref, p_cand), two classes: class 0 has probability p ~ U(0.6, 0.9), and each model states
    p + gap, so E[correct - confidence | confidence] = -gap in every bin: squared calibration error gap^2."""
    p = rng.uniform(0.6, 0.9, n)
    y = (rng.random(n) >= p).astype(int)
    return y, np.column_stack([p + gap_ref, 1 - p - gap_ref]), np.column_stack([p + gap_cand, 1 - p - gap_cand])


def brier_differences(y, p_ref, p_cand):
    """Per-example candidate-minus-reference Brier score, as decide_calibration forms it."""
    onehot = np.eye(p_ref.shape[1])[y]
    return np.sum((p_cand - onehot) ** 2, axis=1) - np.sum((p_ref - onehot) ** 2, axis=1)


@functools.lru_cache(maxsize=None)
def sparse_brier_population():
    """(y, p_ref, p_cand) of POP three-class examples; the candidate differs on 10% of them, p_cand =
    (1 - s) p_ref + s u (u one-hot: a wrong class on 80%, the true one on 20%), s solved so that the mean Brier
    difference is exactly the margin (+0.02)."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, POP)
    logits = rng.normal(0, 1, (POP, 3))
    logits[np.arange(POP), y] += 2
    p_ref = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    k = POP // 10
    u = np.eye(3)[np.where(rng.random(k) < 0.8, (y[:k] + rng.integers(1, 3, k)) % 3, y[:k])]
    gap, step = p_ref[:k] - np.eye(3)[y[:k]], u - p_ref[:k]
    a, b = 2 * np.sum(gap * step) / POP, np.sum(step * step) / POP  # mean difference = a s + b s^2
    s = (-a + math.sqrt(a * a + 4 * b * MARGINS["brier"])) / (2 * b)
    p_cand = p_ref.copy()
    p_cand[:k] = (1 - s) * p_ref[:k] + s * u
    d = brier_differences(y, p_ref, p_cand)
    assert 0 < s < 1 and abs(d.mean() - MARGINS["brier"]) < 1e-12 and np.mean(d != 0) == 0.1, (s, d.mean())
    return y, p_ref, p_cand


def noisy_explanations(n, d, cosine, floor, rng):
    """(cross, floor_reference, floor_candidate) of an explainer run twice on each model: true attributions of
    the two models at exactly ``cosine`` on every example, and isotropic noise whose expected floor is ``floor``
    (1.0: no noise, an exact explainer)."""
    a = rng.standard_t(3, (n, d))
    u = a / np.linalg.norm(a, axis=1, keepdims=True)
    w = rng.normal(size=(n, d))
    w -= np.sum(w * u, axis=1, keepdims=True) * u
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    v = cosine * u + math.sqrt(1 - cosine ** 2) * w
    sigma = math.sqrt((1 / floor - 1) / d)
    r1, r2, c1, c2 = (x + sigma * rng.normal(size=x.shape) for x in (u, u, v, v))
    norm = lambda x: np.linalg.norm(x, axis=1)  # noqa: E731
    cos = lambda x, y: np.clip(np.sum(x * y, axis=1) / norm(x) / norm(y), -1, 1)  # noqa: E731
    return cos(r1, c1), cos(r1, r2), cos(c1, c2)


def explain(c, fr, fc):
    """The dimension as the comparison decides it while explaining: without the simulated sample size to decide
    (about 0.5-13 s per inconclusive part), which no decision reads."""
    return decide_explanations(c, fr, fc, measure="cosine", margins=MARGINS, alpha=ALPHA, plan=False)


# ==============================================================================================================
# fast tier: the shortcuts are the decisions, and small versions of the slow cases


def test_agreement_decision_is_one_sequence_at_the_margin():
    """decide_explanations decides agreement (and gross disagreement) exactly as the one sequence at the margin."""
    rng = np.random.default_rng(1)
    ones = np.ones(200)
    cases = {"copy, exact": (ones, ones, ones),
             "on the margin": draws(population("5% complete disagreement, floors 0.97"), 1, 100, 2)[0],
             "delta -0.3": (0.7 * np.clip(rng.normal(0.97, 0.02, 100), -1, 1), np.full(100, 0.97), np.full(100, 0.97))}
    seen = set()
    for name, (c, fr, fc) in cases.items():
        dim = explain(c, fr, fc)
        eq, neq = agreement_at_margin(c, fr, fc)
        want = EQUIVALENT if eq else NOT_EQUIVALENT if neq else "inconclusive"
        assert dim["parts"]["agreement"]["decision"] == want, (name, dim["parts"]["agreement"], want)
        gross = mean_cs(((c < GROSS_COSINE * (fr + fc) / 2) | np.isnan(c)).astype(float), lower=0.0, upper=1.0,
                        alpha=ALPHA)["interval"]  # written out: below 0.5 times the example's mean floor
        assert dim["parts"]["gross_disagreement"]["interval"] == gross, (name, gross)
        seen.add(want)
    assert seen == {EQUIVALENT, NOT_EQUIVALENT, "inconclusive"}, seen


def test_on_margin_quick():
    """200 replications at n = 100 of the mixture and gross populations: a loose version of the slow tier."""
    reps = 200
    outcomes = [agreement_at_margin(*s) for s in draws(population("5% complete disagreement, floors 0.97"),
                                                       reps, 100, 3)]
    assert_level(rates(outcomes), reps, "agreement on its margin, n = 100")
    outcomes = [gross_at_margin(s[0]) for s in draws(gross_population(), reps, 100, 4)]
    assert_level(rates(outcomes), reps, "gross disagreement on its margin, n = 100")


def test_optional_stopping_quick():
    """100 replications, a look every 25 examples up to 250; the one-run bounds are the prefixes' bounds."""
    reps, looks = 100, range(25, 251, 25)
    samples = draws(population("0.95 +- 0.05 clipped, exact floors"), reps, 250, 5)
    check_prefix(agreement_values(*samples[0]), -SCALE_EXP, SCALE_EXP, looks)
    stops = [first_look_equivalent(agreement_values(*s), -SCALE_EXP, SCALE_EXP, lambda lo, hi: lo > 0, looks)
             for s in samples]
    rate = np.mean([t is not None for t in stops])
    assert rate <= bound(reps), f"P(ever equivalent) = {rate:.3f} over {reps} replications > {bound(reps):.3f}"


def test_undefined_cross_counts_as_gross_disagreement():
    """30 of 100 all-zero attributions (NaN cross) with the rest copies: not equivalent, delta about -0.3, the
    30 reported; 90 of 300 stop an otherwise exact copy from being equivalent; NaN floors count as 1."""
    rng = np.random.default_rng(6)
    f = np.clip(rng.normal(0.97, 0.02, (3, 100)), -1, 1)
    c = f[0].copy()
    c[:30] = np.nan
    dim = explain(c, f[1], f[2])
    for name in ("agreement", "gross_disagreement"):
        assert dim["parts"][name]["undefined"] == {"cross": 30, "floor_reference": 0, "floor_candidate": 0}, dim
    assert dim["decision"] == NOT_EQUIVALENT and dim["parts"]["gross_disagreement"]["decision"] == NOT_EQUIVALENT
    assert abs(dim["parts"]["agreement"]["statistic"] + 0.3) < 0.02, dim["parts"]["agreement"]
    ones = np.ones(300)
    assert explain(ones[90:], ones[90:], ones[90:])["decision"] == EQUIVALENT  # so the NaNs decide the next
    c = ones.copy()
    c[:90] = np.nan
    assert explain(c, ones, ones)["decision"] == NOT_EQUIVALENT
    fr = f[1].copy()
    fr[:10] = np.nan
    got, want = explain(f[0], fr, f[2])["parts"]["agreement"], explain(f[0], np.where(np.isnan(fr), 1.0, fr), f[2])
    assert got["undefined"]["floor_reference"] == 10
    assert (got["statistic"], got["interval"]) == (want["parts"]["agreement"]["statistic"],
                                                   want["parts"]["agreement"]["interval"])


def test_predictions_on_margin_quick():
    """200 replications at n = 1,000: accuracy exactly -0.01 (few discordant pairs), flip rate exactly 0.05."""
    rng, reps = np.random.default_rng(8), 200
    for cells, name in [((0.85, 0.011, 0.001, 0.138), "accuracy"), ((0.85, 0.025, 0.025, 0.1), "flip_rate")]:
        parts = [decide_predictions(*paired_predictions(1000, cells, rng), margins=MARGINS, alpha=ALPHA)["parts"][name]
                 for _ in range(reps)]
        assert_level(rates([(p["decision"] == EQUIVALENT, p["decision"] == NOT_EQUIVALENT) for p in parts]), reps,
                     f"{name} on its margin, n = 1,000")


# ==============================================================================================================
# slow tier: 2,000 replications on each margin (fewer where stated), and the controls


@pytest.mark.slow
@pytest.mark.parametrize("name", AGREEMENT_POPULATIONS)
def test_agreement_on_its_margin(name, record_property):
    """delta exactly -0.05, n = 500: each tail of the agreement test (the one sequence it inverts at the margin)
    at most alpha + 2 se."""
    reps = 2000
    measured = rates([agreement_at_margin(*s) for s in draws(population(name), reps, 500, 20)])
    record_property("rates", measured)
    assert_level(measured, reps, f"agreement on its margin ({name}), n = 500")


@pytest.mark.slow
def test_gross_disagreement_on_its_margin(record_property):
    """Exactly 5% of examples below cosine 0.5, the rest fine, n = 500: each tail at most alpha + 2 se."""
    reps = 2000
    measured = rates([gross_at_margin(s[0]) for s in draws(gross_population(), reps, 500, 21)])
    record_property("rates", measured)
    assert_level(measured, reps, "gross disagreement on its margin, n = 500")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["0.95 +- 0.05 clipped, exact floors", "5% complete disagreement, floors 0.97",
                                  "noisy floors 0.6, cross tracking floor", "gross disagreement 5%"])
def test_optional_stopping_on_the_margin(name, record_property):
    """Decide after every 25 examples up to 500 and stop at the first "equivalent": P(ever equivalent) at most
    alpha + 2 se. Agreement populations: P(agreement ever equivalent), which bounds the dimension's (it also
    needs gross disagreement); the gross population: P(gross disagreement ever equivalent), likewise."""
    reps = 2000
    if name == "gross disagreement 5%":
        pop, lower, upper = gross_population(), 0.0, 1.0
        values = lambda s: (s[0] < GROSS_COSINE).astype(float)  # noqa: E731
        equivalent = lambda lo, hi: hi < MARGINS["gross_disagreement"]  # noqa: E731
    else:
        pop, lower, upper, values = population(name), -SCALE_EXP, SCALE_EXP, (lambda s: agreement_values(*s))
        equivalent = lambda lo, hi: lo > 0  # noqa: E731
    samples = draws(pop, reps, 500, 22)
    for s in samples[:10]:
        check_prefix(values(s), lower, upper, LOOKS)
    stops = [first_look_equivalent(values(s), lower, upper, equivalent, LOOKS) for s in samples]
    rate = float(np.mean([t is not None for t in stops]))
    record_property("rates", {"ever equivalent": rate})
    assert rate <= bound(reps), (f"optional stopping ({name}): P(ever equivalent) = {rate:.4f} over {reps} "
                                 f"replications > alpha + 2 se = {bound(reps):.4f}; stopped at "
                                 f"{sorted(t for t in stops if t)}")


@pytest.mark.slow
@pytest.mark.parametrize("floor", [1.0, 0.6])
def test_noisy_explainer_cannot_game_the_agreement(floor, record_property):
    """Noise-free cosine 0.93 on every example (delta -0.07): with an exact explainer (floors 1.0) and a noisy one
    (floors 0.6) the statistic is about -0.07 and "equivalent" about never, n = 500 (20 replications through
    decide_explanations, 2,000 through the sequence at the margin)."""
    rng = np.random.default_rng(30)
    dims = [explain(*noisy_explanations(500, 50, 0.93, floor, rng)) for _ in range(20)]
    stats = [d["parts"]["agreement"]["statistic"] for d in dims]
    floors = np.mean([d["parts"]["agreement"]["floors"]["reference"] for d in dims])
    reps = 2000
    eq = float(np.mean([agreement_at_margin(*noisy_explanations(500, 50, 0.93, floor, rng))[0] for _ in range(reps)]))
    record_property("rates", {EQUIVALENT: eq, "mean statistic": float(np.mean(stats)), "mean floor": float(floors)})
    assert abs(floors - floor) < 0.03, f"mean floor {floors:.3f}, meant {floor}"
    assert abs(np.mean(stats) + 0.07) < 0.01, f"floors {floor}: mean statistic {np.mean(stats):.4f}, not about -0.07"
    assert all(d["decision"] != EQUIVALENT for d in dims), [d["parts"]["agreement"]["interval"] for d in dims]
    assert eq <= 0.005, f"floors {floor}: P(equivalent) = {eq:.4f} over {reps} replications, not about 0"


@pytest.mark.slow
def test_identical_copy_is_equivalent_and_a_worse_one_is_not(record_property):
    """Controls through decide_explanations at n = 500, floors 0.97 +- 0.02 (100 replications each): a copy
    (cross drawn like a floor, delta about 0) is equivalent in >= 80%; cross 0.7 x a floor (delta -0.3) is not
    equivalent in >= 98%."""
    rng, reps = np.random.default_rng(40), 100
    draw = lambda: np.clip(rng.normal(0.97, 0.02, (3, 500)), -1, 1)  # noqa: E731
    copy = [explain(*draw())["decision"] for _ in range(reps)]
    worse = [explain(0.7 * f[0], f[1], f[2])["decision"] for f in (draw() for _ in range(reps))]
    copy_eq, worse_neq = copy.count(EQUIVALENT) / reps, worse.count(NOT_EQUIVALENT) / reps
    record_property("rates", {"copy equivalent": copy_eq, "worse not equivalent": worse_neq})
    assert copy_eq >= 0.8, f"an identical copy is equivalent in only {copy_eq:.2f} of {reps} at n = 500"
    assert worse_neq >= 0.98, f"a candidate at delta -0.3 is not equivalent in only {worse_neq:.2f} of {reps}"


@pytest.mark.slow
def test_sparse_brier_on_its_margin(record_property):
    """Brier differences non-zero on 10% of examples, mean exactly +0.02, n = 1,725: each tail of the Brier part
    at most alpha + 2 se."""
    reps, pop = 2000, sparse_brier_population()
    parts = [decide_calibration(*s, margins=MARGINS, alpha=ALPHA, plan=False)["parts"]["brier"]
             for s in draws(pop, reps, 1725, 50)]
    measured = rates([(p["decision"] == EQUIVALENT, p["decision"] == NOT_EQUIVALENT) for p in parts])
    record_property("rates", measured)
    assert_level(measured, reps, "sparse Brier difference on its margin, n = 1,725")


@pytest.mark.slow
@pytest.mark.parametrize("seed,test,gaps", [(60, "non-inferiority", (0.05, math.sqrt(0.005))),
                                            (61, "non-inferiority", (0.0, 0.05)),
                                            (62, "two-sided", (math.sqrt(0.005), 0.05))])
def test_calibration_on_its_margin(seed, test, gaps, record_property):
    """Squared calibration errors differing by exactly 0.05^2 (reference 0.05 -> candidate 0.071, calibrated ->
    0.05) or, for the two-sided test, by -0.05^2 (0.071 -> 0.05), n = 2,000: P(equivalent) at most alpha + 2 se;
    for the one-sided default, P(not equivalent) too (TOST's may reach 2 alpha by design)."""
    rng, reps = np.random.default_rng(seed), 2000
    parts = [decide_calibration(*miscalibrated(2000, *gaps, rng), margins=MARGINS, alpha=ALPHA, plan=False,
                                test=test)["parts"]["calibration"] for _ in range(reps)]
    measured = rates([(p["decision"] == EQUIVALENT, p["decision"] == NOT_EQUIVALENT) for p in parts])
    record_property("rates", measured)
    checked = measured if test == "non-inferiority" else {EQUIVALENT: measured[EQUIVALENT]}
    assert_level(checked, reps, f"calibration ({test}) on its margin, gaps {gaps}, n = 2,000")


@pytest.mark.slow
def test_better_calibrated_candidate(record_property):
    """Reference calibration error 0.08, candidate 0.03, n = 9,824 (100 replications): the default
    (non-inferiority) accepts it; test="two-sided" (the paper's "similar") does not call it equivalent."""
    rng, reps = np.random.default_rng(70), 100
    out = {"non-inferiority": [], "two-sided": []}
    for _ in range(reps):
        sample = miscalibrated(9824, 0.08, 0.03, rng)
        for test in out:
            out[test].append(decide_calibration(*sample, margins=MARGINS, alpha=ALPHA, plan=False,
                                                test=test)["parts"]["calibration"]["decision"])
    measured = {f"{t}: {d}": out[t].count(d) / reps for t in out for d in (EQUIVALENT, NOT_EQUIVALENT)}
    record_property("rates", measured)
    assert NOT_EQUIVALENT not in out["non-inferiority"], measured
    assert measured[f"non-inferiority: {EQUIVALENT}"] >= 0.8, measured
    assert EQUIVALENT not in out["two-sided"], measured


@pytest.mark.slow
@pytest.mark.parametrize("n,cells,reps", [(1_000_000, (0.88, 0.02, 0.01, 0.09), 1000),
                                          (1000, (0.85, 0.011, 0.001, 0.138), 2000)])
def test_accuracy_on_its_margin(n, cells, reps, record_property):
    """Paired outcomes with accuracy difference exactly -0.01 (n = 1,000,000, 1,000 replications; and n = 1,000
    with 1.1% / 0.1% discordant pairs, where Newcombe's interval alone is liberal): each tail of the accuracy
    part at most alpha + 2 se."""
    rng = np.random.default_rng(80)
    parts = [decide_predictions(*paired_predictions(n, cells, rng), margins=MARGINS, alpha=ALPHA)["parts"]["accuracy"]
             for _ in range(reps)]
    measured = rates([(p["decision"] == EQUIVALENT, p["decision"] == NOT_EQUIVALENT) for p in parts])
    record_property("rates", measured)
    assert_level(measured, reps, f"accuracy on its margin, n = {n:,}")


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 2000])
def test_flip_rate_on_its_margin(n, record_property):
    """Flip rate exactly 0.05 (2.5% each way, accuracy unchanged): each tail of the Wilson non-superiority test
    at most alpha + 2 se."""
    rng, reps = np.random.default_rng(90), 2000
    parts = [decide_predictions(*paired_predictions(n, (0.85, 0.025, 0.025, 0.1), rng), margins=MARGINS,
                                alpha=ALPHA)["parts"]["flip_rate"] for _ in range(reps)]
    measured = rates([(p["decision"] == EQUIVALENT, p["decision"] == NOT_EQUIVALENT) for p in parts])
    record_property("rates", measured)
    assert_level(measured, reps, f"flip rate on its margin, n = {n:,}")
