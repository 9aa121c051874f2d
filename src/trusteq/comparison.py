"""The comparison: is each candidate model trust-equivalent to the reference?

:func:`compare` runs in stages, data flowing one way:

1. load the data and the models, each model's classes matched to the task's labels;
2. predict (cached);
3. calibration of every model and agreement of every candidate with the
   reference, with bootstrap intervals;
4. explain a seeded sample of examples with every model and every explainer,
   plus the noise-floor runs, and measure alignment: trusteq's pair-aware
   explanations (``protocol="pair"``) or the paper's settings
   (``protocol="paper"``, descriptive only);
5. the verdict;
6. the summary: the content of ``report.json``.
"""

from __future__ import annotations

import contextlib
import platform
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from typing import Literal, Mapping, Sequence

import numpy as np

from .data import ColumnMap, Dataset, load_dataset
from .devices import resolve_device
from .executors import Executor, check_executor, make_executor
from .explain import EXPLAINERS, PAPER_EXPLAINERS, REGISTRY, Explanation, explain_cached, explain_paper_cached, \
    PAPER_TASKS, paper_jaccards
from .metrics.agreement import flip_indicators, kl_divergence, mcnemar_test
from .metrics.alignment import metric_names, pair_metrics
from .metrics.calibration import STRATEGIES, UNCHECKED, reliability_diagram
from .metrics.intervals import CALIBRATION_ESTIMATOR, calibration_error, paired_accuracy_difference, \
    proportion_interval
from .metrics.stats import Bootstrap
from .metrics.verdict import check_margins, decide_calibration, decide_explanations, decide_predictions, dimension, \
    undecided, verdict
from .models import TaskModel, load_model
from .predict import Predictions, fix_batching, onnx_twin, predict
from .validation import check_at_least, check_option, check_probabilities

__all__ = ["compare", "CompareResult", "ExplanationRun", "Alignment", "ExplainerResult", "EXPLAIN_CLASSES",
           "PROTOCOLS", "PAPER_REASON"]

EXPLAIN_CLASSES = ("gold", "reference")
#: Explanation protocols: trusteq's pair-aware explanations, or the paper's settings (descriptive only).
PROTOCOLS = ("pair", "paper")
#: Why the explanation dimensions are not decided under the paper protocol (see README, "Why these choices").
PAPER_REASON = "paper protocol: descriptive only; run --protocol pair for a decision"
#: Level of the descriptive intervals in the report tables; the verdict uses 1 - 2 alpha.
REPORT_LEVEL = 0.95
#: The alignment measure the explanation verdict reads (see README, "The verdict").
VERDICT_MEASURE = "cosine"


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


