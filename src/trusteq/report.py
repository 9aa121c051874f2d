"""Write a comparison's outputs into a folder.

Files (each written atomically: temporary file, then rename):

* ``report.json`` - every number with its interval, and provenance;
* ``report.md`` - summary tables;
* ``report.html`` - self-contained page: tables, paired reliability
  diagrams, alignment distributions and a per-example attribution view;
* ``verdict.png`` - each candidate's tests against their margins (a forest
  plot, :class:`~trusteq.display.VerdictDisplay`), first in report.html;
* ``reliability.png``, ``alignment.png`` - the figures;
* ``predictions.csv`` - ``example_id,model,label,prob_<class>...``;
* ``explanations.jsonl`` - one line per (example, model, explainer, seed);
* ``worst_examples.csv`` - each candidate's examples of largest KL, its correctness flips and its explanations
  furthest below the noise floor (:mod:`trusteq.worst`), with texts and both models' predictions;
* ``slices.png`` - with ``--slice`` only: every slice's tests against their margins (:mod:`trusteq.breaks`).

Under a protocol that does not decide (the paper's, see
:mod:`trusteq.protocols`) the alignment table and figure show its measure,
the explanation verdict rows show why they are undecided, ``explanations.jsonl`` holds the authors' (word,
weight) lists, and the per-example word highlights are left out (their words
belong to the merged text, not to one sentence).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .breaks import slice_figure, slice_sentence, slice_table, worst_csv, worst_tables
from .cache import atomic_write_bytes, atomic_write_text
from .display import AlignmentDisplay, RegionHeatmapDisplay, ReliabilityDisplay, VerdictDisplay, verdict_rows
from .metrics.alignment import top_k
from .metrics.verdict import GROSS_COSINE, MAX_TO_DECIDE, NOT_EXPLAINED
from .protocols import Protocol, SeedPlan, get_protocol
from .results import CompareResult
from .validation import check_output_dir
from .worst import worst_examples

__all__ = ["write_report", "OUTPUT_FILES"]

OUTPUT_FILES = ("report.json", "report.md", "report.html", "verdict.png", "reliability.png", "alignment.png",
                "predictions.csv", "explanations.jsonl", "worst_examples.csv")


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
    worst_rows = worst_examples(result)
    atomic_write_text(out / "worst_examples.csv", worst_csv(worst_rows))
    slices_png = _slices_figure(s)
    if slices_png is not None:
        atomic_write_bytes(out / "slices.png", slices_png)
    worst = worst_tables(worst_rows, s["candidates"])
    reliability_png = _reliability_figure(result)
    alignment_png = _alignment_figure(result)
    verdict_png = _verdict_figure(s)
    atomic_write_bytes(out / "verdict.png", verdict_png)
    atomic_write_bytes(out / "reliability.png", reliability_png)
    atomic_write_bytes(out / "alignment.png", alignment_png)
    atomic_write_text(out / "report.md", _markdown(s) + _breaks_markdown(s, worst))
    page = _html(result, reliability_png, alignment_png, examples_shown, verdict_png=verdict_png,
                 breaks=_breaks_html(s, worst, slices_png))
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


def _verdict_figure(s) -> bytes:
    """verdict.png: one forest plot per candidate (:class:`~trusteq.display.VerdictDisplay`), stacked."""
    verdicts = {name: c["verdict"] for name, c in s["comparisons"].items()}
    heights = [len(verdict_rows(v)) for v in verdicts.values()]
    fig = _figure(figsize=(10, sum(0.45 * n + 1.0 for n in heights)))
    axes = fig.subplots(len(verdicts), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (name, v) in zip(axes[:, 0], verdicts.items()):
        VerdictDisplay.from_verdict(v, title=f"{name} vs {s['reference']}: {v['overall']}", ax=ax)
    fig.tight_layout()
    return _png(fig)


def _slices_figure(s) -> bytes | None:
    """slices.png (:func:`trusteq.breaks.slice_figure`), None without slices."""
    fig = _figure()
    return _png(fig) if slice_figure(s, fig) else None


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
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))  # half an inch for the title at any height
    return _png(fig)


def _measure(s) -> str:
    """The per-example alignment measure figures and the example view read: the verdict's, or the paper's."""
    return s["settings"]["verdict_measure"] or s["settings"]["paper_measure"]


def _protocol(s) -> Protocol:
    """The protocol that explained the report's examples (as report.json records it)."""
    return get_protocol(s["settings"]["protocol"])


