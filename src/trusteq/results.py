"""What a comparison produces, and report.json assembled in one place.

* :class:`ExplanationRun`, :class:`Alignment`, :class:`ExplainerResult`: the
  explanation stage's runs and per-example alignments;
* :class:`CompareResult`: everything :func:`trusteq.compare` returns, its
  ``summary`` being the content of report.json;
* :func:`build_summary`: the only place report.json's content is assembled;
* :meth:`CompareResult.for_study`: the documented step by which a study adds
  its record (and writes every recorded path relative to the study file) to a
  new result, leaving the comparison's own untouched.
"""

from __future__ import annotations

import copy
import os
import platform
import time
import warnings
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np

from .data import Dataset
from .metrics.calibration import STRATEGIES

__all__ = ["ExplanationRun", "Alignment", "ExplainerResult", "CompareResult", "build_summary", "relative_paths",
           "report_paths"]


@dataclass
class ExplanationRun:
    """One model's explanations of the explained examples with one seed.

    Attributes
    ----------
    model : str
    role : {"reference", "candidate"}
    seed : int
    explanations : list of Explanation (pair protocol) or PaperExplanation (paper protocol)
        One per explained example, in order.
    """

    model: str
    role: Literal["reference", "candidate"]
    seed: int
    explanations: list


@dataclass
class Alignment:
    """Per-example alignment of one model's runs with the reference's runs.

    Attributes
    ----------
    kind : {"candidate", "noise_floor", "candidate_floor"}
        A candidate against the reference, the reference against itself with
        other perturbations (the explainer's noise floor on the reference), or
        a candidate against itself (its own floor).
    model : str
        The candidate, or the reference for its noise floor.
    seeds : list of (int, int)
        Per repeat, the seeds of the reference run and of the compared run.
    per_repeat : list of dict metric -> ndarray, shape (n_explained,)
        Per repeat, each example's value of every alignment metric; NaN where
        undefined (no word features).
    """

    kind: Literal["candidate", "noise_floor", "candidate_floor"]
    model: str
    seeds: list[tuple[int, int]]
    per_repeat: list[dict[str, np.ndarray]]

    @property
    def values(self) -> dict[str, np.ndarray]:
        """Each example's value of every metric, averaged over repeats, shape (n_explained,)."""
        if len(self.per_repeat) == 1:
            return self.per_repeat[0]
        with warnings.catch_warnings():  # an example undefined in every repeat stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return {k: np.nanmean([t[k] for t in self.per_repeat], axis=0) for k in self.per_repeat[0]}

    @property
    def label(self) -> str:
        return "noise floor" if self.kind == "noise_floor" else self.model


@dataclass
class ExplainerResult:
    """Every run of one explainer and the alignments measured from them."""

    explainer: str
    runs: list[ExplanationRun]
    alignments: list[Alignment]

    def run(self, model: str, seed: int) -> ExplanationRun:
        """The run of ``model`` with ``seed``; KeyError if there is none."""
        for r in self.runs:
            if r.model == model and r.seed == seed:
                return r
        raise KeyError(f"no {self.explainer} run of {model!r} with seed {seed}")

    def alignment(self, model: str) -> Alignment:
        """The alignment of candidate ``model`` with the reference."""
        return next(a for a in self.alignments if a.kind == "candidate" and a.model == model)

    @property
    def noise_floor(self) -> Alignment:
        """The reference's own floor."""
        return next(a for a in self.alignments if a.kind == "noise_floor")

    def candidate_floor(self, model: str) -> Alignment:
        """Candidate ``model``'s own floor."""
        return next(a for a in self.alignments if a.kind == "candidate_floor" and a.model == model)

    def explained(self, model: str) -> int:
        """How many examples ``model`` was explained on (a prefix of the reference's); 0 if none."""
        return max((len(next(iter(a.per_repeat[0].values()))) for a in self.alignments if a.model == model
                    and a.kind != "noise_floor"), default=0)

    def subset(self, index) -> "ExplainerResult":
        """The alignments at explained examples ``index`` only (sorted positions; an alignment measured on a
        shorter prefix keeps the positions inside it), for deciding a slice; the runs are kept whole."""
        index = np.asarray(index, dtype=np.int64)

        def cut(a: Alignment) -> Alignment:
            return replace(a, per_repeat=[{k: v[index[index < len(v)]] for k, v in t.items()} for t in a.per_repeat])

        return replace(self, alignments=[cut(a) for a in self.alignments])


@dataclass
class CompareResult:
    """Everything a comparison produced.

    Attributes
    ----------
    summary : dict
        The content of ``report.json`` (see docs/usage.md, "Outputs", for its keys).
    dataset : Dataset
    probs : dict name -> ndarray (n, K)
        Probabilities of each model in the dataset's class order.
    explanations : dict explainer -> ExplainerResult
    explained_ids : list of str
        Ids of the explained examples.
    """

    summary: dict
    dataset: Dataset
    probs: dict[str, np.ndarray]
    explanations: dict[str, ExplainerResult] = field(default_factory=dict)
    explained_ids: list[str] = field(default_factory=list)

    def __getitem__(self, key):
        return self.summary[key]

    def to_dict(self) -> dict:
        return self.summary

    def for_study(self, study: dict, base: Path, home_work: Path | None = None) -> "CompareResult":
        """This result as a study reports it: :meth:`relative_to` ``base``, the study file's folder, with the
        ``study`` record added. This result is left as it is."""
        return self.relative_to(base, home_work, study=study)

    def relative_to(self, base: Path, home_work=None, **records) -> "CompareResult":
        """A copy whose summary has every path of this machine it records (data and model sources and folders,
        the models' provenance, ``records`` added at the top level) written relative to ``base``, so a committed
        report does not name the machine's folders; paths inside ``home_work`` (a folder, or a list of them,
        under the home folder) or trusteq's cache (pulled LLMs) are written from ``~``. This result is left as
        it is."""
        summary = copy.deepcopy(self.summary)
        data = summary.get("data", {})
        if "source" in data:
            data["source"] = report_paths(data["source"], base, home_work)
        summary["models"] = report_paths(summary.get("models", {}), base, home_work)
        summary.update(report_paths(records, base, home_work))
        return replace(self, summary=summary)


