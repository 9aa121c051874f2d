"""Trust-preserving compression search: the smallest candidate that is still trust-equivalent, with a guarantee.

Compression tools search too (Intel Neural Compressor's accuracy-aware tuning, NNCF's accuracy control), but on
a point estimate of accuracy, and without accounting for the many tries. :func:`search` decides each candidate
by trusteq's verdict (predictions, calibration, explanations; :func:`trusteq.compare`) and keeps the claim "the
chosen model is equivalent" at level alpha by a **selection / confirmation split** (:data:`GUARANTEE`):

1. The evaluated examples are split once, by a permutation seeded with ``seed``, into a selection split and a
   disjoint confirmation split (``confirmation``, the confirmation split's share; default 0.5).
2. Candidates (models, or compression methods built by :func:`trusteq.workshop.compress`) are ordered from
   smallest to largest by the bytes their weights need (:attr:`Candidate.effective_bytes`).
3. On the selection split, each candidate is compared with the reference, smallest first, with the sequential
   verdict (cheapest dimensions first: a candidate not equivalent on its predictions or calibration is never
   explained). The first that is equivalent is selected; larger ones are not tried.
4. The selected candidate alone is compared on the confirmation split. It is *chosen* only if it is equivalent
   there; otherwise nothing is chosen (no second candidate is tried on the confirmation data).

The confirmation data take no part in the selection, so step 4 is one level-alpha verdict on a candidate fixed
before it: P(a candidate that is not equivalent is chosen) <= alpha, however many candidates were tried and
however they were selected (each dimension of the verdict is a level-alpha test and a candidate is equivalent
only if all are: an intersection-union test, Berger 1982). ``tests/test_search.py`` checks it by simulation with
every candidate exactly on its margin.

Outputs (:func:`search`, ``trusteq search``) in ``out``:

* ``search.json``: ``candidates`` (each: ``name``, ``method``, ``size_bytes``, ``parameters``,
  ``nonzero_parameters``, ``effective_bytes``, ``tried``, ``verdict`` on the selection split as in report.json,
  ``explained_examples``, ``seconds``), ``selected``, ``chosen`` (a name or None), ``chosen_report`` (the
  confirmation report.json, relative to ``out``), ``guarantee`` and the settings;
* ``selection/<candidate>/`` and ``confirmation/``: the full reports (:func:`trusteq.write_report`); ``trusteq
  gate confirmation/report.json`` gates a release on the chosen model;
* ``search.md`` and ``search.png``: the candidates by size with their verdicts (per dimension in the figure);
* ``chosen/``: the chosen model's folder (a copy), where the candidate is a folder; ``trusteq search`` builds
  its candidates under ``candidates/<method>``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import Dataset
from .errors import SettingsError
from .cache import atomic_write_bytes, atomic_write_text
from .metrics.verdict import EQUIVALENT, check_margins
from .settings import CompareSettings

__all__ = ["Candidate", "search", "select_and_confirm", "split_dataset", "build_candidates", "GUARANTEE",
           "CONFIRMATION"]

#: The share of the examples kept for the confirmation split.
CONFIRMATION = 0.5

#: The procedure that keeps "the chosen model is equivalent" at level alpha (search.json ``guarantee.procedure``).
GUARANTEE = ("selection/confirmation split: candidates are compared on the selection split only, smallest first, "
             "and the first equivalent one is selected; it alone is then compared on the disjoint confirmation "
             "split and chosen only if equivalent there. The confirmation data take no part in the selection, so "
             "P(a candidate that is not equivalent is chosen) <= alpha however many candidates were tried.")


@dataclass
class Candidate:
    """A compressed model the search may choose.

    Attributes
    ----------
    name : str
    model : str or PairClassifier
        A model folder (or anything :func:`trusteq.compare` accepts as a candidate).
    method : str
        How it was made (``int8``, ``prune:0.3``, ...; ``given`` for a model passed in).
    size_bytes : int or None
        Bytes of its weights on disk.
    parameters, nonzero_parameters : int or None
        Its parameter count, and how many are non-zero (pruning).
    """

    name: str
    model: object
    method: str = "given"
    size_bytes: int | None = None
    parameters: int | None = None
    nonzero_parameters: int | None = None
    record: dict = field(default_factory=dict)

    @property
    def effective_bytes(self) -> float:
        """The bytes its weights need: on disk, scaled by the non-zero share for a pruned model (stored sparse,
        index overhead left out); ``inf`` when unknown (tried last)."""
        if self.size_bytes is None:
            return float("inf")
        if self.parameters and self.nonzero_parameters is not None:
            return self.size_bytes * self.nonzero_parameters / self.parameters
        return float(self.size_bytes)

    def sizes(self) -> dict:
        return {"size_bytes": self.size_bytes, "parameters": self.parameters,
                "nonzero_parameters": self.nonzero_parameters,
                "effective_bytes": None if np.isinf(self.effective_bytes) else round(self.effective_bytes)}


def build_candidates(reference: str, methods: Sequence[str], work, data=None, task: str | None = None,
                     progress: bool = True) -> list[Candidate]:
    """Each method of :func:`trusteq.workshop.compress` applied to the ``reference`` folder, into ``work/<method>``
    (a folder already built is reused); ``data`` and ``task`` for the methods that need them (int8 of an image
    classifier, drop-layers). SettingsError: an unknown method (before anything is built)."""
    from .workshop.common import PROVENANCE, parse_method
    from .workshop.compress import compress

    for method in methods:
        parse_method(method)
    out = []
    for method in methods:
        folder = Path(work) / method.replace(":", "-")
        info = json.loads((folder / PROVENANCE).read_text()) if (folder / PROVENANCE).exists() else \
            compress(reference, method, folder, data=data, task=task, progress=progress)
        out.append(Candidate(folder.name, str(folder), method, round(info["size_mb"] * 1e6),
                             info.get("parameters"), info.get("nonzero_parameters")))
    return out


def split_dataset(dataset: Dataset, confirmation: float = CONFIRMATION, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(selection, confirmation): a permutation seeded with ``seed`` puts ``round(confirmation * n)`` examples in
    the confirmation split and the rest in the selection split, each in the dataset's order; each split's
    ``sha256`` derives from the data's and the split.

    Raises
    ------
    SettingsError
        ``confirmation`` outside (0, 1), or a split that would be empty.
    """
    if not 0 < confirmation < 1:
        raise SettingsError(f"confirmation must be a share in (0, 1), got {confirmation}")
    n = len(dataset)
    k = int(round(confirmation * n))
    if k < 1 or k > n - 1:
        raise SettingsError(f"{n} examples cannot be split {1 - confirmation:g}/{confirmation:g}: a split is empty")
    confirm = np.zeros(n, dtype=bool)
    confirm[np.random.default_rng(seed).permutation(n)[:k]] = True

    def part(mask, name):
        digest = hashlib.sha256(f"{dataset.sha256}:{name}:{seed}:{confirmation}".encode()).hexdigest()
        return Dataset([e for e, m in zip(dataset.examples, mask) if m], dataset.task, dataset.label_names,
                       dataset.source, digest, dataset.format, dataset.n_rows, dataset.limit, dataset.dropped)

    return part(~confirm, "selection"), part(confirm, "confirmation")


