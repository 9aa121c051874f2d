"""A study: build models and run comparisons from one YAML file, resumably.

Example (``studies/quickstart.yaml``)::

    seed: 0
    out: studies/quickstart          # reports (relative to the study file)
    work: ../models/quickstart       # built models (relative to the study file)
    experiments:
      mrpc:
        task: pi
        train: ../../shared/data/mrpc_glue/train.tsv
        test: ../../shared/data/mrpc_glue/test.tsv
        models:
          l3: {finetune: {base: minilm-l3, epochs: 2}}
          l3-int8: {compress: {model: l3, method: int8}}
          l3-prune50: {compress: {model: l3, method: "prune:0.5"}}
        reference: l3
        candidates: [l3-int8, l3-prune50]
        compare: {limit: 300, explain_limit: 20, lime_samples: 500, shap_evals: 300}

An experiment may run further comparisons of the same models, each with its
own report folder ``<out>/<experiment>/<name>/``: ``comparisons: {paper-protocol:
{protocol: paper, explain_limit: 100}}`` (the options of ``compare:``).
``work`` may start with ``~`` (the home folder): keep long builds outside the
checkout. Top-level ``device``, ``executor``, ``ray_address`` and ``threads``
apply to every stage (``device`` to the model builds too); a comparison's own
options and the command line's ``--device``, ``--executor``, ``--ray-address``,
``--threads`` override them, in that order.

Model steps: ``finetune`` (``base`` and any :class:`TrainSettings` field),
``distill`` (``teacher``: a model of the experiment, ``student``, ``temperature``,
``alpha``, settings), ``compress`` (``model``: a model of the experiment,
``method``, settings for ``drop-layers``), or ``path`` (an existing folder).
An ``image-classification`` experiment trains its models from scratch:
``train`` (``arch``: a name of :data:`trusteq.workshop.images.ARCHITECTURES`,
and any :class:`~trusteq.workshop.images.ImageTrainSettings` field), ``distill``
(``student``: an architecture), ``compress`` (``int8``, calibrated on the
training images, or ``prune:S``).
A model whose folder already has ``trusteq-model.json`` is reused; an
interrupted fine-tune resumes from its checkpoint; finished explanations and
predictions come from the cache. So running the same study again continues
where it stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from .errors import TrustEqError
from .settings import check_keys
from .validation import check_output_dir

__all__ = ["run_study", "load_study", "estimate_study", "Estimate"]

_STEPS = ("finetune", "train", "distill", "compress", "path")


def load_study(path) -> dict:
    """Parse and check a study file.

    Unknown keys are reported before missing ones, with the keys allowed at
    that place, at every level: the top level, each experiment, its
    ``compare:`` mapping and each model step's arguments.

    Raises
    ------
    TrustEqError
        Unreadable YAML, an unknown or missing key, a value of the wrong
        kind, or a compared model that is not defined (the message names the
        file and the place).
    """
    import yaml

    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TrustEqError(f"{path}: cannot read study file ({exc})") from None
    if not isinstance(spec, dict):
        raise TrustEqError(f"{path}: a study file must be a mapping with an 'experiments' mapping")
    check_keys(spec, _TOP, str(path))
    _top_settings(spec, str(path))
    if not isinstance(spec.get("experiments"), dict) or not spec["experiments"]:
        raise TrustEqError(f"{path}: a study needs a non-empty 'experiments' mapping")
    for name, exp in spec["experiments"].items():
        _check_experiment(exp, f"{path}: experiments.{name}")
    return spec


_EXECUTION = ("device", "executor", "ray_address", "threads")
_TOP = ("seed", "out", "work", *_EXECUTION, "experiments")
_EXPERIMENT = ("task", "train", "dev", "test", "models", "reference", "candidates", "compare", "comparisons",
               "search")
_REQUIRED = ("task", "train", "test", "models", "reference")
#: The plan's name of an experiment's search stage (never a ``comparisons:`` name: those have no colon).
SEARCH = ":search"
#: The keys of ``search:`` besides the compare options.
_SEARCH_KEYS = ("methods", "confirmation")
_STEP_ARGS = {"finetune": ("base",), "train": ("arch",), "distill": ("teacher", "student", "temperature", "alpha"),
              "compress": ("model", "method")}
_STEP_REQUIRED = {"finetune": ("base",), "train": ("arch",), "distill": ("teacher", "student"),
                  "compress": ("model", "method")}


def _check_experiment(exp, where: str) -> None:
    from .data import TASKS

    check_keys(exp, _EXPERIMENT, where, _REQUIRED)
    if exp["task"] not in TASKS:
        raise TrustEqError(f"{where}.task: unknown task {exp['task']!r}; expected one of {', '.join(TASKS)}")
    _check_comparison(exp.get("compare", {}), exp["task"], f"{where}.compare")
    extra = exp.get("comparisons", {})
    if not isinstance(extra, dict) or not all(isinstance(k, str) and k.replace("-", "").replace("_", "").isalnum()
                                              for k in extra):
        raise TrustEqError(f"{where}.comparisons: expected a mapping of report folder names (letters, digits, - and "
                           f"_) to compare options")
    for key, options in extra.items():
        _check_comparison(options, exp["task"], f"{where}.comparisons.{key}")
    if not isinstance(exp["models"], dict) or not exp["models"]:
        raise TrustEqError(f"{where}.models: expected a non-empty mapping of model names to steps")
    for model, step in exp["models"].items():
        _check_step(step, f"{where}.models.{model}", exp["task"])
    if "candidates" not in exp and ("search" not in exp or "comparisons" in exp):
        raise TrustEqError(f"{where}: missing key 'candidates'" + ("" if "comparisons" in exp else " (or 'search')"))
    if not isinstance(exp.get("candidates", []), list):
        raise TrustEqError(f"{where}.candidates: expected a list of model names")
    if "search" in exp:
        _check_search(exp["search"], exp["task"], f"{where}.search")
    for model in [exp["reference"], *exp.get("candidates", [])]:
        if model not in exp["models"]:
            raise TrustEqError(f"{where}: model '{model}' is compared but not defined under models")


def _check_search(options, task: str, where: str) -> None:
    """``search:``: ``methods`` (a non-empty list of compression methods), ``confirmation`` (a share in (0, 1))
    and compare options, each checked before any work."""
    from .workshop.common import parse_method

    if not isinstance(options, dict) or not isinstance(options.get("methods"), list) or not options["methods"]:
        raise TrustEqError(f"{where}: expected a mapping with 'methods', a non-empty list of compression methods")
    for method in options["methods"]:
        try:
            parse_method(str(method))
        except TrustEqError as exc:
            raise TrustEqError(f"{where}.methods: {exc}") from None
    share = options.get("confirmation", 0.5)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        raise TrustEqError(f"{where}.confirmation: expected a share in (0, 1), got {share!r}")
    _check_comparison(_search_compare(options), task, where)


def _search_compare(options: dict) -> dict:
    """The compare options of a ``search:`` mapping (its keys but ``methods`` and ``confirmation``)."""
    return {k: v for k, v in options.items() if k not in _SEARCH_KEYS}


def _check_step(step, where: str, task: str) -> None:
    from .data import IMAGE_TASKS

    steps = tuple(s for s in _STEPS if s != ("finetune" if task in IMAGE_TASKS else "train"))  # images: from scratch
    if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in steps:
        raise TrustEqError(f"{where}: expected one of {', '.join(steps)} (task {task})")
    kind, args = next(iter(step.items()))
    if kind == "path":
        if not isinstance(args, str):
            raise TrustEqError(f"{where}.path: expected a folder (a string), got {args!r}")
        return
    cls = _train_class(task)
    train = tuple(f.name for f in fields(cls) if f.name not in _STEP_ARGS[kind])
    check_keys(args, _STEP_ARGS[kind] + train, f"{where}.{kind}", _STEP_REQUIRED[kind])
    _settings(args, 0, 3, f"{where}.{kind}", cls)  # the training settings' values, checked as the API checks them
    for key in ("temperature", "alpha"):
        if key in args and (isinstance(args[key], bool) or not isinstance(args[key], (int, float))):
            raise TrustEqError(f"{where}.{kind}.{key}: expected a number, got {args[key]!r}")


def _compare_settings(options, where: str, base=None, allowed=None):
    """The :class:`~trusteq.settings.CompareSettings` of a ``compare:`` mapping over ``base``: its keys are the
    options a study may set (all but seed, progress and names, which the study sets itself; or ``allowed``),
    its values checked as the API checks them. TrustEqError naming ``where`` and the key."""
    from .settings import CompareSettings, settings_from_mapping

    allowed = CompareSettings.study_keys() if allowed is None else allowed
    return settings_from_mapping(CompareSettings, options, base=base, where=where, allowed=allowed)


def _check_comparison(options, task: str, where: str) -> None:
    """A comparison's options, checked as :func:`trusteq.compare` checks them before any work (its protocol's
    explainers and tasks included)."""
    from .protocols import get_protocol

    settings = _compare_settings(options, where)
    try:
        get_protocol(settings.protocol).check(settings, task)
    except TrustEqError as exc:
        raise TrustEqError(f"{where}: {exc}") from None


def _top_settings(spec: dict, where: str, execution: dict | None = None):
    """The settings every comparison of the study starts from: its ``seed`` and top-level execution keys, then
    the command line's ``execution`` overrides; checked (the executor included) before anything is built."""
    from .executors import check_executor

    base = _compare_settings({"seed": spec["seed"]} if spec.get("seed") is not None else {}, where,
                             allowed=("seed",))
    top = _compare_settings({k: spec[k] for k in _EXECUTION if k in spec}, where, base)
    try:
        settings = top.replace(**(execution or {}))
    except TrustEqError as exc:
        raise TrustEqError(f"{where}: {exc}") from None
    check_executor(settings.executor, settings.ray_address, settings.threads)
    return settings


