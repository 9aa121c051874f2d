"""The comparison: is each candidate model trust-equivalent to the reference?

:func:`compare` runs in stages, data flowing one way:

1. load the data and the models, each model's classes matched to the task's labels;
2. predict (cached; on the executor);
3. calibration of every model and agreement of every candidate with the
   reference, with bootstrap intervals;
4. explain a seeded sample of examples with every model and every explainer,
   plus the noise-floor runs, and measure alignment, as the settings' protocol
   (:mod:`trusteq.protocols`) does it;
5. the verdict;
6. report.json's content, assembled by :func:`trusteq.results.build_summary`.

Options live in :class:`trusteq.settings.CompareSettings`, results in
:mod:`trusteq.results`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import Dataset, load_dataset
from .devices import resolve_device
from .errors import SettingsError
from .executors import Executor, check_executor, make_executor
from .llm import CausalLMClassifier
from .metrics.agreement import flip_indicators, kl_divergence, mcnemar_test
from .metrics.calibration import STRATEGIES, UNCHECKED, reliability_diagram
from .metrics.intervals import CALIBRATION_ESTIMATOR, calibration_error, paired_accuracy_difference, \
    proportion_interval
from .metrics.stats import Bootstrap
from .metrics.verdict import check_margins, decide_calibration, decide_predictions, verdict
from .models import TaskModel, load_model
from .predict import Predictions, fix_batching, predict
from .protocols import ExplainJob, Explained, Protocol, get_protocol
from .results import CompareResult, ExplainerResult, build_summary
from .settings import CompareSettings
from .slices import decide_slices, kept_columns, slice_record, slice_values
from .validation import check_probabilities
from .vision import load_image_model

__all__ = ["compare", "CompareResult", "dataset_of", "probabilities"]

#: Level of the descriptive intervals in the report tables; the verdict uses 1 - 2 alpha.
REPORT_LEVEL = 0.95


def compare(reference, candidates: Sequence, data, task: str, settings: CompareSettings | None = None,
            **overrides) -> CompareResult:
    """Compare candidate models with a reference model on labelled sentence pairs or single texts.

    Every option is a field of :class:`~trusteq.settings.CompareSettings`
    (one home for its default, range, CLI flag and study key): pass
    ``settings=``, keyword ``overrides``, or both (overrides win).

    Parameters
    ----------
    reference : str, path or PairClassifier
        Folder, hub id, ONNX folder or model object of the reference model, or
        its predictions on the data (:class:`trusteq.PredictionsFile`, a model
        trusteq cannot run: then no candidate's explanations are computed).
    candidates : sequence of the same
        One or more candidate (compressed) models; a :class:`trusteq.PredictionsFile`
        is compared by its stored predictions, and each explanation dimension of
        its verdict is undecided (:data:`trusteq.external.NO_MODEL_REASON`).
    data : str, path or Dataset
        A data file or ``hf:NAME`` (see :func:`trusteq.data.load_dataset`).
    task : {"nli", "pi", "text-classification"}
        Sentence-pair tasks with standard labels, or any classification of
        single texts or pairs (see :func:`trusteq.data.load_dataset`).
    settings : CompareSettings, optional
        Every option below at once (default: ``CompareSettings()``).
    **overrides
        Options of :class:`~trusteq.settings.CompareSettings` by name:
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
        dimension of the verdict is inconclusive (:data:`trusteq.protocols.PAPER_REASON`).
        Protocols are objects of :mod:`trusteq.protocols`.
    lime_samples, shap_evals : int, default=1000, 2500
        Perturbed samples per LIME explanation; the cap on evaluations per
        SHAP one (exact Owen values where their cost fits, else a seeded
        estimate with this many evaluations; see :mod:`trusteq.explain._shap`).
    explain_limit : int, default=500
        The cap on explained examples: the first ``explain_limit`` of a seeded
        permutation of the evaluated examples. Under the pair protocol each
        candidate is explained in blocks (:data:`trusteq.protocols.EXPLAIN_BLOCK`)
        and stops when its explanation dimensions are decided, when its verdict
        can no longer change (not explained at all when the predictions or
        calibration already say "not equivalent"), or at the cap; report.json
        records ``comparisons.<candidate>.explained_examples`` and
        ``explain_stop``.
    explain_all : bool, default=False
        Explain all ``explain_limit`` examples with every model (a fixed
        sample for descriptive studies; the verdict reads the same sequences).
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
    calibration_test : {"non-inferiority", "two-sided"}, default="non-inferiority"
        The calibration test: the candidate may add at most the margin of
        calibration error (better is fine), or may differ by at most the
        margin either way (the paper's "similar calibration").
    margins : mapping name -> float, optional
        Equivalence margins overriding :data:`trusteq.metrics.verdict.MARGINS`
        (``accuracy``, ``flip_rate``, ``calibration``, ``brier``, ``explanation``,
        ``gross_disagreement``).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Where models run (:func:`trusteq.devices.resolve_device`; "auto": a
        CUDA GPU if there is one). ONNX models and twins use ONNX Runtime's
        CUDA provider where it is installed, else the CPU (int8 graphs: CPU).
        Caches do not depend on it: fp32 results of two devices differ by ~1e-6.
    executor : {"local", "ray"} or Executor, default="local"
        Where predictions and explanations run (:mod:`trusteq.executors`):
        this process, or Ray actors (``pip install "trusteq[ray]"``); both
        protocols' explanations run there.
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
    SettingsError
        Invalid settings, among them an explainer the paper protocol lacks,
        a task it is not defined for, names that do not fit the models.
    DeviceError, ExecutorError
        A device that is malformed or absent; an unknown executor, Ray not
        installed or unreachable. All of these are ``TrustEqError`` (and
        ``ValueError``) subclasses.
    TypeError
        An unknown option in ``overrides``.
    """
    started = time.time()
    s = (settings or CompareSettings()).replace(**overrides)
    protocol, margins, placement = _check(s, candidates, task)
    timings: dict[str, float] = {}
    data = dataset_of(data, task, s)
    for column in s.slices:  # a slice the data cannot have is refused before any work
        slice_values(data, column)
    models = _load_models([reference, *candidates], data, s, placement)
    batching = {m.name: fix_batching(m, data.inputs) for m in models}
    timings["load"] = time.time() - started

    with _executor(s.executor, placement, s.ray_address, s.threads) as runner:
        executor_record = runner.record()
        t0 = time.time()
        preds = {m.name: predict(m, data, progress=s.progress, executor=runner) for m in models}
        timings["predict"] = time.time() - t0

        t0 = time.time()
        boot = Bootstrap(len(data), n_boot=s.n_boot, seed=s.seed)
        model_section, agreement = _calibration_and_agreement(models, preds, data.y, boot, s.n_bins)

        probs = {name: p.probs for name, p in preds.items()}
        decided = _decide_outputs(models, probs, data.y, margins, s)
        timings["metrics"] = time.time() - t0

        t0 = time.time()
        unexplained = protocol.unexplained(models)
        explained = _explain(protocol, models, data, probs[models[0].name], s, runner, margins, decided, unexplained)
        alignment, noise_floor = _alignment_summaries(explained.results, s)
        timings["explain"] = time.time() - t0

    t0 = time.time()
    verdicts = _verdicts(protocol, decided, explained.results, margins, s, unexplained)
    slices = _slices(protocol, data, probs, verdicts, explained, margins, s, unexplained)
    timings["verdict"] = time.time() - t0
    timings["total"] = time.time() - started

    summary = build_summary(dataset=data, models=models, settings=s, protocol=protocol, boot=boot,
                            explained=explained, model_section=model_section, agreement=agreement,
                            alignment=alignment, verdicts=verdicts, slices=slices,
                            slice_record=slice_record(s.slices), noise_floor=noise_floor, margins=margins,
                            batching=batching, device=placement, executor=executor_record, timings=timings)
    return CompareResult(summary, data, probs, explained.results, explained.ids)


# ---------------------------------------------------------------------------
# stage 1: settings and models


def dataset_of(data, task: str, s: CompareSettings) -> Dataset:
    """``data`` itself if it is a Dataset, else the file or ``hf:`` name read with the settings' data options
    (columns, limit and seed, skip_invalid, label_names, the slices' columns)."""
    if isinstance(data, Dataset):
        return data
    return load_dataset(data, task, columns=s.columns, limit=s.limit, seed=s.seed, skip_invalid=s.skip_invalid,
                        label_names=s.label_names, keep=kept_columns(s.slices))


def probabilities(specs: Sequence, data: Dataset, s: CompareSettings) -> list[np.ndarray]:
    """Each model's class probabilities, shape (n, K), rows in ``data``'s order and columns in its label order,
    computed (or read from the cache) as :func:`compare` computes them; ``s.names`` is not used.

    Raises
    ------
    ModelError, LabelError, DeviceError
        As :func:`compare` (a model that cannot be loaded, classes that do not fit, a bad device).
    """
    models = _load_models(specs, data, s.replace(names=None), resolve_device(s.device))
    for m in models:
        fix_batching(m, data.inputs)
    return [predict(m, data).probs for m in models]


def _check(s: CompareSettings, candidates: Sequence, task: str):
    """Refuse, before any work, what the settings alone cannot say is wrong; the protocol, the margins (defaults
    filled in) and the device."""
    if not candidates:
        raise SettingsError("at least one candidate model is needed")
    if s.names is not None and len(s.names) != 1 + len(candidates):
        raise SettingsError(f"{len(s.names)} names for {1 + len(candidates)} models (names: reference first, then "
                            f"candidates)")
    s.prompt()  # both the template and the label words, or neither
    protocol = get_protocol(s.protocol)
    protocol.check(s, task)
    check_executor(s.executor, s.ray_address, s.threads)
    return protocol, check_margins(s.margins, s.alpha), resolve_device(s.device)


def _load_models(specs, dataset: Dataset, s: CompareSettings, device) -> list[TaskModel]:
    """Reference first, then candidates, each with its classes in the dataset's label order, on ``device``."""
    models, prompt = [], s.prompt()
    for i, spec in enumerate(specs):
        kwargs = dict(name=s.names[i] if s.names else None, max_length=s.max_length, batch_size=s.batch_size,
                      offline=s.offline, device=device or "auto", threads=s.threads)
        if dataset.kind == "image":
            if prompt is not None:
                raise SettingsError("a prompt template (--prompt-template, --label-words) is for texts, not images")
            model = load_image_model(spec, **kwargs)
        elif prompt is None or not isinstance(spec, (str, Path)):
            model = load_model(spec, **kwargs)
        else:
            model = CausalLMClassifier(str(spec), prompt, **kwargs)
        model.bind(dataset)  # a predictions file: its ids and probabilities checked against the data
        models.append(TaskModel(model, dataset.label_names, s.label_map))
    seen = set()
    for m in models:
        if m.name in seen:
            raise SettingsError(f"two models are named '{m.name}'; give distinct names (--name)")
        seen.add(m.name)
    return models


def _executor(spec: str | Executor, device, address: str | None, threads: int | None) -> Executor:
    """The executor of a comparison, as a context manager: closed at the end unless the caller made it."""
    if isinstance(spec, Executor):
        return contextlib.nullcontext(spec)
    return make_executor(spec, device, address, threads)


# ---------------------------------------------------------------------------
# stage 3: calibration and agreement
def _calibration_and_agreement(models: list[TaskModel], preds: dict[str, Predictions], y: np.ndarray,
                               boot: Bootstrap, n_bins: int) -> tuple[dict, dict]:
    """The ``models`` section of report.json, and each candidate's agreement with the reference."""
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


def _explain(protocol: Protocol, models: list[TaskModel], dataset: Dataset, ref_probs: np.ndarray,
             s: CompareSettings, executor: Executor, margins: dict, decided: dict,
             unexplained: dict[str, str]) -> Explained:
    """Explain the examples the protocol selects, the protocol's way; never the ``unexplained`` candidates
    (:meth:`Protocol.unexplained`), and nothing when no candidate is left."""
    models = [m for m in models if m.name not in unexplained]
    decided = {c: d for c, d in decided.items() if c not in unexplained}
    if not s.explainers or len(models) < 2:
        return Explained([], {}, {}, {})
    examples, targets = protocol.select(dataset, ref_probs, s)
    wanted = set(protocol.to_explain(decided, s)) | {models[0].name}  # no runtime for a model never explained
    twins, records = protocol.runtimes([m for m in models if m.name in wanted], examples) if len(wanted) > 1 \
        else ([], {})
    by_name = {m.name: m for m in twins}
    runtimes = [by_name.get(m.name, m) for m in models]
    job = ExplainJob(runtimes, examples, targets, s, dataset.task, executor, margins, decided)
    results, stops = protocol.explain(job)
    explained = max((len(r.explanations) for x in results.values() for r in x.runs), default=0)
    return Explained([e.id for e in examples[:explained]], records, results, stops)


def _alignment_summaries(results: dict[str, ExplainerResult], s: CompareSettings) -> tuple[dict, dict]:
    """Bootstrap summaries: per candidate, ``{"alignment": {explainer: ...}, "noise_floor": {explainer: ...}}``
    (its alignment with the reference and its own floor, where measured); and the reference's noise floors."""
    per_candidate: dict[str, dict] = {}
    noise_floor = {}
    for explainer, result in results.items():
        for a in result.alignments:  # a candidate's examples are a prefix of the reference's
            boot = Bootstrap(len(next(iter(a.per_repeat[0].values()))), n_boot=s.n_boot, seed=s.seed)
            summary = {k: _over_repeats(boot, v, [t[k] for t in a.per_repeat]) for k, v in a.values.items()}
            if a.kind == "noise_floor":
                noise_floor[explainer] = summary
            else:
                key = "alignment" if a.kind == "candidate" else "noise_floor"
                per_candidate.setdefault(a.model, {}).setdefault(key, {})[explainer] = summary
    return per_candidate, noise_floor


def _over_repeats(boot: Bootstrap, pooled: np.ndarray, repeats: list[np.ndarray]) -> dict:
    """Bootstrap mean and interval of the per-example values (pooled over repeats), plus each repeat's mean
    and their variance (ddof=1; absent for one repeat)."""
    out = boot.mean(pooled)
    if len(repeats) > 1:
        means = [float(np.nanmean(v)) for v in repeats]
        out.update(repeat_means=means, repeat_variance=float(np.var(means, ddof=1)))
    return out


# ---------------------------------------------------------------------------
# stage 5: the verdict (predictions and calibration are decided before explaining, see _decide_outputs)


def _decide_outputs(models: list[TaskModel], probs: dict, y: np.ndarray, margins, s: CompareSettings) -> dict:
    """Per candidate, the dimensions decided on every example's outputs: predictions and calibration."""
    ref = models[0].name
    return {m.name: {"predictions": decide_predictions(y, probs[ref], probs[m.name], margins=margins, alpha=s.alpha),
                     "calibration": decide_calibration(y, probs[ref], probs[m.name], margins=margins, alpha=s.alpha,
                                                       test=s.calibration_test)}
            for m in models[1:]}


def _verdicts(protocol: Protocol, decided: dict, results: dict[str, ExplainerResult], margins,
              s: CompareSettings, unexplained: dict[str, str]) -> dict[str, dict]:
    """Per candidate, the verdict of every dimension (see :mod:`trusteq.metrics.verdict`): those decided on the
    outputs, then each explainer's, as the protocol decides it (undecided for an ``unexplained`` candidate's
    reason)."""
    out = {}
    for name, dims in decided.items():
        explained = {f"explanations.{e}": protocol.unavailable(unexplained[name], margins, s.alpha, s)
                     if name in unexplained else protocol.decide(results.get(e), name, margins, s.alpha, s)
                     for e in s.explainers}
        out[name] = verdict({**dims, **explained})
    return out


def _slices(protocol: Protocol, data: Dataset, probs: dict, verdicts: dict, explained: Explained, margins,
            s: CompareSettings, unexplained: dict[str, str]) -> dict[str, dict]:
    """Per candidate, the verdict of each slice (:mod:`trusteq.slices`); empty without ``--slice``."""
    if not s.slices:
        return {}

    def explain(cand, dim, index, level):
        if cand in unexplained:  # as in its overall verdict (see _verdicts)
            return protocol.unavailable(unexplained[cand], margins, level, s)
        result = explained.results.get(dim.split(".", 1)[1])
        return protocol.decide(result.subset(index) if result is not None else None, cand, margins, level, s,
                               plan=False)

    ids = {c: explained.ids[:max((r.explained(c) for r in explained.results.values()), default=0)]
           for c in verdicts}
    return decide_slices(data, s.slices, probs, verdicts, explain, ids, margins, s)
