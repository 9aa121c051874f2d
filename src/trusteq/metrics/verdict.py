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
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

__all__ = ["EQUIVALENT", "NOT_EQUIVALENT", "INCONCLUSIVE", "DECISIONS", "TESTS", "MARGINS", "MARGIN_REASONS",
           "decide", "combine", "part", "undecided", "dimension", "verdict", "redecide", "samples_to_decide",
           "decide_predictions", "decide_calibration", "decide_explanations", "check_margins"]

EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE = "equivalent", "not equivalent", "inconclusive"
DECISIONS = (EQUIVALENT, NOT_EQUIVALENT, INCONCLUSIVE)
TESTS = ("TOST", "non-inferiority", "non-superiority")

#: Default margins, by the name ``--margin NAME=VALUE`` uses (reasons in :data:`MARGIN_REASONS` and docs/verdict.md).
MARGINS = {"accuracy": 0.01, "flip_rate": 0.05, "calibration": 0.05, "brier": 0.02, "explanation": 0.05}

MARGIN_REASONS = {
    "accuracy": "one percentage point of accuracy lost at most (MLPerf's 99%-of-reference rule for "
                "compressed models is of this size)",
    "flip_rate": "at most one prediction in twenty changes (Dutta et al. 2024 report flips of this order "
                 "for compressed models at equal accuracy)",
    "calibration": "an RMS calibration error of 0.05 added or removed in quadrature (a calibrated reference "
                   "may become at most 0.05 miscalibrated; one at 0.05 at most 0.071); two calibrated models are "
                   "shown equivalent about 84% of the time with 2,000 examples and nearly always with 5,000",
    "brier": "0.02 of multi-class Brier score lost at most (about 5% of a 0.4 Brier score)",
    "explanation": "the candidate's explanations may agree with the reference's at most 0.05 less than the "
                   "reference's own runs agree with each other (the explainer's noise floor)",
}


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


def samples_to_decide(value: float, interval, n: int, margin: float, test: str) -> int | None:
    """Examples an inconclusive test would need, if the interval's half-width shrinks as 1/sqrt(n).

    Assumes the point value stays where it is. Returns None when the interval is
    missing or the value sits on the margin (no sample size decides it).
    """
    lo, hi = interval
    if lo is None or hi is None or n < 1:
        return None
    half = (hi - lo) / 2
    distance = {"TOST": margin - abs(value), "non-inferiority": value + margin, "non-superiority": margin - value}[test]
    if abs(distance) < 1e-12 or half <= 0:
        return None
    return int(n * (half / abs(distance)) ** 2) + 1


def part(value: float, interval, *, margin: float, test: str, n: int, **extra) -> dict:
    """One tested statistic: ``decision``, ``statistic``, ``interval``, ``margin``, ``test``, ``n``
    (plus ``n_to_decide`` when inconclusive, and any ``extra`` keys such as the method)."""
    decision = decide(interval, margin, test)
    out = {"decision": decision, "statistic": value, "interval": list(interval), "margin": margin, "test": test,
           "n": n, **extra}
    if decision == INCONCLUSIVE:
        out["n_to_decide"] = samples_to_decide(value, interval, n, margin, test)
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
            parts[part_name] = {**p, **part(p["statistic"], p["interval"], margin=margin, test=p["test"], n=p["n"])}
            if parts[part_name]["decision"] != INCONCLUSIVE:
                parts[part_name].pop("n_to_decide", None)
        dims[name] = dimension(parts)
    return verdict(dims)


# ---------------------------------------------------------------------------
# the dimensions, from the per-example arrays of a comparison


