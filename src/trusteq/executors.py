"""Where the work of a comparison runs: in this process (``"local"``) or on a Ray cluster (``"ray"``).

The work comes in :class:`Unit` s, each a plain function applied to one model
and some arguments: ``unit.fn(model, *unit.args)``. ``fn`` must be a
module-level function (Ray sends it by reference) whose result depends on the
model and the arguments only. The executors know nothing of what the units
compute: :mod:`trusteq.predict` sends shards of prediction batches,
:mod:`trusteq.explain` one explanation per (model, example).

The callers keep every cache (:func:`trusteq.cache.load_or_compute`): they send
only what the cache lacks and store each result as it arrives, so a run that
mixes executors or resumes after an interruption reuses everything finished.

:class:`LocalExecutor` runs the units in order in this process, on the models
the driver loaded. :class:`RayExecutor` runs them on Ray actors, each a
:class:`Worker` that loads a model once from its
:class:`~trusteq.models.ModelRecipe` (so model folders and the trusteq cache
folder, which holds the ONNX twins, must be readable by every worker at the
same path). Lost actors are restarted and their units retried by Ray
(``max_restarts``, ``max_task_retries``).

Same answers: with the same threads per process, a Ray run computes the same
numbers as a local run (same batches, same seeds); with other thread counts
fp32 probabilities may differ in the last bits (within 1e-6, decisions equal).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from .errors import ExecutorError
from .models import ModelRecipe, TaskModel

__all__ = ["EXECUTORS", "ExecutorError", "Unit", "Worker", "Executor", "LocalExecutor", "RayExecutor",
           "check_executor", "make_executor", "RAY_INSTALL"]

#: Executor names (``compare(executor=...)``).
EXECUTORS = ("local", "ray")
#: The install command named when Ray is missing.
RAY_INSTALL = 'pip install "trusteq[ray]"'
#: Models a worker keeps loaded; the least recently used is dropped beyond.
MAX_LOADED = 4


@dataclass(frozen=True)
class Unit:
    """One call ``fn(model, *args)``: ``fn`` a module-level function, ``model`` a TaskModel on the driver."""

    fn: Callable
    model: TaskModel
    args: tuple


class Worker:
    """Runs units on models, each loaded once (from its recipe) and kept.

    Parameters
    ----------
    device : str
        Device of the models built here from recipes (``"cpu"``, ``"cuda"``).
    threads : int, optional
        PyTorch threads of this process (``torch.set_num_threads``) and ONNX
        Runtime intra-op threads of models built here; None leaves the defaults.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None):
        import torch

        self.device, self.threads = device, threads
        if threads:
            torch.set_num_threads(int(threads))
        self.models: OrderedDict[str, TaskModel] = OrderedDict()

    def call(self, index: int, fn: Callable, model, args: tuple) -> tuple[int, object]:
        """``(index, fn(model, *args))``; ``model`` a TaskModel, or ``(key, recipe)``: a model loaded once per
        key from a ModelRecipe (or a pickled TaskModel where there is no recipe)."""
        return index, fn(self._model(model), *args)

    def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()

    def _model(self, ref) -> TaskModel:
        if isinstance(ref, TaskModel):
            return ref
        key, recipe = ref
        if key not in self.models:
            built = isinstance(recipe, ModelRecipe)
            self.models[key] = recipe.build(device=self.device, threads=self.threads) if built else recipe
            while len(self.models) > MAX_LOADED:
                self.models.popitem(last=False)
        self.models.move_to_end(key)
        return self.models[key]


