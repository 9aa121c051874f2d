"""Explanation throughput of the local and the Ray executor, Ray's overhead per unit, and a study's time on N workers.

On one fine-tuned model (default: the SNLI MiniLM-L6 the workshop builds in
``~/.cache/trusteq-work/snli-l6``, else ``models/quickstart/mrpc/l3``), run
as ``trusteq compare`` runs it (its ONNX twin), the same explanations (LIME
and SHAP at the study's budgets, on a seeded sample of test pairs, nothing
cached) are computed by:

* the local executor with 1 thread, and with the runtimes' default threads
  (what ``trusteq compare`` does by default, and what the study's estimate assumes);
* a local Ray instance with 1 and with 2 workers of 1 thread each.

Printed: explained pairs per second (one explanation = one pair, one model,
one explainer), the round trip of an empty unit through Ray (its overhead per
unit), and, from these, the wall time of ``studies/offline-families.yaml`` on
N workers: the study's own estimate (``trusteq.study.Estimate``, read-only;
it measures each model's throughput here) for building the models, which
Ray does not spread, plus its comparisons scaled by (local rate) / (N x one
Ray worker's rate), i.e. one core per worker and linear scaling; the 2-worker
efficiency measured here is printed beside it (on 2 cores the driver shares
them).

    python benchmarks/scale.py [--pairs 6] [--model DIR] [--data TSV] [--study YAML]

Workers load their model once (warmed up before timing, as over a study's
hundreds of units). About 4 minutes on a 2-core CPU with the defaults.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = [Path.home() / ".cache/trusteq-work/snli-l6", ROOT / "models/quickstart/mrpc/l3"]
DATA = {"nli": ROOT.parent / "shared/data/snli/test.tsv", "pi": ROOT.parent / "shared/data/mrpc_glue/test.tsv"}


def main() -> None:
    args = _options()
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    cache = Path(tempfile.mkdtemp(prefix="trusteq-scale-"))
    os.environ["TRUSTEQ_CACHE_DIR"] = str(cache)  # nothing cached: every explanation is computed
    try:
        models, examples, targets = _workload(args)
        print(f"model {args.model} ({models[1].model.kind} twin), {len(examples)} {args.task} test pairs, "
              f"LIME {args.lime_samples} samples + SHAP cap {args.shap_evals}; {os.cpu_count()} CPUs\n", flush=True)
        rates, overhead = _measure(models, examples, targets, args, cache)
        _estimate(args.study, rates, overhead)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _options():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=next((m for m in MODELS if m.is_dir()), None),
                   help="fine-tuned transformers folder (default: the SNLI L6 of the workshop, else the quickstart l3)")
    p.add_argument("--data", type=Path, help="test pairs (default: SNLI or MRPC test, by the model's task)")
    p.add_argument("--pairs", type=int, default=6, help="explained pairs per configuration (default 6)")
    p.add_argument("--lime-samples", type=int, default=1000)
    p.add_argument("--shap-evals", type=int, default=2500)
    p.add_argument("--study", type=Path, default=ROOT / "studies/offline-families.yaml")
    args = p.parse_args()
    if args.model is None:
        p.error("no fine-tuned model found; build one (trusteq study studies/quickstart.yaml) or pass --model")
    return args


def _workload(args):
    """The model's ONNX twin (as compare uses it) by threads (1, None: ONNX Runtime's default), the explained
    examples and their gold classes."""
    import json

    from trusteq.data import load_dataset
    from trusteq.models import TaskModel, load_model
    from trusteq.predict import onnx_twin

    args.task = json.loads((args.model / "trusteq-model.json").read_text()).get("task", "nli")
    data = load_dataset(args.data or DATA[args.task], args.task, limit=args.pairs, seed=0)
    twins = {}
    for threads in (1, None):
        model = TaskModel(load_model(args.model, max_length=128, device="cpu", threads=threads), data.label_names)
        twins[threads], _ = onnx_twin(model, data.pairs)
    return twins, data.examples, data.y


def _measure(models: dict, examples, targets, args, cache: Path) -> tuple[dict, float]:
    """Explained pairs per second of each configuration, and Ray's seconds per empty unit."""
    import ray

    from trusteq.executors import LocalExecutor, RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rates, overhead = {}, float("nan")
    configs = [("local, 1 thread", lambda: LocalExecutor(threads=1), models[1]),
               ("local, default threads", lambda: LocalExecutor(), models[None]),
               ("ray, 1 worker x 1 thread", lambda: RayExecutor(threads=1, workers=1), models[1]),
               ("ray, 2 workers x 1 thread", lambda: RayExecutor(threads=1, workers=2), models[1])]
    print(f"{'executor':<28}{'wall s':>8}{'pairs/s':>9}{'vs local 1 thread':>19}", flush=True)
    try:
        for label, make, model in configs:
            with make() as executor:
                _warm_up(executor, model, examples[0], int(targets[0]))
                if label.startswith("ray, 1"):
                    overhead = _unit_overhead(executor, model)
                shutil.rmtree(cache / "explanations", ignore_errors=True)
                started = time.perf_counter()
                _explain(executor, model, examples, targets, args)
                wall = time.perf_counter() - started
            rates[label] = 2 * len(examples) / wall
            print(f"{label:<28}{wall:>8.1f}{rates[label]:>9.3f}{rates[label] / rates['local, 1 thread']:>18.2f}x",
                  flush=True)
    finally:
        ray.shutdown()
    print(f"\nRay overhead per unit (round trip of an empty unit, 1 worker): {overhead * 1e3:.2f} ms; "
          f"one unit is one pair explained by one model (here {1 / rates['local, 1 thread']:.2f} s on average)")
    return rates, overhead


