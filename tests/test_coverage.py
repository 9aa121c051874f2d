"""Simulation with known truth: the intervals the verdict reads cover at their nominal level (90%).

Each case draws at least 500 data sets from a model whose true value is known,
computes the interval on each, and counts how often it holds the truth. With
R repetitions the simulation error of a coverage near 0.90 is sqrt(0.09 / R)
(0.013 at R = 500); every case must reach 0.90 - 3 simulation errors. Measured
coverages are printed (``pytest -s``) and quoted in docs/verdict.md.
"""

import numpy as np
import pytest

from trusteq.metrics.intervals import paired_accuracy_difference, paired_calibration_difference
from trusteq.metrics.sequences import mean_cs

pytestmark = pytest.mark.slow  # hundreds of replications per case: the full tier's

LEVEL = 0.90


def _check(hits, label, low_miss=None, high_miss=None):
    """Two-sided coverage at least nominal; each one-sided miss rate (the tail a one-sided decision reads) at
    most (1 - LEVEL) / 2, both within 3 simulation errors."""
    reps = len(hits)
    coverage = float(np.mean(hits))
    tails = "" if low_miss is None else f" (low bound above the truth {np.mean(low_miss):.3f}, high bound below " \
                                        f"{np.mean(high_miss):.3f})"
    print(f"\ncoverage {label}: {coverage:.3f} over {reps} repetitions{tails}")
    assert coverage >= LEVEL - 3 * np.sqrt(LEVEL * (1 - LEVEL) / reps), (label, coverage)
    tail = (1 - LEVEL) / 2
    for miss in (low_miss, high_miss):
        if miss is not None:
            assert np.mean(miss) <= tail + 3 * np.sqrt(tail * (1 - tail) / reps), (label, np.mean(miss))
    return coverage


def _two_models(rng, n, gap_ref, gap_cand):
    """Binary task: confidences in [0.55, 0.95]; P(correct | c) = c - gap, one latent draw per example shared by
    both models (their correctness is correlated, as for a compressed copy). True squared calibration error of a
    model with a constant gap g is g^2 for any binning."""
    c_ref = rng.uniform(0.55, 0.95, n)
    c_cand = np.clip(c_ref + rng.normal(0, 0.05, n), 0.52, 0.98)
    u = rng.random(n)
    probs = []
    for c, ok in ((c_ref, u < c_ref - gap_ref), (c_cand, u < c_cand - gap_cand)):
        p = np.stack([1 - c, c], axis=1)
        probs.append(np.where(ok[:, None], p, p[:, ::-1]))
    return np.ones(n, dtype=int), probs[0], probs[1]


@pytest.mark.parametrize("gap_ref,gap_cand", [(0.0, 0.0), (0.02, 0.02), (0.0, 0.02), (0.0, 0.1)])
def test_calibration_difference_covers(gap_ref, gap_cand):
    rng = np.random.default_rng(int(1000 * gap_ref + 100 * gap_cand))
    truth = gap_cand ** 2 - gap_ref ** 2
    hits = []
    for rep in range(500):
        y, p_ref, p_cand = _two_models(rng, 300, gap_ref, gap_cand)
        lo, hi = paired_calibration_difference(y, p_ref, p_cand, level=LEVEL)["interval"]
        hits.append(lo <= truth <= hi)
    _check(hits, f"calibration difference, gaps {gap_ref} -> {gap_cand} (truth {truth:+.4f}), n=300")


@pytest.mark.parametrize("p_b,p_c,n", [(0.03, 0.03, 300), (0.06, 0.03, 300), (0.0025, 0.0025, 300),
                                       (0.01, 0.0, 300), (0.02, 0.01, 1725), (0.011, 0.001, 1000),
                                       (0.011, 0.001, 300)])
def test_paired_accuracy_difference_covers(p_b, p_c, n):
    """Discordant cells b (reference right, candidate wrong) and c with known probabilities; truth c - b. The
    low-discordance cases sit on the default margin (-0.01), where a non-inferiority decision reads the low tail."""
    rng = np.random.default_rng(7)
    truth = p_c - p_b
    cells = rng.multinomial(n, [0.72 - p_b, p_b, p_c, 0.28 - p_c], size=2000)
    bounds = []
    for a, b, c, d in cells:
        ref = np.repeat([True, True, False, False], [a, b, c, d])
        cand = np.repeat([True, False, True, False], [a, b, c, d])
        bounds.append(paired_accuracy_difference(ref, cand, level=LEVEL)["interval"])
    lo, hi = np.array(bounds).T
    _check((lo <= truth) & (truth <= hi), f"accuracy difference, b={p_b} c={p_c} (truth {truth:+.4f}), n={n}",
           lo > truth, hi < truth)


@pytest.mark.parametrize("n", [20, 60, 100])
def test_mean_cs_covers_a_bounded_skewed_gap(n):
    """An alignment gap: 40% of examples exactly 0 (both runs agree as well as the floor), the rest
    -Beta(2, 5) (the candidate agrees less); true mean -0.6 * 2/7. The verdict's confidence sequence (a Student t
    interval missed one tail of such gaps up to 8% at nominal 5%)."""
    rng = np.random.default_rng(n)
    truth = -0.6 * 2 / 7
    hits = []
    for rep in range(500):
        values = np.where(rng.random(n) < 0.4, 0.0, -rng.beta(2, 5, n))
        hits.append(mean_cs(values, lower=-1.0, upper=1.0, alpha=(1 - LEVEL) / 2)["interval"])
    lo, hi = np.array(hits).T
    _check((lo <= truth) & (truth <= hi), f"mean of an alignment gap, n={n}", lo > truth, hi < truth)
