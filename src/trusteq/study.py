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

Model steps: ``finetune`` (``base`` and any :class:`TrainSettings` field),
``distill`` (``teacher``: a model of the experiment, ``student``, ``temperature``,
``alpha``, settings), ``compress`` (``model``: a model of the experiment,
``method``, settings for ``drop-layers``), or ``path`` (an existing folder).
A model whose folder already has ``trusteq-model.json`` is reused; an
interrupted fine-tune resumes from its checkpoint; finished explanations and
predictions come from the cache. So running the same study again continues
where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

from .errors import TrustEqError

__all__ = ["run_study", "load_study"]

_STEPS = ("finetune", "distill", "compress", "path")


def load_study(path) -> dict:
    """Parse and check a study file.

    Raises
    ------
    TrustEqError
        Unreadable YAML, or a missing or unknown key (the message names the
        file and the key).
    """
    import yaml

    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TrustEqError(f"{path}: cannot read study file ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("experiments"), dict) or not spec["experiments"]:
        raise TrustEqError(f"{path}: a study needs a non-empty 'experiments' mapping")
    for name, exp in spec["experiments"].items():
        where = f"{path}: experiments.{name}"
        for key in ("task", "train", "test", "models", "reference", "candidates"):
            if key not in exp:
                raise TrustEqError(f"{where}: missing key '{key}'")
        for model, step in exp["models"].items():
            if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in _STEPS:
                raise TrustEqError(f"{where}.models.{model}: expected one of {', '.join(_STEPS)}")
        for model in [exp["reference"], *exp["candidates"]]:
            if model not in exp["models"]:
                raise TrustEqError(f"{where}: model '{model}' is compared but not defined under models")
    return spec


def run_study(path, progress: bool = True) -> list[Path]:
    """Build every model and run every comparison of the study file at ``path``.

    Returns the folders of the written reports.
    """
    from .comparison import compare
    from .report import write_report

    path = Path(path).resolve()
    spec = load_study(path)
    base = path.parent
    seed = int(spec.get("seed", 0))
    out_root = (base / spec.get("out", path.stem)).resolve()
    work = (base / spec.get("work", f".trusteq-work/{path.stem}")).resolve()
    started = time.time()
    n_steps = sum(len(e["models"]) + 1 for e in spec["experiments"].values())
    done = 0
    written = []

    def stage(text):
        nonlocal done
        done += 1
        elapsed = time.time() - started
        print(f"[{done}/{n_steps}] {text} (elapsed {elapsed / 60:.1f} min)", flush=True)

    for name, exp in spec["experiments"].items():
        folders: dict[str, str] = {}
        for model in _order(exp["models"], f"{path}: experiments.{name}"):
            stage(f"{name}: model {model}")
            folders[model] = _build(model, exp, folders, work / name, base, seed, progress)
        stage(f"{name}: compare {exp['reference']} with {', '.join(exp['candidates'])}")
        options = dict(exp.get("compare", {}))
        result = compare(folders[exp["reference"]], [folders[c] for c in exp["candidates"]],
                         _path(base, exp["test"]), exp["task"], seed=seed,
                         names=[exp["reference"], *exp["candidates"]], progress=progress, **options)
        result.summary["study"] = {"file": path.name, "experiment": name,
                                   "models": {m: _provenance(folders[m]) for m in folders}}
        written.append(write_report(result, out_root / name).parent)
    print(f"study finished in {(time.time() - started) / 60:.1f} min; reports in {out_root}")
    return written


def _path(base: Path, value) -> str:
    p = Path(str(value))
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


def _settings(args: dict, seed: int, epochs: int):
    from .finetune import TrainSettings

    known = {f.name for f in fields(TrainSettings)}
    values = {k: v for k, v in args.items() if k in known}
    values.setdefault("seed", seed)
    values.setdefault("epochs", epochs)
    return TrainSettings(**values)


def _build(model: str, exp: dict, folders: dict, work: Path, base: Path, seed: int, progress: bool) -> str:
    from .compress import compress
    from .finetune import PROVENANCE, distill, finetune

    step, args = next(iter(exp["models"][model].items()))
    if step == "path":
        return _path(base, args)
    out = work / model
    if (out / PROVENANCE).exists():
        return str(out)
    task = exp["task"]
    train = _path(base, exp["train"])
    dev = _path(base, exp["dev"]) if exp.get("dev") else None
    if step == "finetune":
        finetune(args["base"], train, task, out, dev=dev, settings=_settings(args, seed, 3), progress=progress)
    elif step == "distill":
        teacher = folders.get(args["teacher"], args["teacher"])
        distill(teacher, args["student"], train, task, out, dev=dev, settings=_settings(args, seed, 3),
                temperature=float(args.get("temperature", 2.0)), alpha=float(args.get("alpha", 0.5)),
                progress=progress)
    else:
        source = folders.get(args["model"], args["model"])
        compress(source, str(args["method"]), out, data=train, task=task, settings=_settings(args, seed, 1),
                 progress=progress)
    return str(out)


def _provenance(folder: str) -> dict:
    import json

    from .finetune import PROVENANCE

    p = Path(folder) / PROVENANCE
    if not p.exists():
        return {"path": folder}
    info = json.loads(p.read_text())
    keep = ("method", "base", "teacher", "source_model", "parameters", "nonzero_parameters", "size_mb", "dev",
            "train_seconds", "compress_seconds", "settings")
    return {k: info[k] for k in keep if k in info}