def _warm_up(executor, model, example, target: int) -> None:
    """Imports, model loading and JIT compilation in every worker, before the clock starts."""
    from trusteq.executors import Unit
    from trusteq.explain._cached import explain_unit

    workers = getattr(executor, "workers", 1)
    units = [Unit(explain_unit, model, ([example], [target], explainer, 99, 60)) for explainer in ("lime", "shap")]
    for _ in executor.run(units * workers):
        pass


def _unit_overhead(executor, model, n: int = 200) -> float:
    """Seconds per unit of ``n`` empty prediction units (one in flight per worker)."""
    from trusteq.executors import Unit
    from trusteq.predict import predict_batches

    started = time.perf_counter()
    for _ in executor.run([Unit(predict_batches, model, ([],))] * n):
        pass
    return (time.perf_counter() - started) / n


def _explain(executor, model, examples, targets, args) -> None:
    from trusteq.explain import explain_cached

    for explainer, budget in (("lime", args.lime_samples), ("shap", args.shap_evals)):
        explain_cached([model], examples, targets, explainer=explainer, seed=0, budget=budget, executor=executor)


def _estimate(study_file: Path, rates: dict, overhead: float) -> None:
    """The study's estimated wall time on N workers (building models stays on one machine)."""
    from trusteq import study

    path, spec, base, _, work = study._open(study_file)
    estimate = study.Estimate(spec, base, work, study._plan(spec, path))
    building = sum(parts.get("build", 0.0) for parts in estimate.parts)
    comparing = sum(estimate.costs) - building  # predictions, LIME and SHAP: what the executor spreads
    local, one = rates["local, default threads"], rates["ray, 1 worker x 1 thread"]
    efficiency = rates["ray, 2 workers x 1 thread"] / (2 * one)
    print(f"\n{study_file.name}: the study's estimate here (local executor): building models "
          f"{_hours(building)}, comparisons {_hours(comparing)}, total {_hours(building + comparing)}")
    print(f"comparisons on N Ray workers of 1 thread = {_hours(comparing)} x {local:.3f} / (N x {one:.3f}) "
          f"(one core per worker, linear; measured 2-worker efficiency on this machine: {efficiency:.0%}):")
    print(f"{'N':>5}{'comparisons':>14}{'study total':>14}")
    for n in (1, 2, 4, 8, 16, 32, 64):
        t = comparing * local / (n * one)
        print(f"{n:>5}{_hours(t):>14}{_hours(building + t):>14}")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