def build_summary(*, dataset, models, settings, protocol, boot, explained, model_section: dict, agreement: dict,
                  alignment: dict, verdicts: dict, slices: dict, slice_record: dict, noise_floor: dict, margins: dict,
                  batching: dict, device,
                  executor: dict, timings: dict) -> dict:
    """The content of report.json (see docs/usage.md, "Outputs"), assembled once from the stages' results.

    ``settings`` is the comparison's :class:`~trusteq.settings.CompareSettings`, ``protocol`` its
    :class:`~trusteq.protocols.Protocol` (which writes its own record), ``explained`` the explanation stage's
    :class:`~trusteq.protocols.Explained`; ``agreement``, ``alignment`` and ``verdicts`` are per candidate, and
    ``comparisons.<candidate>`` joins them in that order.
    """
    s, y, record = settings, dataset.y, protocol.record(settings)
    comparisons = {c: {**agreement[c], **alignment.get(c, {}), **explained.stops.get(c, {}), "verdict": verdicts[c],
                       **({"slices": slices[c]} if c in slices else {})}
                   for c in agreement}
    own = {k: v for k, v in record.items() if k not in ("protocol", "explain_seeds", "verdict_measure", "explain_block")}
    return {
        "trusteq_version": _version("trusteq"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "task": dataset.task,
        "labels": list(dataset.label_names),
        "seed": s.seed,
        "reference": models[0].name,
        "candidates": [m.name for m in models[1:]],
        "data": {"source": dataset.source, "sha256": dataset.sha256, "format": dataset.format, "texts": dataset.kind,
                 "rows": dataset.n_rows, "examples": len(dataset), "limit": dataset.limit,
                 "dropped": dataset.dropped,
                 "label_counts": {name: int(np.sum(y == k)) for k, name in enumerate(dataset.label_names)}},
        "settings": {
            "n_bins": s.n_bins, "binning": list(STRATEGIES), "top_k": list(s.top_k),
            "explainers": list(s.explainers),
            "lime_samples": s.lime_samples, "shap_evals": s.shap_evals, "explained_examples": len(explained.ids),
            "explain_limit": s.explain_limit, "explain_all": s.explain_all, "explain_block": record["explain_block"],
            "calibration_test": s.calibration_test, "explain_class": s.explain_class, "explain_repeats": s.explain_repeats, "protocol": record["protocol"],
            "explain_seeds": record["explain_seeds"], "explain_runtime": explained.runtime,
            "max_length": s.max_length, "batch_size": s.batch_size, "bootstrap": boot.describe(),
            "alpha": s.alpha, "verdict_level": 1 - 2 * s.alpha, "margins": margins,
            "verdict_measure": record["verdict_measure"], "batching": batching,
            "explain_exact": {e: protocol.exact_record(r, s) for e, r in explained.results.items()},
            **slice_record, **_prompt_record(s, models), "device": str(device), "executor": executor, **own,
        },
        "versions": _versions(),
        "models": model_section,
        "comparisons": comparisons,
        "noise_floor": noise_floor,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _prompt_record(settings, models) -> dict:
    """``settings.prompt`` of a prompted-LLM comparison: template, label words, and per model whether its chat
    template wrapped the prompt (absent otherwise)."""
    prompt = settings.prompt()
    if prompt is None:
        return {}
    chat = {m.name: getattr(m.model, "chat_template", None) for m in models}
    return {"prompt": {**prompt.record(), "chat_template": chat}}


def relative_paths(value, base: Path, home_work=None):
    """``value`` with every absolute path string in it (recursively through dicts and lists) made relative to
    ``base``, or written from ``~`` when inside ``home_work`` (a folder under the home folder, or a list of
    them); other values unchanged. Returns a new value."""
    roots = _roots(home_work)
    if isinstance(value, dict):
        return {k: relative_paths(v, base, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, base, roots) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        home = Path.home()
        if any(Path(value).is_relative_to(r) and Path(r).is_relative_to(home) for r in roots):
            return "~/" + Path(value).relative_to(home).as_posix()
        try:
            return os.path.relpath(value, base)
        except ValueError:  # another drive (Windows): no relative path exists
            return value
    return value


def report_paths(value, base: Path, home_work=None):
    """:func:`relative_paths` as reports write them: trusteq's cache (pulled LLMs) is written from ``~`` too."""
    from .cache import cache_dir

    return relative_paths(value, base, [*_roots(home_work), cache_dir()])


def _roots(home_work) -> list:
    """``home_work`` (None, a folder, or a list of folders) as a list."""
    return [home_work] if isinstance(home_work, (str, Path)) else list(home_work or [])


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("trusteq", "torch", "transformers", "tokenizers", "onnxruntime", "lime", "shap", "numpy", "scipy",
                 "scikit-learn"):
        out[dist] = _version(dist)
    return out
