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
   explained). The first that is equivalent is selected; larger ones are not tried. A failing ``int8`` or
   ``prune:S`` candidate of a text encoder is compressed again with its most harmful encoder layers kept
   uncompressed, one more at a time, each such candidate queued by its size (:class:`PartialCompression`).
4. The selected candidate alone is compared on the confirmation split. It is *chosen* only if it is equivalent
   there; otherwise nothing is chosen (no second candidate is tried on the confirmation data).

The confirmation data take no part in the selection, so step 4 is one level-alpha verdict on a candidate fixed
before it: P(a candidate that is not equivalent is chosen) <= alpha, however many candidates were tried and
however they were selected (each dimension of the verdict is a level-alpha test and a candidate is equivalent
only if all are: an intersection-union test, Berger 1982). ``tests/test_search.py`` checks it by simulation with
every candidate exactly on its margin.

Outputs (:func:`search`, ``trusteq search``) in ``out``:

* ``search.json``: ``reference``, ``candidates`` (each: ``name``, ``method``, ``model``, ``size_bytes``,
  ``parameters``, ``nonzero_parameters``, ``effective_bytes``, ``kept_layers``, ``tried``, ``verdict`` on the
  selection split as in report.json, ``explained_examples``, ``seconds``; ``partial_of`` and
  ``layer_ranking`` from partial compression), ``selected``, ``chosen`` (a name or None), ``chosen_report``
  (the chosen model's confirmation report.json, or None), ``confirmation_report``, ``guarantee`` and the
  margins; every path relative to ``out``;
* ``selection/<candidate>/`` and ``confirmation/``: the full reports (:func:`trusteq.write_report`); ``trusteq
  gate confirmation/report.json`` gates a release on the chosen model;
* ``search.html``, ``search.md`` and ``search.png``: the candidates by size with their verdicts (per dimension
  in the figure; :mod:`trusteq.search_report`);
* ``chosen/``: the chosen model's folder (a copy), where the candidate is a folder; ``trusteq search`` builds
  its candidates under ``candidates/<method>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import Dataset
from .errors import SettingsError
from .metrics.verdict import EQUIVALENT, check_margins
from .results import report_paths
from .search_report import write_search_report
from .settings import CompareSettings

__all__ = ["Candidate", "search", "select_and_confirm", "split_dataset", "build_candidates", "compressed",
           "PartialCompression", "GUARANTEE", "CONFIRMATION"]

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
    source : str or None
        The folder it was compressed from (:func:`build_candidates`): a failing ``int8`` or ``prune:S`` candidate
        with a source is compressed again with layers kept uncompressed (:class:`PartialCompression`).
    kept_layers : tuple of int
        Encoder layers left uncompressed (0-based; empty: the method applied to every layer).
    record : dict
        What the search adds to its entry in ``search.json`` (``layer_ranking``, ``partial_of``).
    """

    name: str
    model: object
    method: str = "given"
    size_bytes: int | None = None
    parameters: int | None = None
    nonzero_parameters: int | None = None
    source: str | None = None
    kept_layers: tuple[int, ...] = ()
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
                "effective_bytes": None if np.isinf(self.effective_bytes) else round(self.effective_bytes),
                "kept_layers": list(self.kept_layers)}


def build_candidates(reference: str, methods: Sequence[str], work, data=None, task: str | None = None,
                     progress: bool = True) -> list[Candidate]:
    """Each method of :func:`trusteq.workshop.compress` applied to the ``reference`` folder, into ``work/<method>``
    (a folder already built is reused); ``data`` and ``task`` for the methods that need them (int8 of an image
    classifier, drop-layers). SettingsError: an unknown method (before anything is built)."""
    from .workshop.common import PROVENANCE, parse_method
    from .workshop.compress import compress

    for method in methods:
        parse_method(method)
    return [compressed(reference, method, work, data=data, task=task, progress=progress) for method in methods]


def compressed(reference: str, method: str, work, keep_layers: Sequence[int] = (), data=None,
               task: str | None = None, progress: bool = True) -> Candidate:
    """The candidate ``method`` of :func:`trusteq.workshop.compress` makes of the ``reference`` folder, the encoder
    layers ``keep_layers`` left uncompressed, in ``work/<name>`` (reused when built): named after the method
    (``prune:0.3`` -> ``prune-0.3``), ``-keep-2-4`` added for layers 2 and 4 kept. A folder built from another
    model is built again."""
    from .workshop.common import PROVENANCE
    from .workshop.compress import compress

    keep = tuple(sorted(keep_layers))
    name = method.replace(":", "-") + ("-keep-" + "-".join(map(str, keep)) if keep else "")
    folder = Path(os.path.abspath(Path(work) / name))
    info = json.loads((folder / PROVENANCE).read_text()) if (folder / PROVENANCE).exists() else {}
    if info.get("source_model") and Path(info["source_model"]).resolve() != Path(reference).resolve():
        shutil.rmtree(folder)  # a previous search's candidate, of another reference
        info = {}
    if not info:
        info = compress(reference, method, folder, data=data, task=task, progress=progress, keep_layers=keep)
    return Candidate(name, str(folder), method, round(info["size_mb"] * 1e6), info.get("parameters"),
                     info.get("nonzero_parameters"), os.path.abspath(reference), keep)


#: The verdict's dimensions the partial compression's ranking measures.
_RANKED = ("predictions", "calibration")


class PartialCompression:
    """The successor of a failing candidate: the same method with one more encoder layer kept uncompressed.

    NNCF's accuracy control (``quantize_with_accuracy_control``) ranks layers by their contribution to the
    accuracy drop and reverts the most harmful to float; here the contribution is to the distance from the
    reference. For a candidate made by ``int8`` or ``prune:S`` of a text encoder with L layers
    (:func:`~trusteq.workshop.compress.partial_applies`), each layer i is kept alone uncompressed and ranked by
    ``kl_reduction_i = KL(candidate) - KL(layer i kept)``, the mean KL divergence KL(reference || model) of the
    class probabilities over the selection split (one prediction pass per layer, ``layer_ranking`` in
    ``search.json``). KL moves with flips and with confidence (calibration) alike, and costs a prediction
    pass where ranking by explanations would cost thousands of model evaluations per example. The candidate
    keeping the k most harmful layers has the successor keeping the k + 1 most harmful; none once L - 1 are
    kept (only the embeddings and the head would be left compressed), and none once its predictions and calibration are equivalent (what the
    ranking measures: a candidate failing only on its explanations is not compressed again, so explanations
    are computed for at most one candidate of each chain). Every successor is decided on the selection split
    like any candidate, so the guarantee holds (:data:`GUARANTEE`).

    Parameters
    ----------
    reference : str, path or PairClassifier
    selection : Dataset
        The selection split.
    settings : CompareSettings
        The comparison's (so predictions come from the cache the verdicts filled).
    """

    def __init__(self, reference, selection: Dataset, settings: CompareSettings):
        self.reference, self.selection, self.settings = reference, selection, settings
        self.rankings: dict[tuple[str, str], list[int]] = {}  # (source, method) -> layers, most harmful first

    def __call__(self, cand: Candidate, verdict: dict) -> Candidate | None:
        """The successor of ``cand``, not equivalent on the selection split with ``verdict`` (report.json's), or
        None."""
        from .workshop.compress import encoder_layers, partial_applies

        if cand.source is None or not partial_applies(cand.source, cand.method):
            return None
        if all(verdict["dimensions"][d]["decision"] == EQUIVALENT for d in _RANKED if d in verdict["dimensions"]):
            cand.record["partial_stop"] = "predictions and calibration equivalent: only explanations failed"
            return None
        n_layers = encoder_layers(cand.source)
        key = (cand.source, cand.method)
        if key not in self.rankings:
            self.rankings[key] = self._rank(cand, n_layers)
        k = len(cand.kept_layers) + 1
        if k >= n_layers:
            return None
        nxt = compressed(cand.source, cand.method, Path(cand.model).parent, self.rankings[key][:k], progress=False)
        nxt.record["partial_of"] = cand.method
        return nxt

    def _rank(self, cand: Candidate, n_layers: int) -> list[int]:
        """Layers, most harmful first (ties: lower layer first); the ranking recorded on ``cand``."""
        from .comparison import probabilities
        from .metrics.agreement import mean_kl_divergence

        started = time.time()
        work = Path(cand.model).parent
        singles = [compressed(cand.source, cand.method, work, (i,), progress=False) for i in range(n_layers)]
        p_ref, p_cand, *p_singles = probabilities([self.reference, cand.model, *(c.model for c in singles)],
                                                  self.selection, self.settings)
        base = mean_kl_divergence(p_ref, p_cand)
        kls = [mean_kl_divergence(p_ref, p) for p in p_singles]
        rows = [{"layer": i, "mean_kl": kls[i], "kl_reduction": base - kls[i],
                 "prediction_change_rate": float(np.mean(p.argmax(1) != p_ref.argmax(1)))}
                for i, p in enumerate(p_singles)]
        ranking = sorted(range(n_layers), key=lambda i: -rows[i]["kl_reduction"])
        cand.record["layer_ranking"] = {
            "measure": "mean KL(reference || model) on the selection split, with the layer alone uncompressed",
            "candidate_mean_kl": base, "layers": [rows[i] for i in ranking],
            "seconds": round(time.time() - started, 1)}
        return ranking


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
           settings: CompareSettings | None = None, home_work=None, **overrides) -> dict:
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
    home_work : path or list of paths, optional
        Folders under the home folder whose paths the reports write from ``~``; every other path of this
        machine is written relative to the file that records it
        (:meth:`~trusteq.results.CompareResult.relative_to`).

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
    for stale in ("selection", "confirmation", "chosen"):  # a previous run's reports must not be read as this one's
        shutil.rmtree(out / stale, ignore_errors=True)
    # Local files and folders made absolute, so every report can write them relative to itself.
    reference, data = _absolute(reference), dataset_of(_absolute(data), task, s)
    candidates = [replace(c, model=_absolute(c.model)) for c in candidates]
    selection, confirmation_split = split_dataset(data, confirmation, s.seed)
    ref_name = (s.names[0] if s.names else None) or "reference"
    tried: dict[str, dict] = {}  # candidate -> its selection verdict (the first comparison of it)

    def decide(cand: Candidate, split: Dataset, folder: Path) -> str:
        started = time.time()
        result = compare(reference, [cand.model], split, task, s.replace(names=(ref_name, cand.name)))
        write_report(result.relative_to(folder, home_work), folder)
        comparison = result["comparisons"][cand.name]
        tried.setdefault(cand.name, {"verdict": comparison["verdict"],
                                     "explained_examples": comparison.get("explained_examples", 0),
                                     "seconds": round(time.time() - started, 1)})
        return comparison["verdict"]["overall"]

    order = sorted(candidates, key=lambda c: c.effective_bytes)  # stable: ties keep the given order
    seen, partial = list(order), PartialCompression(reference, selection, s)

    def successor(cand: Candidate) -> Candidate | None:
        nxt = partial(cand, tried[cand.name]["verdict"])
        if nxt is not None and nxt.name not in names:
            seen.append(nxt)
            return nxt
        return None

    selected, confirmed = select_and_confirm(order, lambda c: decide(c, selection, out / "selection" / c.name),
                                             lambda c: decide(c, confirmation_split, out / "confirmation"),
                                             successor, key=lambda c: c.effective_bytes)
    chosen = selected.name if confirmed == EQUIVALENT else None
    if chosen is not None and isinstance(selected.model, (str, Path)) and Path(selected.model).is_dir():
        shutil.copytree(selected.model, out / "chosen", dirs_exist_ok=True)  # a normal model folder
    records = [{"name": c.name, "method": c.method, **c.sizes(), "tried": c.name in tried,
                **tried.get(c.name, {"why_not": f"a smaller candidate ({getattr(selected, 'name', None)}) was "
                                                  f"selected"}), **c.record,
                "model": str(c.model) if isinstance(c.model, (str, Path)) else c.name}
               for c in sorted(seen, key=lambda c: c.effective_bytes)]
    guarantee = {"procedure": GUARANTEE, "alpha": s.alpha, "seed": s.seed, "confirmation_share": confirmation,
                 "selection_examples": len(selection), "confirmation_examples": len(confirmation_split),
                 "confirmation_verdict": confirmed}
    summary = {"reference": _reference_record(reference), "task": task,
               "data": {"source": data.source, "sha256": data.sha256, "examples": len(data)},
               "candidates": records, "selected": getattr(selected, "name", None), "chosen": chosen,
               "chosen_report": "confirmation/report.json" if chosen else None,
               "confirmation_report": "confirmation/report.json" if selected else None, "guarantee": guarantee,
               "margins": check_margins(s.margins, s.alpha)}
    summary = report_paths(summary, out, home_work)
    write_search_report(summary, out)
    return summary


def _absolute(model_or_data):
    """A local file or folder as its absolute path; anything else (a hub id, a loaded model, a Dataset) as it is."""
    if isinstance(model_or_data, (str, Path)) and Path(model_or_data).exists():
        return os.path.abspath(model_or_data)
    return model_or_data


def _reference_record(reference) -> dict:
    """The reference's name or folder, and the bytes of its weights where it is a folder."""
    from .workshop.common import model_stats

    if not isinstance(reference, (str, Path)):
        return {"model": getattr(reference, "name", str(reference))}
    stats = model_stats(reference) if Path(reference).is_dir() else {}
    return {"model": str(reference),
            "size_bytes": round(stats["size_mb"] * 1e6) if stats.get("size_mb") else None,
            "parameters": stats.get("parameters")}


def select_and_confirm(order: Sequence, select, confirm, successor=None, key=None) -> tuple[object | None, str | None]:
    """The search's procedure (module docstring, steps 3 and 4) on candidates ``order``ed smallest first:
    ``select(candidate)`` and ``confirm(candidate)`` give a candidate's overall verdict on the selection and on
    the confirmation split; ``successor(candidate)`` (optional) a candidate to try after one that is not
    equivalent (or None), queued by ``key`` (its size; stable, so ties keep their order; no key: last).
    Returns (the selected candidate or None, its confirmation verdict or None); the candidate is chosen when
    that verdict is "equivalent". ``confirm`` is called at most once, and only ``select``'s answers decide
    which candidate it is called on."""
    queue = list(order)
    while queue:
        cand = queue.pop(0)
        if select(cand) == EQUIVALENT:
            return cand, confirm(cand)
        nxt = successor(cand) if successor is not None else None
        if nxt is not None:
            queue.append(nxt)
            if key is not None:
                queue.sort(key=key)
    return None, None
