"""The results tables of a study experiment (docs/results.md), written from its report.json.

    python studies/tables.py studies/minilm-families/snli/report.json

prints three Markdown tables (models; explanations; verdict per dimension), or for a report of
``--protocol paper`` one table of the paper's top-k Jaccard, or for a search.json its candidates. docs/results.md pastes them
unchanged, and tests/test_study_tables.py checks that they still match the committed reports.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DIMENSIONS = ("predictions", "calibration", "explanations.lime", "explanations.shap")


def _f(x: float, signed: bool = False) -> str:
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _ci(d: dict, key: str = "value") -> str:
    return f"{_f(d[key])} [{_f(d['ci'][0])}, {_f(d['ci'][1])}]"


def _size(study: dict) -> tuple[str, str]:
    params = study.get("parameters")
    nonzero = study.get("nonzero_parameters")
    count = lambda n: f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.0f}k"  # noqa: E731
    text = count(params) if params else "–"
    if nonzero is not None and params and nonzero < 0.9 * params:
        text += f" ({count(nonzero)} non-zero)"
    mb = study.get("size_mb")
    return text, (f"{mb:.1f}" if mb is not None else "–")


def models_table(report: dict) -> str:
    """Per model: parameters, MB, accuracy, agreement (top-1), flip rate, mean KL, ECE, calibration error,
    Brier."""
    rows = ["| model | parameters | MB | accuracy [95% CI] | agreement | flip rate | mean KL (nats) | ECE equal-width | "
            "ECE equal-mass | calibration error (debiased, verdict) | Brier |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in [report["reference"], *report["candidates"]]:
        m = report["models"][name]
        params, mb = _size(report.get("study", {}).get("models", {}).get(name, {}))
        c = report["comparisons"].get(name)
        agree = _f(c["agreement"]["value"]) if c else "(reference)"
        flips = _f(c["flip_rate"]["total"]["value"]) if c else "–"
        kl = f"{c['kl']['value']:.4f}" if c else "–"
        rows.append(f"| {name} | {params} | {mb} | {_ci(m['accuracy'])} | {agree} | {flips} | {kl} | "
                    f"{_f(m['ece']['equal_width']['value'])} | {_f(m['ece']['equal_mass']['value'])} | "
                    f"{_f(m['calibration_error']['value'])} | {_f(m['brier']['value'])} |")
    return "\n".join(rows)


def explanations_table(report: dict) -> str:
    """Per model and explainer: Jaccard@10 and cosine with the reference, beside the noise floors, and how many
    examples explained each candidate (sequential stopping: why no more)."""
    k = report["settings"]["top_k"][0]
    measure = report["settings"]["verdict_measure"]
    explainers = report["settings"]["explainers"]
    floor = report["noise_floor"]
    if not floor:
        return ("No explanations were computed: every candidate's verdict was decided by its predictions or "
                "calibration before any example was explained.")
    head = " | ".join(f"{e.upper()} Jaccard@{k} | {e.upper()} {measure}" for e in explainers)
    rows = [f"| model | explained | {head} |", "|---|---|" + "---|" * (2 * len(explainers))]
    cells = [f"floor {_f(floor[e][key]['mean'])}" for e in explainers for key in (f"jaccard@{k}", measure)]
    rows.append(f"| {report['reference']} (reference, its noise floor) | {report['settings']['explained_examples']} | "
                + " | ".join(cells) + " |")
    for name in report["candidates"]:
        c = report["comparisons"][name]
        explained = f"{c.get('explained_examples', report['settings']['explained_examples'])}"
        if "explain_stop" in c:
            explained += f" ({c['explain_stop']})"
        if "alignment" not in c:
            rows.append(f"| {name} vs {report['reference']} | {explained} | " + " | ".join(
                ["–"] * (2 * len(explainers))) + " |")
            continue
        cells = [f"{_f(c['alignment'][e][key]['mean'])} (floor {_f(c['noise_floor'][e][key]['mean'])})"
                 for e in explainers for key in (f"jaccard@{k}", measure)]
        rows.append(f"| {name} vs {report['reference']} (its own floor) | {explained} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _decision(dim: dict) -> str:
    """'not equivalent: accuracy -0.125 [-0.133, -0.117] (margin 0.01, not equivalent); ...' for every part."""
    parts = [f"{name.replace('_', ' ')} {_f(p['statistic'], True)} [{_f(p['interval'][0], True)}, "
             f"{_f(p['interval'][1], True)}] (margin {p['margin']:g}"
             + (f", {p['decision']})" if len(dim["parts"]) > 1 else ")")
             for name, p in dim["parts"].items() if p.get("statistic") is not None]
    if parts:
        return f"{dim['decision']}: " + "; ".join(parts)
    return f"{dim['decision']} ({dim['reason']})" if dim.get("reason") else dim["decision"]


def verdict_table(report: dict) -> str:
    """Per candidate: each dimension's decision, with every tested statistic, its 90% interval and margin."""
    dims = [d for d in DIMENSIONS
            if any(d in c["verdict"]["dimensions"] for c in report["comparisons"].values())]
    rows = ["| candidate | " + " | ".join(dims) + " | overall |", "|---|" + "---|" * (len(dims) + 1)]
    for name in report["candidates"]:
        v = report["comparisons"][name]["verdict"]
        cells = [_decision(v["dimensions"][d]) if d in v["dimensions"] else "–" for d in dims]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | **{v['overall']}** |")
    return "\n".join(rows)