def run_study(path, progress: bool = True, experiments=None, **execution) -> list[Path]:
    """Build every model and run every comparison of the study file at ``path``.

    ``experiments`` (names, default all) runs only those experiments, in the
    file's order; each experiment is complete on its own, so two processes may
    run different experiments of one study at the same time.

    ``execution`` (``device``, ``executor``, ``ray_address``, ``threads``;
    see :func:`trusteq.comparison.compare`) overrides the study file's keys of
    the same names for every stage.

    Returns the folders of the written reports. The reports record the data and model paths relative
    to the study file's folder.

    Raises
    ------
    TrustEqError
        A bad study file (see :func:`load_study`), an experiment name it does not define,
        and the errors of the steps: bad data
        (:class:`~trusteq.errors.DataError`), a model that cannot be loaded
        (:class:`~trusteq.errors.ModelError`), a checkpoint that cannot be loaded safely, an output
        folder that cannot be written.
    """
    from .comparison import compare
    from .report import write_report

    path, spec, base, out_root, work = _open(path, experiments)
    for folder in (out_root, work):
        check_output_dir(folder, create=False)  # before any work: a bad folder costs seconds, not a study
    unknown = sorted(set(execution) - set(_EXECUTION))
    if unknown:
        raise TypeError(f"run_study() got unexpected keyword arguments {unknown}")
    top = _top_settings(spec, str(path), execution)  # before any work: a bad executor costs seconds
    started = time.time()
    plan = _plan(spec, path)
    estimate = Estimate(spec, base, work, plan)
    written = []

    def stage(done, text):
        estimate.finished(done)
        print(f"[{done + 1}/{len(plan)}] {text} (elapsed {_duration(time.time() - started)}; estimated remaining "
              f"{_duration(estimate.remaining(done))})", flush=True)

    folders: dict[str, dict[str, str]] = {name: {} for name in spec["experiments"]}
    for done, (name, model, comparison) in enumerate(plan):
        exp, built = spec["experiments"][name], folders[name]
        if model is not None:
            stage(done, f"{name}: model {model}" + (" (built: reused)" if estimate.built(name, model) else ""))
            built[model] = _build(model, exp, built, work / name, base, top.seed, progress, top.device)
            continue
        stage(done, _stage_title(name, exp, comparison))
        record = {"file": path.name, "experiment": name, "comparison": comparison,
                  "models": {m: _provenance(built[m]) for m in built}}
        home_work = _home_roots(spec, work)
        if comparison == SEARCH:
            written.append(_search(exp, built, base, work / name, out_root / name / "search",
                                   top.replace(progress=progress), execution, home_work))
            continue
        study_defaults = top.replace(names=(exp["reference"], *exp["candidates"]), progress=progress)
        settings = _compare_settings(_compare_kwargs(exp, comparison), name, study_defaults).replace(**execution)
        result = compare(built[exp["reference"]], [built[c] for c in exp["candidates"]],
                         _path(base, exp["test"]), exp["task"], settings)
        result = result.for_study(record, base, home_work)
        folder = out_root / name if comparison is None else out_root / name / comparison
        written.append(write_report(result, folder).parent)
    print(f"study finished in {_duration(time.time() - started)}; reports in {out_root}")
    return written


