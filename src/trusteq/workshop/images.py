"""Image classifiers for trusteq's image comparisons: trained from scratch, distilled, pruned and quantized.

No pretrained image classifier installs here, so trusteq trains its reference from scratch
(:func:`train_image_classifier`); a student is trained on its soft labels (``teacher=``), and
:func:`compress_image_model` prunes or quantizes it. Every model is a Hugging Face folder
(``AutoModelForImageClassification`` + ``AutoImageProcessor``), or for ``int8`` an ONNX folder
(``model.onnx`` with input ``pixel_values`` (n, C, H, W) float32 and output ``logits`` (n, K), beside
``config.json`` and ``preprocessor_config.json``); each carries ``trusteq-model.json`` (provenance).

Architectures (:data:`ARCHITECTURES`) are ResNets with basic blocks (He et al. 2016, "Deep residual
learning for image recognition", CVPR), sized for 28-32 px inputs. transformers' ResNet keeps the ImageNet
stem (7x7 conv stride 2, then 3x3 max-pool stride 2), so a 28x28 image is 7x7 after the stem, then 7, 4
and 2 px in the three stages; the stem's 32 channels at 7x7 keep enough for Fashion-MNIST (accuracy below).

Measured on Fashion-MNIST (60,000 training images of 28x28x1, 10 classes; t10k: 10,000 test images), 2 CPU
cores, torch 2.13, the defaults of :class:`ImageTrainSettings` (5 epochs, batch 128, AdamW 2e-3, no augmentation):

=======================  ==========  =========  ========  ==============
model                    parameters  s / epoch  5 epochs  t10k accuracy
=======================  ==========  =========  ========  ==============
resnet-small             697,322     22         112 s     91.2%
resnet-tiny              20,130      5.4        27 s      89.0%
resnet-tiny, distilled   20,130      12         61 s      89.2%
=======================  ==========  =========  ========  ==============

(times with nothing else running on the 2 cores; another busy process slowed training 2-5 times). ``int8`` of
resnet-small: 1-2 s (export, calibration on 500 images, quantization), 0.76 MB instead of 2.8 MB, t10k 91.3%,
the same top class as fp32 on 99.6% of t10k; ``prune:0.3``: 90.5% (96.2% same top class), ``prune:0.5``:
85.9% (88.8%).

Training
    Seeded (``torch.manual_seed(seed)`` before the weights are made; the data order of epoch e is
    ``numpy.random.default_rng([seed, e]).permutation(n)``), AdamW with a linear warm-up over 5% of the
    steps and a cosine decay to 0, cross-entropy. ``augment`` (default off): a random crop of the image
    padded by 2 black pixels per side (a shift of up to 2 px) and a horizontal flip with probability 1/2,
    drawn from ``default_rng([seed, e, 1])`` so that a run is reproducible. It pays only in longer runs
    (resnet-small: 90.4% after 5 epochs, 91.5% after 10); never use it for classes that a mirror changes
    (digits, letters). Pixels are normalised per channel with the mean and standard deviation of the
    training images, saved in the folder's image processor (a ``ViTImageProcessor`` that rescales by 1/255
    and normalises, no resizing), which training itself applies, so the folder reproduces the model's
    predictions. A checkpoint (model, optimizer, scheduler, epoch, torch RNG) is written atomically at the
    end of each epoch; a run started again with the same arguments, data and output folder resumes from
    it; a checkpoint of other arguments is ignored (training starts again and overwrites it).
Distillation (``teacher=``)
    ``loss = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(y, z_s)``
    (Hinton, Vinyals & Dean 2015, "Distilling the knowledge in a neural network"), the teacher's logits
    ``z_t`` computed on the same (augmented, with ``augment``) batch, preprocessed by the teacher's own image processor.
Compression
    ``prune:S``: unstructured L1 magnitude pruning of every Conv2d and Linear weight at sparsity S
    (``torch.nn.utils.prune.l1_unstructured``, made permanent). ``int8``: static quantization with ONNX
    Runtime (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html): ONNX export,
    ``quant_pre_process`` (shape inference, Conv+BatchNorm fusion), then ``quantize_static`` in QDQ format
    with int8 activations and per-channel int8 weights, min-max calibrated on up to 500 training images.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..data import Dataset, as_dataset, normalize_label
from ..devices import resolve_device
from ..errors import DataError, LabelError, ModelError, SettingsError
from ..settings import check_fields, option
from ..vision import export_onnx_image, image_processor, is_image_model, load_processor
from .common import PROVENANCE, parse_method, quiet as _quiet, write_provenance
from .finetune import CHECKPOINT, _plain, _resume, _save_checkpoint

__all__ = ["ARCHITECTURES", "ImageTrainSettings", "train_image_classifier", "compress_image_model",
           "evaluate_image_accuracy", "CALIBRATION_IMAGES"]

TASK = "image-classification"

#: Most training images used to calibrate ``int8`` activations (a seeded sample).
CALIBRATION_IMAGES = 500


def _resnet(channels: int, num_labels: int, id2label: dict, *, embedding: int, hidden: tuple, depths: tuple):
    """A ``ResNetConfig`` of basic blocks; no downsampling in the first stage (the stem already has 4x)."""
    from transformers import ResNetConfig

    return ResNetConfig(num_channels=channels, embedding_size=embedding, hidden_sizes=list(hidden),
                        depths=list(depths), layer_type="basic", downsample_in_first_stage=False,
                        num_labels=num_labels, id2label=dict(id2label),
                        label2id={name: i for i, name in dict(id2label).items()})


#: name -> ``function(channels, num_labels, id2label) -> transformers config`` (``id2label``: {index: name}).
ARCHITECTURES = {
    "resnet-small": partial(_resnet, embedding=32, hidden=(32, 64, 128), depths=(2, 2, 2)),
    "resnet-tiny": partial(_resnet, embedding=8, hidden=(8, 16, 32), depths=(1, 1, 1)),
}


def _check_temperature(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingsError(f"temperature must be a number > 0, got {value!r}")


def _check_alpha(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SettingsError(f"alpha must be a number in [0, 1], got {value!r}")


@dataclass
class ImageTrainSettings:
    """Hyper-parameters of :func:`train_image_classifier`, checked when made (declared like
    :class:`~trusteq.workshop.finetune.TrainSettings`: each field's CLI flag and range).

    Raises
    ------
    SettingsError
        A value below its minimum, of the wrong type, or ``temperature`` <= 0, ``alpha`` outside [0, 1].
    """

    epochs: int = option(5, "passes over the training images", flag="--epochs", group="training", minimum=1,
                         parse=int)
    learning_rate: float = option(2e-3, "peak AdamW learning rate (5% warm-up, cosine decay)",
                                  flag="--learning-rate", group="training", minimum=0, parse=float)
    batch_size: int = option(128, "training images per step", flag="--batch-size", group="training", minimum=2,
                             parse=int)
    weight_decay: float = option(0.05, "AdamW weight decay", flag="--weight-decay", group="training", minimum=0,
                                 parse=float)
    seed: int = option(0, "fixes every random choice", flag="--seed", group="training", minimum=0, parse=int)
    augment: bool = option(False, "random 2-px shifts and horizontal flips of the training images",
                           flag="--augment", group="training", cli="switch")
    temperature: float = option(2.0, "distillation temperature T", flag="--temperature", group="distillation",
                                parse=float, check=_check_temperature)
    alpha: float = option(0.5, "weight of the soft-label loss", flag="--alpha", group="distillation",
                          parse=float, check=_check_alpha)

    def __post_init__(self):
        check_fields(self)


def train_image_classifier(data, out, arch: str = "resnet-small", settings: ImageTrainSettings | None = None,
                           dev=None, progress: bool = True, device="auto", teacher=None) -> dict:
    """Train a new image classifier ``arch`` on ``data``, or distil it from ``teacher``; save it in ``out``.

    Parameters
    ----------
    data, dev : Dataset or path
        Training images (:class:`~trusteq.data.Dataset` of task ``image-classification``, or what
        :func:`~trusteq.data.load_dataset` reads), all of one shape (H, W, C) uint8; optional dev images
        for the reported accuracy. The model's ``id2label`` are the training data's label names.
    out : path
        Output folder: Hugging Face weights, ``preprocessor_config.json``, ``trusteq-model.json``.
    arch : str
        A name in :data:`ARCHITECTURES`.
    settings : ImageTrainSettings
    device : {"auto", "cpu", "cuda", "cuda:N"}
    teacher : path, optional
        A trained image-classifier folder with the same label names: distil from it (module docstring).

    Returns
    -------
    dict: the provenance written to ``trusteq-model.json`` (``resumed_from_epoch``: 0 unless resumed).

    Raises
    ------
    SettingsError
        Unknown ``arch``. DataError: not images, or images of several shapes. ModelError / LabelError:
        ``teacher`` does not load, or has other labels. DeviceError: bad ``device``. TrustEqError: ``out``
        holds a checkpoint that does not load as weights only (delete it).
    """
    import torch

    if arch not in ARCHITECTURES:
        raise SettingsError(f"unknown image architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    settings, device = settings or ImageTrainSettings(), resolve_device(device)
    train, pixels = _images(data)
    dev_ds = None if dev is None else _images(dev)[0]
    _quiet()
    mean, std = _channel_stats(pixels)
    proc = image_processor(pixels.shape[1:3], pixels.shape[-1], mean, std)
    labels = list(train.label_names)
    torch.manual_seed(settings.seed)
    config = ARCHITECTURES[arch](pixels.shape[-1], len(labels), dict(enumerate(labels)))
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_config(config)
    kd = None if teacher is None else _load_teacher(teacher, labels, pixels.shape[-1], device)
    digest = hashlib.sha256(pixels.tobytes() + train.y.tobytes()).hexdigest()
    taught = None if teacher is None else [str(teacher), _weights_digest(teacher)]
    key = hashlib.sha256(json.dumps([arch, config.to_json_string(use_diff=True), taught, asdict(settings),
                                     digest, labels], sort_keys=True).encode()).hexdigest()
    started = time.time()
    resumed = _fit(model, proc, pixels, train.y, kd, settings, Path(out), key, progress, device)
    extra = {"arch": arch, "method": "distill" if teacher is not None else "train", "device": str(device),
             "resumed_from_epoch": resumed, "image_size": list(pixels.shape[1:3]), "channels": pixels.shape[-1],
             "image_mean": mean, "image_std": std, "pixels_sha256": digest,
             "trainable_parameters": sum(p.numel() for p in model.parameters())}
    if teacher is not None:
        extra.update(teacher=str(teacher), temperature=settings.temperature, alpha=settings.alpha)
    return _finish(model, proc, train, dev_ds, settings, Path(out), started, extra)


# ---------------------------------------------------------------------------
# training


def _images(data) -> tuple[Dataset, np.ndarray]:
    """The dataset and its images stacked, (n, H, W, C) uint8.

    Raises
    ------
    DataError
        Not an image dataset, empty, or images of different shapes (resize them first).
    """
    ds = as_dataset(data, TASK)
    if not len(ds) or ds.kind != "image":
        raise DataError(ds.source, "expected labelled images (task image-classification)")
    shapes = {getattr(e.image, "shape", None) for e in ds.examples}
    if None in shapes:
        raise DataError(ds.source, "expected labelled images (task image-classification); some examples are text")
    if len(shapes) != 1:
        raise DataError(ds.source, f"images of {len(shapes)} shapes (e.g. {sorted(shapes)[:2]}); "
                                   "an image classifier needs one size: resize them first")
    return ds, np.stack([np.asarray(e.image, dtype=np.uint8) for e in ds.examples])


def _channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (n, H, W, C) uint8 pixels, on the [0, 1] scale."""
    flat = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
    return [round(float(v), 6) for v in flat.mean(0)], [round(max(float(v), 1e-3), 6) for v in flat.std(0)]


def _pixel_values(proc, images: np.ndarray):
    """(n, H, W, C) uint8 -> the processor's ``pixel_values``, a float32 tensor (n, C', H', W')."""
    return proc(images=list(images), return_tensors="pt", input_data_format="channels_last")["pixel_values"]


def _augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crops of the images padded by 2 black pixels per side, each flipped left-right with
    probability 1/2; (n, H, W, C) uint8 in and out."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    shifts, flips = rng.integers(0, 5, size=(n, 2)), rng.random(n) < 0.5
    out = np.stack([padded[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts)])
    out[flips] = out[flips, :, ::-1]
    return out


def _load_teacher(teacher, labels: list[str], channels: int, device):
    """(model in eval mode on ``device``, its processor, the columns of its logits in ``labels`` order).

    Raises
    ------
    ModelError
        Not a transformers image classifier, or one of images with another number of channels.
    LabelError
        Its labels are not ``labels``.
    """
    from transformers import AutoModelForImageClassification

    from ..models import from_pretrained

    if not is_image_model(teacher) or not any(Path(teacher).glob("*.safetensors")):
        raise ModelError(f"teacher '{teacher}': not a folder of a transformers image classifier")
    model = from_pretrained(AutoModelForImageClassification, str(teacher)).to(device).eval()
    if getattr(model.config, "num_channels", channels) != channels:
        raise ModelError(f"teacher '{teacher}' takes {model.config.num_channels}-channel images; "
                         f"the data has {channels}")
    proc = load_processor(str(teacher))
    return model, proc, _label_columns(model.config.id2label, labels, str(teacher))


def _weights_digest(folder) -> str:
    """SHA-256 of a folder's weight files (a teacher trained again in place is another teacher)."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _label_columns(id2label: dict, labels, source: str) -> list[int]:
    """Indices of a model's classes in the order of ``labels`` (matched by normalised name).

    Raises
    ------
    LabelError
        The model's label names are not those of the data.
    """
    index = {normalize_label(name): int(i) for i, name in id2label.items()}
    missing = [n for n in labels if normalize_label(n) not in index]
    if missing or len(index) != len(labels):
        raise LabelError(f"model '{source}' has labels {sorted(index)}; the data has {list(labels)}")
    return [index[normalize_label(n)] for n in labels]


def _fit(model, proc, pixels: np.ndarray, y: np.ndarray, kd, settings: ImageTrainSettings, out: Path, key: str,
         progress: bool, device) -> int:
    """Train ``model`` in place (module docstring), resuming from ``out``'s checkpoint if its key is ``key``;
    return the number of epochs the run resumed after (0: from the start)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    out.mkdir(parents=True, exist_ok=True)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps = max(1, min(math.ceil(len(y) / settings.batch_size), len(y) // 2))  # batches of >= 2 images
    total = steps * settings.epochs
    sched = get_cosine_schedule_with_warmup(opt, int(0.05 * total), total)
    start = _resume(out / CHECKPOINT, key, model, opt, sched) // steps
    target = torch.as_tensor(y, device=device)
    bar = tqdm(total=total, initial=start * steps, desc="train", unit="step", disable=not progress)
    for epoch in range(start, settings.epochs):
        model.train()
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(y))
        rng = np.random.default_rng([settings.seed, epoch, 1])
        for idx in np.array_split(order, steps):  # near-equal batches (batch norm needs 2 images or more)
            batch = _augment(pixels[idx], rng) if settings.augment else pixels[idx]
            logits = model(pixel_values=_pixel_values(proc, batch).to(device)).logits
            loss = _loss(logits, target[idx], batch, kd, settings)
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch + 1)
        _save_checkpoint(out / CHECKPOINT, {"key": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                            "scheduler": _plain(sched.state_dict()), "step": (epoch + 1) * steps,
                                            "epoch": epoch + 1, "torch_rng": torch.get_rng_state()})
    bar.close()
    model.eval()
    return start


def _loss(logits, target, batch: np.ndarray, kd, settings: ImageTrainSettings):
    """Cross-entropy; with a teacher ``kd`` = (model, processor, columns), Hinton et al.'s mixture."""
    import torch
    from torch.nn import functional as F

    ce = F.cross_entropy(logits, target)
    if kd is None:
        return ce
    teacher, proc, columns = kd
    with torch.no_grad():
        z = teacher(pixel_values=_pixel_values(proc, batch).to(logits.device)).logits[:, columns]
    t = settings.temperature
    soft = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(z / t, -1), log_target=True,
                    reduction="batchmean") * t * t
    return settings.alpha * soft + (1 - settings.alpha) * ce


