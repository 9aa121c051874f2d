"""The search report: ``search.json``, ``search.png``, ``search.md`` and ``search.html`` of :func:`trusteq.search`.

The answer comes first (the chosen model, or why none), then the guarantee, the candidates by size with their
selection verdicts per dimension (a table and :class:`~trusteq.display.SizeTrustDisplay`), the layers kept
uncompressed, and links to every comparison's report.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from .cache import atomic_write_bytes, atomic_write_text

__all__ = ["write_search_report", "search_answer"]


def write_search_report(summary: dict, out) -> None:
    """Write the four files of the search ``summary`` (what ``search.json`` holds) into ``out``, each atomically."""
    out = Path(out)
    png = size_trust_png(summary)
    atomic_write_text(out / "search.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_bytes(out / "search.png", png)
    atomic_write_text(out / "search.md", _markdown(summary))
    atomic_write_text(out / "search.html", _html(summary, png))


def search_answer(summary: dict) -> str:
    """The report's first line: the chosen model and how much smaller it is, or why none was chosen."""
    chosen, ref = summary["chosen"], summary["reference"].get("size_bytes")
    if chosen:
        c = next(c for c in summary["candidates"] if c["name"] == chosen)
        share = f" ({c['effective_bytes'] / ref:.0%} of the reference's bytes)" if ref and c["effective_bytes"] else ""
        return f"Smallest trust-equivalent candidate: {chosen}{share}"
    if summary["selected"]:
        return (f"No candidate was shown trust-equivalent: {summary['selected']} was equivalent on the selection "
                f"split but {summary['guarantee']['confirmation_verdict']} on the confirmation split")
    return "No candidate was shown trust-equivalent on the selection split"


def size_trust_png(summary: dict) -> bytes:
    """search.png: :class:`~trusteq.display.SizeTrustDisplay` of the summary."""
    from matplotlib.figure import Figure

    from .display import SizeTrustDisplay

    n = len(summary["candidates"])
    dims = {d for c in summary["candidates"] if c.get("tried") for d in c["verdict"]["dimensions"]}
    fig = Figure(figsize=(2.4 + 0.8 * n, 1.4 + 0.32 * (len(dims) + 1)))
    SizeTrustDisplay.from_search(summary, ax=fig.subplots())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


_HEAD = ("candidate", "method", "kept uncompressed", "MB needed", "of reference", "parameters",
         "selection verdict", "explained", "seconds")


def _rows(summary: dict) -> list[list[str]]:
    """One row per candidate, smallest first (the columns of :data:`_HEAD`)."""
    ref = summary["reference"].get("size_bytes")
    rows = []
    for c in summary["candidates"]:
        mb = c.get("effective_bytes")
        if c["tried"]:
            v = c["verdict"]
            verdict = v["overall"] + " (" + ", ".join(f"{d}: {x['decision']}" for d, x in v["dimensions"].items()) + ")"
        else:
            verdict = f"not tried: {c['why_not']}"
        kept = ", ".join(map(str, c.get("kept_layers") or [])) or "–"
        rows.append([c["name"] + (" (chosen)" if c["name"] == summary["chosen"] else ""), c["method"], kept,
                     f"{mb / 1e6:.3g}" if mb else "–", f"{mb / ref:.0%}" if mb and ref else "–",
                     _parameters(c), verdict,
                     str(c.get("explained_examples", "–")), str(c.get("seconds", "–"))])
    return rows


def _parameters(c: dict) -> str:
    """'17,405,952 non-zero' for a model with non-zero counts (pruned), else its parameter count."""
    if c.get("nonzero_parameters") is not None:
        return f"{c['nonzero_parameters']:,} non-zero"
    return f"{c['parameters']:,}" if c.get("parameters") else "–"


def _rankings(summary: dict) -> list[tuple[str, list[str]]]:
    """(method, its layers most harmful first as 'layer i: KL a -> b') for each ranked method."""
    out = []
    for c in summary["candidates"]:
        r = c.get("layer_ranking")
        if r:
            out.append((c["name"], [f"layer {x['layer']}: mean KL {r['candidate_mean_kl']:.4f} → {x['mean_kl']:.4f} "
                                    f"kept alone ({x['prediction_change_rate']:.1%} predictions changed)"
                                    for x in r["layers"]]))
    return out


def _intro(summary: dict) -> str:
    g = summary["guarantee"]
    return (f"Reference {summary['reference']['model']}, task {summary['task']}, {summary['data']['examples']} "
            f"examples of {summary['data']['source']}: {g['selection_examples']} to select, "
            f"{g['confirmation_examples']} to confirm (seed {g['seed']}, alpha {g['alpha']}).")


def _markdown(summary: dict) -> str:
    """search.md: the answer first, then the candidates by size with their selection verdicts."""
    g = summary["guarantee"]
    lines = [f"# {search_answer(summary)}", "", _intro(summary), "", f"Guarantee: {g['procedure']}", "",
             "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(summary)]
    lines += ["", "![selection verdict by size](search.png)"]
    for name, layers in _rankings(summary):
        lines += ["", f"Layers of {name}, most harmful first (partial compression keeps them uncompressed in this "
                      f"order):", ""] + [f"- {x}" for x in layers]
    if summary["confirmation_report"]:
        lines += ["", f"Confirmation of {summary['selected']}: {g['confirmation_verdict']} "
                      f"([report]({summary['confirmation_report']}); `trusteq gate {summary['confirmation_report']}`)."]
    return "\n".join(lines) + "\n"


def _html(summary: dict, png: bytes) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("trusteq", "templates"), autoescape=select_autoescape(["html", "j2"]))
    reports = [(c["name"], f"selection/{c['name']}/report.html") for c in summary["candidates"] if c["tried"]]
    if summary["confirmation_report"]:
        reports.append((f"{summary['selected']} on the confirmation split", "confirmation/report.html"))
    return env.get_template("search.html.j2").render(
        answer=search_answer(summary), intro=_intro(summary), guarantee=summary["guarantee"], head=_HEAD,
        rows=_rows(summary), rankings=_rankings(summary), reports=reports, chosen=summary["chosen"],
        png="data:image/png;base64," + base64.b64encode(png).decode())