def estimate_study(path, experiments=None) -> str:
    """The estimated wall time of each stage of the study at ``path`` on this machine, as printable lines.

    ``experiments``: names, default all (see :func:`run_study`). Runs nothing:
    reads the data and measures each model's throughput on 64 test pairs (see
    :class:`Estimate`). Built models count 0; cached
    predictions and explanations are not discounted. Explanations are costed at
    the cap (``explain_limit``) for every model: sequentially explained
    comparisons stop earlier, so their figure is an upper bound (marked "at most").

    Raises
    ------
    TrustEqError
        A bad study file (see :func:`load_study`), an experiment name it does not define.
        DataError: bad data.
    """
    path, spec, base, _, work = _open(path, experiments)
    plan = _plan(spec, path)
    est = Estimate(spec, base, work, plan)
    lines = [f"{path.name}: estimated wall time per stage on this machine ({os.cpu_count()} CPUs); nothing is run"]
    per_experiment: dict[str, float] = {}
    for i, ((name, model, comparison), parts) in enumerate(zip(plan, est.parts)):
        exp, seconds = spec["experiments"][name], sum(parts.values())
        if model is not None:
            title = f"{name}: model {model}" + (" (built: reused)" if est.built(name, model) else "")
        else:
            bound = "at most " if _sequential(exp, comparison) else ""
            title = _stage_title(name, exp, comparison) + " (" + ", ".join(
                f"{k} {'' if k == 'predictions' else bound}{_duration(v)}" for k, v in parts.items()) + ")"
        lines.append(f"[{i + 1}/{len(plan)}] {title}: {_duration(seconds)}")
        per_experiment[name] = per_experiment.get(name, 0.0) + seconds
    lines += [f"{name}: {_duration(t)} in all" for name, t in per_experiment.items()]
    lines.append(f"total: {_duration(sum(est.costs))}")
    return "\n".join(lines)