def _finish(model, proc, train: Dataset, dev: Dataset | None, settings: ImageTrainSettings, out: Path,
            started: float, extra: dict) -> dict:
    """Save the folder, write its provenance (with train and dev accuracy), delete the checkpoint."""
    from importlib import metadata

    model.save_pretrained(out)
    proc.save_pretrained(out)
    info = {**extra, "task": TASK, "labels": list(train.label_names),
            "data": {"source": train.source, "sha256": train.sha256, "examples": len(train)},
            "settings": asdict(settings), "train_seconds": round(time.time() - started, 1),
            "trusteq_version": metadata.version("trusteq")}
    info["train_accuracy"] = evaluate_image_accuracy(out, train, device=extra["device"])
    if dev is not None:
        info["dev"] = {"source": dev.source, "sha256": dev.sha256, "examples": len(dev),
                       "accuracy": evaluate_image_accuracy(out, dev, device=extra["device"])}
    info = write_provenance(out, info)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return info


# ---------------------------------------------------------------------------
# predictions


def _top_class(model_dir, images, device="cpu") -> np.ndarray:
    """The class index (in the folder's ``id2label`` order) a saved image classifier (transformers or ONNX
    folder, :func:`trusteq.vision.load_image_model`) gives each of ``images`` ((H, W, C) uint8), shape (n,)."""
    from ..vision import load_image_model

    _quiet()
    return load_image_model(str(model_dir), device=device).predict_proba(list(images)).argmax(axis=1)