def search(reference, candidates, data, task: str, out, *, confirmation: float = CONFIRMATION,
           settings: CompareSettings | None = None, **overrides) -> dict:
    """Choose the smallest candidate that is trust-equivalent to ``reference``, keeping the claim at level alpha.

    Parameters
    ----------
    reference : str, path or PairClassifier
        As for :func:`trusteq.compare`.
    candidates : sequence of Candidate
        (:func:`build_candidates` makes them from compression methods.)
    data : str, path or Dataset
        The evaluated examples, split into selection and confirmation (:func:`split_dataset`).
    task : str
    out : path
        Output folder (module docstring).
    confirmation : float, default=0.5
        The confirmation split's share of the examples.
    settings, **overrides
        The comparison's options (:class:`~trusteq.settings.CompareSettings`); ``seed`` also seeds the split.

    Returns
    -------
    dict: what ``search.json`` holds.

    Raises
    ------
    SettingsError
        No candidate, two with one name, a bad ``confirmation``; and every error of :func:`trusteq.compare`.
    """
    from .comparison import compare, dataset_of
    from .report import write_report
    from .validation import check_output_dir

    s = (settings or CompareSettings()).replace(**overrides)
    names = [c.name for c in candidates]
    if not names or len(set(names)) != len(names):
        raise SettingsError(f"the search needs candidates with distinct names, got {names}")
    out = Path(out)
    check_output_dir(out, create=False)
    data = dataset_of(data, task, s)
    selection, confirmation_split = split_dataset(data, confirmation, s.seed)
    ref_name = (s.names[0] if s.names else None) or "reference"
    tried: dict[str, dict] = {}  # candidate -> its selection verdict (the first comparison of it)

    def decide(cand: Candidate, split: Dataset, folder: Path) -> str:
        started = time.time()
        result = compare(reference, [cand.model], split, task, s.replace(names=(ref_name, cand.name)))
        write_report(result, folder)
        comparison = result["comparisons"][cand.name]
        tried.setdefault(cand.name, {"verdict": comparison["verdict"],
                                     "explained_examples": comparison.get("explained_examples", 0),
                                     "seconds": round(time.time() - started, 1)})
        return comparison["verdict"]["overall"]

    order = sorted(candidates, key=lambda c: c.effective_bytes)  # stable: ties keep the given order
    selected, confirmed = select_and_confirm(order, lambda c: decide(c, selection, out / "selection" / c.name),
                                             lambda c: decide(c, confirmation_split, out / "confirmation"))
    chosen = selected.name if confirmed == EQUIVALENT else None
    if chosen is not None and isinstance(selected.model, (str, Path)) and Path(selected.model).is_dir():
        shutil.copytree(selected.model, out / "chosen", dirs_exist_ok=True)  # a normal model folder
    records = [{"name": c.name, "method": c.method, **c.sizes(), "tried": c.name in tried,
                **tried.get(c.name, {"why_not": f"a smaller candidate ({getattr(selected, 'name', None)}) was "
                                                  f"selected"})} for c in order]
    guarantee = {"procedure": GUARANTEE, "alpha": s.alpha, "seed": s.seed, "confirmation_share": confirmation,
                 "selection_examples": len(selection), "confirmation_examples": len(confirmation_split),
                 "confirmation_verdict": confirmed}
    summary = {"reference": reference if isinstance(reference, str) else getattr(reference, "name", str(reference)),
               "task": task, "data": {"source": data.source, "sha256": data.sha256, "examples": len(data)},
               "candidates": records, "selected": getattr(selected, "name", None), "chosen": chosen,
               "chosen_report": "confirmation/report.json" if selected else None, "guarantee": guarantee,
               "margins": check_margins(s.margins, s.alpha)}
    atomic_write_text(out / "search.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_bytes(out / "search.png", _size_trust_png(summary))
    atomic_write_text(out / "search.md", _markdown(summary))
    return summary


def select_and_confirm(order: Sequence, select, confirm) -> tuple[object | None, str | None]:
    """The search's procedure (module docstring, steps 3 and 4) on candidates ``order``ed smallest first:
    ``select(candidate)`` and ``confirm(candidate)`` give a candidate's overall verdict on the selection and on
    the confirmation split. Returns (the selected candidate or None, its confirmation verdict or None); the
    candidate is chosen when that verdict is "equivalent". ``confirm`` is called at most once."""
    for cand in order:
        if select(cand) == EQUIVALENT:
            return cand, confirm(cand)
    return None, None


def _size_trust_png(summary: dict) -> bytes:
    """search.png: each candidate (by the bytes it needs, smallest left) against its selection verdict per
    dimension and overall; a grey cross where it was not tried."""
    import io

    from matplotlib.figure import Figure

    from .display import DECISION_COLOURS

    cands = summary["candidates"]
    dims = list(dict.fromkeys(d for c in cands if c["tried"] for d in c["verdict"]["dimensions"])) + ["overall"]
    fig = Figure(figsize=(1.2 + 1.1 * len(cands), 0.9 + 0.35 * len(dims)))
    ax = fig.subplots()
    for x, c in enumerate(cands):
        for y, dim in enumerate(dims):
            if not c["tried"]:
                ax.scatter(x, y, marker="x", color="#adb5bd")
                continue
            v = c["verdict"]
            decision = v["overall"] if dim == "overall" else v["dimensions"].get(dim, {}).get("decision")
            ax.scatter(x, y, s=120, color=DECISION_COLOURS.get(decision, "#adb5bd"))
    sizes = [f"{c['effective_bytes'] / 1e6:.2f} MB" if c["effective_bytes"] else "size ?" for c in cands]
    ax.set_xticks(range(len(cands)), [f"{c['name']}{' (chosen)' if c['name'] == summary['chosen'] else ''}\n{s}"
                                      for c, s in zip(cands, sizes)], fontsize=7)
    ax.set_yticks(range(len(dims)), dims, fontsize=7)
    ax.set_xlim(-0.5, len(cands) - 0.5)
    ax.set_ylim(-0.5, len(dims) - 0.5)
    ax.set_title("selection verdict by size (green equivalent, orange inconclusive, red not equivalent, "
                 "x not tried)", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _markdown(summary: dict) -> str:
    """search.md: the answer first, then the candidates by size with their selection verdicts."""
    chosen = summary["chosen"]
    head = (f"# Smallest trust-equivalent model: {chosen}" if chosen else
            "# No candidate was shown trust-equivalent" + (f" ({summary['selected']} was selected, but not "
                                                          f"equivalent on the confirmation split)"
                                                          if summary["selected"] else ""))
    g = summary["guarantee"]
    lines = [head, "", f"Reference {summary['reference']}, task {summary['task']}, {summary['data']['examples']} "
             f"examples: {g['selection_examples']} to select, {g['confirmation_examples']} to confirm (seed "
             f"{g['seed']}, alpha {g['alpha']}).", "", g["procedure"], "",
             "| candidate | method | bytes needed | non-zero parameters | selection verdict | explained |",
             "|---|---|---|---|---|---|"]
    for c in summary["candidates"]:
        verdict = c["verdict"]["overall"] if c["tried"] else f"not tried: {c['why_not']}"
        lines.append(f"| {c['name']} | {c['method']} | {c['effective_bytes'] or '–'} | "
                     f"{c['nonzero_parameters'] or c['parameters'] or '–'} | {verdict} | "
                     f"{c.get('explained_examples', '–')} |")
    lines += ["", "![selection verdict by size](search.png)"]
    if summary["chosen_report"]:
        lines += ["", f"Confirmation: {g['confirmation_verdict']} ([report]({summary['chosen_report']}); "
                      f"`trusteq gate {summary['chosen_report']}`)."]
    return "\n".join(lines) + "\n"
