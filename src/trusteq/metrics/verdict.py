"""The verdict: may a candidate replace the reference? Equivalence tests with stated margins.

Every decision reads the two-sided ``1 - 2 alpha`` confidence interval
``[lo, hi]`` of a paired candidate-minus-reference statistic and a margin
``m > 0`` fixed in advance (Schuirmann 1987, the interval inclusion form of the
two one-sided tests; Wellek 2010, "Testing Statistical Hypotheses of
Equivalence and Noninferiority", ch. 1-2):

============================  =========================  ==========================
test                          equivalent when            not equivalent when
============================  =========================  ==========================
``TOST`` (both directions)    ``-m < lo`` and ``hi < m``  ``hi < -m`` or ``lo > m``
``non-inferiority``           ``lo > -m``                 ``hi < -m``
``non-superiority``           ``hi < m``                  ``lo > m``
============================  =========================  ==========================

and inconclusive otherwise. Each "equivalent" is a level-alpha test of
"the difference is outside the margin". A "not equivalent" of a one-sided
test is a level-alpha test of "it is inside"; TOST's can err up to 2 alpha
when the margin is small beside the standard error. A dimension is
equivalent when all its parts are, not equivalent when any is, inconclusive
otherwise; the overall verdict combines the dimensions the same way. Because
"equivalent overall" requires every test to reject, the intersection-union
principle (Berger 1982) keeps its level at alpha without a multiplicity
correction; "not equivalent" on a dimension of several parts can err up to
alpha per part.

Means of bounded per-example values (explanation agreement, the share of
examples in gross disagreement, Brier differences) are read from confidence
sequences (:func:`trusteq.metrics.sequences.mean_cs`), valid for any
distribution at every n, so a comparison may look after every block of
examples and stop when a dimension is decided (optional stopping). Accuracy,
flip rate and calibration are decided once, on every example, with their
fixed-n score and jackknife intervals.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

__all__ = ["EQUIVALENT", "NOT_EQUIVALENT", "INCONCLUSIVE", "DECISIONS", "TESTS", "MARGINS", "MARGIN_REASONS",
           "decide", "combine", "part", "undecided", "dimension", "verdict", "redecide", "samples_to_decide",
           "decide_predictions", "decide_calibration", "decide_explanations", "check_margins", "CALIBRATION_TESTS",
           "GROSS_COSINE", "MIN_FLOOR", "MAX_TO_DECIDE", "NOT_EXPLAINED", "sequence_samples_to_decide",
           "gross_disagreements"]

EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE = "equivalent", "not equivalent", "inconclusive"
DECISIONS = (EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE)
TESTS = ("TOST", "non-inferiority", "non-superiority")

#: Default margins, by the name ``--margin NAME=VALUE`` uses (reasons in :data:`MARGIN_REASONS` and docs/verdict.md).
MARGINS = {"accuracy": 0.01, "flip_rate": 0.05, "calibration": 0.05, "brier": 0.02, "explanation": 0.05,
           "gross_disagreement": 0.05}

MARGIN_REASONS = {
    "accuracy": "one percentage point of accuracy lost at most (MLPerf's 99%-of-reference rule for "
                "compressed models is of this size)",
    "flip_rate": "at most one example in twenty flips correctness, right to wrong or wrong to right (Dutta et "
                 "al. 2024 report flips of this order for compressed models at equal accuracy)",
    "calibration": "an RMS calibration error of 0.05 added in quadrature at most (a calibrated reference may "
                   "become at most 0.05 miscalibrated; one at 0.05 at most 0.071); by default only an added error "
                   "counts (--calibration-test two-sided: removed too)",
    "brier": "0.02 of multi-class Brier score lost at most (about 5% of a 0.4 Brier score)",
    "explanation": "the candidate's explanations, corrected for the explainer's noise (mean cross-model cosine "
                   "divided by the mean of both models' noise floors), may agree with the reference's at most 5% "
                   "less than a copy of the reference would: a noise-free cosine of 0.95 at least",
    "gross_disagreement": "at most one explained example in twenty in gross disagreement (cosine below 0.5 "
                          "times its noise floor, or undefined): no reference run of the committed studies fell below 0.5, candidates "
                          "with other reasons put 10-34% of examples there",
}

#: Test options of the calibration part (the ``calibration_test`` setting): the candidate may not add more than
#: the margin (better is fine), or may differ by at most the margin either way (the paper's "similar").
CALIBRATION_TESTS = ("non-inferiority", "two-sided")
#: An explained example is in gross disagreement when its cross-model cosine is below this times its mean noise
#: floor (or undefined): see :func:`gross_disagreements`.
GROSS_COSINE = 0.5
#: Below this mean noise floor (either model) the explanation agreement is not tested: the explainer is too noisy
#: for a correction by the floors (it would divide by more than 2).
MIN_FLOOR = 0.5
#: The reason of an explanation part without explained examples.
NOT_EXPLAINED = "no explained examples"
#: Sample sizes to decide above this are reported as not reachable (None).
MAX_TO_DECIDE = 20_000
_POWER = 0.8


def decide(interval, margin: float, test: str) -> str:
    """Decision of one equivalence test from the ``1 - 2 alpha`` interval of a difference.

    Parameters
    ----------
    interval : (float, float) or (None, None)
        Two-sided ``1 - 2 alpha`` interval [lo, hi] of the candidate-minus-reference
        statistic (for ``non-superiority``: of the candidate's statistic itself, e.g. a flip
        rate). ``None`` bounds (no data) give ``"inconclusive"``.
    margin : float > 0
    test : {"TOST", "non-inferiority", "non-superiority"}

    Returns
    -------
    str, one of :data:`DECISIONS`.

    Raises
    ------
    ValueError
        Unknown test, margin <= 0, or lo > hi.

    Examples
    --------
    >>> decide([-0.004, 0.006], 0.01, "TOST")
    'equivalent'
    >>> decide([-0.03, -0.015], 0.01, "non-inferiority")
    'not equivalent'
    >>> decide([-0.02, 0.0], 0.01, "non-inferiority")
    'inconclusive'
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {list(TESTS)}")
    if not margin > 0:
        raise ValueError(f"a margin must be > 0, got {margin}")
    lo, hi = interval
    if lo is None or hi is None:
        return INCONCLUSIVE
    if lo > hi:
        raise ValueError(f"interval [{lo}, {hi}] has low > high")
    inside = {"TOST": -margin < lo and hi < margin, "non-inferiority": lo > -margin, "non-superiority": hi < margin}
    outside = {"TOST": hi < -margin or lo > margin, "non-inferiority": hi < -margin, "non-superiority": lo > margin}
    return EQUIVALENT if inside[test] else NOT_EQUIVALENT if outside[test] else INCONCLUSIVE


