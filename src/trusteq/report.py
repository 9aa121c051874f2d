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
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from .cache import atomic_write_bytes, atomic_write_text
from .comparison import CompareResult

__all__ = ["write_report", "OUTPUT_FILES"]

OUTPUT_FILES = ("report.json", "report.md", "report.html", "reliability.png", "alignment.png", "predictions.csv",
                "explanations.jsonl")


def write_report(result: CompareResult, out: str | Path, examples_shown: int = 12) -> Path:
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
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
    for runs in result.explanations.values():
        for run in runs.values():
            for e in run:
                lines.append(json.dumps(e.to_record(labels), ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------------------
# figures


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _reliability_figure(result: CompareResult) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    ref = s["reference"]
    cands = s["candidates"]
    strategies = s["settings"]["binning"]
    fig, axes = plt.subplots(len(cands), len(strategies), figsize=(4.4 * len(strategies), 4.0 * len(cands)),
                             squeeze=False)
    for row, cand in enumerate(cands):
        for col, strategy in enumerate(strategies):
            ax = axes[row][col]
            ax.plot([0, 1], [0, 1], ls=":", color="#888", lw=1)
            for name, color, marker in ((ref, "#555555", "s"), (cand, "#d9480f", "o")):
                bins = s["models"][name]["reliability"][strategy]
                conf = np.array([b["confidence"] for b in bins])
                acc = np.array([b["accuracy"] for b in bins])
                lo = np.array([b["accuracy_ci"][0] for b in bins])
                hi = np.array([b["accuracy_ci"][1] for b in bins])
                ece = s["models"][name]["ece"][strategy]["value"]
                ax.errorbar(conf, acc, yerr=[acc - lo, hi - acc], color=color, marker=marker, ms=4, lw=1.2,
                            capsize=2, label=f"{name} (ECE {ece:.3f})")
            ax.set_xlim(0, 1.0)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("mean confidence in bin")
            ax.set_ylabel("accuracy in bin")
            ax.set_title(f"{cand} vs {ref}\n{strategy.replace('_', '-')} bins", fontsize=10)
            ax.legend(fontsize=8, loc="upper left")
            ax.grid(alpha=0.3)
    fig.suptitle("Reliability diagrams (95% Wilson intervals; diagonal = perfect calibration)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _alignment_figure(result: CompareResult) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    k = s["settings"]["top_k"][0]
    metric = f"jaccard@{k}"
    explainers = list(result.alignment_values)
    if not explainers:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "no explanations were computed", ha="center", va="center")
        ax.axis("off")
        return _png(fig)
    fig, axes = plt.subplots(1, len(explainers), figsize=(5.5 * len(explainers), 3.6), squeeze=False)
    for ax, explainer in zip(axes[0], explainers):
        runs = result.alignment_values[explainer]
        labels, data = [], []
        for run, table in runs.items():
            v = table[metric]
            data.append(v[np.isfinite(v)])
            labels.append(f"noise floor\n({run})" if "@seed" in run else run)
        parts = ax.violinplot([d if len(d) else [np.nan] for d in data], showmeans=True, showextrema=False)
        for body, lab in zip(parts["bodies"], labels):
            body.set_facecolor("#adb5bd" if lab.startswith("noise") else "#d9480f")
            body.set_alpha(0.6)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"top-{k} Jaccard with {s['reference']}")
        ax.set_title(f"{explainer}: per-example alignment (n={len(result.explained_ids)})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
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
        seeds = f" ({repeats} seeds)" if repeats > 1 and explainer != "shap" else ""
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

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#212529;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #dee2e6;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #dee2e6;padding:.3rem .5rem;text-align:right;white-space:nowrap;vertical-align:top}
td small{color:#868e96}th{white-space:normal}
th{background:#f1f3f5}td:first-child,th:first-child{text-align:left}
.meta{color:#495057;font-size:.9rem}.findings li{margin:.3rem 0}
img{max-width:100%}
.ex{border:1px solid #dee2e6;border-radius:6px;padding:.6rem .8rem;margin:1rem 0}
.ex h3{font-size:.95rem;margin:.1rem 0 .5rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:.8rem}
.side{background:#f8f9fa;border-radius:4px;padding:.5rem}
.side b{display:block;font-size:.85rem;margin-bottom:.3rem}
.s{font-size:.9rem;margin:.2rem 0}.s i{color:#868e96;font-style:normal;font-size:.75rem;margin-right:.3rem}
.w{border-radius:3px;padding:0 2px}.top{outline:1.5px solid #212529}
.legend{font-size:.8rem;color:#495057}
"""


def _cell(text: str) -> str:
    """A value with its interval on a second, smaller line."""
    value, sep, ci = text.partition(" [")
    if not sep:
        return html.escape(text)
    return f"{html.escape(value)}<br><small>[{html.escape(ci)}</small>"


def _html_table(head, rows) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _highlight(text: str, sentence: str, explanation, k: int) -> str:
    feats = explanation.features
    w = explanation.weights
    scale = float(np.max(np.abs(w))) if len(w) and np.max(np.abs(w)) > 0 else 1.0
    from .alignment import top_k

    top = set(top_k(w, k).tolist()) if len(w) else set()
    pieces, last = [], 0
    for idx, f in enumerate(feats):
        if f.sentence != sentence:
            continue
        pieces.append(html.escape(text[last:f.start]))
        a = abs(w[idx]) / scale
        color = f"rgba(47,158,68,{a:.2f})" if w[idx] > 0 else f"rgba(224,49,49,{a:.2f})"
        cls = "w top" if idx in top else "w"
        pieces.append(f'<span class="{cls}" style="background:{color}" title="{w[idx]:+.4f}">'
                      f"{html.escape(text[f.start:f.end])}</span>")
        last = f.end
    pieces.append(html.escape(text[last:]))
    return "".join(pieces)


def _examples_html(result: CompareResult, n_shown: int) -> str:
    s = result.summary
    if not result.explanations or not s["candidates"]:
        return "<p>No explanations were computed.</p>"
    k = s["settings"]["top_k"][0]
    explainer = next(iter(result.explanations))
    runs = result.explanations[explainer]
    first = s["candidates"][0]
    jac = result.alignment_values[explainer][first][f"jaccard@{k}"]
    order = np.argsort(np.where(np.isfinite(jac), jac, 2.0), kind="stable")[:n_shown]
    by_id = {e.id: e for e in result.dataset.examples}
    labels = result.dataset.label_names
    index = {ex_id: i for i, ex_id in enumerate(result.dataset.ids)}
    blocks = []
    names = [s["reference"], *s["candidates"]]
    for i in order:
        ref_e = runs[s["reference"]][i]
        ex = by_id[ref_e.example_id]
        row = index[ex.id]
        sides = []
        for name in names:
            e = runs[name][i]
            p = result.probs[name][row]
            pred = labels[int(np.argmax(p))]
            sides.append(
                f'<div class="side"><b>{html.escape(name)}: predicts {html.escape(pred)} '
                f'({p.max():.2f})</b>'
                f'<div class="s"><i>A</i>{_highlight(ex.text_a, "a", e, k)}</div>'
                f'<div class="s"><i>B</i>{_highlight(ex.text_b, "b", e, k)}</div></div>')
        blocks.append(
            f'<div class="ex"><h3>{html.escape(ex.id)} · gold {html.escape(ex.label)} · explained '
            f'{html.escape(labels[ref_e.explained_class])} · {explainer} top-{k} Jaccard ({first}) '
            f'{jac[i]:.2f}</h3><div class="grid">{"".join(sides)}</div></div>')
    return (f'<p class="legend">{explainer} attributions; green pushes towards the explained class, red away; '
            f'outlined words are each model\'s top-{k}. Shown: the {len(order)} examples where {html.escape(first)} '
            f'agrees least with {html.escape(s["reference"])}.</p>' + "".join(blocks))


def _html(result: CompareResult, reliability_png: bytes, alignment_png: bytes, n_shown: int) -> str:
    s = result.summary
    d = s["data"]
    img = lambda b: "data:image/png;base64," + base64.b64encode(b).decode()  # noqa: E731
    findings = "".join(f"<li>{html.escape(f).replace('**', '')}</li>" for f in _findings(s))
    st = s["settings"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>trusteq: {html.escape(', '.join(s['candidates']))} vs {html.escape(s['reference'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Are {html.escape(', '.join(s['candidates']))} trust-equivalent to {html.escape(s['reference'])}?</h1>",
        f"<p class='meta'>Task <b>{s['task']}</b> · data {html.escape(d['source'])} ({d['examples']} of {d['rows']} "
        f"examples) · seed {s['seed']} · {st['n_bins']} bins · {st['bootstrap']['resamples']} bootstrap resamples "
        f"(95% intervals) · trusteq {s['trusteq_version']} · {s['created']}</p>",
        (f"<p class='meta'>{len(d['dropped'])} invalid rows were dropped (--skip-invalid); report.json lists each "
         f"with its reason.</p>" if d.get("dropped") else ""),
        f"<h2>Findings</h2><ul class='findings'>{findings}</ul>",
        "<h2>Accuracy and calibration</h2>", _html_table(*_model_rows(s)),
        f"<img alt='reliability diagrams' src='{img(reliability_png)}'>",
        "<h2>Agreement with the reference</h2>", _html_table(*_comparison_rows(s)),
    ]
    if st["explainers"]:
        parts += [
            "<h2>Explanation alignment</h2>",
            f"<p class='meta'>{st['explained_examples']} examples explained (class: {st['explain_class']}); LIME "
            f"{st['lime_samples']} samples, SHAP {st['shap_evals']} evaluations. {html.escape(_seeds_sentence(s))} "
            f"Both are measured across different perturbations.</p>",
            _html_table(*_alignment_rows(s)),
            f"<img alt='alignment distributions' src='{img(alignment_png)}'>",
            "<h2>Per-example view</h2>", _examples_html(result, n_shown),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)
