"""Agreement metrics against independent computations."""

import math

import numpy as np
import pytest
from scipy.stats import entropy

from trusteq.metrics.agreement import accuracy, agreement_rate, flip_rates, mcnemar_test, mean_kl_divergence


def probs(n, k, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=n)
    return p


def test_kl_matches_scipy_entropy():
    p, q = probs(300, 3, 1), probs(300, 3, 2)
    expected = np.mean([entropy(p[i], q[i]) for i in range(300)])
    assert mean_kl_divergence(p, q) == pytest.approx(expected, rel=1e-10)
    assert mean_kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)


def test_kl_zero_reference_probability_and_zero_candidate():
    p = np.array([[1.0, 0.0]])
    q = np.array([[0.5, 0.5]])
    assert mean_kl_divergence(p, q) == pytest.approx(math.log(2))
    assert math.isfinite(mean_kl_divergence(q, p))


def test_flips_and_agreement_by_loop():
    y = np.random.default_rng(3).integers(0, 3, 400)
    p, q = probs(400, 3, 4), probs(400, 3, 5)
    a, b = p.argmax(1), q.argmax(1)
    c2w = sum(a[i] == y[i] and b[i] != y[i] for i in range(400)) / 400
    w2c = sum(a[i] != y[i] and b[i] == y[i] for i in range(400)) / 400
    f = flip_rates(y, p, q)
    assert f["correct_to_wrong"] == pytest.approx(c2w)
    assert f["wrong_to_correct"] == pytest.approx(w2c)
    assert f["total"] == pytest.approx(c2w + w2c)
    assert agreement_rate(p, q) == pytest.approx(sum(a == b) / 400)
    # accuracy difference is exactly the net flip
    assert accuracy(y, q) - accuracy(y, p) == pytest.approx(w2c - c2w)


def test_mcnemar_exact_by_hand():
    y = np.zeros(30, dtype=int)
    ref = np.tile([[0.9, 0.1]], (30, 1))
    cand = ref.copy()
    cand[:8] = [0.1, 0.9]  # b = 8: reference right, candidate wrong
    ref_wrong = ref.copy()
    ref_wrong[:5] = [0.1, 0.9]  # c = 5: reference wrong, candidate right
    r = mcnemar_test(y, ref, cand)
    b, c = 8, 0
    n = b + c
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2**n)
    assert (r["b"], r["c"]) == (8, 0)
    assert r["p_value"] == pytest.approx(p)
    # the reverse direction: only the reference is wrong, on 5 examples
    r = mcnemar_test(y, ref_wrong, ref)
    assert (r["b"], r["c"]) == (0, 5)
    assert r["p_value"] == pytest.approx(2 * math.comb(5, 0) / 2**5)
    # both wrong on examples 0-4 (concordant, ignored); only the candidate on 5-7
    r = mcnemar_test(y, ref_wrong, cand)
    assert (r["b"], r["c"]) == (3, 0)
    assert r["p_value"] == pytest.approx(2 * math.comb(3, 0) / 2**3)
    # no discordant pair: p = 1
    assert mcnemar_test(y, ref, ref)["p_value"] == 1.0


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        agreement_rate(np.ones((3, 2)) / 2, np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match="no examples"):
        mean_kl_divergence(np.zeros((0, 2)), np.zeros((0, 2)))