def _descriptive(s) -> bool:
    """Whether the explanations are descriptive only (the paper's protocol): its own tables and sentences."""
    return not _protocol(s).decides


def _alignment_figure(result: CompareResult) -> bytes:
    s = result.summary
    metric = _measure(s)
    if not result.explanations:
        fig = _figure(figsize=(5, 1.5))
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no explanations were computed", ha="center", va="center")
        ax.axis("off")
        return _png(fig)
    runs = len(next(iter(result.explanations.values())).alignments)
    slanted = runs > AlignmentDisplay.MAX_UPRIGHT_LABELS  # slanted labels need more height
    fig = _figure(figsize=(max(5.5, 0.6 * runs) * len(result.explanations), 3.6 + 0.4 * slanted))
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
    head = ["model", "role", "accuracy", "calibration error (debiased RMS)", "ECE (equal-width)*", "ECE (equal-mass)*",
            "MCE (equal-width)*", "MCE (equal-mass)*", "Brier", "NLL", "truncated"]
    rows = []
    for name, m in s["models"].items():
        rows.append([name, m["role"], _fmt(m["accuracy"]), _fmt(m["calibration_error"]),
                     _fmt(m["ece"]["equal_width"]), _fmt(m["ece"]["equal_mass"]), _fmt(m["mce"]["equal_width"]),
                     _fmt(m["mce"]["equal_mass"]), _fmt(m["brier"]), _fmt(m["nll"]), str(m["truncated"])])
    return head, rows


_BINNED_NOTE = ("*Binned ECE and MCE are descriptive, for comparison with the paper: they are biased upward at small n "
                "and get no interval; the verdict reads the debiased calibration error instead.")


def _comparison_rows(s):
    head = ["candidate", "agreement", "flip rate", "correct→wrong", "wrong→correct", "KL(ref‖cand)",
            "Δ accuracy", "calibration added (RMS)", "Δ ECE (equal-width)*", "McNemar p"]
    rows = []
    for name, c in s["comparisons"].items():
        cal = c["verdict"]["dimensions"]["calibration"]["parts"]["calibration"]
        rows.append([name, _fmt(c["agreement"]), _fmt(c["flip_rate"]["total"]),
                     _fmt(c["flip_rate"]["correct_to_wrong"]), _fmt(c["flip_rate"]["wrong_to_correct"]),
                     _fmt(c["kl"]), _fmt(c["delta"]["accuracy"]), f"{cal['statistic']:+.3f}",
                     _fmt(c["delta"]["ece"]["equal_width"]), f"{c['mcnemar']['p_value']:.3g}"])
    return head, rows


_SHORT = {"cosine": "cosine (verdict)", "jaccard": "Jaccard", "feature_agreement": "feature", "rank_agreement": "rank",
          "sign_agreement": "sign", "spearman": "Spearman", "rbo": "RBO"}


def _alignment_rows(s):
    """Descriptive alignment table; every metric is in report.json, the table shows the main ones."""
    if _descriptive(s):
        return _paper_alignment_rows(s)
    ks = s["settings"]["top_k"]
    metrics = ["cosine", *[f"jaccard@{k}" for k in ks], f"feature_agreement@{ks[0]}", f"rank_agreement@{ks[0]}",
               f"sign_agreement@{ks[0]}", "spearman", "rbo"]
    name = lambda m: _SHORT[m.split("@")[0]] + ("@" + m.split("@")[1] if "@" in m else "")  # noqa: E731
    head = ["explainer", "run", *map(name, metrics), f"{_unit(s)} > {ks[0]} {_feature_unit(s)}"]
    repeats = s["settings"].get("explain_repeats", 1)
    rows = []
    for explainer in s["settings"]["explainers"]:
        seeds = f" ({repeats} seeds)" if repeats > 1 else ""
        runs = [(f"{c} vs {s['reference']}{seeds}", s["comparisons"][c].get("alignment", {}).get(explainer, {}))
                for c in s["comparisons"]]
        runs.append((f"noise floor: {s['reference']} vs itself{seeds}", s["noise_floor"].get(explainer, {})))
        runs += [(f"noise floor: {c} vs itself{seeds}", s["comparisons"][c].get("noise_floor", {}).get(explainer, {}))
                 for c in s["comparisons"]]
        for label, a in runs:
            counted = (a.get(f"jaccard@{ks[0]}") or {}).get("n", 0)
            if a:
                rows.append([explainer, label, *[_fmt_seeds(a.get(m)) for m in metrics],
                             f"{counted} of {(a.get('cosine') or {}).get('n', 0)}"])
    return head, rows


