"""``trusteq gate``: a release gate over a report.json, for CI jobs.

One line per candidate, then an exit code: 0 when every candidate passes, 1 when any fails, 2 when the report or
the policy is missing or malformed (raised as :class:`~trusteq.errors.TrustEqError` for the CLI to print). A
candidate passes when every *gated* dimension is equivalent, or inconclusive where the policy allows it (see
:func:`passes`). Margins stricter than the report's are decided again from the intervals stored in the report
(:func:`trusteq.metrics.verdict.redecide`).

A :class:`Policy` (``--policy FILE.yaml``, :func:`read_policy`) says which dimensions are gated (``require``), where
an inconclusive one may pass (``allow_inconclusive``), the margins and alpha, and whether every slice must pass too
(``slices``). ``--summary FILE.md`` appends a markdown table of the outcome (:func:`summary_markdown`), for a pull
request comment or ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Collection, Mapping

from .errors import TrustEqError
from .metrics.verdict import EQUIVALENT, INCONCLUSIVE, MARGINS, NOT_EQUIVALENT, redecide

__all__ = ["gate", "evaluate", "read_verdicts", "passes", "Policy", "POLICY_KEYS", "read_policy",
           "dimension_names", "summary_markdown"]

#: The keys a policy file may hold.
POLICY_KEYS = ("margins", "alpha", "require", "allow_inconclusive", "slices")


@dataclass(frozen=True)
class Policy:
    """What the gate asks of each candidate (and of each slice, with ``slices``).

    Parameters
    ----------
    margins : mapping margin name -> float, default={}
        Margins to decide again with; each no looser than the report's (as ``--margin``).
    alpha : float, optional
        Must equal the report's (as ``--alpha``).
    require : tuple of str, optional
        Dimensions that must pass (``explanations`` stands for every ``explanations.*`` of the report); the
        others are reported, not gated. None: every dimension of the report.
    allow_inconclusive : tuple of str or True, default=()
        Gated dimensions that pass when inconclusive by the rule of :func:`passes`; True: all of them (as
        ``--allow-inconclusive``).
    slices : bool, default=False
        Every slice of every candidate (``comparisons.<candidate>.slices``) must pass by the same rules.
    source : str
        Where the policy came from (the file), for messages.
    given : frozenset of str
        The keys the source set (a command-line flag may not contradict them).
    """

    margins: Mapping[str, float] = field(default_factory=dict)
    alpha: float | None = None
    require: tuple[str, ...] | None = None
    allow_inconclusive: tuple[str, ...] | bool = ()
    slices: bool = False
    source: str = "none (command-line flags only)"
    given: frozenset = frozenset()

    @classmethod
    def from_mapping(cls, data, *, source: str = "mapping") -> "Policy":
        """A policy from parsed YAML (keys :data:`POLICY_KEYS`, each optional).

        Raises
        ------
        TrustEqError
            Not a mapping, an unknown key, a value of the wrong type, an unknown margin or dimension name; the
            message names ``source``, the key and what is allowed.
        """
        if not isinstance(data, Mapping):
            raise TrustEqError(f"policy {source}: expected a mapping of {', '.join(POLICY_KEYS)}, got "
                               f"{type(data).__name__}")
        unknown = [k for k in data if k not in POLICY_KEYS]
        if unknown:
            raise TrustEqError(f"policy {source}: unknown key {unknown[0]!r}; allowed keys: {', '.join(POLICY_KEYS)}")
        return cls(margins=_policy_margins(data.get("margins", {}), source), alpha=_policy_alpha(data, source),
                   require=_policy_dimensions(data, "require", source),
                   allow_inconclusive=_policy_dimensions(data, "allow_inconclusive", source) or (),
                   slices=_policy_slices(data, source), source=source, given=frozenset(data))


def read_policy(path) -> Policy:
    """The :class:`Policy` of a YAML file (an empty file is the default policy).

    Raises
    ------
    TrustEqError
        The file cannot be read or is not YAML; see :meth:`Policy.from_mapping`.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TrustEqError(f"policy {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise TrustEqError(f"policy {path}: not YAML ({exc})") from None
    return Policy.from_mapping({} if data is None else data, source=str(path))


def dimension_names() -> tuple[str, ...]:
    """The dimension names a policy may use: those of a verdict, and ``explanations`` (every explainer's)."""
    from .explain import EXPLAINERS

    return ("predictions", "calibration", "explanations", *(f"explanations.{e}" for e in EXPLAINERS))


def _policy_margins(value, source: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise TrustEqError(f"policy {source}: key 'margins' must be a mapping NAME: VALUE with NAME one of "
                           f"{', '.join(MARGINS)}; got {value!r}")
    for name, margin in value.items():
        if name not in MARGINS or isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
            raise TrustEqError(f"policy {source}: key 'margins' has {name}: {margin!r}; expected NAME: VALUE with "
                               f"NAME one of {', '.join(MARGINS)} and VALUE a number > 0")
    return {name: float(margin) for name, margin in value.items()}


def _policy_alpha(data: Mapping, source: str) -> float | None:
    value = data.get("alpha")
    if value is None and "alpha" not in data:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
        raise TrustEqError(f"policy {source}: key 'alpha' must be a number in (0, 0.5), the report's alpha; "
                           f"got {value!r}")
    return float(value)


def _policy_dimensions(data: Mapping, key: str, source: str) -> tuple[str, ...] | bool | None:
    """``require`` or ``allow_inconclusive``: a list of dimension names (``allow_inconclusive`` also true/false)."""
    value = data.get(key)
    if key not in data:
        return None
    if key == "allow_inconclusive" and isinstance(value, bool):
        return value
    allowed = dimension_names()
    if not isinstance(value, list) or (key == "require" and not value):
        more = " (or true: every dimension)" if key == "allow_inconclusive" else ", at least one"
        raise TrustEqError(f"policy {source}: key {key!r} must be a list of dimensions{more} from "
                           f"{', '.join(allowed)}; got {value!r}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise TrustEqError(f"policy {source}: key {key!r} has unknown dimension {unknown[0]!r}; allowed dimensions: "
                           f"{', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def _policy_slices(data: Mapping, source: str) -> bool:
    value = data.get("slices", False)
    if not isinstance(value, bool):
        raise TrustEqError(f"policy {source}: key 'slices' must be true or false; got {value!r}")
    return value


def _with_flags(policy: Policy, margins: Mapping[str, float], alpha: float | None,
                allow_inconclusive: bool) -> Policy:
    """``policy`` with the command line's flags added; a flag that contradicts a key the policy sets is refused.

    Raises
    ------
    TrustEqError
        Naming each contradicting flag and the policy's value.
    """
    conflicts = [f"--margin {k}={v:g} (policy: {policy.margins[k]:g})" for k, v in margins.items()
                 if k in policy.margins and not math.isclose(v, policy.margins[k])]
    if alpha is not None and policy.alpha is not None and not math.isclose(alpha, policy.alpha):
        conflicts.append(f"--alpha {alpha:g} (policy: {policy.alpha:g})")
    if allow_inconclusive and "allow_inconclusive" in policy.given and policy.allow_inconclusive is not True:
        conflicts.append(f"--allow-inconclusive (policy: allow_inconclusive {list(policy.allow_inconclusive)})")
    if conflicts:
        raise TrustEqError(f"policy {policy.source}: {'; '.join(conflicts)}: a flag may add to the policy, not "
                           f"contradict it; drop the flag or edit the policy")
    return replace(policy, margins={**policy.margins, **margins}, alpha=policy.alpha if alpha is None else alpha,
                   allow_inconclusive=True if allow_inconclusive else policy.allow_inconclusive)


def _as_policy(policy) -> Policy:
    """None (the default policy), a :class:`Policy`, a mapping (:meth:`Policy.from_mapping`) or a YAML path."""
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        return Policy.from_mapping(policy)
    return read_policy(policy)


def _load(report) -> tuple[Path, dict]:
    """The path and content of a report.json with verdicts; see :func:`read_verdicts` for the errors."""
    path = Path(report)
    try:
        data = json.loads(path.read_text())
        float(data["settings"]["alpha"])
        stored = {name: c["verdict"] for name, c in data["comparisons"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrustEqError(f"{path}: not a trusteq report with verdicts ({type(exc).__name__}: {exc})") from None
    if not stored:
        raise TrustEqError(f"{path}: the report has no candidates")
    return path, data


def _check_alpha(path: Path, data: dict, alpha: float | None) -> None:
    report_alpha = float(data["settings"]["alpha"])
    if alpha is not None and not math.isclose(alpha, report_alpha):
        raise TrustEqError(f"{path}: the report was decided at alpha={report_alpha}; its intervals cannot be "
                           f"re-read at alpha={alpha} (run trusteq compare --alpha {alpha})")


def _redecide(path: Path, stored: dict, margins: Mapping[str, float]) -> dict:
    try:
        return redecide(stored, margins)
    except ValueError as exc:
        raise TrustEqError(f"{path}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise TrustEqError(f"{path}: malformed verdict ({type(exc).__name__}: {exc})") from None


def read_verdicts(report, margins: Mapping[str, float] | None = None, alpha: float | None = None) -> dict[str, dict]:
    """Each candidate's verdict from ``report`` (a report.json path), decided again with ``margins``.

    Raises
    ------
    TrustEqError
        The file is missing, not JSON, has no verdicts, was decided at another alpha, or a margin is
        looser than the report's.
    """
    path, data = _load(report)
    _check_alpha(path, data, alpha)
    return {name: _redecide(path, c["verdict"], margins or {}) for name, c in data["comparisons"].items()}


def passes(v: dict, allow_inconclusive: bool | Collection[str] = False, *,
           require: Collection[str] | None = None) -> tuple[bool, str]:
    """Whether a verdict passes the gate, and why not (empty when it passes or fails on a decided dimension).

    Each dimension of ``require`` (default: every dimension; each must be in the verdict) must pass: an
    equivalent one passes. An inconclusive one fails unless ``allow_inconclusive`` names it (True: every
    dimension), and then passes only when every inconclusive part has an interval narrower than its margin: the
    data pin the difference to within a margin of the boundary, so a larger sample would not move it far. A
    part inconclusive for too little data (an interval wider than its margin) or untested (no interval:
    descriptive, not explained, explainer too noisy) still fails: at n = 300 a candidate 0.03 worse in accuracy
    passed the old rule 46.5% of the time.

    Raises
    ------
    KeyError
        A dimension of ``require`` is not in the verdict.
    """
    dims = v["dimensions"] if require is None else {d: v["dimensions"][d] for d in require}
    allowed = set(dims) if allow_inconclusive is True else set(allow_inconclusive or ())
    if all(x["decision"] == EQUIVALENT for x in dims.values()):
        return True, ""
    if any(x["decision"] == NOT_EQUIVALENT or (x["decision"] == INCONCLUSIVE and d not in allowed)
           for d, x in dims.items()):
        return False, ""
    wide = [_too_wide(name, p) for x in dims.values() if x["decision"] == INCONCLUSIVE
            for name, p in x["parts"].items() if p["decision"] == INCONCLUSIVE]
    wide = [w for w in wide if w]
    return not wide, "; ".join(wide)


def _too_wide(name: str, p: dict) -> str:
    """Why an inconclusive part cannot pass (untested, or an interval as wide as its margin); empty if it can."""
    if p["interval"] is None:
        return f"{name}: untested"
    width = p["interval"][1] - p["interval"][0]
    return f"{name}: interval {width:.3f} wide, margin {p['margin']:g}" if width >= p["margin"] else ""


def evaluate(report, policy: Policy | None = None) -> dict:
    """Each candidate's verdict (and its slices', with ``policy.slices``) judged under ``policy``.

    Returns
    -------
    dict
        ``{"report": path, "alpha": float, "margins": {NAME: (applied, report's)}, "candidates": {NAME: outcome}}``
        with an outcome ``{"passed", "why", "verdict" (decided again), "gated", "reported" (dimension names),
        "slices"?: {"COLUMN=VALUE": outcome}}``; ``passed`` of a candidate includes its slices'.

    Raises
    ------
    TrustEqError
        See :func:`read_verdicts`; the policy requires a dimension the report lacks; ``slices`` is asked for and
        a candidate has none (run compare with --slice).
    """
    policy = policy or Policy()
    path, data = _load(report)
    _check_alpha(path, data, policy.alpha)
    out, margins = {}, {}
    for name, c in data["comparisons"].items():
        out[name] = _judge(f"{path}: {name}", _redecide(path, c["verdict"], policy.margins), policy)
        margins.update(_margins_of(c["verdict"]))
        if policy.slices:
            out[name]["slices"] = {key: _judge(f"{path}: {name}, slice {key}", _redecide(path, v, policy.margins),
                                               policy) for key, v in _slice_verdicts(path, name, c, policy).items()}
            out[name]["passed"] = out[name]["passed"] and all(s["passed"] for s in out[name]["slices"].values())
    return {"report": str(path), "alpha": float(data["settings"]["alpha"]), "candidates": out,
            "margins": {k: (policy.margins.get(k, m), m) for k, m in margins.items()}}


def _margins_of(verdict: dict) -> dict[str, float]:
    """The margins a stored verdict was decided with, by name."""
    return {p["margin_name"]: p["margin"] for d in verdict["dimensions"].values() for p in d["parts"].values()
            if "margin_name" in p}


def _judge(where: str, verdict: dict, policy: Policy) -> dict:
    """The outcome of one verdict (a candidate's or a slice's) under ``policy``; see :func:`evaluate`."""
    dims = list(verdict["dimensions"])
    gated = dims if policy.require is None else _expand(policy.require, dims, where=where, source=policy.source)
    allowed = True if policy.allow_inconclusive is True else _expand(policy.allow_inconclusive, dims)
    passed, why = passes(verdict, allowed, require=gated)
    return {"passed": passed, "why": why, "verdict": verdict, "gated": gated,
            "reported": [d for d in dims if d not in gated]}


def _expand(names: Collection[str], dims: list[str], *, where: str | None = None, source: str = "") -> list[str]:
    """The dimensions of ``dims`` that ``names`` designate (``explanations``: every ``explanations.*``), in the
    verdict's order. With ``where``, a name that designates none is an error (a required dimension not measured)."""
    out = []
    for name in names:
        found = [d for d in dims if d == name or (name == "explanations" and d.startswith("explanations."))]
        if not found and where is not None:
            raise TrustEqError(f"{where}: the policy {source} requires {name}, which the report does not hold (its "
                               f"dimensions: {', '.join(dims)}); run compare with it or drop it from 'require'")
        out += found
    return [d for d in dims if d in out]


def _slice_verdicts(path: Path, name: str, comparison: dict, policy: Policy) -> dict[str, dict]:
    """``{"COLUMN=VALUE": stored verdict}`` of a candidate; an error when the report has no slices."""
    slices = comparison.get("slices")
    if slices is None:
        raise TrustEqError(f"{path}: candidate {name} has no slices, and the policy {policy.source} gates them "
                           f"(slices: true); run trusteq compare with --slice COLUMN")
    try:
        return {key: s["verdict"] for key, s in slices.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise TrustEqError(f"{path}: malformed slices of {name} ({type(exc).__name__}: {exc})") from None


def _line(name: str, o: dict) -> str:
    """``PASS name: overall (dimension decisions[; why][; slices])``; gated and reported-only dimensions apart
    when the policy gates some only."""
    v = o["verdict"]
    listed = lambda ds: ", ".join(f"{d} {v['dimensions'][d]['decision']}" for d in ds)  # noqa: E731
    text = listed(o["gated"]) if not o["reported"] else \
        f"gated: {listed(o['gated'])}; reported only: {listed(o['reported'])}"
    text += f"; {o['why']}" if o["why"] else ""
    if "slices" in o:
        text += f"; slices: {sum(s['passed'] for s in o['slices'].values())} of {len(o['slices'])} pass"
    return f"{'PASS' if o['passed'] else 'FAIL'} {name}: {v['overall']} ({text})"


def gate(report, *, margins: Mapping[str, float] | None = None, alpha: float | None = None,
         allow_inconclusive: bool = False, policy=None, summary=None) -> int:
    """Print one line per candidate (and one per failing slice) and return the exit code (0 pass, 1 fail).

    Parameters
    ----------
    report : path
        A report.json of ``trusteq compare``.
    margins, alpha, allow_inconclusive
        As ``--margin``, ``--alpha`` and ``--allow-inconclusive``: added to ``policy``, refused where they
        contradict a key it sets.
    policy : path, mapping or Policy, optional
        A YAML file (:func:`read_policy`), its parsed content, or a :class:`Policy`; default: every dimension
        gated, none inconclusive, the report's margins.
    summary : path, optional
        Append the markdown summary (:func:`summary_markdown`) to this file, created if needed.

    Raises
    ------
    TrustEqError
        See :func:`read_policy` and :func:`evaluate`; the summary cannot be written (the CLI exits 2).
    """
    policy = _with_flags(_as_policy(policy), dict(margins or {}), alpha, allow_inconclusive)
    result = evaluate(report, policy)
    for name, o in result["candidates"].items():
        print(_line(name, o))
        for key, s in o.get("slices", {}).items():
            if not s["passed"]:
                print("  " + _line(f"{name} [{key}]", s))
    if summary is not None:
        _append(summary, summary_markdown(result, policy))
    return 0 if all(o["passed"] for o in result["candidates"].values()) else 1


_MARKS = {EQUIVALENT: "✓", NOT_EQUIVALENT: "✗", INCONCLUSIVE: "?"}
_RELATIONS = {"TOST": "±{m:g}", "non-inferiority": "> −{m:g}", "non-superiority": "< {m:g}"}


def summary_markdown(result: dict, policy: Policy | None = None) -> str:
    """A markdown summary of :func:`evaluate`'s result: candidates × dimensions, PASS/FAIL, the policy applied.

    Each cell is the dimension's decision and its deciding part against its margin, e.g. "✓ equivalent ·
    flip rate 0.012 [0.009, 0.017], margin < 0.05"; a dimension the policy does not gate says "(not gated)".
    """
    policy = policy or Policy()
    cands = result["candidates"]
    dims = list(dict.fromkeys(d for o in cands.values() for d in o["verdict"]["dimensions"]))
    ok = all(o["passed"] for o in cands.values())
    lines = [f"### trusteq gate: {'PASS' if ok else 'FAIL'}", "", f"| candidate | gate | {' | '.join(dims)} |",
             "|---|---|" + "---|" * len(dims)]
    for name, o in cands.items():
        lines.append(f"| {_md(name)} | **{'PASS' if o['passed'] else 'FAIL'}** | "
                     + " | ".join(_cell(o, d) for d in dims) + " |")
    return "\n".join([*lines, "", *_slice_lines(cands), _policy_line(result, policy), ""]) + "\n"


def _cell(o: dict, dim: str) -> str:
    """One dimension of one candidate: decision · deciding part, statistic [interval] against the margin."""
    d = o["verdict"]["dimensions"].get(dim)
    if d is None:
        return "—"
    name = d.get("deciding_part") or next(iter(d["parts"]))
    p = d["parts"][name]
    label = name.replace("_", " ")
    if p["interval"] is None:
        detail = f"{label} untested: {p.get('reason') or 'no interval'}"
    else:
        lo, hi = p["interval"]
        detail = (f"{label} {_number(p['statistic'])} [{_number(lo)}, {_number(hi)}], margin "
                  f"{_RELATIONS[p['test']].format(m=p['margin'])}")
    gated = "" if dim in o["gated"] else " (not gated)"
    return _md(f"{_MARKS[d['decision']]} {d['decision']} · {detail}{gated}")


def _slice_lines(cands: dict) -> list[str]:
    """Per candidate with gated slices: how many pass, and the failing ones."""
    lines = []
    for name, o in cands.items():
        if "slices" not in o:
            continue
        failing = [f"`{key}` ({s['verdict']['overall']})" for key, s in o["slices"].items() if not s["passed"]]
        lines += [f"Slices of {_md(name)}: {len(o['slices']) - len(failing)} of {len(o['slices'])} pass"
                  + (f"; failing: {', '.join(failing)}." if failing else "."), ""]
    return lines


def _policy_line(result: dict, policy: Policy) -> str:
    """What was applied: report, policy, gated dimensions, inconclusive allowed, margins, alpha, slices."""
    allow = policy.allow_inconclusive
    margins = ", ".join(f"{k} {m:g}" + (f" (report's {r:g})" if not math.isclose(m, r) else "")
                        for k, (m, r) in result["margins"].items())
    return " · ".join([
        f"Report `{result['report']}`", f"policy: {policy.source}",
        f"gated: {', '.join(policy.require) if policy.require else 'every dimension'}",
        f"inconclusive allowed: {'every gated dimension' if allow is True else ', '.join(allow) or 'none'}"
        + (" (when every inconclusive interval is narrower than its margin)" if allow else ""),
        f"margins: {margins}", f"alpha {result['alpha']:g}",
        f"slices: {'every slice must pass' if policy.slices else 'not gated'}"]) + "."


def _number(x: float) -> str:
    """Three decimals with a true minus sign, and no "−0.000"."""
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text.replace("-", "−")


def _md(text: str) -> str:
    """Text safe in a markdown table cell: no pipes or line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _append(path, text: str) -> None:
    """Append ``text`` to ``path`` (created if needed), atomically: the file holds the old text and the new, or
    only the old, as ``$GITHUB_STEP_SUMMARY`` expects of each step.

    Raises
    ------
    TrustEqError
        The file cannot be read or written.
    """
    from .cache import atomic_write_text

    path = Path(path)
    try:
        old = path.read_text() if path.exists() else ""
        atomic_write_text(path, old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + text)
    except OSError as exc:
        raise TrustEqError(f"summary {path}: cannot write it ({exc.strerror or exc})") from None