def paper_table(report: dict) -> str:
    """The paper protocol's top-k Jaccard (Rai et al. 2025) per candidate, beside the reference's floor."""
    k = report["settings"]["top_k"][0]
    explainers = report["settings"]["explainers"]
    key = f"paper_jaccard@{k}"
    rows = ["| model | " + " | ".join(f"{e.upper()} paper Jaccard@{k} [95% CI]" for e in explainers) + " |",
            "|---|" + "---|" * len(explainers)]
    floor = report["noise_floor"]
    rows.append(f"| {report['reference']} vs itself (noise floor) | "
                + " | ".join(_ci(floor[e][key], "mean") for e in explainers)
                + " |")
    for name in report["candidates"]:
        a = report["comparisons"][name]["alignment"]
        rows.append(f"| {name} vs {report['reference']} | "
                    + " | ".join(_ci(a[e][key], "mean") for e in explainers)
                    + " |")
    return "\n".join(rows)


def search_table(summary: dict) -> str:
    """A search's candidates (search.json), smallest first: how each was made, the bytes it needs (and its share of
    the reference's), its selection verdict per dimension, the examples explained and the seconds it took."""
    ref = summary["reference"].get("size_bytes")
    dims = [d for d in DIMENSIONS if any(d in c["verdict"]["dimensions"] for c in summary["candidates"] if c["tried"])]
    rows = ["| candidate | method | kept uncompressed | MB needed | of reference | " + " | ".join(dims)
            + " | selection verdict | explained | seconds |", "|---|---|---|---|---|" + "---|" * (len(dims) + 3)]
    for c in summary["candidates"]:
        mb = c["effective_bytes"]
        name = f"**{c['name']}** (chosen)" if c["name"] == summary["chosen"] else c["name"]
        kept = ", ".join(map(str, c["kept_layers"])) or "–"
        if c["tried"]:
            v = c["verdict"]
            cells = [v["dimensions"][d]["decision"] if d in v["dimensions"] else "–" for d in dims]
            tail = f"{v['overall']} | {c['explained_examples']} | {c['seconds']:.0f}"
        else:
            cells, tail = ["–"] * len(dims), "not tried | – | –"
        rows.append(f"| {name} | {c['method']} | {kept} | {mb / 1e6:.1f} | {mb / ref:.0%} | " + " | ".join(cells)
                    + f" | {tail} |")
    g = summary["guarantee"]
    rows.append(f"\nConfirmation ({g['confirmation_examples']} examples): {g['confirmation_verdict'] or 'none'}; "
                f"chosen: {summary['chosen'] or 'none'}.")
    return "\n".join(rows)


def tables(path) -> str:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    if Path(path).name == "search.json":
        return search_table(report)
    if report["settings"].get("protocol") == "paper":
        return paper_table(report)
    return "\n\n".join([models_table(report), explanations_table(report), verdict_table(report)])


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(tables(arg))
        print()