def _paper_alignment_rows(s):
    """The paper protocol's table: each candidate's paper Jaccard with the reference, and the reference's floor."""
    measure, n = s["settings"]["paper_measure"], s["settings"]["explained_examples"]
    head = ["explainer", "run", f"the paper's Jaccard@{measure.split('@')[1]}", "examples"]
    rows = []
    for explainer in s["settings"]["explainers"]:
        runs = [(f"{c} vs {s['reference']}", s["comparisons"][c].get("alignment", {}).get(explainer, {}))
                for c in s["comparisons"]]
        runs.append((f"noise floor: {s['reference']} vs itself", s["noise_floor"].get(explainer, {})))
        rows += [[explainer, label, _fmt_seeds(a.get(measure)), f"{(a.get(measure) or {}).get('n', 0)} of {n}"]
                 for label, a in runs]
    return head, rows


def _seeds_sentence(s) -> str:
    """Which seeds explained what, for the alignment section of report.md and report.html, as report.json
    records them (``settings.explain_seeds``)."""
    plan = SeedPlan.from_record(s["settings"]["explain_seeds"])
    if len(plan.reference) > 1:
        both = lambda runs: " / ".join(" and ".join(map(str, r)) for r in runs)  # noqa: E731
        floors = "" if plan.candidate_floor else f" No candidate floors ({_protocol(s).no_candidate_floors})."
        exact = " Deterministic explainers (SHAP Partition) run once." if _protocol(s).decides else ""
        return (f"Seeded explainers are repeated {len(plan.reference)} times with disjoint seeds: the reference is "
                f"explained with seeds {both(plan.reference)}, the candidates with {both(plan.candidates)} (per "
                f"repeat); values are means over repeats, ± the standard deviation of the repeat means.{floors}"
                f"{exact}")
    (r0, r1), cands, (a0, a1), (f0, f1) = plan.reference[0], plan.candidates[0], plan.alignment[0], plan.noise_floor[0]
    seeds = f"seeds {cands[0]} and {cands[1]}" if len(cands) == 2 else f"seed {cands[0]}"
    text = (f"The reference is explained with seeds {r0} and {r1}, the candidates with {seeds}: a candidate's "
            f"alignment compares reference@{a0} with candidate@{a1}, the reference's noise floor reference@{f0} with "
            f"reference@{f1}")
    if plan.candidate_floor is None:
        return text + f"; no candidate floors ({_protocol(s).no_candidate_floors})."
    c0, c1 = plan.candidate_floor[0]
    return text + f", a candidate's own floor candidate@{c0} with candidate@{c1}."


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


_PART_NAMES = {"accuracy": "accuracy difference", "flip_rate": "flip rate (correctness flips)",
               "calibration": "calibration error added (RMS, in quadrature)", "brier": "Brier score difference",
               "agreement": "{measure} agreement beside the noise floors (delta)",
               "gross_disagreement": "share in gross disagreement ({measure} < {threshold} x floor)"}
_TEST_SIGNS = {"TOST": "within ±{m}", "non-inferiority": "above -{m}", "non-superiority": "below {m}"}
MARKS = {"equivalent": "✓", "not equivalent": "✗", "inconclusive": "?"}


def _part_name(dimension: str, name: str, p: dict) -> str:
    if p.get("statistic") is None and p.get("reason") and name not in _PART_NAMES:
        return f"{dimension}: {p.get('measure', name)} (descriptive)"
    label = _PART_NAMES.get(name, name).format(measure=p.get("measure", ""), threshold=p.get("threshold", GROSS_COSINE))
    return f"{dimension}: {label}"


