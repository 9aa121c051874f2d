"""Write a comparison's outputs into a folder.

Files (each written atomically: temporary file, then rename):

* ``report.json`` - every number with its interval, and provenance;
* ``report.md`` - summary tables;
* ``report.html`` - self-contained page: tables, paired reliability
  diagrams, alignment distributions and a per-example attribution view;
* ``reliability.png``, ``alignment.png`` - the figures;
* ``predictions.csv`` - ``example_id,model,label,prob_<class>...``;
* ``explanations.jsonl`` - one line per (example, model, explainer, seed).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .cache import atomic_write_bytes, atomic_write_text
from .comparison import CompareResult
from .display import AlignmentDisplay, ReliabilityDisplay
from .explain import REGISTRY
from .metrics.alignment import top_k
from .validation import check_output_dir

__all__ = ["write_report", "OUTPUT_FILES"]

OUTPUT_FILES = ("report.json", "report.md", "report.html", "reliability.png", "alignment.png", "predictions.csv",
                "explanations.jsonl")


def write_report(result: CompareResult, out: str | Path, *, examples_shown: int = 12) -> Path:
    """Write every output file of ``result`` into folder ``out`` (created if needed).

    Parameters
    ----------
    result : CompareResult
    out : path
    examples_shown : int
        Examples in the HTML per-example view (those where the first
        candidate's LIME/SHAP top-k Jaccard with the reference is lowest).

    Returns
    -------
    Path of ``report.html``.

    Raises
    ------
    TrustEqError
        ``out`` cannot be created or written to.
    """
    out = check_output_dir(out)
    s = result.summary
    atomic_write_text(out / "report.json", json.dumps(_jsonable(s), indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "predictions.csv", _predictions_csv(result))
    atomic_write_text(out / "explanations.jsonl", _explanations_jsonl(result))
    reliability_png = _reliability_figure(result)
    alignment_png = _alignment_figure(result)
    atomic_write_bytes(out / "reliability.png", reliability_png)
    atomic_write_bytes(out / "alignment.png", alignment_png)
    atomic_write_text(out / "report.md", _markdown(s))
    page = _html(result, reliability_png, alignment_png, examples_shown)
    atomic_write_text(out / "report.html", page)
    return out / "report.html"


# ---------------------------------------------------------------------------
# data files


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def _predictions_csv(result: CompareResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    labels = result.dataset.label_names
    w.writerow(["example_id", "model", "label"] + [f"prob_{c}" for c in labels])
    for i, ex in enumerate(result.dataset.examples):
        for name, p in result.probs.items():
            w.writerow([ex.id, name, ex.label] + [repr(float(v)) for v in p[i]])
    return buf.getvalue()


def _explanations_jsonl(result: CompareResult) -> str:
    labels = result.dataset.label_names
    lines = []
    for explained in result.explanations.values():
        for run in explained.runs:
            for e in run.explanations:
                lines.append(json.dumps(e.to_record(labels), ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------------------
# figures


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _figure(**kwargs):
    """A matplotlib Figure outside pyplot: nothing global is touched."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _reliability_figure(result: CompareResult) -> bytes:
    s = result.summary
    ref, cands, strategies = s["reference"], s["candidates"], s["settings"]["binning"]
    fig = _figure(figsize=(4.4 * len(strategies), 4.0 * len(cands)))
    axes = fig.subplots(len(cands), len(strategies), squeeze=False)
    y = result.dataset.y
    for row, cand in enumerate(cands):
        for col, strategy in enumerate(strategies):
            ax = axes[row][col]
            for name, color, marker in ((ref, "#555555", "s"), (cand, "#d9480f", "o")):
                ReliabilityDisplay.from_predictions(y, result.probs[name], n_bins=s["settings"]["n_bins"],
                                                   strategy=strategy, name=name, ax=ax, color=color, marker=marker)
            ax.set_title(f"{cand} vs {ref}\n{strategy.replace('_', '-')} bins", fontsize=10)
    fig.suptitle("Reliability diagrams (95% Wilson intervals; diagonal = perfect calibration)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _alignment_figure(result: CompareResult) -> bytes:
    s = result.summary
    metric = f"jaccard@{s['settings']['top_k'][0]}"
    if not result.explanations:
        fig = _figure(figsize=(5, 1.5))
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no explanations were computed", ha="center", va="center")
        ax.axis("off")
        return _png(fig)
    fig = _figure(figsize=(5.5 * len(result.explanations), 3.6))
    axes = fig.subplots(1, len(result.explanations), squeeze=False)
    for ax, (explainer, explained) in zip(axes[0], result.explanations.items()):
        AlignmentDisplay.from_alignments(explained.alignments, metric, reference=s["reference"], ax=ax,
                                         title=f"{explainer}: per-example alignment (n={len(result.explained_ids)})")
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------
# markdown


def _fmt(d, digits=3) -> str:
    if d is None:
        return "n/a"
    value = d.get("value", d.get("mean"))
    lo, hi = d.get("ci", [None, None])
    if value is None:
        return "n/a"
    if lo is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _model_rows(s):
    head = ["model", "role", "accuracy", "ECE (equal-width)", "ECE (equal-mass)", "MCE (equal-width)",
            "MCE (equal-mass)", "Brier", "NLL", "truncated"]
    rows = []
    for name, m in s["models"].items():
        rows.append([name, m["role"], _fmt(m["accuracy"]), _fmt(m["ece"]["equal_width"]),
                     _fmt(m["ece"]["equal_mass"]), _fmt(m["mce"]["equal_width"]), _fmt(m["mce"]["equal_mass"]),
                     _fmt(m["brier"]), _fmt(m["nll"]), str(m["truncated"])])
    return head, rows


def _comparison_rows(s):
    head = ["candidate", "agreement", "flip rate", "correct→wrong", "wrong→correct", "KL(ref‖cand)",
            "Δ accuracy", "Δ ECE (equal-width)", "McNemar p"]
    rows = []
    for name, c in s["comparisons"].items():
        rows.append([name, _fmt(c["agreement"]), _fmt(c["flip_rate"]["total"]),
                     _fmt(c["flip_rate"]["correct_to_wrong"]), _fmt(c["flip_rate"]["wrong_to_correct"]),
                     _fmt(c["kl"]), _fmt(c["delta"]["accuracy"]), _fmt(c["delta"]["ece"]["equal_width"]),
                     f"{c['mcnemar']['p_value']:.3g}"])
    return head, rows


def _alignment_rows(s):
    ks = s["settings"]["top_k"]
    metrics = [f"jaccard@{k}" for k in ks] + [f"feature_agreement@{ks[0]}", f"rank_agreement@{ks[0]}",
                                              f"sign_agreement@{ks[0]}", f"signed_rank_agreement@{ks[0]}", "spearman"]
    short = {"jaccard": "Jaccard", "feature_agreement": "feature", "rank_agreement": "rank", "sign_agreement": "sign",
             "signed_rank_agreement": "signed rank", "spearman": "Spearman"}
    head = ["explainer", "run"] + [short[m.split("@")[0]] + ("@" + m.split("@")[1] if "@" in m else "")
                                   for m in metrics]
    repeats = s["settings"].get("explain_repeats", 1)
    rows = []
    for explainer in s["settings"]["explainers"]:
        seeds = f" ({repeats} seeds)" if repeats > 1 and not REGISTRY[explainer].deterministic else ""
        for name, c in s["comparisons"].items():
            a = c.get("alignment", {}).get(explainer, {})
            rows.append([explainer, f"{name} vs {s['reference']}{seeds}"] + [_fmt_seeds(a.get(m)) for m in metrics])
        nf = s["noise_floor"].get(explainer, {})
        rows.append([explainer, f"noise floor: {s['reference']} seed s vs s + 1{seeds}"] +
                    [_fmt_seeds(nf.get(m)) for m in metrics])
    return head, rows


def _seeds_sentence(s) -> str:
    """Which seeds explained what, for the alignment section of report.md and report.html."""
    seed, repeats = s["seed"], s["settings"].get("explain_repeats", 1)
    if repeats == 1:
        return (f"The reference is explained with seed {seed}, the candidates with seed {seed + 1}; the noise floor "
                f"compares the reference's own runs with seeds {seed} and {seed + 1}.")
    return (f"LIME is repeated with {repeats} seeds: in repeat r the reference is explained with seed {seed} + r, the "
            f"candidates with seed {seed} + r + 1, and the noise floor compares the reference's own runs with those "
            f"two seeds; values are means over repeats, ± the standard deviation of the repeat means. SHAP Partition "
            f"does not depend on the seed and runs once (seeds {seed} and {seed + 1}).")


def _fmt_seeds(d) -> str:
    """Mean [CI], with the standard deviation over seeds when there are several."""
    text = _fmt(d)
    if d and d.get("repeat_variance") is not None:
        text += f" ±{np.sqrt(d['repeat_variance']):.3f} sd over seeds"
    return text


def _md_table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _findings(s) -> list[str]:
    """Plain-language observations, each backed by an interval in report.json."""
    out = []
    k = s["settings"]["top_k"][0]
    for name, c in s["comparisons"].items():
        d_acc = c["delta"]["accuracy"]
        d_ece = c["delta"]["ece"]["equal_width"]
        parts = [f"**{name}** agrees with {s['reference']} on {c['agreement']['value']:.1%} of examples; "
                 f"accuracy differs by {d_acc['value']:+.3f} (95% CI {d_acc['ci'][0]:+.3f} to {d_acc['ci'][1]:+.3f})"]
        if d_ece["ci"][0] is not None and (d_ece["ci"][0] > 0 or d_ece["ci"][1] < 0):
            parts.append(f"its equal-width ECE is {'higher' if d_ece['value'] > 0 else 'lower'} by "
                         f"{abs(d_ece['value']):.3f} (CI excludes 0)")
        else:
            parts.append(f"the ECE difference {d_ece['value']:+.3f} is within noise (CI includes 0)")
        for explainer, a in c.get("alignment", {}).items():
            j = a.get(f"jaccard@{k}", {})
            nf = s["noise_floor"].get(explainer, {}).get(f"jaccard@{k}", {})
            if j.get("mean") is not None and nf.get("mean") is not None:
                parts.append(f"{explainer} top-{k} Jaccard {j['mean']:.2f} against a noise floor of {nf['mean']:.2f}")
        out.append("; ".join(parts) + ".")
    return out


def _markdown(s) -> str:
    d = s["data"]
    lines = [
        f"# trusteq report: {', '.join(s['candidates'])} vs {s['reference']}",
        "",
        f"Task `{s['task']}` on `{d['source']}` ({d['examples']} of {d['rows']} examples; sha256 "
        f"`{d['sha256'][:12]}…`), seed {s['seed']}, {s['settings']['n_bins']} bins, "
        f"{s['settings']['bootstrap']['resamples']} bootstrap resamples; intervals are 95%.",
        "",
        *([f"{len(d['dropped'])} invalid rows were dropped (--skip-invalid); report.json lists each with its reason.",
           ""] if d.get("dropped") else []),
        "## Findings",
        "",
        *[f"- {f}" for f in _findings(s)],
        "",
        "## Models: accuracy and calibration",
        "",
        _md_table(*_model_rows(s)),
        "",
        "## Agreement with the reference",
        "",
        _md_table(*_comparison_rows(s)),
        "",
    ]
    if s["settings"]["explainers"]:
        st = s["settings"]
        lines += [
            "## Explanation alignment",
            "",
            f"{st['explained_examples']} examples explained (class: {st['explain_class']}); LIME "
            f"{st['lime_samples']} samples, SHAP {st['shap_evals']} evaluations. {_seeds_sentence(s)} Alignment near "
            f"the floor is as close as the explainer can show; alignment below it is a real difference.",
            "",
            _md_table(*_alignment_rows(s)),
            "",
        ]
    lines += ["![reliability diagrams](reliability.png)", "", "![alignment](alignment.png)", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# html


def _split_cell(text: str) -> tuple[str, str | None]:
    """A value and its interval (shown on a second, smaller line)."""
    value, sep, ci = text.partition(" [")
    return (value, ci) if sep else (text, None)


def _table(head, rows) -> dict:
    return {"head": head, "rows": [[_split_cell(c) for c in r] for r in rows]}


def _segments(text: str, sentence: str, explanation, k: int) -> list[dict]:
    """One sentence as plain text and attributed words (colour by weight, outlined if in the top k)."""
    feats, w = explanation.features, explanation.weights
    scale = float(np.max(np.abs(w))) if len(w) and np.max(np.abs(w)) > 0 else 1.0
    top = set(top_k(w, k).tolist()) if len(w) else set()
    out, last = [], 0
    for idx, f in enumerate(feats):
        if f.sentence != sentence:
            continue
        out.append({"text": text[last:f.start], "word": False})
        a = abs(w[idx]) / scale
        color = f"rgba(47,158,68,{a:.2f})" if w[idx] > 0 else f"rgba(224,49,49,{a:.2f})"
        out.append({"text": text[f.start:f.end], "word": True, "cls": "w top" if idx in top else "w",
                    "color": color, "title": f"{w[idx]:+.4f}"})
        last = f.end
    out.append({"text": text[last:], "word": False})
    return out


def _examples(result: CompareResult, n_shown: int) -> dict | None:
    s = result.summary
    if not result.explanations or not s["candidates"]:
        return None
    k, seed = s["settings"]["top_k"][0], s["seed"]
    explainer, explained = next(iter(result.explanations.items()))
    first = s["candidates"][0]
    jac = explained.alignment(first).values[f"jaccard@{k}"]
    order = np.argsort(np.where(np.isfinite(jac), jac, 2.0), kind="stable")[:n_shown]
    runs = [explained.run(s["reference"], seed)] + [explained.run(c, seed + 1) for c in s["candidates"]]
    by_id = {e.id: e for e in result.dataset.examples}
    index = {ex_id: i for i, ex_id in enumerate(result.dataset.ids)}
    labels = result.dataset.label_names
    blocks = []
    for i in order:
        ref_e = runs[0].explanations[i]
        ex = by_id[ref_e.example_id]
        sides = []
        for run in runs:
            e, p = run.explanations[i], result.probs[run.model][index[ex.id]]
            sides.append({"title": f"{run.model}: predicts {labels[int(np.argmax(p))]} ({p.max():.2f})",
                          "a": _segments(ex.text_a, "a", e, k), "b": _segments(ex.text_b, "b", e, k)})
        blocks.append({"heading": f"{ex.id} · gold {ex.label} · explained {labels[ref_e.explained_class]} · "
                                  f"{explainer} top-{k} Jaccard ({first}) {jac[i]:.2f}", "sides": sides})
    legend = (f"{explainer} attributions; green pushes towards the explained class, red away; outlined words are "
              f"each model's top-{k}. Shown: the {len(order)} examples where {first} agrees least with "
              f"{s['reference']}.")
    return {"legend": legend, "blocks": blocks}


def _html(result: CompareResult, reliability_png: bytes, alignment_png: bytes, n_shown: int) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    s, d, st = result.summary, result.summary["data"], result.summary["settings"]
    img = lambda b: "data:image/png;base64," + base64.b64encode(b).decode()  # noqa: E731
    alignment = None
    if st["explainers"]:
        alignment = {"text": f"{st['explained_examples']} examples explained (class: {st['explain_class']}); LIME "
                             f"{st['lime_samples']} samples, SHAP {st['shap_evals']} evaluations. "
                             f"{_seeds_sentence(s)} Both are measured across different perturbations.",
                     "table": _table(*_alignment_rows(s))}
    env = Environment(loader=PackageLoader("trusteq", "templates"), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        reference=s["reference"], candidates=s["candidates"],
        meta=f"Task {s['task']} · data {d['source']} ({d['examples']} of {d['rows']} examples) · seed {s['seed']} · "
             f"{st['n_bins']} bins · {st['bootstrap']['resamples']} bootstrap resamples (95% intervals) · "
             f"trusteq {s['trusteq_version']} · {s['created']}",
        dropped=(f"{len(d['dropped'])} invalid rows were dropped (--skip-invalid); report.json lists each with its "
                 f"reason." if d.get("dropped") else None),
        findings=[f.replace("**", "") for f in _findings(s)],
        models_table=_table(*_model_rows(s)), comparison_table=_table(*_comparison_rows(s)),
        reliability_png=img(reliability_png), alignment_png=img(alignment_png), alignment=alignment,
        examples=_examples(result, n_shown))
