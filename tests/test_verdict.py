"""Decisions of the verdict: the interval form of TOST and non-inferiority, combination, re-deciding."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from trusteq.metrics.verdict import (EQUIVALENT, INCONCLUSIVE, NOT_EQUIVALENT, check_margins, combine, decide,
                                     dimension, part, redecide, samples_to_decide, verdict)


@pytest.mark.parametrize("interval,test,expected", [
    ([-0.004, 0.006], "TOST", EQUIVALENT), ([0.011, 0.03], "TOST", NOT_EQUIVALENT),
    ([-0.03, -0.011], "TOST", NOT_EQUIVALENT), ([-0.005, 0.02], "TOST", INCONCLUSIVE),
    ([-0.009, 0.5], "non-inferiority", EQUIVALENT), ([-0.03, -0.011], "non-inferiority", NOT_EQUIVALENT),
    ([-0.02, 0.0], "non-inferiority", INCONCLUSIVE), ([0.0, 0.009], "non-superiority", EQUIVALENT),
    ([0.011, 0.02], "non-superiority", NOT_EQUIVALENT), ([0.005, 0.02], "non-superiority", INCONCLUSIVE),
    ([-0.01, 0.0], "non-inferiority", INCONCLUSIVE),  # on the margin is not inside it
    ([None, None], "TOST", INCONCLUSIVE),
])
def test_decide(interval, test, expected):
    assert decide(interval, 0.01, test) == expected


def test_decide_refuses_bad_arguments():
    with pytest.raises(ValueError, match="unknown test"):
        decide([0, 1], 0.1, "t-test")
    with pytest.raises(ValueError, match="margin must be > 0"):
        decide([0, 1], 0.0, "TOST")
    with pytest.raises(ValueError, match="low > high"):
        decide([1, 0], 0.1, "TOST")


def test_interval_form_equals_statsmodels_ttost_paired():
    """TOST at alpha rejects both one-sided nulls exactly when the (1 - 2 alpha) t interval lies inside the margin."""
    rng = np.random.default_rng(0)
    alpha, margin, agree, decided = 0.05, 0.05, 0, 0
    for rep in range(300):
        n = int(rng.integers(10, 200))
        x2 = rng.normal(0.5, 0.2, n)
        x1 = x2 + rng.normal(rng.uniform(-0.08, 0.08), rng.uniform(0.02, 0.3), n)
        d = x1 - x2
        half = stats.t.ppf(1 - alpha, n - 1) * d.std(ddof=1) / np.sqrt(n)
        ours = decide([d.mean() - half, d.mean() + half], margin, "TOST")
        p = ttost_paired(x1, x2, -margin, margin)[0]
        agree += (ours == EQUIVALENT) == (p < alpha)
        decided += ours == EQUIVALENT
    assert agree == 300 and 20 < decided < 280


def test_confidence_sequence_decides_like_ttost_on_a_clear_case():
    from trusteq.metrics.sequences import mean_cs

    rng = np.random.default_rng(1)
    x2 = rng.uniform(0.5, 0.9, 600)
    x1 = x2 + rng.normal(0.005, 0.05, 600)
    interval = mean_cs(x1 - x2, lower=-1, upper=1, alpha=0.05)["interval"]
    assert decide(interval, 0.05, "TOST") == EQUIVALENT and ttost_paired(x1, x2, -0.05, 0.05)[0] < 0.05
    x1 = x2 - 0.2 + rng.normal(0, 0.05, 600)
    interval = mean_cs(x1 - x2, lower=-1, upper=1, alpha=0.05)["interval"]
    assert decide(interval, 0.05, "TOST") == NOT_EQUIVALENT and ttost_paired(x1, x2, -0.05, 0.05)[0] > 0.5


def test_combine_is_intersection_union():
    assert combine([EQUIVALENT, EQUIVALENT]) == EQUIVALENT
    assert combine([EQUIVALENT, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_EQUIVALENT, EQUIVALENT]) == NOT_EQUIVALENT
    assert combine([]) == INCONCLUSIVE


def test_samples_to_decide_scales_with_the_interval():
    # half-width 0.01 = z_.95 se at n=100 (se = 0.01/1.645); 80% power at distance 0.005 needs
    # (1.645 + 0.842) se' <= 0.005, se' = se sqrt(100/n'): n' = 100 (0.01 * 2.486 / (1.645 * 0.005))^2 = 913.7
    assert samples_to_decide(0.0, [-0.01, 0.01], 100, 0.005, "TOST", alpha=0.05) in (914, 915)
    assert samples_to_decide(-0.01, [-0.02, 0.0], 100, 0.01, "non-inferiority", alpha=0.05) is None  # on the margin
    # a confidence sequence: planned on the per-example values, by its own width on a resample
    from trusteq.metrics.verdict import sequence_samples_to_decide
    rng = np.random.default_rng(0)
    near, far = rng.normal(0.01, 0.05, 200), rng.normal(0.03, 0.05, 200)
    n_near = sequence_samples_to_decide(near, lower=-1, upper=1, alpha=0.05)
    n_far = sequence_samples_to_decide(far, lower=-1, upper=1, alpha=0.05)
    assert 50 < n_far < n_near < 50_000  # nearer the margin needs more
    assert sequence_samples_to_decide(np.zeros(50), lower=-1, upper=1, alpha=0.05) is None
    # far beyond reach: no seven-digit answer
    assert samples_to_decide(0.0099, [-0.0001, 0.0199], 100, 0.01, "TOST", alpha=0.05) is None


def _stored():
    acc = part(-0.004, [-0.008, 0.0], margin=0.01, test="non-inferiority", n=300, alpha=0.05, margin_name="accuracy")
    flips = part(0.01, [0.004, 0.02], margin=0.05, test="non-superiority", n=300, alpha=0.05, margin_name="flip_rate")
    return verdict({"predictions": dimension({"accuracy": acc, "flip_rate": flips})})


def test_part_dimension_and_verdict_keys():
    v = _stored()
    assert v["overall"] == EQUIVALENT
    d = v["dimensions"]["predictions"]
    assert {"decision", "statistic", "interval", "margin", "test", "parts"} <= set(d)
    inconclusive = part(-0.004, [-0.02, 0.01], margin=0.01, test="non-inferiority", n=300, alpha=0.05)
    assert inconclusive["n_to_decide"] > 300


def test_redecide_tightens_but_never_loosens():
    v = redecide(_stored(), {"accuracy": 0.005})  # interval [-0.008, 0.0] now straddles -0.005
    assert v["dimensions"]["predictions"]["parts"]["accuracy"]["decision"] == INCONCLUSIVE
    assert v["overall"] == INCONCLUSIVE and v["dimensions"]["predictions"]["parts"]["accuracy"]["n_to_decide"] > 300
    v = redecide(_stored(), {"flip_rate": 0.015})  # interval [0.004, 0.02] straddles 0.015
    assert v["dimensions"]["predictions"]["decision"] == INCONCLUSIVE
    assert redecide(_stored(), {"flip_rate": 0.003})["overall"] == NOT_EQUIVALENT
    assert redecide(_stored(), {})["overall"] == EQUIVALENT
    with pytest.raises(ValueError, match="looser"):
        redecide(_stored(), {"flip_rate": 0.1})


def test_check_margins():
    assert check_margins({"accuracy": 0.02}, 0.05)["accuracy"] == 0.02
    with pytest.raises(ValueError, match="unknown margin"):
        check_margins({"acc": 0.02}, 0.05)
    with pytest.raises(ValueError, match="alpha"):
        check_margins(None, 0.5)


def test_gross_disagreement_threshold_scales_with_the_noise_floor():
    from trusteq.metrics.verdict import gross_disagreements

    cross = np.array([0.45, 0.45, 0.2, np.nan, 0.9])
    exact = gross_disagreements(cross, np.ones(5), np.ones(5))
    noisy = gross_disagreements(cross, np.full(5, 0.8), np.full(5, 0.8))  # threshold 0.4: a noisy copy's 0.45 is fine
    assert exact.tolist() == [1, 1, 1, 1, 0] and noisy.tolist() == [0, 0, 1, 1, 0]
    assert gross_disagreements(cross, np.full(5, np.nan), np.ones(5)).tolist() == exact.tolist()  # NaN floor = 1