def _part_note(p: dict) -> str:
    """What a verdict row adds to its numbers: the reason it is untested, the direction, counts, the sample size
    that would decide it."""
    notes = [p.get("reason", "")]
    if p.get("direction") and p.get("candidate") is not None:
        notes.append(f"{p['direction']} calibrated: error {p['candidate']:.3f} vs the reference's {p['reference']:.3f}")
    if p.get("prediction_change_rate") is not None:
        notes.append(f"predictions change on {p['prediction_change_rate']:.1%} of examples")
    undefined = sum((p.get("undefined") or {}).values())
    if undefined:
        notes.append(f"{undefined} undefined attributions counted as disagreement (cross) or as floor 1")
    if p["decision"] == "inconclusive" and p.get("interval") is not None:
        n = p.get("n_to_decide")
        notes.append(f"about {n:,} examples would decide (80% power)" if n else
                     f"no sample size up to {MAX_TO_DECIDE:,} examples would decide")
    if p.get("anytime"):
        notes.append("confidence sequence")
    return "; ".join(x for x in notes if x)


def _interval(p) -> str:
    lo, hi = p["interval"] or (None, None)
    return "n/a" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]"


def _statistic(p) -> str:
    return "n/a" if p["statistic"] is None else f"{p['statistic']:+.3f}"


def _verdict_rows(s):
    """One row per candidate (overall), then one per tested part."""
    level = f"{s['settings']['verdict_level']:.0%}"
    head = ["candidate", "tested", "decision", "statistic", f"{level} interval", "margin (test)", "note"]
    rows = []
    for name, c in s["comparisons"].items():
        v = c["verdict"]
        rows.append([name, "overall", f"{MARKS[v['overall']]} {v['overall']}", "", "", "", ""])
        for dim_name, dim in v["dimensions"].items():
            for part_name, p in dim["parts"].items():
                note = _part_note(p)
                rows.append([name, _part_name(dim_name, part_name, p), f"{MARKS[p['decision']]} {p['decision']}",
                             _statistic(p), _interval(p),
                             f"{_TEST_SIGNS[p['test']].format(m=p['margin'])} ({p['test']})", note])
    return head, rows


def answer(s) -> str:
    """The report's first line: each candidate's overall verdict."""
    verdicts = "; ".join(f"{name}: {c['verdict']['overall']}" for name, c in s["comparisons"].items())
    return f"May {', '.join(s['candidates'])} replace {s['reference']}? {verdicts}"


def _findings(s) -> list[str]:
    """Plain-language findings, each worded from a test of the verdict."""
    out = []
    alpha = s["settings"]["alpha"]
    for name, c in s["comparisons"].items():
        v = c["verdict"]
        by = {d: [(_part_name(d, n, p), p) for n, p in dim["parts"].items()] for d, dim in v["dimensions"].items()}
        tested = [x for parts in by.values() for x in parts]
        if v["overall"] == "equivalent":
            out.append(f"**{name}** may replace {s['reference']}: every test is within its margin "
                       f"(alpha {alpha}, {len(tested)} tests)." + _stop_sentence(s, c))
            continue
        text = [f"**{name}** is {v['overall']} to {s['reference']} (alpha {alpha})"]
        for label, p in tested:
            if p["decision"] == "not equivalent":
                text.append(f"{label} {p['statistic']:+.3f} {_interval(p)} is outside its margin ({p['test']}, "
                            f"{p['margin']})")
            elif p.get("reason") == NOT_EXPLAINED:
                continue  # said once, by the stop sentence
            elif p.get("reason"):
                text.append(f"{label}: not decided ({p['reason']})")
            elif p["decision"] == "inconclusive":
                more = (f"; about {p['n_to_decide']:,} examples would decide" if p.get("n_to_decide") else
                        f"; no sample size up to {MAX_TO_DECIDE:,} examples would decide")
                text.append(f"{label} {p['statistic']:+.3f} {_interval(p)} neither within nor outside its margin "
                            f"({p['margin']}){more}")
        out.append("; ".join(text) + "." + _stop_sentence(s, c))
    return out


_STOP_WORDS = {"decided": "its explanation dimensions were decided",
               "verdict decided by other dimensions": "its verdict could no longer change",
               "cap": "the cap (--explain-limit {cap}) was reached",
               "fixed sample": "a fixed sample (--explain-all or a descriptive protocol)"}


def _stop_sentence(s, c) -> str:
    """How many examples explained a candidate, and why no more (empty when nothing was explained)."""
    if "explain_stop" not in c:
        return ""
    n, why = c["explained_examples"], _STOP_WORDS[c["explain_stop"]].format(cap=s["settings"].get("explain_limit"))
    return (f" Explanations: none computed, as {why}." if n == 0 else
            f" Explanations: {n:,} {_unit(s)} explained, then stopped as {why}.")