@dataclass
class CompareResult:
    """Everything a comparison produced.

    Attributes
    ----------
    summary : dict
        The content of ``report.json`` (see README for its keys).
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


@dataclass(frozen=True)
class _Settings:
    explainers: tuple[str, ...]
    lime_samples: int
    shap_evals: int
    explain_limit: int
    explain_repeats: int
    explain_class: str
    top_k: tuple[int, ...]
    n_bins: int
    seed: int
    n_boot: int
    max_length: int
    batch_size: int
    protocol: str = "pair"

    def budget(self, explainer: str) -> int:
        return getattr(self, REGISTRY[explainer].budget_option)


def compare(
    reference,
    candidates: Sequence,
    data,
    task: str,
    *,
    columns: ColumnMap | None = None,
    label_names: Sequence[str] | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    explainers: Sequence[str] = ("lime", "shap"),
    protocol: str = "pair",
    lime_samples: int = 1000,
    shap_evals: int = 2500,
    explain_limit: int = 100,
    explain_repeats: int = 1,
    explain_class: str = "gold",
    top_k: Sequence[int] = (10,),
    n_bins: int = 10,
    seed: int = 0,
    n_boot: int = 1000,
    label_map: Mapping[str, Sequence[str]] | None = None,
    names: Sequence[str] | None = None,
    max_length: int = 128,
    batch_size: int = 64,
    offline: bool = False,
    progress: bool = True,
    alpha: float = 0.05,
    margins: Mapping[str, float] | None = None,
    device: str = "auto",
    executor: str | Executor = "local",
    ray_address: str | None = None,
    threads: int | None = None,
) -> CompareResult:
    """Compare candidate models with a reference model on labelled sentence pairs or single texts.

    Parameters
    ----------
    reference : str, path or PairClassifier
        Folder, hub id, ONNX folder or model object of the reference model.
    candidates : sequence of the same
        One or more candidate (compressed) models.
    data : str, path or Dataset
        A data file or ``hf:NAME`` (see :func:`trusteq.data.load_dataset`).
    task : {"nli", "pi", "text-classification"}
        Sentence-pair tasks with standard labels, or any classification of
        single texts or pairs (see :func:`trusteq.data.load_dataset`).
    columns : ColumnMap, optional
        Column mapping for generic files (``text_b=None``: single texts).
    label_names : sequence of str, optional
        Names of integer label codes 0..K-1 (the class order of
        ``text-classification``).
    limit : int, optional
        Evaluate a seeded random sample of this many examples.
    skip_invalid : bool, default=False
        Drop invalid data rows instead of refusing the file; they are listed
        in ``report.json`` under ``data.dropped``.
    explainers : sequence of {"lime", "shap", "shap-permutation"}, default=("lime", "shap")
        Empty for no explanations.
    protocol : {"pair", "paper"}, default="pair"
        ``"pair"``: trusteq's pair-aware explanations, decided against both
        models' noise floors. ``"paper"``: the settings of Rai et al. (2025)
        (:mod:`trusteq.explain._paper`; "lime" and "shap" only, their budgets
        in :data:`trusteq.explain.PAPER_BUDGETS`): the reference explained with
        ``seed`` and ``seed + 1``, candidates with ``seed + 1``, alignment
        ``paper_jaccard@K`` (K the first ``top_k``) against the reference's
        floor, no candidate floors; descriptive only, so every explanation
        dimension of the verdict is inconclusive (:data:`PAPER_REASON`).
    lime_samples, shap_evals : int, default=1000, 2500
        Perturbed samples per LIME explanation; the cap on evaluations per
        SHAP one (exact Owen values where their cost fits, else a seeded
        estimate with this many evaluations; see :mod:`trusteq.explain._shap`).
    explain_limit : int, default=100
        Explain a seeded random sample of this many evaluated examples.
    explain_repeats : int, default=1
        Repeat the seeded explainers (LIME, shap-permutation) with this many
        seeds (Rai et al. 2025 use 3); alignment is then the per-example mean
        over repeats, reported with the mean and variance of the per-repeat
        means. Deterministic explainers (SHAP Partition) run once.
    explain_class : {"gold", "reference"}, default="gold"
        Class explained: the gold label (as in Rai et al. 2025) or the
        reference model's prediction.
    top_k : sequence of int, default=(10,)
        K values of the top-k alignment metrics (10 as in the paper).
    n_bins : int, default=10
        Calibration bins (10 as in the paper).
    seed : int, default=0
        Fixes every random choice: data sample, explanation sample,
        perturbations, bootstrap. Repeat r explains the reference with seeds
        ``seed + 3r`` and ``seed + 3r + 1``, the candidates with ``seed + 3r + 1``
        and ``seed + 3r + 2``: alignment, the reference's floor and each
        candidate's floor all compare runs with different perturbations.
    n_boot : int, default=1000
        Bootstrap resamples for every interval.
    label_map : mapping model name (or ``"*"``) -> label names, optional
        Names of a model's outputs 0..C-1, overriding its ``id2label``.
    names : sequence of str, optional
        Report names of reference and candidates, in that order.
    max_length, batch_size : int, default=128, 64
        Tokens per pair; pairs per forward pass.
    offline : bool, default=False
        Never touch the network.
    progress : bool, default=True
        Show progress bars on stderr.
    alpha : float, default=0.05
        Level of every equivalence test of the verdict; decisions read
        two-sided ``1 - 2 alpha`` intervals (90% by default).
    margins : mapping name -> float, optional
        Equivalence margins overriding :data:`trusteq.metrics.verdict.MARGINS`
        (``accuracy``, ``flip_rate``, ``calibration``, ``brier``, ``explanation``).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Where models run (:func:`trusteq.devices.resolve_device`; "auto": a
        CUDA GPU if there is one). ONNX models and twins use ONNX Runtime's
        CUDA provider where it is installed, else the CPU (int8 graphs: CPU).
        Caches do not depend on it: fp32 results of two devices differ by ~1e-6.
    executor : {"local", "ray"} or Executor, default="local"
        Where predictions and explanations run (:mod:`trusteq.executors`):
        this process, or Ray actors (``pip install "trusteq[ray]"``). The
        paper protocol's explanations always run in this process.
    ray_address : str, optional
        A Ray cluster to join (executor "ray"); None: start a local one.
    threads : int, optional
        PyTorch and ONNX Runtime threads per worker (default: the runtimes'
        own locally, 1 per Ray actor). A Ray run with the threads of a local
        run gives the same report.json apart from timings and settings.

    Returns
    -------
    CompareResult

    Raises
    ------
    DataError, LabelError, ModelError
        Bad data, models whose classes do not fit the task, models that
        return invalid probabilities. Raised before anything is written.
    ValueError
        Invalid settings, among them an explainer the paper protocol lacks.
    DeviceError, ExecutorError
        A device that is malformed or absent; an unknown executor, Ray not
        installed or unreachable (both ``TrustEqError``, ``ValueError``).
    """
    started = time.time()
    if not candidates:
        raise ValueError("at least one candidate model is needed")
    settings = _Settings(tuple(explainers), lime_samples, shap_evals, explain_limit, explain_repeats, explain_class,
                         tuple(top_k), n_bins, seed, n_boot, max_length, batch_size, protocol)
    _check_settings(settings)
    if protocol == "paper" and task not in PAPER_TASKS:
        raise ValueError(f"the paper's protocol (--protocol paper) is defined for its tasks {list(PAPER_TASKS)} "
                         f"only, not '{task}'; use the default protocol 'pair'")
    margins = check_margins(margins, alpha)
    placement = resolve_device(device)
    check_executor(executor, ray_address, threads)
    timings: dict[str, float] = {}
    if not isinstance(data, Dataset):
        data = load_dataset(data, task, columns=columns, limit=limit, seed=seed, skip_invalid=skip_invalid,
                            label_names=label_names)
    models = _load_models([reference, *candidates], data, names, label_map, settings, offline, placement, threads)
    batching = {m.name: fix_batching(m, data.pairs) for m in models}
    timings["load"] = time.time() - started

    with _executor(executor, placement, ray_address, threads) as runner:
        executor_record = runner.record()
        t0 = time.time()
        preds = {m.name: predict(m, data, progress=progress, executor=runner) for m in models}
        timings["predict"] = time.time() - t0

        t0 = time.time()
        boot = Bootstrap(len(data), n_boot=n_boot, seed=seed)
        model_section, comparisons = _calibration_and_agreement(models, preds, data.y, boot, n_bins)
        timings["metrics"] = time.time() - t0

        t0 = time.time()
        probs = {name: p.probs for name, p in preds.items()}
        explained_ids, runtime, results = _explain(models, data, probs[models[0].name], settings, progress, runner)
        noise_floor = _alignment_summaries(results, comparisons, settings)
        timings["explain"] = time.time() - t0

    t0 = time.time()
    for name, v in _verdicts(models, probs, data.y, results, margins, alpha, settings).items():
        comparisons[name]["verdict"] = v
    timings["verdict"] = time.time() - t0
    timings["total"] = time.time() - started

    summary = _summary(data, models, settings, boot, explained_ids, runtime, model_section, comparisons,
                       noise_floor, timings)
    summary["settings"].update(alpha=alpha, verdict_level=1 - 2 * alpha, margins=margins,
                               verdict_measure=VERDICT_MEASURE if protocol == "pair" else None, batching=batching,
                               explain_exact=_exact_record(results, settings), device=str(placement),
                               executor=executor_record)
    if protocol == "paper":
        summary["settings"]["paper_measure"] = _paper_measure(settings)
    return CompareResult(summary, data, probs, results, explained_ids)


# ---------------------------------------------------------------------------
# stage 1: settings and models


def _check_settings(s: _Settings) -> None:
    check_option("explainer(s)", list(s.explainers), EXPLAINERS)
    check_option("protocol", s.protocol, PROTOCOLS)
    bad = [e for e in s.explainers if e not in PAPER_EXPLAINERS]
    if s.protocol == "paper" and bad:
        raise ValueError(f"explainer(s) {bad} not available with protocol 'paper' (--protocol paper); the paper's "
                         f"protocol has {list(PAPER_EXPLAINERS)} (--explainers)")
    check_option("explain_class", s.explain_class, EXPLAIN_CLASSES)
    if not s.top_k:
        raise ValueError("at least one top-k value is needed")
    for label, value, low in (("top-k", min(s.top_k), 1), ("n_bins", s.n_bins, 1),
                              ("lime_samples", s.lime_samples, 2), ("shap_evals", s.shap_evals, 2),
                              ("explain_limit", s.explain_limit, 1), ("explain_repeats", s.explain_repeats, 1)):
        check_at_least(label, value, low)


def _load_models(specs, dataset: Dataset, names, label_map, s: _Settings, offline: bool, device=None,
                 threads: int | None = None) -> list[TaskModel]:
    """Reference first, then candidates, each with its classes in the dataset's label order, on ``device``."""
    if names is not None and len(names) != len(specs):
        raise ValueError(f"{len(names)} names for {len(specs)} models")
    models = []
    for i, spec in enumerate(specs):
        model = load_model(spec, name=names[i] if names else None, max_length=s.max_length,
                           batch_size=s.batch_size, offline=offline, device=device or "auto", threads=threads)
        models.append(TaskModel(model, dataset.label_names, label_map))
    seen = set()
    for m in models:
        if m.name in seen:
            raise ValueError(f"two models are named '{m.name}'; give distinct names (--name)")
        seen.add(m.name)
    return models