def combine(decisions: Iterable[str]) -> str:
    """Equivalent if all are, not equivalent if any is, inconclusive otherwise (intersection-union).

    >>> combine(["equivalent", "inconclusive", "not equivalent"])
    'not equivalent'
    """
    decisions = list(decisions)
    if any(d == NOT_EQUIVALENT for d in decisions):
        return NOT_EQUIVALENT
    if decisions and all(d == EQUIVALENT for d in decisions):
        return EQUIVALENT
    return INCONCLUSIVE


def samples_to_decide(value: float, interval, n: int, margin: float, test: str, *, alpha: float) -> int | None:
    """Examples at which a fixed-n test would decide with 80% probability if the truth were ``value``.

    The standard error at n is read off the interval, ``se = half-width / z_{1-alpha}``, and shrinks as
    1/sqrt(n): the answer is the smallest n' with ``(z_{1-alpha} + z_{0.8}) se sqrt(n / n') <= d``, d the
    distance from ``value`` to the margin's boundary (deciding either way needs it). For a confidence
    sequence see :func:`sequence_samples_to_decide`.

    Parameters
    ----------
    value : float
    interval : (float, float) or (None, None)
        The ``1 - 2 alpha`` interval at n.
    n : int
        Examples the interval is based on.
    margin : float > 0
    test : {"TOST", "non-inferiority", "non-superiority"}
    alpha : float in (0, 0.5)

    Returns
    -------
    int or None
        None when the interval is missing, the value sits on the margin, or the answer exceeds
        :data:`MAX_TO_DECIDE` (not reachable in practice).

    Examples
    --------
    >>> samples_to_decide(0.0, [-0.01, 0.01], 100, 0.005, "TOST", alpha=0.05)
    915
    >>> samples_to_decide(-0.01, [-0.02, 0.0], 100, 0.01, "non-inferiority", alpha=0.05) is None
    True
    """
    from scipy.stats import norm

    lo, hi = interval
    if lo is None or hi is None or n < 1:
        return None
    half = (hi - lo) / 2
    d = abs({"TOST": margin - abs(value), "non-inferiority": value + margin, "non-superiority": margin - value}[test])
    if d < 1e-12 or half <= 0:
        return None
    z = norm.ppf(1 - alpha)
    n_new = int(np.ceil(n * (half * (z + norm.ppf(_POWER)) / (z * d)) ** 2))
    return n_new if n_new <= MAX_TO_DECIDE else None


