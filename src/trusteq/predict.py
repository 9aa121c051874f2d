"""Probabilities of a model on a dataset, cached on disk; a faster runtime for the same model."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import cache
from .data import Dataset
from .executors import Executor, LocalExecutor, Unit
from .models import PairClassifier, TaskModel

__all__ = ["Predictions", "predict", "predict_sharded", "predict_batches", "onnx_twin", "fix_batching"]

#: Pairs per prediction unit (whole batches are never split).
SHARD_PAIRS = 512

#: Largest difference in any probability for a runtime to stand in for another.
TWIN_ATOL = 1e-5


@dataclass
class Predictions:
    """A model's output on a dataset.

    Attributes
    ----------
    model : str
        Model name.
    probs : ndarray, shape (n, K)
        Probabilities in the dataset's class order.
    truncated : int
        Pairs longer than the model's ``max_length`` (truncated before the
        forward pass).
    cached : bool
        Whether the probabilities came from the on-disk cache.
    """

    model: str
    probs: np.ndarray
    truncated: int
    cached: bool


def predict(model: TaskModel, dataset: Dataset, use_cache: bool = True, progress: bool = False,
            executor=None) -> Predictions:
    """Run ``model`` on every pair of ``dataset``, reusing a cached result.

    The cache key combines the model fingerprint (weights, tokenizer,
    max length, label alignment), its batching, the data file hash and the
    example ids (not the device or executor: they compute the same batches).
    Models without a fingerprint are never cached.

    A model with stored probabilities (:meth:`~trusteq.models.TaskModel.lookup`,
    e.g. a predictions file) is not run: its rows for the dataset's ids are
    returned, with no cache entry and no executor.

    Parameters
    ----------
    executor : trusteq.executors.Executor, optional
        Where the batches run (:func:`predict_sharded`); default: in this process.

    Raises
    ------
    ModelError
        The model returns invalid probabilities.
    """
    stored = model.lookup(dataset.ids)
    if stored is not None:
        return Predictions(model.name, stored, 0, False)
    fp = model.fingerprint
    path = None
    if use_cache and fp is not None:
        path = cache.entry("predictions", "predict", fp, model.batching, dataset.sha256, dataset.ids, fan_out=False)
    pairs, cached = dataset.inputs, []

    def compute(missing):
        probs = predict_sharded(executor or LocalExecutor(), model, pairs, progress=progress)
        yield 0, {"probs": probs, "truncated": np.array(model.model.count_truncated(pairs))}

    [arrays] = cache.load_or_compute([path], compute, done=lambda i, arrays, hit: cached.append(hit))
    return Predictions(model.name, arrays["probs"], int(arrays["truncated"]), cached[0])


def predict_batches(model: TaskModel, batches: list[list]) -> list[np.ndarray]:
    """A prediction unit: probabilities (n_b, K) of each batch of pairs, each batch in one model call."""
    return [model.predict_batch(batch) for batch in batches]


def predict_sharded(executor: Executor, model: TaskModel, pairs: Sequence, progress: bool = False) -> np.ndarray:
    """``model(pairs)`` computed in units of whole batches on ``executor``, shape (n, K), bit for bit the local
    result.

    The batches are the model's own (:meth:`TaskModel.batch_plan`), grouped
    into units of about :data:`SHARD_PAIRS` pairs.
    """
    from tqdm.auto import tqdm

    shards, current = [], []
    for idx in model.batch_plan(pairs):
        current.append(idx)
        if sum(map(len, current)) >= SHARD_PAIRS:
            shards.append(current)
            current = []
    shards += [current] if current else []
    units = [Unit(predict_batches, model, ([[pairs[i] for i in idx] for idx in shard],)) for shard in shards]
    out = np.empty((len(pairs), len(model.task_labels)), dtype=np.float64)
    with tqdm(total=len(pairs), desc=f"predict {model.name}", unit="example", leave=False, disable=not progress) as bar:
        for i, probs in executor.run(units):
            for idx, p in zip(shards[i], probs):
                out[idx] = p
                bar.update(len(idx))
    return out


def onnx_twin(model: TaskModel, check_pairs: Sequence[tuple[str, str]]) -> tuple[TaskModel, dict]:
    """The same model run by ONNX Runtime, where it gives the same probabilities.

    A PyTorch model that can be exported (:meth:`~trusteq.models.PairClassifier.onnx_export`:
    :class:`~trusteq.models.HFClassifier`, :class:`~trusteq.vision.ImageClassifier`) is
    exported to ONNX once (kept in the cache folder under its fingerprint) and run by
    ONNX Runtime, about 1.9x the pairs per second of PyTorch for MiniLM on a
    2-core CPU. The twin runs on the model's device (CUDA provider where
    onnxruntime has one, else the CPU) and is used only if its probabilities
    on ``check_pairs`` differ from PyTorch's on that device by at most
    :data:`TWIN_ATOL` (1e-5) everywhere; otherwise, or for other kinds of
    model, or if the export fails, ``model`` itself is returned.

    Parameters
    ----------
    model : TaskModel
    check_pairs : sequence of (str, str)
        Pairs both runtimes are run on (at least one).

    Returns
    -------
    (TaskModel, dict)
        The model to use and a record for report.json: ``runtime``
        (``"onnxruntime"`` or the model's own kind), ``device`` (``"cpu"``,
        ``"cuda:0"``), ``provider`` (ONNX Runtime's execution provider, None
        for PyTorch and callables), ``max_abs_diff`` over the checked
        probabilities and ``checked_pairs``, or ``reason`` when the twin is not used.
    """
    clf = model.model
    if type(clf).onnx_export is PairClassifier.onnx_export or not check_pairs:
        return model, {"runtime": clf.kind, **_placement(clf), "reason": "not a PyTorch model"}
    folder = cache.cache_dir() / "onnx" / clf.fingerprint[:32]
    try:
        if not (folder / "model.onnx").exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            try:
                clf.onnx_export(tmp)
                os.replace(tmp, folder)
            except OSError:  # another process finished the same export first
                if not (folder / "model.onnx").exists():
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        twin_clf = clf.onnx_twin(folder)
        twin = TaskModel(twin_clf, model.task_labels, {clf.name: model.override} if model.override else None)
        if model.pair_by_pair:
            twin.set_pair_by_pair()
        diff = float(np.max(np.abs(twin(list(check_pairs)) - model(list(check_pairs)))))
    except Exception as exc:  # noqa: BLE001 - any export or runtime failure means: keep PyTorch
        return model, {"runtime": clf.kind, **_placement(clf), "reason": f"ONNX export or run failed: {exc}"}
    record = {"max_abs_diff": diff, "checked_pairs": len(check_pairs)}
    if diff > TWIN_ATOL:
        return model, {"runtime": clf.kind, **_placement(clf), **record,
                       "reason": f"ONNX Runtime ({twin_clf.provider}) differs by {diff:.2g} > {TWIN_ATOL}"}
    return twin, {"runtime": "onnxruntime", **_placement(twin_clf), **record}


def _placement(clf) -> dict:
    """``device`` and ``provider`` (ONNX Runtime's, else None) of a classifier, for report.json."""
    device = getattr(clf, "device", None)
    return {"device": str(device) if device is not None else None, "provider": getattr(clf, "provider", None)}


def fix_batching(model: TaskModel, pairs: Sequence[tuple[str, str]], n_check: int = 8) -> dict:
    """Run ``model`` one pair per call if its outputs depend on the pairs batched with it.

    The first ``n_check`` pairs are evaluated together and one at a time; if
    any probability differs by more than :data:`TWIN_ATOL` (a dynamically
    quantized int8 model scales its activations per batch: up to 0.02 on the
    quickstart's), the model is switched to one pair per call
    (:meth:`~trusteq.models.TaskModel.set_pair_by_pair`), so its predictions
    and explanations no longer depend on batch size, sample or cache state.

    Returns
    -------
    dict for report.json: ``batching`` (the policy used), ``max_abs_diff``
    (batched vs alone) and ``checked_pairs``.
    """
    if model.model.no_model:  # stored probabilities: no model calls to batch
        return {"batching": "none (stored predictions)", "checked_pairs": 0}
    sample = list(pairs[:n_check])
    if len(sample) < 2:
        return {"batching": model.batching, "checked_pairs": len(sample)}
    together = model(sample)
    alone = np.vstack([model([pair]) for pair in sample])
    diff = float(np.max(np.abs(together - alone)))
    if diff > TWIN_ATOL:
        model.set_pair_by_pair()
    return {"batching": model.batching, "max_abs_diff": diff, "checked_pairs": len(sample)}