def _sequential(exp: dict, comparison: str | None) -> bool:
    """Whether a comparison explains sequentially (stops before the cap when it can)."""
    from .protocols import get_protocol

    s = _compare_settings(_compare_kwargs(exp, comparison), "")
    return bool(s.explainers) and get_protocol(s.protocol).sequential(s)


def _open(path, experiments=None):
    """(study file, spec with only ``experiments`` if given, its folder, report root, work folder),
    every path absolute."""
    path = Path(path).resolve()
    spec = load_study(path)
    if experiments:
        unknown = [e for e in experiments if e not in spec["experiments"]]
        if unknown:
            raise TrustEqError(f"{path}: no experiment {', '.join(map(repr, unknown))}; "
                               f"the file defines {', '.join(spec['experiments'])}")
        spec["experiments"] = {k: v for k, v in spec["experiments"].items() if k in experiments}
    base = path.parent
    out_root = (base / spec.get("out", path.stem)).resolve()
    work = (base / Path(str(spec.get("work", f".trusteq-work/{path.stem}"))).expanduser()).resolve()
    return path, spec, base, out_root, work


def _home_roots(spec: dict, work: Path) -> list[Path]:
    """The folders whose paths reports write from ``~``: the work folder and the ``path:`` models, where the study
    file spells them from ``~`` (a model of another study's work folder is not this machine's to name)."""
    roots = [work] if str(spec.get("work", "")).startswith("~") else []
    for exp in spec["experiments"].values():
        roots += [Path(str(step["path"])).expanduser() for step in exp["models"].values()
                  if "path" in step and str(step["path"]).startswith("~")]
    return roots


def _plan(spec: dict, path) -> list[tuple[str, str | None, str | None]]:
    """Stages in order: ``(experiment, model, None)`` builds a model (after those it is built from);
    ``(experiment, None, comparison)`` runs a comparison (None: ``compare:``, where there are candidates; else a
    ``comparisons:`` name, or :data:`SEARCH`, the search, last)."""
    plan: list[tuple[str, str | None, str | None]] = []
    for name, exp in spec["experiments"].items():
        plan += [(name, m, None) for m in _order(exp["models"], f"{path}: experiments.{name}")]
        compares = [None] if exp.get("candidates") else []
        plan += [(name, None, c) for c in [*compares, *exp.get("comparisons", {}), *([SEARCH] if "search" in exp
                                                                                     else [])]]
    return plan


def _search(exp: dict, built: dict, base: Path, work: Path, out: Path, top, execution: dict, home_work) -> Path:
    """An experiment's search stage: its ``search.methods`` applied to its reference (built into
    ``work/search-candidates``, ``drop-layers`` tuned on its training data), searched on its test data with the
    experiment's ``compare`` options overlaid by the search's own; reports into ``out``. Returns ``out``."""
    from .trust_search import CONFIRMATION, build_candidates, search

    options = exp["search"]
    settings = _compare_settings(_compare_kwargs(exp, SEARCH), "search", top).replace(**execution)
    reference = built[exp["reference"]]
    candidates = build_candidates(reference, [str(m) for m in options["methods"]], work / "search-candidates",
                                  data=_path(base, exp["train"]), task=exp["task"], progress=settings.progress)
    out.mkdir(parents=True, exist_ok=True)
    search(reference, candidates, _path(base, exp["test"]), exp["task"], out,
           confirmation=float(options.get("confirmation", CONFIRMATION)), settings=settings.replace(
               names=(exp["reference"], "candidate")), home_work=home_work)
    return out


def _compare_kwargs(exp: dict, comparison: str | None) -> dict:
    if comparison == SEARCH:  # the search's own options over compare's; a null keeps compare's value
        return {**exp.get("compare", {}), **{k: v for k, v in _search_compare(exp["search"]).items() if v is not None}}
    return dict(exp.get("compare", {}) if comparison is None else exp["comparisons"][comparison])


def _stage_title(name: str, exp: dict, comparison: str | None) -> str:
    if comparison == SEARCH:
        return f"{name}: search {', '.join(map(str, exp['search']['methods']))} of {exp['reference']}"
    of = f" ({comparison})" if comparison else ""
    return f"{name}: compare {exp['reference']} with {', '.join(exp['candidates'])}{of}"


def _model_path(base: Path, value) -> str:
    """A ``path:`` model: a pulled LLM's folder for a name of :data:`trusteq.workshop.llms.LLMS`, else the path."""
    from .workshop.llms import LLMS, pull

    return str(pull(value)) if str(value) in LLMS else _path(base, value)