def sequence_samples_to_decide(x, *, lower: float, upper: float, alpha: float, seed: int = 0) -> int | None:
    """Examples at which a confidence sequence on the mean of ``x`` would have excluded 0 with 80% probability,
    if the population were ``x`` itself.

    The test a verdict part makes at its margin is "the sequence's bound excludes 0" for per-example values
    shifted by the margin (e.g. ``cross - (1 - m) floor``), on the side their mean is on. Simulated: 20 seeded
    resamples of ``x``, each run through the sequence the verdict reads (:func:`trusteq.metrics.sequences.
    mean_cs`'s), first 2,000 values long and, if fewer than 80% have decided by then, :data:`MAX_TO_DECIDE`;
    the answer is the first t by which 80% of them have (a sequence that decided stays decided).

    Parameters
    ----------
    x : array-like of float, shape (n,)
        In ``[lower, upper]``, no NaN.
    lower, upper : float
    alpha : float in (0, 0.5)
        Per side, as :func:`~trusteq.metrics.sequences.mean_cs` takes it.
    seed : int, default=0
        Of the resamples.

    Returns
    -------
    int or None
        None when the mean is 0 or no t up to :data:`MAX_TO_DECIDE` decides 80% of the resamples.

    Raises
    ------
    ValueError
        As :func:`~trusteq.metrics.sequences.betting_cs`.
    """
    from .sequences import VERDICT_TRUNCATION, betting_cs

    x = np.asarray(x, dtype=np.float64)
    mean = float(x.mean())
    if abs(mean) < 1e-12:
        return None
    rng = np.random.default_rng(seed)
    for length in (min(2_000, MAX_TO_DECIDE), MAX_TO_DECIDE):
        first = []
        for _ in range(20):
            cs = betting_cs(rng.choice(x, size=length), lower=lower, upper=upper, alpha=2 * alpha,
                            truncation=VERDICT_TRUNCATION)
            decided = cs.lower > 0 if mean > 0 else cs.upper < 0
            first.append(int(np.argmax(decided)) + 1 if decided.any() else length + 1)
        t = int(np.quantile(first, _POWER, method="higher"))
        if t <= length:
            return t
    return None


def part(value: float, interval, *, margin: float, test: str, n: int, alpha: float, anytime: bool = False,
         **extra) -> dict:
    """One tested statistic: ``decision``, ``statistic``, ``interval``, ``margin``, ``test``, ``n``, ``alpha``,
    ``anytime`` (whether the interval is a confidence sequence), and any ``extra`` keys such as the method.
    An inconclusive fixed-n part gets ``n_to_decide`` (:func:`samples_to_decide`); a confidence sequence's is
    the caller's to give (:func:`sequence_samples_to_decide` needs the per-example values), in ``extra``."""
    decision = decide(interval, margin, test)
    out = {"decision": decision, "statistic": value, "interval": list(interval), "margin": margin, "test": test,
           "n": n, "alpha": alpha, "anytime": anytime, **extra}
    if decision != INCONCLUSIVE:
        out.pop("n_to_decide", None)
    elif not anytime:
        out["n_to_decide"] = samples_to_decide(value, interval, n, margin, test, alpha=alpha)
    return out