def _verdict_sentence(s) -> str:
    """How the verdict was reached, for report.md and report.html."""
    st = s["settings"]
    margins = ", ".join(f"{k} {v}" for k, v in st["margins"].items())
    explanations = _PAPER_VERDICT if _descriptive(s) else (
        f"Explanations are compared by {st['verdict_measure']} similarity of attribution vectors: delta is the "
        f"candidate's mean {st['verdict_measure']} with the reference divided by the mean of both models' noise "
        f"floors, minus 1 (0 for a copy of the reference; a noisier explainer does not raise it), and the share of "
        f"examples in gross disagreement ({st['verdict_measure']} below {GROSS_COSINE} times the example's noise "
        f"floor) is tested beside it. "
        + ("Every selected example is explained (--explain-all)." if st.get("explain_all") else
           f"Both are read from confidence sequences, valid however many examples are looked at: each candidate is "
           f"explained in blocks of {st.get('explain_block')} until its explanations are decided, its verdict can "
           f"no longer change, or {st.get('explain_limit')} examples (the cap)."))
    calibration = {"non-inferiority": "Calibration may not get worse by more than its margin (a better calibrated "
                                      "candidate passes; --calibration-test two-sided asks for similar calibration).",
                   "two-sided": "Calibration must be similar within its margin either way (--calibration-test "
                                "two-sided, as the paper asks)."}.get(st.get("calibration_test"), "")
    return (f"Each decision is an equivalence test at alpha {st['alpha']}: the {st['verdict_level']:.0%} interval of "
            f"the candidate-minus-reference statistic inside the margin is equivalent, entirely outside is not "
            f"equivalent, otherwise inconclusive; a candidate is equivalent only if every test is. Margins: "
            f"{margins}. {calibration} {explanations}")


_PAPER_VERDICT = ("Explanations were computed with the paper's protocol, whose measure is descriptive: each "
                  "explanation dimension is inconclusive, not tested (on controls, the paper's Jaccard@10 could not "
                  "tell a candidate relying on entirely different words from the noise floor); run --protocol pair "
                  "for a decision.")


def _unit(s) -> str:
    """What one example is: "texts", "images" or "pairs"."""
    return {"single": "texts", "image": "images"}.get(s["data"].get("texts"), "pairs")


def _feature_unit(s) -> str:
    """What one feature is: "regions" of an image, else "words"."""
    return "regions" if s["data"].get("texts") == "image" else "words"


def _alignment_sentence(s) -> str:
    st = s["settings"]
    if _descriptive(s):
        return _paper_alignment_sentence(s)
    caveat = "".join(f" {e}: {r['exact']} of {r['exact'] + r['budget_limited']} explanations exact (the explainer "
                     f"adds no noise there: floor 1), {r['budget_limited']} estimated within the budget (seeded: "
                     f"their floor measures the estimate's noise)." for e, r in st.get("explain_exact", {}).items()
                     if r["exact"])
    return (f"{st['explained_examples']} examples explained (class: {st['explain_class']}); LIME {st['lime_samples']} "
            f"samples, SHAP at most {st['shap_evals']} evaluations. {_seeds_sentence(s)} Top-k metrics leave out {_unit(s)} "
            f"with at most k {_feature_unit(s)} (the last column counts the {_unit(s)} used). The verdict tests the cosine agreement "
            f"beside the noise floors; the table is descriptive.{caveat}")


def _paper_alignment_sentence(s) -> str:
    st = s["settings"]
    k = st["paper_measure"].split("@")[1]
    return (f"Explanations follow the authors' protocol (Rai et al. 2025, arXiv 2508.13533; --protocol paper): LIME "
            f"(lime.LimeTextExplainer, {st['lime_samples']} samples) and SHAP (shap Text masker, {st['shap_evals']} "
            f"evaluations) on the merged text of each pair, {st['explained_examples']} examples explained (class: "
            f"{st['explain_class']}), compared by their top-{k} unique-word Jaccard. {_seeds_sentence(s)} This is "
            f"the authors' protocol and measure, descriptive: it decides nothing here (see the verdict).")