# ---------------------------------------------------------------------------
# stage 3: calibration and agreement


def _calibration_and_agreement(models: list[TaskModel], preds: dict[str, Predictions], y: np.ndarray,
                               boot: Bootstrap, n_bins: int) -> tuple[dict, dict]:
    """``models`` and ``comparisons`` sections of report.json."""
    probs = {}
    for m in models:
        _, probs[m.name] = check_probabilities(y, preds[m.name].probs)
    model_section = {}
    for i, m in enumerate(models):
        model_section[m.name] = {
            "role": "reference" if i == 0 else "candidate",
            **m.model.info(),
            "label_map": m.override,
            "truncated": preds[m.name].truncated,
            **_calibration(boot, y, probs[m.name], n_bins),
        }
    ref = models[0].name
    comparisons = {m.name: _agreement(boot, y, probs[ref], probs[m.name], n_bins) for m in models[1:]}
    return model_section, comparisons


def _proportion(hits: np.ndarray) -> dict:
    """Share of True in ``hits`` with its 95% Wilson interval (non-zero width with no events)."""
    count, n = int(np.sum(hits)), len(hits)
    return {"value": count / n, "ci": proportion_interval(count, n, level=REPORT_LEVEL), "count": count}


def _binned(metric: str, y, p, n_bins: int) -> dict:
    """Binned ECE/MCE, descriptive only (no interval): biased upward at small n."""
    return {s: {"value": UNCHECKED[metric](y, p, n_bins, s)} for s in STRATEGIES}