def undecided(reason: str, *, margin: float, test: str, n: int, **extra) -> dict:
    """A part that is measured but not tested: ``decision`` inconclusive, ``statistic`` and ``interval`` None,
    and the ``reason`` (e.g. a descriptive measure that cannot decide). :func:`dimension`, :func:`verdict` and
    :func:`redecide` take it like any part; no margin ever decides it.

    Parameters
    ----------
    reason : str
        Why there is no test, shown in reports.
    margin : float
        The margin a test of this dimension would use (``redecide`` still refuses a looser one).
    test : {"TOST", "non-inferiority", "non-superiority"}
    n : int
        Examples measured.
    **extra
        Further keys, such as ``margin_name`` (needed by :func:`redecide`) or ``measure``.

    Raises
    ------
    ValueError
        Unknown test, margin <= 0.
    """
    decide((None, None), margin, test)  # validates test and margin
    return {"decision": INCONCLUSIVE, "statistic": None, "interval": None, "margin": margin, "test": test, "n": n,
            "reason": reason, **extra}


def dimension(parts: Mapping[str, dict]) -> dict:
    """A dimension made of tested parts; its ``statistic``/``interval``/``margin``/``test`` (and ``reason``,
    where the part has one) are those of the part that decides it (the first not equivalent, else the first
    inconclusive, else the first)."""
    decision = combine(p["decision"] for p in parts.values())
    lead = next((p for p in parts.values() if p["decision"] == decision), next(iter(parts.values())))
    keys = ("statistic", "interval", "margin", "test")
    reason = {"reason": lead["reason"]} if "reason" in lead else {}
    return {"decision": decision, **{k: lead[k] for k in keys}, **reason, "deciding_part": _name_of(parts, lead),
            "parts": dict(parts)}


def _name_of(parts: Mapping[str, dict], lead: dict) -> str:
    return next(name for name, p in parts.items() if p is lead)


def verdict(dimensions: Mapping[str, dict]) -> dict:
    """``{"overall": DECISION, "dimensions": {NAME: dimension}}``."""
    return {"overall": combine(d["decision"] for d in dimensions.values()), "dimensions": dict(dimensions)}


def redecide(stored: dict, margins: Mapping[str, float]) -> dict:
    """A stored verdict (report.json) decided again with other margins, from its stored intervals.

    Parameters
    ----------
    stored : dict
        ``comparisons.<candidate>.verdict`` of a report.
    margins : mapping margin name -> value
        Margins to apply; each must be no looser than the stored one. A margin
        loosened after seeing the data would make "equivalent" no test; a
        tightened one keeps "equivalent" a level-alpha conclusion (for the
        tighter margin) but a "not equivalent" it produces is not one, which
        suits a gate: it can only fail more.

    Returns
    -------
    dict
        A verdict as :func:`verdict` makes it. A part without an interval
        (:func:`undecided`) stays as stored: inconclusive, with its reason.

    Raises
    ------
    ValueError
        A margin is looser than the report's, or unknown.
    KeyError
        The stored verdict lacks a key (malformed report).
    """
    dims = {}
    for name, dim in stored["dimensions"].items():
        parts = {}
        for part_name, p in dim["parts"].items():
            key = p["margin_name"]
            margin = margins.get(key, p["margin"])
            if margin > p["margin"]:
                raise ValueError(f"margin {key}={margin} is looser than the report's {p['margin']}; a margin "
                                 f"can only be tightened after the data are seen")
            if p["interval"] is None:  # an untested part (see undecided): no margin decides it
                parts[part_name] = dict(p)
                continue
            parts[part_name] = {**p, **part(p["statistic"], p["interval"], margin=margin, test=p["test"], n=p["n"],
                                            alpha=p["alpha"], anytime=p["anytime"])}
            if parts[part_name]["decision"] != INCONCLUSIVE:
                parts[part_name].pop("n_to_decide", None)
            elif p["anytime"] and margin != p["margin"]:  # planned at the report's margin, from the data
                parts[part_name].pop("n_to_decide", None)
        dims[name] = dimension(parts)
    return verdict(dims)