def evaluate_image_accuracy(model_dir, data, device="cpu") -> float:
    """Accuracy in [0, 1] of a saved image classifier on ``data`` (a Dataset or path): the share of images
    whose top class is named as their label (names compared normalised).

    Raises
    ------
    DataError; ModelError: the folder does not load.
    """
    from transformers import AutoConfig

    ds, pixels = _images(data)
    id2label = AutoConfig.from_pretrained(str(model_dir)).id2label
    names = {int(i): normalize_label(n) for i, n in id2label.items()}
    top = _top_class(model_dir, pixels, device)
    return float(np.mean([names[int(k)] == normalize_label(e.label) for k, e in zip(top, ds.examples)]))


# ---------------------------------------------------------------------------
# compression


def compress_image_model(model_dir, method: str, out, data=None) -> dict:
    """Compress the image classifier in ``model_dir`` with ``method`` (``prune:S`` or ``int8``) into ``out``.

    ``data`` (training images, a Dataset or path) calibrates ``int8``'s activations (up to
    :data:`CALIBRATION_IMAGES`, a seeded sample). Runs on the CPU. Returns the provenance written to
    ``trusteq-model.json`` (method, source model, parameters, non-zero parameters, size).

    Raises
    ------
    SettingsError
        Unknown method, a sparsity outside (0, 1), or ``int8`` without ``data``.
    ModelError
        ``model_dir`` is not a transformers image classifier. DataError: ``data`` is not images.
    """
    if method != "int8" and not method.startswith("prune:"):
        raise SettingsError(f"unknown compression method {method!r} for an image classifier; "
                            "expected int8 or prune:S")
    name, sparsity = parse_method(method)
    if name == "int8" and data is None:
        raise SettingsError("int8 needs --data for calibration: training images to calibrate "
                            "the activations' int8 ranges")
    if not is_image_model(model_dir) or not any(Path(model_dir).glob("*.safetensors")):
        raise ModelError(f"model '{model_dir}': not a folder of a transformers image classifier")
    started = time.time()
    info = _quantize_static(model_dir, Path(out), data) if name == "int8" else _prune(model_dir, Path(out), sparsity)
    prov = Path(model_dir) / PROVENANCE
    src = json.loads(prov.read_text()) if prov.exists() else {}
    info = {"source_model": str(model_dir), "task": TASK, "labels": src.get("labels"),
            "image_size": src.get("image_size"), "channels": src.get("channels"),
            "source_parameters": src.get("parameters"), "source_size_mb": src.get("size_mb"),
            **info, "method": method, "device": "cpu", "compress_seconds": round(time.time() - started, 1)}
    return write_provenance(out, info)