def _calibration(boot: Bootstrap, y, p, n_bins) -> dict:
    return {
        "accuracy": _proportion(p.argmax(axis=1) == y),
        "calibration_error": {"value": calibration_error(y, p), "estimator": CALIBRATION_ESTIMATOR},
        "ece": _binned("ece", y, p, n_bins),
        "mce": _binned("mce", y, p, n_bins),
        "brier": boot.ci(UNCHECKED["brier"], y, p),
        "nll": boot.ci(UNCHECKED["nll"], y, p),
        "classwise_ece": {"value": UNCHECKED["classwise_ece"](y, p, n_bins)},
        "reliability": {s: reliability_diagram(y, p, n_bins=n_bins, strategy=s) for s in STRATEGIES},
    }


def _agreement(boot: Bootstrap, y, p_ref, p_cand, n_bins) -> dict:
    c2w, w2c = flip_indicators(y, p_ref, p_cand)
    mean = lambda v: float(np.mean(v))  # noqa: E731
    acc = paired_accuracy_difference(p_ref.argmax(axis=1) == y, p_cand.argmax(axis=1) == y, level=REPORT_LEVEL)
    delta = {"accuracy": {"value": acc["value"], "ci": acc["interval"], "method": acc["method"]}}
    for metric in ("ece", "mce"):
        delta[metric] = {s: {"value": UNCHECKED[metric](y, p_cand, n_bins, s) - UNCHECKED[metric](y, p_ref, n_bins, s)}
                         for s in STRATEGIES}
    for metric in ("brier", "nll"):
        delta[metric] = boot.diff(UNCHECKED[metric], (y, p_cand), (y, p_ref))
    return {
        "agreement": _proportion(p_ref.argmax(axis=1) == p_cand.argmax(axis=1)),
        "flip_rate": {"total": _proportion(c2w | w2c), "correct_to_wrong": _proportion(c2w),
                      "wrong_to_correct": _proportion(w2c)},
        "kl": boot.ci(mean, kl_divergence(p_ref, p_cand)),
        "mcnemar": mcnemar_test(y, p_ref, p_cand),
        "delta": delta,
    }