def _markdown(s) -> str:
    d = s["data"]
    lines = [
        f"# {answer(s)}",
        "",
        f"Task `{s['task']}` on `{d['source']}` ({d['examples']} of {d['rows']} examples; sha256 "
        f"`{d['sha256'][:12]}…`), seed {s['seed']}, {s['settings']['n_bins']} bins, "
        f"{s['settings']['bootstrap']['resamples']} bootstrap resamples; table intervals are 95%.",
        "",
        *([f"{len(d['dropped'])} invalid rows were dropped (--skip-invalid); report.json lists each with its reason.",
           ""] if d.get("dropped") else []),
        "## Verdict",
        "",
        "![each test against its margin](verdict.png)",
        "",
        _verdict_sentence(s),
        "",
        _md_table(*_verdict_rows(s)),
        "",
        "## Findings",
        "",
        *[f"- {f}" for f in _findings(s)],
        "",
        "## Models: accuracy and calibration",
        "",
        _md_table(*_model_rows(s)),
        "",
        _BINNED_NOTE,
        "",
        "## Agreement with the reference",
        "",
        _md_table(*_comparison_rows(s)),
        "",
    ]
    if s["settings"]["explainers"]:
        lines += ["## Explanation alignment", "", _alignment_sentence(s), "", _md_table(*_alignment_rows(s)), ""]
    lines += ["![reliability diagrams](reliability.png)", "", "![alignment](alignment.png)", ""]
    return "\n".join(lines)


def _breaks_markdown(s, worst) -> str:
    """report.md's last sections: slices (with ``--slice``) and the worst examples."""
    lines = []
    table = slice_table(s)
    if table is not None:
        lines += ["## Slices", "", slice_sentence(s), "", _md_table(*table), "", "![slices](slices.png)", ""]
    lines += ["## Worst examples", "", _WORST_NOTE, ""]
    for title, head, rows in worst:
        lines += [f"### {title}", "", _md_table(head, [[c.replace("|", "\\|") for c in r] for r in rows]), ""]
    return "\n".join(lines)


_WORST_NOTE = ("The examples where each candidate departs most from the reference: largest KL(reference || "
               "candidate), correctness flips, explanations furthest below the noise floor (gap = floor - agreement). "
               "The first few of each; worst_examples.csv has them all.")


def _breaks_html(s, worst, slices_png: bytes | None) -> dict:
    table = slice_table(s)
    return {"slices": None if table is None else {"text": slice_sentence(s), "table": _table(*table),
                                                  "png": _data_uri(slices_png)},
            "worst_note": _WORST_NOTE, "worst": [{"title": t, "table": _table(h, r)} for t, h, r in worst]}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


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


def _least_aligned(explained, candidates: list[str], measure: str) -> tuple[np.ndarray, list[str]]:
    """Per explained example, the lowest ``measure`` of any candidate's alignment with the reference (NaN where
    none has one) and that candidate's name."""
    values = [explained.alignment(c).values[measure] for c in candidates]
    n = max(len(v) for v in values)
    table = np.full((len(candidates), n), np.nan)
    for row, v in zip(table, values):
        row[:len(v)] = v
    worst = np.argmin(np.where(np.isfinite(table), table, np.inf), axis=0)
    return table[worst, np.arange(n)], [candidates[j] for j in worst]