def _prune(model_dir, out: Path, sparsity: float) -> dict:
    """Permanent L1 unstructured pruning of every Conv2d and Linear weight at ``sparsity``."""
    import torch
    from torch.nn.utils import prune as torch_prune
    from transformers import AutoModelForImageClassification

    from ..models import from_pretrained

    _quiet()
    model = from_pretrained(AutoModelForImageClassification, str(model_dir))
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for m in layers:
        torch_prune.l1_unstructured(m, name="weight", amount=sparsity)
        torch_prune.remove(m, "weight")
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    total = sum(m.weight.numel() for m in layers)
    model.save_pretrained(out)
    load_processor(str(model_dir)).save_pretrained(out)
    return {"sparsity": sparsity, "pruned_layers": len(layers), "conv_linear_sparsity": zeros / total}


def _quantize_static(model_dir, out: Path, data) -> dict:
    """Static QDQ int8 quantization through ONNX Runtime, calibrated on a seeded sample of ``data``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from transformers import AutoConfig

    _quiet()
    ds, pixels = _images(data)
    proc = load_processor(str(model_dir))
    pick = np.sort(np.random.default_rng(0).choice(len(ds), min(CALIBRATION_IMAGES, len(ds)), replace=False))
    calib = _pixel_values(proc, pixels[pick]).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre = export_onnx_image(model_dir, tmp), Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        out.mkdir(parents=True, exist_ok=True)
        quantize_static(str(pre), str(out / "model.onnx"), _calibration(calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        fp32_mb = fp32.stat().st_size / 1e6
    AutoConfig.from_pretrained(str(model_dir)).save_pretrained(out)
    proc.save_pretrained(out)
    agree = np.mean(_top_class(out, pixels[pick]) == _top_class(model_dir, pixels[pick]))
    return {"quantization": "static int8 (onnxruntime.quantization.quantize_static, QDQ, per-channel QInt8 "
                            "weights, QInt8 activations, min-max calibration)",
            "calibration_images": len(pick), "calibration_agreement": float(agree),
            "onnx_fp32_size_mb": round(fp32_mb, 3)}


def _calibration(pixel_values: np.ndarray, batch: int = 100):
    """An ONNX Runtime ``CalibrationDataReader`` over preprocessed images (n, C, H, W), in batches of ``batch``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([pixel_values[i:i + batch] for i in range(0, len(pixel_values), batch)])

        def get_next(self):
            x = next(self._batches, None)
            return None if x is None else {"pixel_values": np.ascontiguousarray(x, dtype=np.float32)}

    return Reader()
