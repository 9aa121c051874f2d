"""The comparison: is each candidate model trust-equivalent to the reference?

:func:`compare` reads the data, aligns every model's labels, predicts (cached),
computes calibration and agreement with bootstrap intervals, explains a seeded
sample of examples with every model, measures alignment against the reference
and the explainer's own noise floor, and returns a :class:`CompareResult`
whose ``summary`` is the content of ``report.json``.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Mapping, Sequence

import numpy as np

from . import cache
from .agreement import accuracy, flip_indicators, kl_divergence, mcnemar_test
from .alignment import metric_names, pair_metrics
from .calibration import STRATEGIES, UNCHECKED, check_probabilities, reliability_diagram
from .data import ColumnMap, Dataset, load_dataset
from .explain import EXPLAINERS, SHAP_BLOCK, Explanation, explain_examples, segment
from .models import TaskModel, load_model
from .predict import onnx_twin, predict
from .stats import Bootstrap

__all__ = ["compare", "CompareResult", "EXPLAIN_CLASSES"]

EXPLAIN_CLASSES = ("gold", "reference")
_EXPLAIN_VERSION = 1  # bump when explanation code changes what it computes


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
    explanations : dict explainer -> dict run -> list of Explanation
        ``run`` is a model name, or ``"<reference>@seed<s>"`` for the
        noise-floor run of the reference.
    explained_ids : list of str
        Ids of the explained examples.
    alignment_values : dict explainer -> dict run -> dict metric -> ndarray
        Per-example alignment with the reference, for each candidate and for
        the noise-floor run; NaN where undefined.
    """

    summary: dict
    dataset: Dataset
    probs: dict[str, np.ndarray]
    explanations: dict[str, dict[str, list[Explanation]]] = field(default_factory=dict)
    explained_ids: list[str] = field(default_factory=list)
    alignment_values: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)

    def __getitem__(self, key):
        return self.summary[key]

    def to_dict(self) -> dict:
        return self.summary


