"""Bootstrap confidence intervals shared by every metric of a comparison.

One :class:`Bootstrap` draws B resamples of example indices once; every metric
of every model is evaluated on the *same* resamples, so a candidate-minus-
reference difference computed resample by resample is a paired bootstrap
(Efron & Tibshirani 1993, ch. 13: percentile intervals).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["Bootstrap"]


class Bootstrap:
    """Percentile bootstrap over examples.

    Parameters
    ----------
    n : int
        Number of examples (n >= 1).
    n_boot : int
        Number of resamples B (default 1000).
    seed : int
        Seed of the resamples.
    level : float
        Confidence level of the intervals, in (0, 1). Default 0.95.
    """

    def __init__(self, n: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
        if n < 1:
            raise ValueError(f"bootstrap needs at least one example, got n={n}")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.n = int(n)
        self.n_boot = int(n_boot)
        self.seed = int(seed)
        self.level = float(level)
        rng = np.random.default_rng(seed)
        dtype = np.int32 if n < 2**31 else np.int64
        self.indices = rng.integers(0, n, size=(self.n_boot, self.n), dtype=dtype)

    def describe(self) -> dict:
        return {"method": "percentile bootstrap over examples (paired for differences)", "resamples": self.n_boot,
                "level": self.level, "seed": self.seed}

    def _interval(self, values: np.ndarray) -> list[float | None]:
        values = values[np.isfinite(values)]
        if values.size == 0:
            return [None, None]
        alpha = (1 - self.level) / 2
        lo, hi = np.quantile(values, [alpha, 1 - alpha])
        return [float(lo), float(hi)]

    def replicate(self, fn: Callable[..., float], *arrays: np.ndarray) -> np.ndarray:
        """``fn`` on each resample of ``arrays`` (each of length n), shape (B,)."""
        for a in arrays:
            if len(a) != self.n:
                raise ValueError(f"array of length {len(a)} does not match the bootstrap's n={self.n}")
        return np.array([fn(*(a[idx] for a in arrays)) for idx in self.indices], dtype=np.float64)

    def ci(self, fn: Callable[..., float], *arrays: np.ndarray) -> dict:
        """Point value of ``fn(*arrays)`` and its percentile interval.

        Returns
        -------
        dict with ``value`` (float) and ``ci`` ([low, high]).
        """
        value = float(fn(*arrays))
        return {"value": value, "ci": self._interval(self.replicate(fn, *arrays))}

    def diff(self, fn: Callable[..., float], candidate: tuple, reference: tuple) -> dict:
        """Paired difference ``fn(*candidate) - fn(*reference)`` with its interval.

        Both tuples hold arrays over the same n examples; each resample uses
        the same indices for both.
        """
        value = float(fn(*candidate) - fn(*reference))
        reps = self.replicate(fn, *candidate) - self.replicate(fn, *reference)
        return {"value": value, "ci": self._interval(reps)}

    def mean(self, values: np.ndarray) -> dict:
        """Mean of per-example values (NaN ignored) with its interval, sd and count.

        Vectorised: uses the resample indices directly.
        """
        values = np.asarray(values, dtype=np.float64)
        if len(values) != self.n:
            raise ValueError(f"array of length {len(values)} does not match the bootstrap's n={self.n}")
        finite = np.isfinite(values)
        if not finite.any():
            return {"mean": None, "ci": [None, None], "sd": None, "n": 0}
        filled = np.where(finite, values, 0.0)
        sums = filled[self.indices].sum(axis=1)
        counts = finite[self.indices].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = sums / counts
        return {"mean": float(values[finite].mean()), "ci": self._interval(reps),
                "sd": float(values[finite].std(ddof=1)) if finite.sum() > 1 else 0.0, "n": int(finite.sum())}
