import numpy as np
import pytest

from trusteq.metrics.stats import Bootstrap


def test_ci_covers_mean_and_is_reproducible():
    x = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    b1 = Bootstrap(400, n_boot=500, seed=1)
    r = b1.ci(np.mean, x)
    assert r["value"] == pytest.approx(x.mean())
    lo, hi = r["ci"]
    assert lo < x.mean() < hi
    # width close to the normal-theory interval 2 * 1.96 * sd / sqrt(n)
    assert hi - lo == pytest.approx(2 * 1.96 * x.std() / 20, rel=0.2)
    assert Bootstrap(400, n_boot=500, seed=1).ci(np.mean, x) == r


def test_vectorised_mean_equals_generic_ci():
    x = np.random.default_rng(1).random(300)
    b = Bootstrap(300, n_boot=200, seed=0)
    m = b.mean(x)
    g = b.ci(np.mean, x)
    assert m["mean"] == pytest.approx(g["value"])
    assert m["ci"] == pytest.approx(g["ci"])
    x[::3] = np.nan
    assert b.mean(x)["n"] == 200


def test_paired_difference_is_tighter_than_unpaired():
    rng = np.random.default_rng(2)
    base = rng.normal(size=500)
    a, c = base, base + 0.05 + rng.normal(scale=0.01, size=500)
    b = Bootstrap(500, n_boot=500, seed=3)
    d = b.diff(np.mean, (c,), (a,))
    assert d["value"] == pytest.approx(np.mean(c - a))
    assert d["ci"][0] > 0  # paired: the shared noise cancels
    assert d["ci"][1] - d["ci"][0] < 0.01


def test_errors():
    with pytest.raises(ValueError):
        Bootstrap(0)
    with pytest.raises(ValueError, match="does not match"):
        Bootstrap(3, n_boot=10).ci(np.mean, np.ones(4))