# ---------------------------------------------------------------------------
# the dimensions, from the per-example arrays of a comparison


def _level(alpha: float) -> float:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    return 1 - 2 * alpha


def decide_predictions(y_true, p_ref, p_cand, *, margins: Mapping[str, float], alpha: float) -> dict:
    """Predictions dimension: accuracy difference (non-inferiority, margin ``accuracy``) and flip rate
    (non-superiority, margin ``flip_rate``).

    Parameters
    ----------
    y_true : ndarray of int, shape (n,)
    p_ref, p_cand : ndarray, shape (n, K)
        Probabilities in the same class order.

    The accuracy interval is the paired-proportion difference interval of
    :func:`trusteq.metrics.intervals.paired_accuracy_difference`; the flip rate
    (share of examples whose correctness changes, right to wrong or wrong to right, Dutta et al. 2024) has a
    Wilson interval. The flip-rate part also states the prediction-change rate (share of examples whose
    predicted class changes, a superset: two different wrong classes change the prediction but not its
    correctness), untested.
    """
    from .intervals import paired_accuracy_difference, proportion_interval

    level = _level(alpha)
    ok_ref = p_ref.argmax(axis=1) == y_true
    ok_cand = p_cand.argmax(axis=1) == y_true
    n = len(y_true)
    acc = paired_accuracy_difference(ok_ref, ok_cand, level=level)
    flips = int(np.sum(ok_ref != ok_cand))
    changes = int(np.sum(p_ref.argmax(axis=1) != p_cand.argmax(axis=1)))
    return dimension({
        "accuracy": part(acc["value"], acc["interval"], margin=margins["accuracy"], test="non-inferiority", n=n,
                         alpha=alpha, margin_name="accuracy", method=acc["method"]),
        "flip_rate": part(flips / n, proportion_interval(flips, n, level=level), margin=margins["flip_rate"],
                          test="non-superiority", n=n, alpha=alpha, margin_name="flip_rate",
                          method="Wilson score interval", prediction_change_rate=changes / n),
    })