def _path(base: Path, value) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _order(models: dict, where: str) -> list[str]:
    """Models in an order where each comes after the models it is built from."""
    ordered: list[str] = []

    def visit(m, stack):
        if m in ordered:
            return
        if m in stack:
            raise TrustEqError(f"{where}: models depend on each other in a cycle ({' -> '.join([*stack, m])})")
        step, args = next(iter(models[m].items()))
        for dep in (args.get("model"), args.get("teacher")) if isinstance(args, dict) else ():
            if dep is not None and dep in models:
                visit(dep, [*stack, m])
        ordered.append(m)

    for m in models:
        visit(m, [])
    return ordered


def _train_class(task: str):
    """The training settings of a task's model steps: ImageTrainSettings for images, else TrainSettings."""
    from .data import IMAGE_TASKS

    if task in IMAGE_TASKS:
        from .workshop.images import ImageTrainSettings

        return ImageTrainSettings
    from .workshop.finetune import TrainSettings

    return TrainSettings


def _settings(args: dict, seed: int, epochs: int | None, where: str = "training settings", cls=None):
    """The training settings (``cls``, default TrainSettings) of a model step's arguments (its other keys left
    out), ``seed`` and ``epochs`` where the step sets none (``epochs`` None: the class's default)."""
    from .settings import settings_from_mapping
    from .workshop.finetune import TrainSettings

    cls = cls or TrainSettings
    known = {f.name for f in fields(cls)}
    values = {"seed": seed, **({"epochs": epochs} if epochs is not None else {}),
              **{k: v for k, v in args.items() if k in known and v is not None}}
    return settings_from_mapping(cls, values, where=where)


def _build(model: str, exp: dict, folders: dict, work: Path, base: Path, seed: int, progress: bool,
           device: str = "auto") -> str:
    from .data import IMAGE_TASKS
    from .workshop.compress import compress
    from .workshop.finetune import PROVENANCE, distill, finetune

    step, args = next(iter(exp["models"][model].items()))
    if step == "path":
        return _model_path(base, args)
    out = work / model
    if (out / PROVENANCE).exists():
        return str(out)
    task = exp["task"]
    train = _path(base, exp["train"])
    dev = _path(base, exp["dev"]) if exp.get("dev") else None
    if task in IMAGE_TASKS:
        _build_image(step, args, folders, train, dev, out, seed, progress, device)
    elif step == "finetune":
        finetune(args["base"], train, task, out, dev=dev, settings=_settings(args, seed, 3), progress=progress,
                 device=device)
    elif step == "distill":
        teacher = folders.get(args["teacher"], args["teacher"])
        distill(teacher, args["student"], train, task, out, dev=dev, settings=_settings(args, seed, 3),
                temperature=float(args.get("temperature", 2.0)), alpha=float(args.get("alpha", 0.5)),
                progress=progress, device=device)
    else:
        source = folders.get(args["model"], args["model"])
        compress(source, str(args["method"]), out, data=train, task=task, settings=_settings(args, seed, 1),
                 progress=progress, device=device)
    return str(out)


def _build_image(step: str, args: dict, folders: dict, train: str, dev: str | None, out: Path, seed: int,
                 progress: bool, device: str) -> None:
    """An image experiment's model step: ``train`` (from scratch), ``distill`` (a student architecture from a
    teacher) or ``compress`` (int8 calibrated on the training images, or pruning) into ``out``."""
    from .workshop.images import ImageTrainSettings, compress_image_model, train_image_classifier

    if step == "compress":
        compress_image_model(folders.get(args["model"], args["model"]), str(args["method"]), out, data=train)
        return
    settings = _settings(args, seed, None, cls=ImageTrainSettings)
    arch, teacher = (args["arch"], None) if step == "train" else (args["student"], folders.get(args["teacher"],
                                                                                                args["teacher"]))
    train_image_classifier(train, out, arch=arch, settings=settings, dev=dev, progress=progress, device=device,
                           teacher=teacher)


def _provenance(folder: str) -> dict:
    import json

    from .workshop.finetune import PROVENANCE

    p = Path(folder) / PROVENANCE
    if not p.exists():
        return {"path": folder}
    info = json.loads(p.read_text())
    keep = ("method", "base", "teacher", "source_model", "parameters", "nonzero_parameters", "size_mb", "dev",
            "train_seconds", "compress_seconds", "settings")
    return {k: info[k] for k in keep if k in info}


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


#: Forward passes' worth of one training pair in one epoch (measured on 2 CPU cores, see Estimate).
TRAIN_PASSES = 6
#: The same for one training image of an image classifier trained from scratch (augmentation, backward, AdamW).
IMAGE_TRAIN_PASSES = 4
#: Seconds of an image classifier's int8 export, calibration and static quantization.
IMAGE_INT8_SECONDS = 30.0


