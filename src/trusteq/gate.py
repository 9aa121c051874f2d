"""``trusteq gate``: a release gate over a report.json, for CI jobs.

One line per candidate, then an exit code: 0 when every candidate is
equivalent, 1 when any is not (or is inconclusive: see :func:`passes` for
``--allow-inconclusive``), 2 when the
report is missing or malformed (raised as :class:`~trusteq.errors.TrustEqError`
for the CLI to print). Margins stricter than the report's are decided again
from the intervals stored in the report (:func:`trusteq.metrics.verdict.redecide`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

from .errors import TrustEqError
from .metrics.verdict import EQUIVALENT, INCONCLUSIVE, redecide

__all__ = ["gate", "read_verdicts", "passes"]


def read_verdicts(report, margins: Mapping[str, float] | None = None, alpha: float | None = None) -> dict[str, dict]:
    """Each candidate's verdict from ``report`` (a report.json path), decided again with ``margins``.

    Raises
    ------
    TrustEqError
        The file is missing, not JSON, has no verdicts, was decided at another alpha, or a margin is
        looser than the report's.
    """
    path = Path(report)
    try:
        data = json.loads(path.read_text())
        settings, comparisons = data["settings"], data["comparisons"]
        report_alpha = float(settings["alpha"])
        stored = {name: c["verdict"] for name, c in comparisons.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrustEqError(f"{path}: not a trusteq report with verdicts ({type(exc).__name__}: {exc})") from None
    if not stored:
        raise TrustEqError(f"{path}: the report has no candidates")
    if alpha is not None and not math.isclose(alpha, report_alpha):
        raise TrustEqError(f"{path}: the report was decided at alpha={report_alpha}; its intervals cannot be "
                           f"re-read at alpha={alpha} (run trusteq compare --alpha {alpha})")
    try:
        return {name: redecide(v, margins or {}) for name, v in stored.items()}
    except ValueError as exc:
        raise TrustEqError(f"{path}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise TrustEqError(f"{path}: malformed verdict ({type(exc).__name__}: {exc})") from None


def passes(v: dict, allow_inconclusive: bool = False) -> tuple[bool, str]:
    """Whether a candidate's verdict passes the gate, and why not (empty when it passes).

    Equivalent passes. With ``allow_inconclusive``, an inconclusive verdict passes only when every inconclusive
    part has an interval narrower than its margin: the data pin the difference to within a margin of the
    boundary, so a larger sample would not move it far. A part inconclusive for too little data (an interval
    wider than its margin) or untested (no interval: descriptive, not explained, explainer too noisy) still
    fails: at n = 300 a candidate 0.03 worse in accuracy passed the old rule 46.5% of the time.
    """
    if v["overall"] == EQUIVALENT:
        return True, ""
    if v["overall"] != INCONCLUSIVE or not allow_inconclusive:
        return False, ""
    wide = []
    for dim in v["dimensions"].values():
        for name, p in dim["parts"].items():
            if p["decision"] != INCONCLUSIVE:
                continue
            if p["interval"] is None:
                wide.append(f"{name}: untested")
            elif p["interval"][1] - p["interval"][0] >= p["margin"]:
                wide.append(f"{name}: interval {p['interval'][1] - p['interval'][0]:.3f} wide, margin {p['margin']:g}")
    return not wide, "; ".join(wide)


def gate(report, *, margins: Mapping[str, float] | None = None, alpha: float | None = None,
         allow_inconclusive: bool = False) -> int:
    """Print one line per candidate and return the exit code (0 pass, 1 fail); see :func:`passes`.

    Raises
    ------
    TrustEqError
        See :func:`read_verdicts` (the CLI exits 2).
    """
    verdicts = read_verdicts(report, margins, alpha)
    ok = True
    for name, v in verdicts.items():
        passed, why = passes(v, allow_inconclusive)
        dims = ", ".join(f"{d} {x['decision']}" for d, x in v["dimensions"].items())
        print(f"{'PASS' if passed else 'FAIL'} {name}: {v['overall']} ({dims}{'; ' + why if why else ''})")
        ok = ok and passed
    return 0 if ok else 1