# ---------------------------------------------------------------------------
# stage 4: explanations and alignment


def _explain(models: list[TaskModel], dataset: Dataset, ref_probs: np.ndarray, s: _Settings,
             progress: bool, executor: Executor | None = None) -> tuple[list[str], dict, dict[str, ExplainerResult]]:
    """Explained example ids, the runtime record of each model, and every explainer's runs and alignments."""
    if not s.explainers:
        return [], {}, {}
    rng = np.random.default_rng(s.seed)
    chosen = np.sort(rng.choice(len(dataset), size=min(s.explain_limit, len(dataset)), replace=False))
    examples = [dataset.examples[i] for i in chosen]
    targets = dataset.y[chosen] if s.explain_class == "gold" else ref_probs[chosen].argmax(axis=1)
    # Explanations run on ONNX Runtime where it reproduces PyTorch's probabilities (1e-5).
    twins = [onnx_twin(m, [(e.text_a, e.text_b) for e in examples]) for m in models]
    runtime = {m.name: record for m, (_, record) in zip(models, twins)}
    fast = [twin for twin, _ in twins]
    results = {explainer: _explain_one(explainer, fast, examples, targets, s, dataset.task, progress, executor)
               for explainer in s.explainers}
    return [e.id for e in examples], runtime, results


def _explain_one(explainer: str, models: list[TaskModel], examples, targets, s: _Settings, task: str,
                 progress: bool, executor: Executor | None = None) -> ExplainerResult:
    """Runs and alignments of one explainer.

    Repeat r uses three seeds of its own, a = seed + 3r, b = a + 1, c = a + 2
    (disjoint between repeats, so repeats are independent): the reference is
    explained with a and b, the candidates with b and c. The candidate's
    alignment compares reference@a with candidate@b, the reference's noise
    floor reference@a with reference@b, each candidate's floor candidate@b
    with candidate@c: every compared pair of runs differs in its perturbations
    (shared perturbations would inflate agreement), and each model's own
    explanation noise is measured. Exact explanations (SHAP where its budget
    allows) are computed once per model and shared by every seed through the
    cache: the explainer adds no noise there, and their floor is 1.

    Under the paper protocol the candidates are explained with b only (the
    authors measured no candidate floors) and alignment is the paper's Jaccard.
    """
    ref, cands = models[0], models[1:]
    explain, measure = _protocol(explainer, s, task, executor)
    own_floors = s.protocol == "pair"

    def run(group, seed, label):
        out = explain(group, examples, targets, seed=seed, progress=progress, label=label)
        return [ExplanationRun(m.name, "reference" if m is ref else "candidate", seed, out[m.name]) for m in group]

    runs, alignments = [], {}
    for r in range(s.explain_repeats):
        a = s.seed + 3 * r
        of = f", repeat {r + 1}/{s.explain_repeats}" if s.explain_repeats > 1 else ""
        ref_a, *_ = run([ref], a, "reference" + of)
        ref_b, *cand_b = run(models, a + 1, "candidates and noise floor" + of)
        cand_c = run(cands, a + 2, "candidate floors" + of) if cands and own_floors else []
        runs += [ref_a, ref_b, *cand_b, *cand_c]
        pairs = [("noise_floor", ref.name, ref_a, ref_b)]
        pairs += [("candidate", m.name, ref_a, b) for m, b in zip(cands, cand_b)]
        pairs += [("candidate_floor", m.name, b, c) for m, b, c in zip(cands, cand_b, cand_c)]
        for kind, name, x, y in pairs:
            alignments.setdefault((kind, name), []).append((x, y))
    return ExplainerResult(explainer, runs, [_align(kind, name, p, measure) for (kind, name), p in alignments.items()])