class Estimate:
    """Seconds each stage of a study should take on this machine, corrected as stages finish.

    Every cost is counted in forward passes of one pair through one model and
    converted with that model's throughput, measured at the start on 64 test
    pairs (an encoder with a fresh head stands in for a model not built yet;
    a compressed model runs at its source's rate). Assumed cost factors:

    * fine-tuning: :data:`TRAIN_PASSES` forward passes per training pair and epoch
      (backward ~ 2x, optimizer steps, padding to each batch's longest pair; 3 was
      measured 1.25x to 2.4x too low: MiniLM-L6 on SNLI 8.6 min against 4.1 estimated);
      distillation adds one teacher pass per training pair;
    * int8 export and quantization: 3,000 pairs' worth; pruning: 10 s;
    * predictions: one pass per test pair and model (cached ones are not discounted);
    * explanations: each explainer's evaluations per example as the protocol counts
      them (:meth:`trusteq.protocols.Protocol.cost`, from the explainer registry's
      ``cost``: LIME 0.87 x samples passes, identical masks evaluated once; SHAP
      the exact cost of the pair hierarchy where it fits the budget, once per model
      and shared by every seed, else the permutations that fit the budget;
      shap-permutation the permutations that fit the budget); under the pair protocol
      every model runs 2 x repeats times (its own noise floor included); perturbed pairs
      and ONNX Runtime make an explanation pass ~3x cheaper than a test-set pass; an int8
      graph runs one pair per call (its batching check), measured at 0.85x the fp32
      source's batched rate (3.8 ms per SNLI pair with MiniLM-L6; 1.8x was assumed before).
      Measured on 2 CPU cores with MiniLM-L6 (benchmarks/explain_speed.py).
    * the paper's protocol (``protocol: paper``): LIME all ``lime_samples`` (no
      de-duplication), SHAP ``shap_evals`` (at least 2d + 1), per run; the reference
      runs twice per repeat (its floor), each candidate once; nothing is shared between
      seeds.

    ``parts[i]`` splits stage i's seconds (``build``; or ``predictions`` and one
    entry per explainer), ``costs[i]`` is their sum.

    After each stage the remaining estimate is scaled by (actual / estimated)
    over the finished stages, within [1/4, 4].
    """

    def __init__(self, spec: dict, base: Path, work: Path, plan: list[tuple[str, str | None]]):
        self.spec, self.base, self.work = spec, base, work
        self.rates: dict[tuple[str, str], float] = {}
        self._data: dict[str, tuple] = {}
        self.parts = [self._cost(name, model, comparison) for name, model, comparison in plan]
        self.costs = [sum(p.values()) for p in self.parts]
        self.stage_started = time.time()
        self.actual: list[float] = []

    def built(self, experiment: str, model: str) -> bool:
        from .workshop.finetune import PROVENANCE

        step = next(iter(self.spec["experiments"][experiment]["models"][model]))
        return step == "path" or (self.work / experiment / model / PROVENANCE).exists()

    def finished(self, done: int) -> None:
        """``done`` stages are finished and the next one starts now (the last finished one is timed)."""
        now = time.time()
        if done > 0:
            self.actual.append(now - self.stage_started)
        self.stage_started = now

    def remaining(self, done: int) -> float:
        """Seconds estimated for the stages from index ``done`` on."""
        n = len(self.actual)  # stages timed so far
        est = sum(self.costs[:n])
        scale = float(np.clip(sum(self.actual) / est, 0.25, 4.0)) if n and est > 0 else 1.0
        return scale * sum(self.costs[done:])

    # -- cost model ---------------------------------------------------------

    def _cost(self, experiment: str, model: str | None, comparison: str | None = None) -> dict[str, float]:
        from .data import load_dataset

        exp = self.spec["experiments"][experiment]
        if experiment not in self._data:
            self._data[experiment] = (load_dataset(_path(self.base, exp["train"]), exp["task"]),
                                      load_dataset(_path(self.base, exp["test"]), exp["task"]))
        if model is not None:
            return {"build": 0.0 if self.built(experiment, model) else self._build_cost(experiment, model)}
        if comparison == SEARCH:
            return self._search_cost(experiment)
        return self._compare_cost(experiment, _compare_kwargs(exp, comparison))

    def _build_cost(self, experiment: str, model: str) -> float:
        step, args = next(iter(self.spec["experiments"][experiment]["models"][model].items()))
        return self._step_cost(experiment, model, step, args)

    def _step_cost(self, experiment: str, model: str, step: str, args: dict) -> float:
        """Seconds of the model step ``{step: args}`` building ``model``."""
        from .data import IMAGE_TASKS

        exp, train = self.spec["experiments"][experiment], self._data[experiment][0]
        if exp["task"] in IMAGE_TASKS:
            return self._image_build_cost(experiment, step, args, len(train))
        epochs = int(args.get("epochs", 3 if step in ("finetune", "distill") else 1))
        if step == "finetune":
            return TRAIN_PASSES * epochs * len(train) / self._rate(experiment, model)
        if step == "distill":
            teacher, student = self._rate(experiment, args["teacher"]), self._rate(experiment, model)
            return len(train) * (1 / teacher + TRAIN_PASSES * epochs / student)
        method = str(args["method"])
        if method == "int8":
            return 3000 / self._rate(experiment, args["model"])
        if method.startswith("drop-layers"):
            return TRAIN_PASSES * epochs * len(train) / self._rate(experiment, args["model"])
        return 10.0

    def _image_build_cost(self, experiment: str, step: str, args: dict, n: int) -> float:
        """Training from scratch: :data:`IMAGE_TRAIN_PASSES` per training image and epoch (a distilled student
        adds one teacher pass); int8: calibration on :data:`~trusteq.workshop.images.CALIBRATION_IMAGES` images
        and the export, :data:`IMAGE_INT8_SECONDS` in all; pruning 10 s."""
        from .workshop.images import ImageTrainSettings

        epochs = int(args.get("epochs", ImageTrainSettings().epochs))
        if step == "train":
            return IMAGE_TRAIN_PASSES * epochs * n / self._probe(experiment, args["arch"])
        if step == "distill":
            teacher = self._rate(experiment, args["teacher"])
            return epochs * n * (1 / teacher + IMAGE_TRAIN_PASSES / self._probe(experiment, args["student"]))
        return IMAGE_INT8_SECONDS if str(args["method"]) == "int8" else 10.0

    def _compare_cost(self, experiment: str, options: dict) -> dict[str, float]:
        """Predictions, and each explainer's evaluations as the comparison's protocol counts them
        (:meth:`trusteq.protocols.Protocol.cost`, which reads the explainer registry's costs)."""
        from .protocols import get_protocol

        exp, test = self.spec["experiments"][experiment], self._data[experiment][1]
        s = _compare_settings(options, experiment)
        return self._models_cost(experiment, s, [exp["reference"], *exp.get("candidates", [])], len(test))

    def _layers(self, experiment: str) -> int:
        """The reference's encoder layers where it is a folder already (its config), else 6."""
        exp = self.spec["experiments"][experiment]
        step, args = next(iter(exp["models"][exp["reference"]].items()))
        folder = Path(_model_path(self.base, args)) if step == "path" else self.work / experiment / exp["reference"]
        config = folder / "config.json"
        if config.is_file():
            import json

            return int(json.loads(config.read_text()).get("num_hidden_layers", 6))
        return 6

    def _models_cost(self, experiment: str, s, names: list, n_test: int, onnx: frozenset = frozenset()) -> dict:
        """Predictions of ``names`` on ``n_test`` examples and their explanations at the cap; ``onnx``: names
        (not models of the experiment) run as int8 graphs at the reference's rate."""
        from .protocols import get_protocol

        exp, test = self.spec["experiments"][experiment], self._data[experiment][1]
        rate = {m: self._rate(experiment, m if m in exp["models"] else exp["reference"]) for m in names}
        speedup = {m: 0.85 if m in onnx else self._pass_speedup(exp, m if m in exp["models"] else exp["reference"])
                   for m in names}
        protocol, n, sample = get_protocol(s.protocol), min(s.explain_limit, n_test), test.examples[:2000]
        parts = {"predictions": sum(n_test / rate[m] for m in names)}
        for explainer in s.explainers:
            evaluations = protocol.cost(explainer, sample, s)
            parts[explainer] = sum(n / (speedup[m] * rate[m]) * evaluations["reference" if m == exp["reference"]
                                                                            else "candidate"] for m in names)
        return parts

    def _search_cost(self, experiment: str) -> dict[str, float]:
        """A search: building each method's candidate (as a ``compress`` step would cost), each decided on the
        selection split with explanations at the cap (the reference's once), one confirmation, and for each
        ``int8`` or ``prune`` method the partial compression's ranking (a build and a prediction pass per
        encoder layer: the reference's config, or 6 before it is built). The greedy candidates after the ranking are not counted: each adds a build
        and a prediction pass, and explanations only when its predictions and calibration pass."""
        from .trust_search import CONFIRMATION

        exp = self.spec["experiments"][experiment]
        methods = [str(m) for m in exp["search"]["methods"]]
        share = float(exp["search"].get("confirmation", CONFIRMATION))
        s = _compare_settings(_compare_kwargs(exp, SEARCH), experiment)
        n_test, ref = len(self._data[experiment][1]), exp["reference"]
        n_sel, n_conf = round((1 - share) * n_test), round(share * n_test)
        build = sum(self._step_cost(experiment, m, "compress", {"model": ref, "method": m}) for m in methods)
        partial = [m for m in methods if m == "int8" or m.startswith("prune")]
        layers = self._layers(experiment)
        ranking = layers * sum(3000 / self._rate(experiment, ref) if m == "int8" else 10.0 for m in partial) + \
            layers * len(partial) * n_sel / self._rate(experiment, ref)
        onnx = frozenset(m for m in methods if m == "int8")
        selection = self._models_cost(experiment, s, [ref, *methods], n_sel, onnx)
        confirm = self._models_cost(experiment, s, [ref, methods[0]], n_conf, onnx)
        parts = {"build": build + ranking}
        for key in selection:
            parts[key] = selection[key] + confirm[key]
        return parts

    def _pass_speedup(self, exp: dict, model: str) -> float:
        """An explanation pass against a test-set pass: ~3x cheaper (short perturbed pairs, ONNX Runtime), but
        0.85x for an int8 graph, run one pair per call; images: the same (a perturbed image is as large)."""
        from .data import IMAGE_TASKS

        if exp["task"] in IMAGE_TASKS:
            return 1.0
        return 0.85 if self._is_onnx(exp, model) else 3.0

    def _is_onnx(self, exp: dict, model: str) -> bool:
        step, args = next(iter(exp["models"][model].items()))
        return step == "compress" and str(args["method"]) == "int8" and not self._causal(exp, args["model"])

    def _causal(self, exp: dict, model: str) -> bool:
        """Whether ``model`` (or what it is built from) is a prompted LLM's."""
        step, args = next(iter(exp["models"][model].items()))
        if step == "compress":
            return self._causal(exp, args["model"])
        return step == "path" and _is_causal(_model_path(self.base, args))

    def _rate(self, experiment: str, model: str) -> float:
        """Forward pairs per second of ``model`` (or what it is built from) on 64 test pairs."""
        exp = self.spec["experiments"][experiment]
        if model not in exp["models"]:  # a teacher given as a folder
            return self._probe(experiment, str(model))
        step, args = next(iter(exp["models"][model].items()))
        if step == "compress":
            return self._rate(experiment, args["model"])
        if step == "path":
            return self._probe(experiment, _model_path(self.base, args))
        if step == "train":
            return self._probe(experiment, args["arch"])
        return self._probe(experiment, args["base"] if step == "finetune" else args["student"],
                           int(args.get("max_length", 128)))

    def _probe(self, experiment: str, source: str, max_length: int = 128) -> float:
        key = (experiment, f"{source}:{max_length}")
        if key not in self.rates:
            test = self._data[experiment][1]
            self.rates[key] = _image_throughput(source, test) if test.kind == "image" else \
                _throughput(source, test.pairs[:64], max_length)
        return self.rates[key]


