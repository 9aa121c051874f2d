"""Anytime-valid confidence sequences for the mean of bounded per-example values.

* :func:`betting_cs` - the hedged-capital betting confidence sequence (CS) of
  Waudby-Smith & Ramdas (2024), "Estimating means of bounded random variables
  by betting", J. R. Stat. Soc. B 86(1), 1-27 (arXiv:2010.09686): Sec. 4,
  Theorem 3, with the predictable plug-in empirical-Bernstein bets
  lambda^PrPl-EB of Sec. 3 (Theorem 2), as in the authors' reference
  implementation (confseq, ``confseq.betting.betting_cs`` / ``hedged_cs``,
  run by their simulations as ``betting_cs(x, breaks=1000, trunc_scale=1/2,
  running_intersection=True)`` for the curve labelled "Hedged [Thm 3]").

A CS ``[lower_t, upper_t]``, t = 1..n, holds for every distribution on
``[lower, upper]`` and at every t at once: P(the mean is outside the interval
at some t) <= alpha. So the data may be looked at after every example and the
comparison stopped whenever the interval decides (optional stopping), which a
fixed-n interval (a Student t interval) does not
allow. The price is width: 1.5-2.1 times a fixed-n 95% t interval's at
n = 1,000 and 1.9-2.7 times at n = 10,000 (measured on uniform, Bernoulli,
Beta and skewed values), growing slowly with n.

Checked against confseq's own code and a loop-by-loop re-derivation of the
paper's equations, and for time-uniform coverage by simulation
(tests/test_sequences.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_at_least, check_option

__all__ = ["ConfidenceSequence", "betting_cs", "mean_cs", "SIDES", "CS_METHOD", "VERDICT_TRUNCATION"]

#: Values of ``side``: an interval, only a lower bound, only an upper bound.
SIDES = ("two-sided", "lower", "upper")

_BLOCK = 1 << 20  # elements of one (time x grid point) block of log capital
_MIN_CELL = 1e-12  # refinement stops at grid cells this narrow (in [0, 1] units)


@dataclass(frozen=True, eq=False)
class ConfidenceSequence:
    """Bounds of a confidence sequence after each of n values, in the values' units.

    Attributes
    ----------
    lower, upper : ndarray of float, shape (n,)
        ``[lower[t - 1], upper[t - 1]]`` is the interval after the first t
        values; ``lower`` is non-decreasing and ``upper`` non-increasing (the
        running intersection). A one-sided sequence reports the data bound on
        its other side. ``lower > upper`` means no mean fits the data (a miss,
        possible at rate <= alpha when the assumptions hold).
    alpha : float
        P(the mean is outside the interval at some t) <= alpha.
    side : str
        One of :data:`SIDES`.
    """

    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    side: str

    @property
    def interval(self) -> tuple[float, float]:
        """The interval after all n values, ``(lower[-1], upper[-1])``."""
        return float(self.lower[-1]), float(self.upper[-1])


def betting_cs(x, *, lower: float = 0.0, upper: float = 1.0, alpha: float = 0.05, side: str = "two-sided",
               grid: int = 1000, truncation: float = 0.5, refine: bool = True) -> ConfidenceSequence:
    """Hedged-capital betting confidence sequence for the mean of values in ``[lower, upper]``.

    Waudby-Smith & Ramdas (2024), Sec. 4, Theorem 3 (hedged capital, theta =
    1/2), betting the predictable plug-in empirical-Bernstein amounts of their
    Sec. 3, Theorem 2, truncated at c/m and c/(1 - m) as Theorem 3 asks (not
    at c). On the values rescaled to [0, 1], y_i = (x_i - lower) / (upper -
    lower), and for a candidate mean m in [0, 1]::

        mu_t    = (1/2 + sum_{i<=t} y_i) / (t + 1)
        s2_t    = (1/4 + sum_{i<=t} (y_i - mu_i)^2) / (t + 1),    s2_0 = 1/4
        lam_t   = sqrt(2 log(1/a) / (s2_{t-1} t log(1 + t)))      (lambda^PrPl-EB)
        K+_t(m) = prod_{i<=t} (1 + min(lam_i, c/m) (y_i - m))
        K-_t(m) = prod_{i<=t} (1 - min(lam_i, c/(1-m)) (y_i - m))

    with c = ``truncation``. Two-sided (a = alpha / 2), m is rejected from
    time t on once the hedged capital max(K+_t(m), K-_t(m)) / 2 reaches
    1/alpha. Under the mean m, K+ and K- are non-negative martingales starting
    at 1 (predictable bets, every factor >= 1 - c > 0), and so is their
    average, which bounds the hedged capital: by Ville's inequality the truth
    is ever rejected with probability <= alpha. ``side="lower"`` uses K+ alone
    against 1/alpha with a = alpha (Theorem 3 with theta = 1), ``side="upper"``
    K- alone: each misses at rate <= alpha on its own side, the tail a
    non-inferiority decision reads. Each factor of K+ is non-increasing in m
    and each of K- non-decreasing, so the rejected means are [0, A_t) and
    (B_t, 1] and the CS is the interval [A_t, B_t].

    Parameters
    ----------
    x : array-like of float, shape (n,)
        Per-example values in the order observed (or in any order fixed before
        looking), e.g. alignment gaps in [-2, 2] or Brier differences in [-1, 1].
    lower, upper : float, default=0.0, 1.0
        Known bounds of every value, ``lower < upper``.
    alpha : float in (0, 1), default=0.05
    side : {"two-sided", "lower", "upper"}, default="two-sided"
        "lower": only a lower bound (``.upper`` is ``upper`` throughout);
        "upper": only an upper bound.
    grid : int >= 2, default=1000
        Cells of the starting grid of candidate means: ``grid + 1`` equally
        spaced points on [lower, upper] (confseq's ``breaks``). A grid point
        leaves for good once rejected; ``lower_t`` is the largest grid point K+
        rejected (``lower`` if none), ``upper_t`` the smallest one K- rejected
        (``upper`` if none), so [A_t, B_t] lies inside and each bound is
        conservative by less than one cell.
    truncation : float in (0, 1), default=0.5
        c above: no factor of K+ or K- falls below 1 - c (the paper suggests
        1/2 or 3/4; confseq's default is 1/2).
    refine : bool, default=True
        Whenever fewer than ``grid // 4`` grid points remain inside the running
        interval, halve every cell in it (the new points' capital computed
        from t = 1), so at every n the bounds stay within about 8 / grid of
        the interval's width of A_t and B_t (at most 0.7% measured with grid =
        1000), and constant values give a width that goes to 0. With False the
        grid stays fixed, and the result is confseq's ``betting_cs(y, alpha=alpha,
        breaks=grid, running_intersection=True)`` (= ``hedged_cs(y, alpha)``;
        one-sided, ``betting_lower_cs``) mapped back to ``[lower, upper]``.

    Returns
    -------
    ConfidenceSequence
        ``.lower``, ``.upper`` of shape (n,) in the units of ``x`` (the running
        intersection), ``.interval`` the final ``(lower_n, upper_n)``.

    Raises
    ------
    ValueError
        ``x`` not 1-D, empty, NaN, or outside ``[lower, upper]`` (infinite
        values included); ``lower >= upper`` or either infinite; ``alpha`` not
        in (0, 1); ``truncation`` not in (0, 1); ``side`` not in :data:`SIDES`
        or ``grid < 2`` (:class:`~trusteq.errors.SettingsError`, a ValueError).

    Notes
    -----
    Valid when E[x_t | x_1..x_{t-1}] is the same mean for every t (e.g.
    examples drawn i.i.d.), for any distribution on ``[lower, upper]``.
    One-sided sequences are computed together with the mirror-image bound at
    the same alpha, only to drop grid points from the work; a bound can then
    differ from the fixed-grid one-sided CS only when the two would cross (a
    miss of one of them), and only towards the conservative side. Once no grid
    point is left inside the running interval (it crossed; or, refined, it
    narrowed below 1e-12 of the range), it stays as it is. Work is vectorised
    over blocks of time and live grid points (at most 2^20 of each kind, some
    ten arrays of 8 MiB): about 0.1 s for n = 10,000 and 0.8-1.2 s for n =
    100,000 with the defaults, under 0.1 s with ``refine=False``.

    Examples
    --------
    A thousand values cycling through 0.2, 0.9, 0.5, 0.7 (mean 0.575; the 95%
    t interval at n = 1,000 is [0.559, 0.591]):

    >>> x = np.tile([0.2, 0.9, 0.5, 0.7], 250)
    >>> cs = betting_cs(x)
    >>> [round(v, 3) for v in cs.interval]
    [0.546, 0.603]
    >>> [round(float(v), 3) for v in (cs.lower[9], cs.upper[9])]
    [0.274, 0.803]

    Only a lower bound, on the same values as differences in [-1, 1]:

    >>> round(betting_cs(2 * x - 1, lower=-1, upper=1, side="lower").interval[0], 3)
    0.098
    """
    y = _rescale(x, lower, upper)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    check_option("side", side, SIDES)
    check_at_least("grid", grid, 2)
    if not 0 < truncation < 1:
        raise ValueError(f"truncation must be in (0, 1), got {truncation}")
    a = alpha / 2 if side == "two-sided" else alpha
    lo, hi = _running_bounds(y, _bets(y, a), np.log(1 / a), truncation, int(grid), bool(refine))
    width = upper - lower
    lo = np.full(y.size, float(lower)) if side == "upper" else lower + width * lo
    hi = np.full(y.size, float(upper)) if side == "lower" else lower + width * hi
    return ConfidenceSequence(lower=lo, upper=hi, alpha=float(alpha), side=side)


def _rescale(x, lower, upper) -> np.ndarray:
    """``x`` checked (1-D, not empty, no NaN, within [lower, upper]) and mapped onto [0, 1]."""
    if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
        raise ValueError(f"need finite bounds lower < upper, got lower={lower}, upper={upper}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be 1-D (n,) with n >= 1, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError(f"x contains NaN (first at index {int(np.argmax(np.isnan(x)))})")
    outside = (x < lower) | (x > upper)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"x must lie in [{lower}, {upper}]; x[{i}] = {x[i]}")
    return np.clip((x - lower) / (upper - lower), 0.0, 1.0)


def _bets(y: np.ndarray, a: float) -> np.ndarray:
    """lambda^PrPl-EB before truncation, shape (n,): predictable (lam_t uses y_1..y_{t-1} only).

    Written as confseq's ``lambda_predmix_eb`` (prior mean 1/2, variance 1/4, one fake observation),
    operation for operation, so the bets agree to the last bit.
    """
    t = np.arange(1, y.size + 1)
    mu = (0.5 + np.cumsum(y)) / (t + 1)
    s2 = (0.25 + np.cumsum(np.power(y - mu, 2))) / (t + 1)
    s2_prev = np.concatenate(([0.25], s2[:-1]))
    return np.sqrt(2 * np.log(1 / a) / (t * np.log(1 + t) * s2_prev))


def _block(y, lam, m, carry, c):
    """log K+ and log K- of candidate means ``m`` (k,) over a block of values ``y``, bets ``lam`` (b,).

    ``carry`` (2, k): the log capitals before the block. Returns two (k, b) arrays, a row per candidate mean.
    """
    d = y - m[:, None]
    with np.errstate(divide="ignore"):  # c/0 = inf: no truncation at m = 0 (K+) or m = 1 (K-)
        up = np.log1p(np.minimum(lam, c / m[:, None]) * d)
        down = np.log1p(-np.minimum(lam, c / (1 - m[:, None])) * d)
    return carry[0][:, None] + np.cumsum(up, axis=1), carry[1][:, None] + np.cumsum(down, axis=1)


def _history(y, lam, m, c, thr):
    """Log capitals of new candidate means ``m`` after all of ``y``, and whether K+ / K- ever reached ``thr``."""
    carry, dead = np.zeros((2, m.size)), np.zeros((2, m.size), dtype=bool)
    step = max(1, _BLOCK // m.size)
    for s in range(0, y.size, step):
        kp, km = _block(y[s:s + step], lam[s:s + step], m, carry, c)
        dead |= np.stack([(kp >= thr).any(axis=1), (km >= thr).any(axis=1)])
        carry = np.stack([kp[:, -1], km[:, -1]])
    return carry, dead


def _bound(hit, m, start, better):
    """A bound after each time of a block, and which points it rejected.

    ``hit`` (k, b): log capital >= threshold; ``better``: np.maximum for the lower bound (the largest
    rejected point so far, or ``start``), np.minimum for the upper.
    """
    first = hit.argmax(axis=1)
    dead = hit[np.arange(m.size), first]
    news = np.full(hit.shape[1], -np.inf if better is np.maximum else np.inf)
    better.at(news, first[dead], m[dead])
    return better.accumulate(better(news, start)), dead


def _running_bounds(y, lam, thr, c, grid, refine):
    """Running lower and upper bounds on [0, 1], shape (n,) each: the grid method with live points only.

    A grid point is live until K+ or K- (log) reaches ``thr``; the lower bound is the largest point K+
    rejected (0 if none), the upper the smallest K- rejected (1 if none). Only live points inside the
    bounds are carried from block to block (by monotonicity in m, the others cannot move a bound).
    """
    n = y.size
    lo, hi = np.zeros(n), np.ones(n)
    m, carry = np.linspace(0.0, 1.0, grid + 1), np.zeros((2, grid + 1))
    low, high, t = 0.0, 1.0, 0
    while t < n and m.size:
        b = int(min(n - t, max(64, t), max(1, _BLOCK // m.size)))
        kp, km = _block(y[t:t + b], lam[t:t + b], m, carry, c)
        lo[t:t + b], dead_p = _bound(kp >= thr, m, low, np.maximum)
        hi[t:t + b], dead_m = _bound(km >= thr, m, high, np.minimum)
        low, high, t = lo[t + b - 1], hi[t + b - 1], t + b
        keep = ~dead_p & ~dead_m & (m >= low) & (m <= high)
        m, carry = m[keep], np.stack([kp[keep, -1], km[keep, -1]])
        while refine and t < n and m.size < grid // 4:
            m, carry, low, high, added = _refine(y[:t], lam[:t], m, carry, low, high, c, thr)
            if not added:
                break
    lo[t:], hi[t:] = low, high
    return lo, hi


def _refine(y, lam, m, carry, low, high, c, thr):
    """Halve every cell between ``low``, the live points ``m`` and ``high``; the new points' capital from t = 1.

    Returns the live points, their log capitals, the bounds, and whether that changed anything (False once
    the bounds have crossed or the cells are narrower than ``_MIN_CELL``).
    """
    nodes = np.unique(np.concatenate(([low], m, [high])))
    new = ((nodes[:-1] + nodes[1:]) / 2)[np.diff(nodes) > _MIN_CELL]
    if not new.size or low >= high:
        return m, carry, low, high, False
    new_carry, dead = _history(y, lam, new, c, thr)
    live = ~dead[0] & ~dead[1]
    new_low, new_high = max(low, new[dead[0]].max(initial=low)), min(high, new[dead[1]].min(initial=high))
    changed = bool(live.any()) or (new_low, new_high) != (low, high)
    m, carry = np.concatenate((m, new[live])), np.concatenate((carry, new_carry[:, live]), axis=1)
    inside = (m >= new_low) & (m <= new_high)  # live points below a newly rejected one are rejected too
    return m[inside], carry[:, inside], new_low, new_high, changed


#: How reports name the bounds of :func:`mean_cs`.
CS_METHOD = "betting confidence sequence (Waudby-Smith & Ramdas 2024, Thm 3, hedged capital)"


#: Truncation c of the verdict's sequences: Waudby-Smith & Ramdas (2024) suggest 1/2 or 3/4; 3/4 lets the bets grow
#: where values vary little beside their range (explanation agreement, cosines in a range of 4), and narrowed such
#: a sequence by 1.3-1.6x at n = 200-1,000 (values 0.95 -/+ 0.05 in [-2, 2]).
VERDICT_TRUNCATION = 0.75


def mean_cs(values, *, lower: float, upper: float, alpha: float) -> dict:
    """Mean of bounded per-example values with anytime-valid one-sided bounds, each at level ``alpha``.

    The two-sided :func:`betting_cs` at ``2 alpha`` (alpha per side): the low bound exceeds the mean, at
    any n the data were looked at, with probability at most ``alpha``, and so does the high bound fall
    short of it (truncation :data:`VERDICT_TRUNCATION`). This is the ``1 - 2 alpha`` interval a decision of :mod:`trusteq.metrics.verdict` reads,
    valid under optional stopping.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        In ``[lower, upper]``, in the order observed; no NaN (decide what an undefined value means first).
    lower, upper : float
        Known bounds of every value.
    alpha : float in (0, 0.5)

    Returns
    -------
    dict with ``value`` (the mean; None for n = 0), ``interval`` ([low, high]; ``[lower, upper]`` for
    n = 0), ``n`` and ``method`` (:data:`CS_METHOD`).

    Raises
    ------
    ValueError
        As :func:`betting_cs`; ``alpha`` outside (0, 0.5).

    Examples
    --------
    >>> out = mean_cs(np.tile([0.2, 0.9, 0.5, 0.7], 250), lower=0, upper=1, alpha=0.025)
    >>> round(out["value"], 3), [round(v, 3) for v in out["interval"]]
    (0.575, [0.544, 0.605])
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1 and x.size == 0:
        return {"value": None, "interval": [float(lower), float(upper)], "n": 0, "method": CS_METHOD}
    cs = betting_cs(x, lower=lower, upper=upper, alpha=2 * alpha, truncation=VERDICT_TRUNCATION)
    lo, hi = sorted(cs.interval)  # crossed bounds (a miss, rate <= alpha) are kept, as a wider interval
    return {"value": float(x.mean()), "interval": [lo, hi], "n": int(x.size), "method": CS_METHOD}