def _protocol(explainer: str, s: _Settings, task: str, executor: Executor | None = None):
    """The protocol's ``explain(models, examples, targets, *, seed, progress, label) -> {name: explanations}`` and
    ``measure(a, b) -> {metric: per-example values (n,)}`` of two runs' explanations. The pair protocol explains
    on ``executor``; the paper protocol in this process."""
    budget = s.budget(explainer)
    if s.protocol == "paper":
        k = s.top_k[0]
        return (partial(explain_paper_cached, task=task, explainer=explainer, budget=budget),
                lambda a, b: {_paper_measure(s): paper_jaccards(a, b, task, k)})
    return (partial(explain_cached, explainer=explainer, budget=budget, executor=executor),
            lambda a, b: _alignment_table(a, b, s.top_k))


def _executor(spec: str | Executor, device, address: str | None, threads: int | None) -> Executor:
    """The executor of a comparison, as a context manager: closed at the end unless the caller made it."""
    if isinstance(spec, Executor):
        return contextlib.nullcontext(spec)
    return make_executor(spec, device, address, threads)


def _paper_measure(s: _Settings) -> str:
    """The paper's alignment measure under the paper protocol: its top-k word Jaccard at the first ``top_k``."""
    return f"paper_jaccard@{s.top_k[0]}"


def _align(kind, model: str, pairs: list[tuple[ExplanationRun, ExplanationRun]], measure) -> Alignment:
    tables = [measure(a.explanations, b.explanations) for a, b in pairs]
    return Alignment(kind, model, [(a.seed, b.seed) for a, b in pairs], tables)


def _alignment_table(a: list[Explanation], b: list[Explanation], top_k) -> dict[str, np.ndarray]:
    table = {n: np.full(len(a), np.nan) for n in metric_names(top_k)}
    for i, (ea, eb) in enumerate(zip(a, b)):
        if ea.example_id != eb.example_id:
            raise RuntimeError("explanations are not aligned by example")
        if len(ea.weights) == 0:
            continue
        for n, v in pair_metrics(ea.weights, eb.weights, top_k).items():
            table[n][i] = v
    return table


def _alignment_summaries(results: dict[str, ExplainerResult], comparisons: dict, s: _Settings) -> dict:
    """Bootstrap summaries: each candidate's alignment and own floor under ``comparisons[c]["alignment"]`` and
    ``comparisons[c]["noise_floor"]``; the reference's noise floors returned."""
    noise_floor = {}
    for explainer, result in results.items():
        boot = Bootstrap(len(result.runs[0].explanations), n_boot=s.n_boot, seed=s.seed)
        for a in result.alignments:
            summary = {k: _over_repeats(boot, v, [t[k] for t in a.per_repeat]) for k, v in a.values.items()}
            if a.kind == "noise_floor":
                noise_floor[explainer] = summary
            else:
                key = "alignment" if a.kind == "candidate" else "noise_floor"
                comparisons[a.model].setdefault(key, {})[explainer] = summary
    return noise_floor


def _over_repeats(boot: Bootstrap, pooled: np.ndarray, repeats: list[np.ndarray]) -> dict:
    """Bootstrap mean and interval of the per-example values (pooled over repeats), plus each repeat's mean
    and their variance (ddof=1; absent for one repeat)."""
    out = boot.mean(pooled)
    if len(repeats) > 1:
        means = [float(np.nanmean(v)) for v in repeats]
        out.update(repeat_means=means, repeat_variance=float(np.var(means, ddof=1)))
    return out


# ---------------------------------------------------------------------------
# stage 5: the verdict


def _verdicts(models: list[TaskModel], probs: dict, y: np.ndarray, results: dict[str, ExplainerResult], margins,
              alpha: float, s: _Settings) -> dict[str, dict]:
    """Per candidate, the verdict of every dimension (see :mod:`trusteq.metrics.verdict`)."""
    ref = models[0].name
    out = {}
    for m in models[1:]:
        dims = {"predictions": decide_predictions(y, probs[ref], probs[m.name], margins=margins, alpha=alpha),
                "calibration": decide_calibration(y, probs[ref], probs[m.name], margins=margins, alpha=alpha)}
        for explainer, result in results.items():
            decide = _describe_explanations if s.protocol == "paper" else _decide_explanations
            dims[f"explanations.{explainer}"] = decide(result, m.name, margins, alpha, s)
        out[m.name] = verdict(dims)
    return out