def _heatmap_png(image: np.ndarray, explanation, k: int, scale: float) -> bytes:
    """One model's region attributions over the image (:class:`~trusteq.display.RegionHeatmapDisplay`), as a PNG
    of about 150 pixels a side (the top-``k`` regions outlined)."""
    fig = _figure(figsize=(1.6, 1.6), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    RegionHeatmapDisplay(image, explanation.features, explanation.weights, scale=scale,
                         top=top_k(explanation.weights, k).tolist() if len(explanation.weights) > k else ()).plot(ax=ax)
    return _png(fig)


def _examples(result: CompareResult, n_shown: int) -> dict | None:
    s = result.summary
    if not result.explanations or not s["candidates"]:
        return None
    if _descriptive(s):
        return {"legend": "Not shown under the paper protocol: its words belong to the merged text of a pair, not "
                          "to one sentence. explanations.jsonl holds every explanation's words and weights.",
                "blocks": []}
    k = s["settings"]["top_k"][0]
    ref_seed, cand_seed = SeedPlan.from_record(s["settings"]["explain_seeds"]).alignment[0]
    explainer, explained = next(iter(result.explanations.items()))
    shown = [c for c in s["candidates"] if any(a.kind == "candidate" and a.model == c for a in explained.alignments)]
    if not shown:
        return None
    measure = _measure(s)
    score, first = _least_aligned(explained, shown, measure)
    order = np.argsort(np.where(np.isfinite(score), score, 2.0), kind="stable")[:n_shown]
    runs = [explained.run(s["reference"], ref_seed)] + [explained.run(c, cand_seed) for c in shown]
    by_id = {e.id: e for e in result.dataset.examples}
    index = {ex_id: i for i, ex_id in enumerate(result.dataset.ids)}
    labels = result.dataset.label_names
    blocks = []
    for i in order:
        ref_e = runs[0].explanations[i]
        ex = by_id[ref_e.example_id]
        sides = []
        shown_runs = [run for run in runs if i < len(run.explanations)]  # candidates may have stopped earlier
        peak = max(float(np.max(np.abs(run.explanations[i].weights), initial=0.0)) for run in shown_runs)
        for run in shown_runs:
            e, p = run.explanations[i], result.probs[run.model][index[ex.id]]
            side = {"title": f"{run.model}: predicts {labels[int(np.argmax(p))]} ({p.max():.2f})"}
            if ex.image is not None:  # one colour scale for every model of the example
                side["image"] = _data_uri(_heatmap_png(ex.image, e, k, peak))
            else:
                side.update(a=_segments(ex.text_a, "a", e, k),
                            b=_segments(ex.text_b, "b", e, k) if ex.text_b is not None else None)
            sides.append(side)
        blocks.append({"heading": f"{ex.id} · gold {ex.label} · explained {labels[ref_e.explained_class]} · "
                                  f"{explainer} {measure} ({first[i]}) {score[i]:.2f}", "sides": sides})
    scale = " (one colour scale per example)" if result.dataset.kind == "image" else ""
    legend = (f"{explainer} attributions{scale}; green pushes towards the explained class, red away; outlined "
              f"{_feature_unit(s)} "
              f"are each model's top-{k}. Shown: the {len(order)} examples where a candidate's attributions agree "
              f"least (by {measure}) with {s['reference']}'s, that candidate named in the heading.")
    return {"legend": legend, "blocks": blocks}


def _untested(s, dimension: dict) -> str:
    """The verdict card's note on a dimension without a test: descriptive, not explained, or its reason."""
    if not dimension.get("reason"):
        return ""
    why = dimension["reason"]
    short = "descriptive" if _descriptive(s) else "not explained" if why == NOT_EXPLAINED else why
    return f" (not tested: {short})"


def _html(result: CompareResult, reliability_png: bytes, alignment_png: bytes, n_shown: int, *,
          verdict_png: bytes, breaks: dict) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    s, d, st = result.summary, result.summary["data"], result.summary["settings"]
    img = lambda b: "data:image/png;base64," + base64.b64encode(b).decode()  # noqa: E731
    alignment = {"text": _alignment_sentence(s), "table": _table(*_alignment_rows(s))} if st["explainers"] else None
    verdicts = [{"name": name, "overall": c["verdict"]["overall"],
                 "dimensions": [(d + _untested(s, x), x["decision"]) for d, x in c["verdict"]["dimensions"].items()]}
                for name, c in s["comparisons"].items()]
    env = Environment(loader=PackageLoader("trusteq", "templates"), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        reference=s["reference"], candidates=s["candidates"], answer=answer(s), verdicts=verdicts, marks=MARKS,
        verdict_text=_verdict_sentence(s), verdict_table=_table(*_verdict_rows(s)), binned_note=_BINNED_NOTE,
        meta=f"Task {s['task']} · data {d['source']} ({d['examples']} of {d['rows']} examples) · seed {s['seed']} · "
             f"{st['n_bins']} bins · {st['bootstrap']['resamples']} bootstrap resamples (95% intervals) · "
             f"trusteq {s['trusteq_version']} · {s['created']}",
        dropped=(f"{len(d['dropped'])} invalid rows were dropped (--skip-invalid); report.json lists each with its "
                 f"reason." if d.get("dropped") else None),
        findings=[f.replace("**", "") for f in _findings(s)],
        models_table=_table(*_model_rows(s)), comparison_table=_table(*_comparison_rows(s)),
        reliability_png=img(reliability_png), alignment_png=img(alignment_png), alignment=alignment,
        verdict_png=img(verdict_png), breaks=breaks,
        examples=_examples(result, n_shown))