class Executor:
    """Runs units and yields ``(unit index, result)`` as they finish; ``record()`` describes it for report.json."""

    kind = "executor"

    def run(self, units: Sequence[Unit]) -> Iterator[tuple[int, object]]:
        raise NotImplementedError

    def record(self) -> dict:
        """``settings.executor`` of report.json: kind, address, workers, threads_per_worker."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor started (threads setting, actors, a Ray instance)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalExecutor(Executor):
    """Every unit in order, in this process, on the driver's own models.

    ``threads`` sets PyTorch's threads until :meth:`close` (None: unchanged).
    """

    kind = "local"

    def __init__(self, threads: int | None = None):
        import torch

        self.threads, self._restore = threads, torch.get_num_threads()
        self.worker = Worker(threads=threads)

    def run(self, units: Sequence[Unit]) -> Iterator[tuple[int, object]]:
        for i, unit in enumerate(units):
            yield self.worker.call(i, unit.fn, unit.model, unit.args)

    def record(self) -> dict:
        import torch

        return {"kind": self.kind, "address": None, "workers": 1, "threads_per_worker": torch.get_num_threads()}

    def close(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self._restore)


class RayExecutor(Executor):
    """Units spread over Ray actors, one :class:`Worker` per actor.

    Parameters
    ----------
    address : str, optional
        A running cluster (``ray.init(address=...)``); None: the Ray instance
        this process already has, else a new local one (``ray.init()``).
    device : torch.device
        The driver's device: a CUDA device gives each actor one GPU.
    threads : int, default=1
        CPUs (and PyTorch and ONNX Runtime threads) per actor.
    workers : int, optional
        Actors; default: the cluster's CPUs // threads (its GPUs on CUDA).
    max_restarts, max_task_retries : int, default=3
        Ray's fault tolerance: an actor whose process dies is restarted, and
        its units are run again, this many times.

    Raises
    ------
    ExecutorError
        Ray is not installed, or the cluster cannot be reached.
    """

    kind = "ray"

    def __init__(self, address: str | None = None, device=None, threads: int | None = None,
                 workers: int | None = None, max_restarts: int = 3, max_task_retries: int = 3):
        ray = _import_ray()
        self.address, self.threads = address, int(threads or 1)
        self._started = _connect(ray, address)
        gpu = device is not None and device.type == "cuda"
        available = ray.cluster_resources().get("GPU" if gpu else "CPU", 0)
        self.workers = int(workers or max(1, available // (1 if gpu else self.threads)))
        actor = ray.remote(Worker).options(num_cpus=self.threads, num_gpus=1 if gpu else 0,
                                           max_restarts=max_restarts, max_task_retries=max_task_retries)
        self.actors = [actor.remote("cuda" if gpu else "cpu", self.threads) for _ in range(self.workers)]
        self._refs: dict[int, tuple] = {}

    def run(self, units: Sequence[Unit]) -> Iterator[tuple[int, object]]:
        from ray.util import ActorPool

        calls = [(i, u.fn, self._ref(u.model), u.args) for i, u in enumerate(units)]
        yield from ActorPool(self.actors).map_unordered(lambda actor, c: actor.call.remote(*c), calls)

    def pids(self) -> list[int]:
        """Process ids of the actors (each waits for its actor's current unit)."""
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def record(self) -> dict:
        return {"kind": self.kind, "address": self.address, "workers": self.workers,
                "threads_per_worker": self.threads}

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self._started:
            ray.shutdown()

    def _ref(self, model: TaskModel) -> tuple[str, object]:
        """``(key, recipe)`` of a driver model (the model itself where it has no recipe): workers load each key
        once, on their own device."""
        if id(model) not in self._refs:
            try:
                recipe = model.recipe()
            except TypeError:  # a PairClassifier subclass that cannot say how to rebuild it: pickled as it is
                recipe = model
            key = f"{model.model.kind}/{model.name}/{model.fingerprint or id(model)}/{model.batching}"
            self._refs[id(model)] = (key, recipe)
        return self._refs[id(model)]


def check_executor(kind, address: str | None = None, threads: int | None = None) -> None:
    """Refuse, before any work, what :func:`make_executor` would refuse but a cluster that cannot be reached.

    Raises
    ------
    ExecutorError
        Unknown kind, an address for the local executor, threads < 1, or Ray not installed for "ray".
    """
    if isinstance(kind, Executor):
        return
    if kind not in EXECUTORS:
        raise ExecutorError(f"executor '{kind}': expected one of {', '.join(EXECUTORS)}")
    if kind == "local" and address is not None:
        raise ExecutorError(f"a Ray address ({address}) needs executor 'ray'")
    if threads is not None and int(threads) < 1:
        raise ExecutorError(f"threads must be at least 1, got {threads}")
    if kind == "ray":
        _import_ray()


def make_executor(kind: str = "local", device=None, address: str | None = None,
                  threads: int | None = None) -> Executor:
    """The executor ``compare(executor=kind)`` uses: a :class:`LocalExecutor` or a :class:`RayExecutor`.

    Raises
    ------
    ExecutorError
        As :func:`check_executor`, or the Ray cluster cannot be started or reached.
    """
    check_executor(kind, address, threads)
    return LocalExecutor(threads) if kind == "local" else RayExecutor(address, device=device, threads=threads)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"executor 'ray' needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def _connect(ray, address: str | None) -> bool:
    """Join ``address``, or this process's Ray instance, or start a local one; True if started here."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - any failure to reach or start the cluster
        raise ExecutorError(f"cannot {'connect to Ray at ' + address if address else 'start Ray'}: "
                            f"{type(exc).__name__}: {exc}") from None
    return True