def _decide_explanations(result: ExplainerResult, model: str, margins, alpha: float, s: _Settings) -> dict:
    """The pair protocol's explanation dimension: the cosine gap to the mean of both models' floors."""
    floors = result.noise_floor.values[VERDICT_MEASURE] + result.candidate_floor(model).values[VERDICT_MEASURE]
    return decide_explanations(result.alignment(model).values[VERDICT_MEASURE], floors / 2, measure=VERDICT_MEASURE,
                               margins=margins, alpha=alpha)


def _describe_explanations(result: ExplainerResult, model: str, margins, alpha: float, s: _Settings) -> dict:
    """The paper protocol's explanation dimension: not decided (inconclusive, :data:`PAPER_REASON`, no interval).

    Jaccard@10 could not tell a candidate relying on entirely different words from the noise floor on the
    controls (0.47 vs 0.52), so no margin on it would make a test worth its name."""
    measure = _paper_measure(s)
    n = len(result.alignment(model).values[measure])
    return dimension({measure: undecided(PAPER_REASON, margin=margins["explanation"], test="non-inferiority", n=n,
                                         margin_name="explanation", measure=measure)})


# ---------------------------------------------------------------------------
# stage 6: summary


def _summary(dataset: Dataset, models: list[TaskModel], s: _Settings, boot: Bootstrap, explained_ids, runtime,
             model_section, comparisons, noise_floor, timings) -> dict:
    y = dataset.y
    return {
        "trusteq_version": _version("trusteq"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "task": dataset.task,
        "labels": list(dataset.label_names),
        "seed": s.seed,
        "reference": models[0].name,
        "candidates": [m.name for m in models[1:]],
        "data": {"source": dataset.source, "sha256": dataset.sha256, "format": dataset.format, "texts": dataset.texts,
                 "rows": dataset.n_rows, "examples": len(dataset), "limit": dataset.limit,
                 "dropped": dataset.dropped,
                 "label_counts": {name: int(np.sum(y == k)) for k, name in enumerate(dataset.label_names)}},
        "settings": {
            "n_bins": s.n_bins, "binning": list(STRATEGIES), "top_k": list(s.top_k), "explainers": list(s.explainers),
            "lime_samples": s.lime_samples, "shap_evals": s.shap_evals, "explained_examples": len(explained_ids),
            "explain_class": s.explain_class, "explain_repeats": s.explain_repeats, "protocol": s.protocol,
            "explain_seeds": _seeds_record(s),
            "explain_runtime": runtime,
            "max_length": s.max_length,
            "batch_size": s.batch_size, "bootstrap": boot.describe(),
        },
        "versions": _versions(),
        "models": model_section,
        "comparisons": comparisons,
        "noise_floor": noise_floor,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _seeds_record(s: _Settings) -> dict:
    a = [s.seed + 3 * r for r in range(s.explain_repeats)]
    if s.protocol == "paper":  # no candidate floors
        return {"reference": [[x, x + 1] for x in a], "candidates": [[x + 1] for x in a],
                "alignment": [[x, x + 1] for x in a], "noise_floor": [[x, x + 1] for x in a]}
    return {"reference": [[x, x + 1] for x in a], "candidates": [[x + 1, x + 2] for x in a],
            "alignment": [[x, x + 1] for x in a], "noise_floor": [[x, x + 1] for x in a],
            "candidate_floor": [[x + 1, x + 2] for x in a]}


def _exact_record(results: dict[str, ExplainerResult], s: _Settings) -> dict:
    """Per explainer: explained pairs computed exactly and with a binding budget (pair protocol only), and
    evaluations per explanation."""
    record = {}
    for explainer, result in results.items():
        evals = np.array([e.n_evals for r in result.runs for e in r.explanations], dtype=np.float64)
        record[explainer] = {"evaluations_mean": round(float(evals.mean()), 1) if len(evals) else 0.0,
                             "evaluations_max": int(evals.max()) if len(evals) else 0}
        if s.protocol == "pair":
            spec, budget, first = REGISTRY[explainer], s.budget(explainer), result.runs[0].explanations
            exact = int(sum(spec.exact(e.features, budget) for e in first))
            record[explainer] = {"exact": exact, "budget_limited": len(first) - exact, **record[explainer]}
    return record


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