def decide_calibration(y_true, p_ref, p_cand, *, margins: Mapping[str, float], alpha: float,
                       test: str = "non-inferiority", plan: bool = True) -> dict:
    """Calibration dimension: calibration error added (margin ``calibration``) and Brier score difference
    (non-superiority, margin ``brier``: a proper score that may not get worse).

    The calibration statistic is ``sign(D) sqrt(|D|)`` for ``D`` the difference of the two models' debiased
    squared calibration errors (:func:`trusteq.metrics.intervals.paired_calibration_difference`): the RMS
    calibration error the candidate adds (or, negative, removes) in quadrature, ``CE_cand^2 = CE_ref^2 + S^2``.
    The transform is monotone, so the interval maps through it and the decision is the one on ``D`` with
    margin ``m^2``. ``test="non-inferiority"`` (default): the candidate may add at most the margin, a better
    calibrated one passes (a non-superiority test of the error added); ``"two-sided"``: TOST, the paper's
    *similar* calibration, so a much better calibrated candidate is not equivalent either. The part states
    the ``direction`` ("better", "worse" or "equal").

    The Brier difference is the mean of per-example differences in [-2, 2], read from a confidence sequence
    (:func:`trusteq.metrics.sequences.mean_cs`): valid for sparse, skewed differences, where a t interval is
    not. ``plan=False`` leaves out the Brier part's ``n_to_decide`` (:func:`sequence_samples_to_decide`,
    about 0.5 s).

    Raises
    ------
    ValueError
        ``test`` not in :data:`CALIBRATION_TESTS`; alpha outside (0, 0.5).
    """
    from .intervals import paired_calibration_difference
    from .sequences import mean_cs

    if test not in CALIBRATION_TESTS:
        raise ValueError(f"unknown calibration test {test!r}; expected one of {list(CALIBRATION_TESTS)}")
    level = _level(alpha)
    n = len(y_true)
    cal = paired_calibration_difference(y_true, p_ref, p_cand, level=level)
    root = lambda x: float(np.sign(x) * np.sqrt(abs(x)))  # noqa: E731 - monotone: decisions unchanged
    onehot = np.eye(p_ref.shape[1])[y_true]
    diff = np.sum((p_cand - onehot) ** 2, axis=1) - np.sum((p_ref - onehot) ** 2, axis=1)
    brier = mean_cs(diff, lower=-2.0, upper=2.0, alpha=alpha)
    kind = "non-superiority" if test == "non-inferiority" else "TOST"
    direction = "better" if cal["value"] < 0 else "worse" if cal["value"] > 0 else "equal"
    calibration = part(root(cal["value"]), [root(x) for x in cal["interval"]], margin=margins["calibration"],
                       test=kind, n=n, alpha=alpha, margin_name="calibration", method=cal["method"],
                       estimator=cal["estimator"], reference=root(cal["reference"]),
                       candidate=root(cal["candidate"]), direction=direction)
    if "n_to_decide" in calibration:  # on the squared scale, where the half-width shrinks as 1/sqrt(n)
        calibration["n_to_decide"] = samples_to_decide(cal["value"], cal["interval"], n, margins["calibration"] ** 2,
                                                       kind, alpha=alpha)
    brier = part(brier["value"], brier["interval"], margin=margins["brier"], test="non-superiority", n=n,
                 alpha=alpha, anytime=True, margin_name="brier", method=brier["method"])
    if plan and brier["decision"] == INCONCLUSIVE:  # the test at the margin: diff - m excludes 0
        m = margins["brier"]
        brier["n_to_decide"] = sequence_samples_to_decide(diff - m, lower=-2 - m, upper=2 - m, alpha=alpha)
    return dimension({"calibration": calibration, "brier": brier})


