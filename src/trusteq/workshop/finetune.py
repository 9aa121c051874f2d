"""Fine-tuning and knowledge distillation of sentence-pair classifiers.

:func:`finetune` puts a new classification head on a pretrained encoder and
trains it on labelled pairs; :func:`distill` trains a student on a teacher's
soft labels (Hinton et al. 2015; DistilBERT, Sanh et al. 2019):

    loss = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(y, z_s)

Both write a Hugging Face folder whose ``id2label`` holds the task's label
names, and ``trusteq-model.json`` with provenance. Training saves a checkpoint
(atomically) every ``checkpoint_every`` steps and at the end of each epoch; a
run started again with the same arguments resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
import numpy as np

from ..data import ColumnMap, Dataset, as_dataset
from ..devices import resolve_device
from ..errors import SettingsError
from ..settings import check_fields, option
from ..models import encode_texts, from_pretrained
from .common import PROVENANCE, model_stats, quiet as _quiet, write_provenance
from .encoders import resolve

__all__ = ["TrainSettings", "finetune", "distill", "evaluate_accuracy", "model_stats", "write_provenance", "PROVENANCE"]

CHECKPOINT = "trusteq-checkpoint.pt"


@dataclass
class TrainSettings:
    """Training hyper-parameters, checked when made (see :mod:`trusteq.settings`: each field's CLI flag and
    range; a study's model steps take them as keys).

    Attributes
    ----------
    epochs : int
    learning_rate : float
        Peak AdamW learning rate (linear warm-up over 6% of steps, then linear decay).
    batch_size : int
    max_length : int
        Tokens per pair after truncation.
    freeze_layers : int
        Number of lower encoder layers (and the embeddings, when > 0) kept frozen.
    seed : int
    weight_decay : float
    checkpoint_every : int
        Steps between checkpoints.

    Raises
    ------
    SettingsError
        A value below its minimum.
    """

    epochs: int = option(3, "passes over the training data", flag="--epochs", group="training", minimum=1, parse=int)
    learning_rate: float = option(5e-5, "peak AdamW learning rate", flag="--learning-rate", group="training",
                                  minimum=0, parse=float)
    batch_size: int = option(32, "training pairs per step", flag="--batch-size", group="training", minimum=1,
                             parse=int)
    max_length: int = option(128, "tokens per pair", flag="--max-length", group="training", minimum=1, parse=int)
    freeze_layers: int = option(0, "lower encoder layers (and embeddings) kept frozen", flag="--freeze-layers",
                                group="training", minimum=0, parse=int)
    seed: int = option(0, "fixes every random choice", flag="--seed", group="training", minimum=0, parse=int)
    weight_decay: float = option(0.01, "AdamW weight decay", flag="--weight-decay", group="training", minimum=0,
                                 parse=float)
    checkpoint_every: int = option(200, "steps between checkpoints", flag="--checkpoint-every", group="training",
                                   minimum=1, parse=int)

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def for_compression(cls, **changes) -> "TrainSettings":
        """The defaults of ``compress`` (its ``drop-layers`` re-tune): one epoch."""
        return cls(**{"epochs": 1, **changes})


def finetune(base: str, data, task: str, out, dev=None, settings: TrainSettings | None = None,
             columns: ColumnMap | None = None, progress: bool = True, label_names=None, device="auto") -> dict:
    """Fine-tune ``base`` (encoder NAME, folder or hub id) as a classifier of pairs or single texts.

    Parameters
    ----------
    base : str
        ``minilm-l6``, ``minilm-l3``, ``mpnet-base``, a folder or a hub id.
    data, dev : str, path or Dataset
        Training data; optional dev data for the reported accuracy.
    task : {"nli", "pi", "text-classification"}
        See :func:`trusteq.data.load_dataset`; the model's ``id2label`` are the
        training data's label names.
    columns, label_names : optional
        Column mapping and names of integer label codes, as in
        :func:`trusteq.data.load_dataset`.
    out : path
        Output folder (Hugging Face format + ``trusteq-model.json``).
    settings : TrainSettings
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Where to train (:func:`trusteq.devices.resolve_device`); recorded in the provenance. A run resumed
        on another device continues from the checkpoint (dropout draws then differ from an unbroken run).

    Returns
    -------
    dict: the provenance written to ``trusteq-model.json``.

    Raises
    ------
    DataError
        Bad data. ModelError: base cannot be loaded. DeviceError: ``device`` malformed or absent.
    TrustEqError
        ``out`` holds a ``trusteq-checkpoint.pt`` that does not load with ``torch.load(weights_only=True)``
        (the message says to delete it).
    """
    settings = settings or TrainSettings()
    device = resolve_device(device)
    train = as_dataset(data, task, columns, label_names)
    dev_ds = None if dev is None else as_dataset(dev, task, columns, label_names)
    source = resolve(base)
    labels = list(train.label_names)
    _quiet()
    tok, model = _new_classifier(source, labels, settings.seed)
    _freeze(model, settings.freeze_layers)
    started = time.time()
    _train(model, tok, train, None, settings, Path(out), {"kind": "finetune", "base": base}, progress, device)
    extra = {"base": base, "base_source": source, "method": "finetune", "device": str(device)}
    return _finish(model, tok, train, dev_ds, settings, Path(out), started, extra)


def distill(teacher: str, student: str, data, task: str, out, dev=None, settings: TrainSettings | None = None,
            temperature: float = 2.0, alpha: float = 0.5, columns: ColumnMap | None = None,
            progress: bool = True, label_names=None, device="auto") -> dict:
    """Train ``student`` on the soft labels of the fine-tuned ``teacher``.

    The teacher's probabilities on every training pair are computed once (in
    the task's class order, aligned by label name). Same parameters as
    :func:`finetune`, plus ``temperature`` (T > 0) and ``alpha`` (weight of the
    soft-label loss, in [0, 1]). The teacher runs on ``device`` too.

    Raises
    ------
    SettingsError
        ``temperature`` or ``alpha`` out of range. DataError, ModelError, TrustEqError: as :func:`finetune`.
    """
    from ..models import TaskModel, load_model

    if temperature <= 0 or not 0 <= alpha <= 1:
        raise SettingsError(f"need temperature > 0 and alpha in [0, 1], got {temperature}, {alpha}")
    settings = settings or TrainSettings()
    device = resolve_device(device)
    train = as_dataset(data, task, columns, label_names)
    dev_ds = None if dev is None else as_dataset(dev, task, columns, label_names)
    labels = list(train.label_names)
    teacher_model = TaskModel(load_model(str(teacher), max_length=settings.max_length, device=device), labels)
    started = time.time()
    soft = teacher_model(train.pairs)
    source = resolve(student)
    _quiet()
    tok, model = _new_classifier(source, labels, settings.seed)
    _freeze(model, settings.freeze_layers)
    _train(model, tok, train, (soft, temperature, alpha), settings, Path(out),
           {"kind": "distill", "teacher": str(teacher), "student": student}, progress, device)
    extra = {"base": student, "base_source": source, "method": "distill", "teacher": str(teacher),
             "temperature": temperature, "alpha": alpha, "device": str(device)}
    return _finish(model, tok, train, dev_ds, settings, Path(out), started, extra)


# ---------------------------------------------------------------------------


def _new_classifier(source: str, labels: list[str], seed: int):
    """Tokenizer and a classifier with a new head for ``labels``, initialised under ``seed``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    tok = from_pretrained(AutoTokenizer, source)
    model = from_pretrained(
        AutoModelForSequenceClassification, source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=True)
    return tok, model


def _freeze(model, n_layers: int) -> None:
    if n_layers <= 0:
        return
    base = model.base_model
    layers = base.encoder.layer
    if n_layers > len(layers):
        raise SettingsError(f"cannot freeze {n_layers} layers of a {len(layers)}-layer encoder")
    for p in base.embeddings.parameters():
        p.requires_grad_(False)
    for layer in layers[:n_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)


def _train(model, tok, train: Dataset, soft, settings: TrainSettings, out: Path, identity: dict, progress: bool,
           device=None):
    """Train ``model`` in place on ``device`` (a torch.device; None: the CPU), resuming from a checkpoint."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    out.mkdir(parents=True, exist_ok=True)
    device = device or torch.device("cpu")
    torch.manual_seed(settings.seed)
    model.to(device)
    y = torch.tensor(train.y, device=device)
    soft_t = None if soft is None else \
        torch.tensor(np.log(np.clip(soft[0], 1e-12, 1.0)), dtype=torch.float32, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    key = hashlib.sha256(json.dumps([identity, asdict(settings), train.sha256, train.ids], sort_keys=True)
                         .encode()).hexdigest()
    ckpt_path = out / CHECKPOINT
    step = _resume(ckpt_path, key, model, opt, sched)
    enc = encode_texts(tok, train.pairs, truncation=True, max_length=settings.max_length)
    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not progress)
    model.train()
    while step < total:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(train))
        idx = order[in_epoch * settings.batch_size:(in_epoch + 1) * settings.batch_size]
        batch = tok.pad([{k: enc[k][i] for k in enc.keys()} for i in idx], return_tensors="pt").to(device)
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        if soft_t is not None:
            _, t, alpha = soft
            teacher = torch.log_softmax(soft_t[idx] / t, dim=-1)
            student = torch.log_softmax(logits / t, dim=-1)
            kd = torch.nn.functional.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t
            loss = alpha * kd + (1 - alpha) * loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch + 1)
        if step % settings.checkpoint_every == 0 or step % steps_per_epoch == 0:
            _save_checkpoint(ckpt_path, {"key": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": _plain(sched.state_dict()), "step": step,
                                         "torch_rng": torch.get_rng_state()})
    bar.close()
    model.eval()


def _resume(path: Path, key: str, model, opt, sched) -> int:
    """Restore the training state from the checkpoint at ``path`` if it was written by a run with the same
    ``key``; return the step to continue from (0 without a matching checkpoint).

    The file is read with ``torch.load(weights_only=True)``: tensors and plain values only, so a pickle
    placed in the output folder is refused, never run.

    Raises
    ------
    TrustEqError
        The file cannot be read that way (not a trusteq checkpoint, or corrupted).
    """
    import pickle

    import torch

    from ..errors import TrustEqError

    if not path.exists():
        return 0
    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")  # load_state_dict moves it to the model
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as exc:
        raise TrustEqError(f"{path}: not a trusteq checkpoint that can be loaded safely (weights only; "
                           f"{type(exc).__name__}); delete it to start the training again") from None
    if not isinstance(ckpt, dict) or ckpt.get("key") != key:
        return 0
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["torch_rng"])
    return int(ckpt["step"])


def _plain(value):
    """``value`` (a scheduler's state) as what ``torch.load(weights_only=True)`` accepts: tensors, numbers,
    strings, None, and dicts, lists and tuples of them; another object becomes its ``__dict__`` (as
    ``LambdaLR`` saves callable objects), or None."""
    import torch

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return _plain(vars(value)) if hasattr(value, "__dict__") else None


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically; everything in it must load with ``weights_only=True``."""
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def evaluate_accuracy(model_dir, ds: Dataset, max_length: int = 128, device="auto") -> float:
    """Accuracy of a saved model on ``ds`` (labels aligned by name), in [0, 1], run on ``device``."""
    from ..models import TaskModel, load_model

    probs = TaskModel(load_model(str(model_dir), max_length=max_length, device=device), ds.label_names)(ds.pairs)
    return float(np.mean(probs.argmax(axis=1) == ds.y))


def _finish(model, tok, train: Dataset, dev: Dataset | None, settings: TrainSettings, out: Path, started: float,
            extra: dict) -> dict:
    from importlib import metadata

    model.save_pretrained(out)
    tok.save_pretrained(out)
    info = {
        **extra,
        "task": train.task,
        "labels": list(train.label_names),
        "data": {"source": train.source, "sha256": train.sha256, "examples": len(train)},
        "settings": asdict(settings),
        "train_seconds": round(time.time() - started, 1),
        "trusteq_version": metadata.version("trusteq"),
    }
    if dev is not None:
        info["dev"] = {"source": dev.source, "sha256": dev.sha256, "examples": len(dev),
                       "accuracy": evaluate_accuracy(out, dev, settings.max_length, extra.get("device", "auto"))}
    info = write_provenance(out, info)
    ckpt = out / CHECKPOINT
    if ckpt.exists():
        ckpt.unlink()
    return info
