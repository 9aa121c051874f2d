"""The report's "where does it break" sections: slice verdicts (table and figure) and the worst examples.

Built from report.json (:mod:`trusteq.slices` wrote the slices) and from a result's probabilities and
explanations (:mod:`trusteq.worst`); :mod:`trusteq.report` places them in report.md and report.html and writes
``slices.png`` and ``worst_examples.csv``.
"""

from __future__ import annotations

import csv
import io

from .display import VerdictDisplay, verdict_rows
from .worst import COLUMNS

__all__ = ["slice_table", "slice_sentence", "slice_figure", "worst_csv", "worst_tables"]

#: Examples of each list shown in the report (``worst_examples.csv`` has them all).
SHOWN = 5


def slice_table(s) -> tuple[list, list] | None:
    """One row per candidate and slice: its size, explained examples, overall and per-dimension decisions;
    None without slices."""
    if "slices" not in s["settings"]:
        return None
    dims = list(next(iter(s["comparisons"].values()))["verdict"]["dimensions"])
    head = ["candidate", "slice", "n", "explained", "overall", *dims]
    rows = [[name, key, f"{v['n']:,}", f"{v['explained']:,}", v["verdict"]["overall"],
             *[_cell(v["verdict"]["dimensions"][d]) for d in dims]]
            for name, c in s["comparisons"].items() for key, v in c.get("slices", {}).items()]
    return head, rows


def _cell(dim: dict) -> str:
    if dim["interval"] is None:
        return f"{dim['decision']} (untested)"
    lo, hi = dim["interval"]
    return f"{dim['decision']}: {dim['deciding_part'].replace('_', ' ')} [{lo:+.3f}, {hi:+.3f}]"


def slice_sentence(s) -> str:
    """How the slices were decided, with their multiplicity, for the report."""
    rec = s["settings"]["slices"]
    return (f"Slices of {', '.join(rec['columns'])}, each decided on its own examples at alpha = "
            f"{s['settings']['alpha']:g}: {rec['multiplicity']}. A slice of fewer than {rec['min_examples']} examples "
            f"is untested; its explanations are untested below {rec['min_explained']} explained examples. Each "
            f"cell gives the deciding test and its interval; slices.png draws every test against its margin.")


def slice_figure(s, figure) -> bool:
    """Draw one forest plot per candidate (rows: each slice's tests, grouped by test) on ``figure`` (a matplotlib
    Figure); False (nothing drawn) without slices."""
    panels = {name: _slice_rows(c["slices"]) for name, c in s["comparisons"].items() if c.get("slices")}
    if not panels:
        return False
    heights = [len(rows) for rows in panels.values()]
    figure.set_size_inches(10, sum(0.3 * n + 1.2 for n in heights))
    axes = figure.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (name, rows) in zip(axes[:, 0], panels.items()):
        VerdictDisplay(rows, title=f"{name} vs {s['reference']}, per slice").plot(ax=ax)
    figure.tight_layout()
    return True


def _slice_rows(slices: dict) -> list[dict]:
    """Every slice's rows of :func:`trusteq.display.verdict_rows`, grouped by test, slices in order within; a test
    untested in every slice (a candidate never explained) is left out, unless every test is."""
    rows = [{**row, "test_label": row["label"], "label": f"{key} · {row['label']}"} for key, v in slices.items()
            for row in verdict_rows(v["verdict"])]
    tests = list(dict.fromkeys(r["test_label"] for r in rows))
    tested = {r["test_label"] for r in rows if r["interval"] is not None} or set(tests)
    return sorted((r for r in rows if r["test_label"] in tested), key=lambda r: tests.index(r["test_label"]))


def worst_csv(rows: list[dict]) -> str:
    """``worst_examples.csv``: every row of :func:`trusteq.worst.worst_examples`, columns :data:`COLUMNS`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def worst_tables(rows: list[dict], candidates) -> list[tuple[str, list, list]]:
    """Per candidate (of ``candidates``) and list (largest KL, correctness flips, explanation disagreement per
    explainer) of ``rows`` (:func:`trusteq.worst.worst_examples`), a title and the table of its first
    :data:`SHOWN` examples."""
    head = ["id", "text", "gold", "reference", "candidate", "KL", "explanation gap"]
    out = []
    for cand in candidates:
        lists = {}
        for r in rows:
            if r["candidate"] == cand:
                lists.setdefault((r["kind"], r["explainer"]), []).append(r)
        for (kind, explainer), members in lists.items():
            title = {"kl": "largest KL", "flip": f"correctness flips ({len(members):,})",
                     "explanation": f"{explainer} explanations furthest below the noise floor"}[kind]
            out.append((f"{cand}: {title}", head, [_worst_row(r) for r in members[:SHOWN]]))
    return out


def _worst_row(r: dict) -> list[str]:
    text = r["text_a"] if not r["text_b"] else f"{r['text_a']} ‖ {r['text_b']}"
    gap = "" if r["explanation_gap"] == "" else f"{r['explanation_gap']:.3f}"
    return [r["example_id"], text if len(text) <= 160 else text[:159] + "…", r["label"],
            f"{r['reference_prediction']} ({r['reference_probability']:.2f})",
            f"{r['candidate_prediction']} ({r['candidate_probability']:.2f})", f"{r['kl']:.3f}", gap]