#: Fewer explained pairs than this get a warning with the explanation verdict: with 5% of pairs in complete
#: disagreement and the true mean gap on the margin, a bootstrap interval said "equivalent" 12% of the time at
#: n = 40 and 6% at n = 100 (nominal 5%; statistics review of this module); no interval of a mean fixes that.
SMALL_EXPLAINED = 100


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
    (share of examples whose correctness changes, Dutta et al. 2024) has a
    Wilson interval.
    """
    from .intervals import paired_accuracy_difference, proportion_interval

    level = _level(alpha)
    ok_ref = p_ref.argmax(axis=1) == y_true
    ok_cand = p_cand.argmax(axis=1) == y_true
    n = len(y_true)
    acc = paired_accuracy_difference(ok_ref, ok_cand, level=level)
    flips = int(np.sum(ok_ref != ok_cand))
    return dimension({
        "accuracy": part(acc["value"], acc["interval"], margin=margins["accuracy"], test="non-inferiority", n=n,
                         margin_name="accuracy", method=acc["method"]),
        "flip_rate": part(flips / n, proportion_interval(flips, n, level=level), margin=margins["flip_rate"],
                          test="non-superiority", n=n, margin_name="flip_rate", method="Wilson score interval"),
    })


def decide_calibration(y_true, p_ref, p_cand, *, margins: Mapping[str, float], alpha: float) -> dict:
    """Calibration dimension: calibration error added (TOST, margin ``calibration``) and Brier score
    difference (non-superiority, margin ``brier``: a proper score that may not get worse).

    The calibration statistic is ``sign(D) sqrt(|D|)`` for ``D`` the difference of the two models' debiased
    squared calibration errors (:func:`trusteq.metrics.intervals.paired_calibration_difference`): the RMS
    calibration error the candidate adds (or, negative, removes) in quadrature, ``CE_cand^2 = CE_ref^2 + S^2``.
    The transform is monotone, so the interval maps through it and the decision is the one on ``D`` with
    margin ``m^2``. Two-sided because the paper asks for *similar* calibration: a candidate much better
    calibrated than its reference is a different model too."""
    from .intervals import mean_interval, paired_calibration_difference

    level = _level(alpha)
    n = len(y_true)
    cal = paired_calibration_difference(y_true, p_ref, p_cand, level=level)
    root = lambda x: float(np.sign(x) * np.sqrt(abs(x)))  # noqa: E731 - monotone: decisions unchanged
    onehot = np.eye(p_ref.shape[1])[y_true]
    brier = mean_interval(np.sum((p_cand - onehot) ** 2, axis=1) - np.sum((p_ref - onehot) ** 2, axis=1),
                          level=level)
    calibration = part(root(cal["value"]), [root(x) for x in cal["interval"]], margin=margins["calibration"],
                       test="TOST", n=n, margin_name="calibration", method=cal["method"], estimator=cal["estimator"],
                       reference=root(cal["reference"]), candidate=root(cal["candidate"]))
    if "n_to_decide" in calibration:  # on the squared scale, where the half-width shrinks as 1/sqrt(n)
        calibration["n_to_decide"] = samples_to_decide(cal["value"], cal["interval"], n, margins["calibration"] ** 2,
                                                       "TOST")
    return dimension({
        "calibration": calibration,
        "brier": part(brier["value"], brier["interval"], margin=margins["brier"], test="non-superiority", n=n,
                      margin_name="brier", method=brier["method"]),
    })


def decide_explanations(cross, floor, *, measure: str, margins: Mapping[str, float], alpha: float) -> dict:
    """Explanations dimension of one explainer: per-example gap ``cross - floor`` (non-inferiority, margin
    ``explanation``: the candidate may agree with the reference less than the reference agrees with itself
    by at most the margin; agreeing more is no fault).

    Parameters
    ----------
    cross : ndarray, shape (n,)
        Per explained example, the alignment ``measure`` between the reference's and the candidate's
        explanations; NaN where undefined (such examples are left out and counted).
    floor : ndarray, shape (n,)
        The same measure between two runs of one model with different seeds: the comparison passes the mean
        of the reference's and the candidate's own floors, the agreement two runs of these models reach
        when nothing but the explainer's noise differs. (Under a model of independent explanation noise
        the expected cross-model cosine is about the geometric mean of the two floors, which the arithmetic
        mean bounds from above: a slightly stricter test.) An identical copy has a gap of 0 up to noise.
    """
    from .intervals import mean_interval

    gap = np.asarray(cross, dtype=np.float64) - np.asarray(floor, dtype=np.float64)
    m = mean_interval(gap, level=_level(alpha))
    extra = {}
    if m["n"] < SMALL_EXPLAINED:
        extra["warning"] = (f"{m['n']} explained examples: a candidate that disagrees completely on a few percent of "
                            f"examples can be missed below {SMALL_EXPLAINED}")
    return dimension({"gap": part(m["value"], m["interval"], margin=margins["explanation"], test="non-inferiority",
                                  n=m["n"], margin_name="explanation", measure=measure, method=m["method"],
                                  undefined=int(np.sum(~np.isfinite(gap))), **extra)})


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