def compare(
    reference,
    candidates: Sequence,
    data,
    task: str,
    *,
    columns: ColumnMap | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    explainers: Sequence[str] = ("lime", "shap"),
    lime_samples: int = 1000,
    shap_evals: int = 500,
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
) -> CompareResult:
    """Compare candidate models with a reference model on labelled pairs.

    Parameters
    ----------
    reference : str, path or PairClassifier
        Folder, hub id, ONNX folder or model object of the reference model.
    candidates : sequence of the same
        One or more candidate (compressed) models.
    data : str, path or Dataset
        A data file or ``hf:NAME`` (see :func:`trusteq.data.load_dataset`).
    task : {"nli", "pi"}
    columns : ColumnMap, optional
        Column mapping for generic files.
    limit : int, optional
        Evaluate a seeded random sample of this many examples.
    skip_invalid : bool
        Drop invalid data rows instead of refusing the file; they are listed
        in ``report.json`` under ``data.dropped``.
    explainers : sequence of {"lime", "shap", "shap-permutation"}
        Empty for no explanations.
    lime_samples, shap_evals : int
        Perturbed samples per LIME explanation; evaluations per SHAP one.
    explain_limit : int
        Explain a seeded random sample of this many evaluated examples.
    explain_repeats : int
        Repeat the LIME (and shap-permutation) explanations with this many
        seeds (Rai et al. 2025 use 3); alignment is then the per-example mean
        over repeats, reported with the mean and variance of the per-repeat
        means. SHAP Partition is deterministic and runs once.
    explain_class : {"gold", "reference"}
        Class explained: the gold label (as in Rai et al. 2025) or the
        reference model's prediction.
    top_k : sequence of int
        K values of the top-k alignment metrics (default 10, as in the paper).
    n_bins : int
        Calibration bins (default 10, as in the paper).
    seed : int
        Fixes every random choice: data sample, explanation sample,
        perturbations, bootstrap. Repeat r explains the reference with
        ``seed + r`` and the candidates, and the reference again for the
        noise floor, with ``seed + r + 1`` (shared perturbations), so that
        candidate alignment and the noise floor both compare runs with
        different perturbations.
    n_boot : int
        Bootstrap resamples for every interval.
    label_map : mapping model name (or ``"*"``) -> label names
        Names of a model's outputs 0..C-1, overriding its ``id2label``.
    names : sequence of str, optional
        Report names of reference and candidates, in that order.
    max_length, batch_size : int
        Tokens per pair; pairs per forward pass.
    offline : bool
        Never touch the network.
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    CompareResult

    Raises
    ------
    DataError, LabelError, ModelError
        Bad data, models whose classes do not fit the task, models that
        return invalid probabilities. Raised before anything is written.
    ValueError
        Invalid settings.
    """
    started = time.time()
    timings: dict[str, float] = {}
    _check_settings(candidates, explainers, explain_class, top_k, n_bins, lime_samples, shap_evals, explain_limit,
                    explain_repeats)
    if not isinstance(data, Dataset):
        data = load_dataset(data, task, columns=columns, limit=limit, seed=seed, skip_invalid=skip_invalid)
    dataset = data
    specs = [reference, *candidates]
    if names is not None and len(names) != len(specs):
        raise ValueError(f"{len(names)} names for {len(specs)} models")
    models: list[TaskModel] = []
    for i, spec in enumerate(specs):
        model = load_model(spec, name=names[i] if names else None, max_length=max_length, batch_size=batch_size,
                           offline=offline)
        models.append(TaskModel(model, dataset.label_names, label_map))
    _unique_names(models)
    ref = models[0]
    timings["load"] = time.time() - started

    # predictions
    t0 = time.time()
    preds = {}
    for m in models:
        preds[m.name] = predict(m, dataset, progress=progress)
    probs = {name: p.probs for name, p in preds.items()}
    timings["predict"] = time.time() - t0

    # calibration and agreement
    t0 = time.time()
    y = dataset.y
    for p in probs.values():
        check_probabilities(y, p)
    boot = Bootstrap(len(dataset), n_boot=n_boot, seed=seed)
    model_section = {}
    for i, m in enumerate(models):
        model_section[m.name] = {
            "role": "reference" if i == 0 else "candidate",
            **m.model.info(),
            "label_map": m.override,
            "truncated": preds[m.name].truncated,
            **_calibration(boot, y, probs[m.name], n_bins),
        }
    comparisons = {m.name: _agreement(boot, y, probs[ref.name], probs[m.name], n_bins) for m in models[1:]}
    timings["metrics"] = time.time() - t0

    # explanations and alignment
    t0 = time.time()
    explained_ids: list[str] = []
    explain_runtime: dict[str, dict] = {}
    explanations: dict[str, dict[str, list[Explanation]]] = {}
    noise_floor: dict[str, dict] = {}
    alignment_values: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    if explainers:
        rng = np.random.default_rng(seed)
        n_explain = min(explain_limit, len(dataset))
        chosen = np.sort(rng.choice(len(dataset), size=n_explain, replace=False))
        examples = [dataset.examples[i] for i in chosen]
        explained_ids = [e.id for e in examples]
        targets = y[chosen] if explain_class == "gold" else probs[ref.name][chosen].argmax(axis=1)
        eboot = Bootstrap(n_explain, n_boot=n_boot, seed=seed)
        # Explanations run on ONNX Runtime where it reproduces PyTorch's probabilities (1e-5).
        check = [(e.text_a, e.text_b) for e in examples]
        twins = [onnx_twin(m, check) for m in models]
        explain_runtime = {m.name: record for m, (_, record) in zip(models, twins)}
        ref_x, models_x = twins[0][0], [twin for twin, _ in twins]
        for explainer in explainers:
            budget = lime_samples if explainer == "lime" else shap_evals
            # Repeat r explains the reference with seed + r and the candidates, and the
            # reference again for the noise floor, with seed + r + 1 (shared perturbations).
            # Every compared pair of runs thus differs in its perturbations, so candidate
            # alignment and the noise floor are measured on the same footing (shared
            # perturbations would inflate cross-model agreement above the floor). The
            # reference's run of repeat r + 1 is its noise-floor run of repeat r.
            repeats = 1 if explainer == "shap" else explain_repeats  # Partition: seed-independent
            floor_name = f"{ref.name}@seed{seed + 1}"
            ref_runs = [_explain_cached([ref_x], examples, targets, explainer, seed, budget, progress,
                                        "reference")[ref.name]]
            cand_runs = []
            for r in range(repeats):
                label = "candidates and noise floor" + (f", repeat {r + 1}/{repeats}" if repeats > 1 else "")
                cand_runs.append(_explain_cached(models_x, examples, targets, explainer, seed + r + 1, budget,
                                                 progress, label))
                ref_runs.append(cand_runs[-1][ref.name])
            runs = {ref.name: ref_runs[0], floor_name: ref_runs[1], **{m.name: cand_runs[0][m.name] for m in models[1:]}}
            for r in range(1, repeats):
                runs[f"{ref.name}@seed{seed + r + 1}"] = ref_runs[r + 1]
                runs.update({f"{m.name}@seed{seed + r + 1}": cand_runs[r][m.name] for m in models[1:]})
            explanations[explainer] = runs
            values = alignment_values[explainer] = {}
            per_repeat = {floor_name: [_alignment_table(ref_runs[r], ref_runs[r + 1], top_k) for r in range(repeats)]}
            for m in models[1:]:
                per_repeat[m.name] = [_alignment_table(ref_runs[r], cand_runs[r][m.name], top_k)
                                      for r in range(repeats)]
            summaries = {}
            for name, tables in per_repeat.items():
                values[name] = {k: np.nanmean([t[k] for t in tables], axis=0) if repeats > 1 else tables[0][k]
                                for k in tables[0]}
                summaries[name] = {k: _over_repeats(eboot, v, [t[k] for t in tables]) for k, v in values[name].items()}
            noise_floor[explainer] = summaries[floor_name]
            for m in models[1:]:
                comparisons[m.name].setdefault("alignment", {})[explainer] = summaries[m.name]
    timings["explain"] = time.time() - t0
    timings["total"] = time.time() - started

    summary = {
        "trusteq_version": _version("trusteq"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "task": dataset.task,
        "labels": list(dataset.label_names),
        "seed": seed,
        "reference": ref.name,
        "candidates": [m.name for m in models[1:]],
        "data": {"source": dataset.source, "sha256": dataset.sha256, "format": dataset.format,
                 "rows": dataset.n_rows, "examples": len(dataset), "limit": dataset.limit,
                 "dropped": dataset.dropped,
                 "label_counts": {name: int(np.sum(y == k)) for k, name in enumerate(dataset.label_names)}},
        "settings": {
            "n_bins": n_bins, "binning": list(STRATEGIES), "top_k": list(top_k), "explainers": list(explainers),
            "lime_samples": lime_samples, "shap_evals": shap_evals, "explained_examples": len(explained_ids),
            "explain_class": explain_class, "explain_repeats": explain_repeats,
            "explain_seeds": {"reference": list(range(seed, seed + explain_repeats)),
                              "candidates": list(range(seed + 1, seed + explain_repeats + 1)),
                              "noise_floor": [[seed + r, seed + r + 1] for r in range(explain_repeats)],
                              "shap": "Partition is deterministic: one repeat, noise floor 1"},
            "explain_runtime": explain_runtime,
            "max_length": max_length,
            "batch_size": batch_size, "bootstrap": boot.describe(),
        },
        "versions": _versions(),
        "models": model_section,
        "comparisons": comparisons,
        "noise_floor": noise_floor,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    return CompareResult(summary, dataset, probs, explanations, explained_ids, alignment_values)


# ---------------------------------------------------------------------------


def _check_settings(candidates, explainers, explain_class, top_k, n_bins, lime_samples, shap_evals, explain_limit,
                    explain_repeats):
    if not candidates:
        raise ValueError("at least one candidate model is needed")
    unknown = [e for e in explainers if e not in EXPLAINERS]
    if unknown:
        raise ValueError(f"unknown explainer(s) {unknown}; expected some of {list(EXPLAINERS)}")
    if explain_class not in EXPLAIN_CLASSES:
        raise ValueError(f"explain_class must be one of {EXPLAIN_CLASSES}, got {explain_class!r}")
    if not top_k or min(top_k) < 1:
        raise ValueError(f"top-k values must be >= 1, got {list(top_k)}")
    for label, value, low in (("n_bins", n_bins, 1), ("lime_samples", lime_samples, 2), ("shap_evals", shap_evals, 2),
                              ("explain_limit", explain_limit, 1), ("explain_repeats", explain_repeats, 1)):
        if value < low:
            raise ValueError(f"{label} must be >= {low}, got {value}")


def _unique_names(models):
    seen = set()
    for m in models:
        if m.name in seen:
            raise ValueError(f"two models are named '{m.name}'; give distinct names (--name)")
        seen.add(m.name)


def _calibration(boot: Bootstrap, y, p, n_bins) -> dict:
    out = {"accuracy": boot.ci(accuracy, y, p)}
    for metric in ("ece", "mce"):
        out[metric] = {s: boot.ci(lambda yy, pp, s=s, f=UNCHECKED[metric]: f(yy, pp, n_bins, s), y, p)
                       for s in STRATEGIES}
    out["brier"] = boot.ci(UNCHECKED["brier"], y, p)
    out["nll"] = boot.ci(UNCHECKED["nll"], y, p)
    out["classwise_ece"] = boot.ci(lambda yy, pp: UNCHECKED["classwise_ece"](yy, pp, n_bins), y, p)
    out["reliability"] = {s: reliability_diagram(y, p, n_bins, s) for s in STRATEGIES}
    return out


def _agreement(boot: Bootstrap, y, p_ref, p_cand, n_bins) -> dict:
    agree = (p_ref.argmax(axis=1) == p_cand.argmax(axis=1)).astype(float)
    c2w, w2c = (v.astype(float) for v in flip_indicators(y, p_ref, p_cand))
    mean = lambda v: float(np.mean(v))  # noqa: E731
    out = {
        "agreement": boot.ci(mean, agree),
        "flip_rate": {"total": boot.ci(mean, c2w + w2c), "correct_to_wrong": boot.ci(mean, c2w),
                      "wrong_to_correct": boot.ci(mean, w2c)},
        "kl": boot.ci(mean, kl_divergence(p_ref, p_cand)),
        "mcnemar": mcnemar_test(y, p_ref, p_cand),
    }
    delta = {"accuracy": boot.diff(accuracy, (y, p_cand), (y, p_ref))}
    for metric in ("ece", "mce"):
        delta[metric] = {s: boot.diff(lambda yy, pp, s=s, f=UNCHECKED[metric]: f(yy, pp, n_bins, s), (y, p_cand),
                                      (y, p_ref)) for s in STRATEGIES}
    for metric in ("brier", "nll"):
        delta[metric] = boot.diff(UNCHECKED[metric], (y, p_cand), (y, p_ref))
    out["delta"] = delta
    return out


def _over_repeats(boot: Bootstrap, pooled: np.ndarray, repeats: list[np.ndarray]) -> dict:
    """Bootstrap mean and interval of the per-example values (pooled over repeats), plus each repeat's mean
    and their variance (ddof=1; absent for one repeat)."""
    out = boot.mean(pooled)
    if len(repeats) > 1:
        means = [float(np.nanmean(v)) for v in repeats]
        out.update(repeat_means=means, repeat_variance=float(np.var(means, ddof=1)))
    return out


def _alignment_table(a: list[Explanation], b: list[Explanation], top_k) -> dict[str, np.ndarray]:
    names = metric_names(top_k)
    table = {n: np.full(len(a), np.nan) for n in names}
    for i, (ea, eb) in enumerate(zip(a, b)):
        if ea.example_id != eb.example_id:
            raise RuntimeError("explanations are not aligned by example")
        if len(ea.weights) == 0:
            continue
        for n, v in pair_metrics(ea.weights, eb.weights, top_k).items():
            table[n][i] = v
    return table


def _explain_cached(models: list[TaskModel], examples, targets, explainer, seed, budget, progress,
                    label: str) -> dict[str, list[Explanation]]:
    """Explanations per model, each cached on disk as soon as its block of examples is done.

    SHAP works on blocks of ``SHAP_BLOCK`` examples (their model calls are
    joined); LIME on one example at a time.
    """
    by_name = {m.name: m for m in models}
    items = list(zip(examples, (int(t) for t in targets)))
    runs: dict[str, list] = {m.name: [None] * len(items) for m in models}
    block = SHAP_BLOCK if explainer == "shap" else 1
    with _progress_bar(len(items), progress, f"{explainer} ({label})", unit="pair") as bar:
        for start in range(0, len(items), block):
            todo: dict[tuple[str, ...], list[int]] = {}  # models still to explain -> examples
            paths = {}
            for i in range(start, min(start + block, len(items))):
                ex, target = items[i]
                missing = []
                for m in models:
                    path = _explanation_path(m, ex, explainer, seed, budget, target)
                    hit = cache.load_arrays(path) if path is not None else None
                    if hit is None:
                        missing.append(m.name)
                        paths[m.name, i] = path
                    else:
                        runs[m.name][i] = Explanation(ex.id, m.name, explainer, seed, target,
                                                      segment(ex.text_a, ex.text_b), hit["weights"],
                                                      int(hit["n_evals"]))
                if missing:
                    todo.setdefault(tuple(missing), []).append(i)
            for names, idx in todo.items():
                result = explain_examples({n: by_name[n] for n in names}, [items[i][0] for i in idx],
                                          [items[i][1] for i in idx], explainer, seed, budget)
                for n in names:
                    for e, i in zip(result[n], idx):
                        if paths[n, i] is not None:
                            cache.save_arrays(paths[n, i], {"weights": e.weights, "n_evals": np.array(e.n_evals)})
                        runs[n][i] = e
            bar.update(min(block, len(items) - start))
    return runs


def _explanation_path(model: TaskModel, ex, explainer, seed, budget, target):
    fp = model.fingerprint
    if fp is None:
        return None
    k = cache.key("explain", _EXPLAIN_VERSION, fp, ex.id, ex.text_a, ex.text_b, explainer, seed, budget, target)
    return cache.cache_dir() / "explanations" / k[:2] / f"{k}.npz"


def _progress_bar(total: int, enabled: bool, desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not enabled)


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