def decide_explanations(cross, floor_reference, floor_candidate, *, measure: str, margins: Mapping[str, float],
                        alpha: float, plan: bool = True) -> dict:
    """Explanations dimension of one explainer: noise-corrected agreement and gross disagreement.

    Two parts, each read from confidence sequences (so the explained sample may grow until they decide):

    * ``agreement`` (non-inferiority, margin ``explanation``): ``delta = mean(cross) / mean(floor) - 1``, floor
      the per-example mean of the two models' floors: the cross-model cosine relative to what a copy of the
      reference would reach. Under independent explanation noise the cross cosine is about the noise-free
      cosine times the geometric mean of the floors (Spearman 1904, correction for attenuation), so ``delta``
      stays at the noise-free cosine minus 1 (no higher: the arithmetic mean bounds the geometric one, by a
      factor of 0.97 for floors 0.6 and 1.0) whatever the explainer's budget. An identical copy has
      ``delta = 0``. ``delta > -m`` is ``mean(cross - (1 - m) floor) > 0``, a mean of bounded per-example
      values: the test at the margin is one confidence sequence (:func:`trusteq.metrics.sequences.mean_cs`),
      and the interval inverts it over the margin (bisection, its end at the margin exact). Not tested
      (inconclusive, with the reason) when either model's mean floor is below :data:`MIN_FLOOR`.
    * ``gross_disagreement`` (non-superiority, margin ``gross_disagreement``): the share of examples whose cross
      cosine is below :data:`GROSS_COSINE` times their mean floor, or undefined (:func:`gross_disagreements`),
      so a candidate that disagrees completely on a few percent of examples is caught even when the mean
      hides it.

    Parameters
    ----------
    cross : array-like of float in [-1, 1], shape (n,)
        Per explained example (in the order explained), the ``measure`` between the reference's and the
        candidate's explanations. NaN (an all-zero or undefined attribution) counts as disagreement: cosine 0,
        and in gross disagreement.
    floor_reference, floor_candidate : array-like of float in [-1, 1], shape (n,)
        The same measure between two runs of the reference, and of the candidate, with different seeds (1 for
        an exact explainer). NaN counts as 1, which makes the test stricter.
    measure : str
        Name recorded in the parts (e.g. ``"cosine"``).
    margins : mapping
        With ``explanation`` and ``gross_disagreement``.
    alpha : float in (0, 0.5)
    plan : bool, default=True
        Give inconclusive parts their ``n_to_decide`` (:func:`sequence_samples_to_decide`, about 0.5 s each);
        False while a comparison is still explaining.

    Returns
    -------
    dict
        A dimension (:func:`dimension`); both parts carry ``undefined`` (NaN counts per array), ``cross``
        and ``floors`` (means).

    Raises
    ------
    ValueError
        Arrays of different shapes, not 1-D, or outside [-1, 1].
    """
    from .sequences import mean_cs

    arrays = [np.asarray(a, dtype=np.float64) for a in (cross, floor_reference, floor_candidate)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"cross, floor_reference and floor_candidate must be 1-D of one length, got "
                         f"{[a.shape for a in arrays]}")
    if any(np.any(np.abs(a[~np.isnan(a)]) > 1 + 1e-9) for a in arrays):
        raise ValueError("cosines must lie in [-1, 1]")
    undefined = dict(zip(("cross", "floor_reference", "floor_candidate"), (int(np.isnan(a).sum()) for a in arrays)))
    c = np.clip(np.nan_to_num(arrays[0], nan=0.0), -1, 1)
    fr, fc = (np.clip(np.nan_to_num(a, nan=1.0), -1, 1) for a in arrays[1:])
    n = c.size
    common = {"n": n, "alpha": alpha, "measure": measure, "undefined": undefined}
    if n == 0:
        reason = NOT_EXPLAINED
        return dimension({
            "agreement": undecided(reason, margin=margins["explanation"], test="non-inferiority",
                                   margin_name="explanation", **common),
            "gross_disagreement": undecided(reason, margin=margins["gross_disagreement"], test="non-superiority",
                                            margin_name="gross_disagreement", **common)})
    means = {"cross": float(c.mean()), "floors": {"reference": float(fr.mean()), "candidate": float(fc.mean())}}
    hits = gross_disagreements(arrays[0], fr, fc)
    g, m = mean_cs(hits, lower=0.0, upper=1.0, alpha=alpha), margins["gross_disagreement"]
    gross = part(g["value"], g["interval"], margin=m, test="non-superiority", anytime=True,
                 margin_name="gross_disagreement", method=g["method"], threshold=GROSS_COSINE, **common, **means)
    agreement = _agreement(c, (fr + fc) / 2, margins["explanation"], alpha, common, means)
    if plan and gross["decision"] == INCONCLUSIVE:  # the test at the margin: hits - m excludes 0
        gross["n_to_decide"] = sequence_samples_to_decide(hits - m, lower=-m, upper=1 - m, alpha=alpha)
    if plan and agreement["decision"] == INCONCLUSIVE and agreement["interval"] is not None:
        m = margins["explanation"]  # the test at the margin: cross - (1 - m) floor excludes 0
        agreement["n_to_decide"] = sequence_samples_to_decide(c - (1 - m) * (fr + fc) / 2, lower=-(2 - m),
                                                              upper=2 - m, alpha=alpha)
    return dimension({"agreement": agreement, "gross_disagreement": gross})


