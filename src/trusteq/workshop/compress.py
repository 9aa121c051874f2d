"""Compressed versions of a fine-tuned model, each loadable by ``trusteq compare``.

Methods (``trusteq compress --method``):

* ``int8``: dynamic int8 quantization of every MatMul weight with ONNX
  Runtime's quantizer (``onnxruntime.quantization.quantize_dynamic``) on an
  ONNX export of the model; the output is an ONNX folder. CPU only: the
  export and quantization run on the CPU whatever ``device`` says, and ONNX
  Runtime runs the quantized graph with its CPU provider on any device.
* ``prune:S``: unstructured magnitude (L1) pruning of every linear layer of the
  encoder at sparsity S in (0, 1) (``torch.nn.utils.prune.l1_unstructured``),
  made permanent; the output is a transformers folder with S of those weights
  equal to zero. Runs on the CPU (a pass over the weights).
* Partial compression (``keep_layers``, for ``int8`` and ``prune:S``): the encoder layers listed stay
  uncompressed (float MatMuls excluded from quantization; linears left unpruned), recorded as
  ``kept_uncompressed``; :func:`trusteq.search` chooses them (NNCF's accuracy control, judged on trust).
* ``drop-layers:N``: keep N evenly spaced encoder layers (first and last
  included, as DistilBERT's initialisation keeps every other layer), then a
  short fine-tune on ``data``, on ``device``.

Every output folder carries ``trusteq-model.json`` (method, source model,
parameter count, size in MB).

A causal LM (an LLM name such as ``smollm2-135m``, a ``.gguf`` file, or a
folder whose config names a ``...ForCausalLM``) is compressed by
:func:`trusteq.workshop.llms.compress_causal_lm` instead: ``int8``,
``prune:S``, ``drop-layers:K`` (no re-tuning) and ``gguf:TYPE``, on the CPU.
An image classifier (:func:`trusteq.vision.is_image_model`) by
:func:`trusteq.workshop.images.compress_image_model`: static ``int8``
calibrated on ``data`` (its training images), or ``prune:S`` of every
convolution and linear layer.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import PROVENANCE, parse_method, quiet as _quiet, write_provenance
from .finetune import TrainSettings, _finish, _train
from ..devices import resolve_device
from ..errors import SettingsError
from ..models import export_onnx, from_pretrained

__all__ = ["compress", "parse_method", "quantize_int8", "prune", "drop_layers", "encoder_layers", "LAYERED_ENCODERS",
           "partial_applies"]


def compress(model_dir, method: str, out, data=None, task: str | None = None,
             settings: TrainSettings | None = None, progress: bool = True, device="auto",
             keep_layers: Sequence[int] = ()) -> dict:
    """Compress the fine-tuned model in ``model_dir`` with ``method`` into ``out``.

    ``data`` and ``task`` are required for ``drop-layers:N`` (its short
    fine-tune; default settings: 1 epoch). ``device`` ("auto", "cpu", "cuda",
    "cuda:N") is where that fine-tune runs; int8 quantization and pruning
    always run on the CPU (dynamic int8 quantization is CPU only). ``keep_layers``:
    indices of the encoder layers (0-based) left uncompressed by ``int8`` or ``prune:S``
    of a text encoder. Returns the provenance written to ``trusteq-model.json``
    (``device``: where it ran; ``kept_uncompressed``: ``keep_layers``, sorted).

    Raises
    ------
    SettingsError
        Unknown method; ``keep_layers`` with another method or model kind, or naming a layer the
        encoder lacks. DeviceError: ``device`` malformed or absent (checked for every method).
    """
    from ..vision import is_image_model
    from .images import compress_image_model
    from .llms import compress_causal_lm, is_causal_lm

    keep = sorted({int(i) for i in keep_layers})
    if keep and not partial_applies(model_dir, method):
        raise SettingsError(f"partial compression (layers kept uncompressed) applies to int8 and prune:S of a text "
                            f"encoder, not to {method} of {model_dir}")
    if is_causal_lm(model_dir):  # an LLM: its own methods, on the CPU; data, task and settings unused
        resolve_device(device)
        return compress_causal_lm(model_dir, method, out)
    if is_image_model(model_dir):  # an image classifier: int8 (calibrated on ``data``) or pruning, on the CPU
        resolve_device(device)
        return compress_image_model(model_dir, method, out, data=data)
    name, arg = parse_method(method)
    device = resolve_device(device)
    started = time.time()
    if keep:
        layers = encoder_layers(model_dir)
        if keep[0] < 0 or keep[-1] >= layers:
            raise SettingsError(f"keep_layers {keep}: the encoder of {model_dir} has layers 0 to {layers - 1}")
    if name == "int8":
        info = quantize_int8(model_dir, out, keep)
    elif name == "prune":
        info = prune(model_dir, out, arg, keep)
    else:
        if data is None or task is None:
            raise SettingsError("drop-layers needs --data and --task for its short fine-tune")
        info = drop_layers(model_dir, out, arg, data, task, settings or TrainSettings.for_compression(), progress, device)
    ran_on = str(device) if name == "drop-layers" else "cpu"  # int8 and pruning: CPU only
    info = {**_source_info(model_dir), **info, "method": method, "device": ran_on, "kept_uncompressed": keep,
            "compress_seconds": round(time.time() - started, 1)}
    return write_provenance(out, info)


def _source_info(model_dir) -> dict:
    prov = Path(model_dir) / PROVENANCE
    src = json.loads(prov.read_text()) if prov.exists() else {}
    return {"source_model": str(model_dir), "task": src.get("task"), "labels": src.get("labels"),
            "source_parameters": src.get("parameters"), "source_size_mb": src.get("size_mb")}


#: Text encoders whose layers are ``base_model.encoder.layer[i]``, exported as ``.../encoder/layer.i/...``: the
#: models partial compression knows how to keep a layer of.
LAYERED_ENCODERS = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet")


def partial_applies(model_dir, method: str) -> bool:
    """Whether ``method`` of the model in ``model_dir`` can keep layers uncompressed: ``int8`` or ``prune:S`` of a
    transformers folder whose config's ``model_type`` is one of :data:`LAYERED_ENCODERS` (not a causal LM, an
    image classifier, an ONNX folder or another architecture)."""
    folder = Path(str(model_dir))
    if parse_method(method)[0] not in ("int8", "prune") or not (folder / "config.json").is_file() \
            or list(folder.glob("*.onnx")):
        return False
    config = json.loads((folder / "config.json").read_text())
    return config.get("model_type") in LAYERED_ENCODERS and "ForSequenceClassification" in \
        " ".join(config.get("architectures") or ["ForSequenceClassification"])


def encoder_layers(model_dir) -> int:
    """The number of encoder layers of the text encoder in ``model_dir`` (its config's ``num_hidden_layers``)."""
    from transformers import AutoConfig

    return int(from_pretrained(AutoConfig, model_dir).num_hidden_layers)


def _layer_of(node_name: str) -> int | None:
    """The encoder layer an exported node belongs to (``.../encoder/layer.3/...`` -> 3), else None."""
    found = re.search(r"/encoder/layers?\.(\d+)/", node_name)
    return int(found.group(1)) if found else None


def quantize_int8(model_dir, out, keep_layers: Sequence[int] = ()) -> dict:
    """Dynamic int8 quantization through ONNX Runtime; ``out`` becomes an ONNX folder. The MatMuls of the encoder
    layers in ``keep_layers`` stay float (``nodes_to_exclude``)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model_dir, tmp)
        out.mkdir(parents=True, exist_ok=True)
        for f in Path(tmp).iterdir():
            if f.suffix != ".onnx":
                shutil.copy2(f, out / f.name)
        graph = onnx.load(str(fp32), load_external_data=False).graph
        excluded = [n.name for n in graph.node if n.op_type == "MatMul" and _layer_of(n.name) in set(keep_layers)]
        missing = set(keep_layers) - {_layer_of(n) for n in excluded}
        if missing:
            raise SettingsError(f"int8 of {model_dir}: no MatMul of encoder layers {sorted(missing)} in its export; "
                                f"it cannot keep them uncompressed")
        quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
        fp32_mb = fp32.stat().st_size / 1e6
    return {"quantization": "dynamic int8 (onnxruntime.quantization.quantize_dynamic, QInt8 weights)",
            "onnx_fp32_size_mb": round(fp32_mb, 3), "float_nodes": len(excluded)}


def prune(model_dir, out, sparsity: float, keep_layers: Sequence[int] = ()) -> dict:
    """Permanent unstructured L1 pruning of the encoder's linear layers at ``sparsity``, each layer on its own
    (``l1_unstructured``); those of the encoder layers in ``keep_layers`` are left whole."""
    import torch
    from torch.nn.utils import prune as torch_prune
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _quiet()
    model = from_pretrained(AutoModelForSequenceClassification, model_dir)
    kept, encoder = set(keep_layers), model.base_model.encoder
    linears = [m for i, layer in enumerate(encoder.layer) if i not in kept for m in layer.modules()
               if isinstance(m, torch.nn.Linear)] if kept else \
        [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    for m in linears:
        torch_prune.l1_unstructured(m, name="weight", amount=sparsity)
        torch_prune.remove(m, "weight")
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    total = sum(m.weight.numel() for m in linears)
    model.save_pretrained(out)
    from_pretrained(AutoTokenizer, model_dir).save_pretrained(out)
    return {"sparsity": sparsity, "pruned_layers": len(linears), "encoder_linear_sparsity": zeros / total}


def drop_layers(model_dir, out, keep: int, data, task: str, settings: TrainSettings, progress: bool = True,
                device=None) -> dict:
    """Keep ``keep`` evenly spaced encoder layers, then fine-tune briefly on ``data`` on ``device`` (None: CPU)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..data import as_dataset

    _quiet()
    model = from_pretrained(AutoModelForSequenceClassification, model_dir)
    tok = from_pretrained(AutoTokenizer, model_dir)
    layers = model.base_model.encoder.layer
    n = len(layers)
    if keep >= n:
        raise SettingsError(f"drop-layers:{keep} keeps all {n} layers; choose fewer")
    kept = sorted(set(np.round(np.linspace(0, n - 1, keep)).astype(int).tolist()))
    model.base_model.encoder.layer = torch.nn.ModuleList([layers[i] for i in kept])
    model.config.num_hidden_layers = len(kept)
    train = as_dataset(data, task)
    started = time.time()
    out = Path(out)
    _train(model, tok, train, None, settings, out, {"kind": "drop-layers", "model": str(model_dir), "kept": kept},
           progress, device)
    info = _finish(model, tok, train, None, settings, out, started,
                   {"kept_layers": kept, "original_layers": n, "device": str(device or "cpu")})
    return info