def _image_throughput(source: str, test) -> float:
    """Images per second of an image classifier (a folder, or a fresh model of an architecture name of
    :data:`trusteq.workshop.images.ARCHITECTURES`) on 256 of ``test``'s images, timed after one warm-up run."""
    from .vision import load_image_model
    from .workshop.images import ARCHITECTURES

    images = test.inputs[:256]
    if source in ARCHITECTURES:
        import torch
        from transformers import AutoModelForImageClassification

        config = ARCHITECTURES[source](images[0].shape[-1], len(test.label_names), dict(enumerate(test.label_names)))
        model = AutoModelForImageClassification.from_config(config).eval()
        pixels = torch.from_numpy(np.stack(images).astype(np.float32) / 255).permute(0, 3, 1, 2)

        def run(_):
            with torch.inference_mode():
                for batch in pixels.split(64):
                    model(pixel_values=batch)
    else:
        run = load_image_model(source).predict_proba
    run(images)
    t = time.perf_counter()
    run(images)
    return len(images) / max(time.perf_counter() - t, 1e-6)


def _is_causal(source: str) -> bool:
    from .workshop.llms import is_causal_lm

    return is_causal_lm(source)


def _llm_throughput(folder: str, pairs, max_length: int) -> float:
    """Examples per second of a prompted LLM on ``pairs`` (a bare prompt: the text, then "Answer:"), timed after
    one warm-up run."""
    from .llm import CausalLMClassifier, PromptSpec

    template = "{text_a}\n{text_b}\nAnswer:" if pairs and pairs[0][1] is not None else "{text}\nAnswer:"
    run = CausalLMClassifier(folder, PromptSpec(template, {"a": "yes", "b": "no"}), max_length=max(max_length, 256),
                             device="cpu").predict_proba
    run(pairs)
    t = time.perf_counter()
    run(pairs)
    return len(pairs) / max(time.perf_counter() - t, 1e-6)


def _throughput(source: str, pairs, max_length: int) -> float:
    """Pairs per second of a classifier on ``source`` (encoder NAME, folder or ONNX folder; a fresh
    head if it has none) on ``pairs`` in one batch, timed after one warm-up run."""
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from .workshop.encoders import resolve

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        folder = resolve(source)
        if _is_causal(folder):
            return _llm_throughput(folder, pairs, max_length)
        config = None if list(Path(folder).glob("*.onnx")) else AutoConfig.from_pretrained(folder)
        if config is None or any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            from .models import load_model

            run = load_model(folder, max_length=max_length).predict_proba
        else:  # an encoder: a fresh head
            from .models import encode_texts
            from .workshop.finetune import _new_classifier

            tok, model = _new_classifier(folder, ["a", "b"], seed=0)
            model.eval()

            def run(batch):
                enc = encode_texts(tok, batch, truncation=True, max_length=max_length, padding=True,
                                   return_tensors="pt")
                with torch.inference_mode():
                    model(**enc)
        run(pairs)  # warm-up: the first batch of a shape is slower
        t = time.perf_counter()
        run(pairs)
        return len(pairs) / max(time.perf_counter() - t, 1e-6)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