def gross_disagreements(cross, floor_reference, floor_candidate) -> np.ndarray:
    """Per example, 1.0 when the explanations disagree grossly, else 0.0: the cross cosine is undefined (NaN), or
    below :data:`GROSS_COSINE` times the example's mean floor (NaN floors count as 1). Under the attenuation
    model of :func:`decide_explanations` that is a noise-free cosine below 0.5, so a noisier explainer does not
    push a copy of the reference over the threshold (with floors near 0.85, LIME at 300 samples put 1 of 25
    AG News pairs of an int8 copy below a bare 0.5).

    Parameters
    ----------
    cross, floor_reference, floor_candidate : array-like of float in [-1, 1], shape (n,)

    Returns
    -------
    ndarray of float, shape (n,), values in {0.0, 1.0}
    """
    c = np.asarray(cross, dtype=np.float64)
    floor = (np.nan_to_num(np.asarray(floor_reference, dtype=np.float64), nan=1.0)
             + np.nan_to_num(np.asarray(floor_candidate, dtype=np.float64), nan=1.0)) / 2
    return (np.isnan(c) | (np.nan_to_num(c, nan=0.0) < GROSS_COSINE * floor)).astype(np.float64)


def _agreement(c: np.ndarray, floor: np.ndarray, margin: float, alpha: float, common: dict, means: dict) -> dict:
    """The ``agreement`` part of :func:`decide_explanations`: ``delta`` with the interval that inverts its test."""
    from .sequences import CS_METHOD

    low_floor = min(means["floors"].values())
    if low_floor < MIN_FLOOR:
        return undecided(f"explainer too noisy: a mean noise floor of {low_floor:.2f} is below {MIN_FLOOR}; raise "
                         f"the explainer's budget (--lime-samples, --shap-evals)", margin=margin,
                         test="non-inferiority", margin_name="explanation", **common, **means)
    delta = float(c.mean() / floor.mean() - 1)
    interval = [_invert(c, floor, alpha, -margin, side) for side in (0, 1)]
    return part(delta, interval, margin=margin, test="non-inferiority", anytime=True, margin_name="explanation",
                method=f"{CS_METHOD}, of cross - (1 + delta) floor, inverted over delta", **common, **means)


def _invert(c: np.ndarray, floor: np.ndarray, alpha: float, at: float, side: int) -> float:
    """Low (side 0) or high (side 1) end of the interval of ``delta``: the delta0 where the sequence's bound of
    mean(c - (1 + delta0) floor) crosses 0, searched by bisection on the side of ``at`` (the margin) that the
    test at ``at`` gives, so the decision at the margin is exactly that test's."""
    from .sequences import mean_cs

    def bound(d0: float) -> float:
        scale = 1 + abs(1 + d0)  # |c| <= 1, |(1 + d0) floor| <= |1 + d0|
        return mean_cs(c - (1 + d0) * floor, lower=-scale, upper=scale, alpha=alpha)["interval"][side]

    # side 0: bound(d0) > 0 rejects delta <= d0 (the low end is the largest such d0); side 1: bound(d0) < 0 rejects
    # delta >= d0 (the high end is the smallest). Bisect between a rejected and a kept d0, starting from the margin.
    rejects = (lambda d0: bound(d0) > 0) if side == 0 else (lambda d0: bound(d0) < 0)  # noqa: E731
    at_rejected = rejects(at)
    if side == 0:
        rejected, kept = (at, 1.0) if at_rejected else (-3.0, at)
    else:
        rejected, kept = (at, -3.0) if at_rejected else (1.0, at)
    for _ in range(30):
        mid = (rejected + kept) / 2
        rejected, kept = (mid, kept) if rejects(mid) else (rejected, mid)
    if at_rejected and rejected == at:  # strictly past the margin, as the test at the margin says
        rejected = np.nextafter(at, 2.0) if side == 0 else np.nextafter(at, -4.0)
    return float(rejected)


def check_margins(margins: Mapping[str, float] | None, alpha: float) -> dict[str, float]:
    """The default margins updated with ``margins``; refuses unknown names, margins <= 0 and alpha outside (0, 0.5).

    Raises
    ------
    ValueError
        Naming the margin or alpha and what is allowed.
    """
    _level(alpha)
    margins = dict(margins or {})
    unknown = [k for k in margins if k not in MARGINS]
    if unknown:
        raise ValueError(f"unknown margin(s) {unknown}; expected some of {list(MARGINS)}")
    for name, value in margins.items():
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"margin {name} must be a number > 0, got {value!r}")
    return {**MARGINS, **{k: float(v) for k, v in margins.items()}}
