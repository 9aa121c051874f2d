"""Where models run: a device option resolved to a ``torch.device``, and the ONNX Runtime provider that matches it.

``device`` options of :func:`trusteq.compare`, :func:`trusteq.workshop.finetune`,
:func:`~trusteq.workshop.distill` and :func:`~trusteq.workshop.compress`:

* ``"auto"`` (default): the first CUDA GPU when ``torch.cuda.is_available()``, else the CPU;
* ``"cpu"``;
* ``"cuda"`` (the current CUDA device, ``cuda:0`` unless set otherwise) or ``"cuda:N"``.

ONNX Runtime uses ``CUDAExecutionProvider`` for a CUDA device when the installed
onnxruntime has it (the ``onnxruntime-gpu`` wheel), else ``CPUExecutionProvider``.
Dynamically quantized int8 graphs always run on the CPU provider (their integer
kernels are CPU kernels).
"""

from __future__ import annotations

import re

from .errors import DeviceError

__all__ = ["DeviceError", "DEVICE_HELP", "check_device", "resolve_device", "ort_providers", "available_devices"]

#: What a device option may be, for error messages and ``--help``.
DEVICE_HELP = "auto, cpu, cuda or cuda:N"

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def available_devices() -> list[str]:
    """Devices PyTorch can use here: ``["cpu", "cuda:0", ...]``."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + [f"cuda:{i}" for i in range(n)]


def resolve_device(spec="auto"):
    """The ``torch.device`` a device option names.

    Parameters
    ----------
    spec : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (case-insensitive), or a ``torch.device``.

    Returns
    -------
    torch.device
        ``cpu`` or ``cuda:N`` (``"cuda"`` resolves to the current CUDA device's index).

    Raises
    ------
    DeviceError
        The option is malformed (``"gpu"``, ``"cuda:x"``, ``"cpu:1"``), or names a CUDA device this machine
        does not have; the message names the request and the devices available.
    """
    import torch

    kind, index = check_device(spec)
    if kind == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    available = available_devices()
    index = int(index) if index is not None else (torch.cuda.current_device() if torch.cuda.is_available() else 0)
    if f"cuda:{index}" not in available:
        raise DeviceError(f"device '{spec}' requested but this machine has {', '.join(available)} only"
                          f"{'' if len(available) > 1 else ' (torch.cuda.is_available() is False)'}; "
                          f"use --device cpu or auto")
    return torch.device("cuda", index)


def check_device(spec) -> tuple[str, str | None]:
    """The kind (``auto``, ``cpu``, ``cuda``) and index (None or digits) of a device option, without looking
    for the device (:func:`resolve_device` does).

    Raises
    ------
    DeviceError
        The option is malformed (``"gpu"``, ``"cuda:x"``, ``"cpu:1"``).
    """
    match = _SPEC.match(str(spec).strip().lower())
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise DeviceError(f"device '{spec}': expected {DEVICE_HELP}")
    return match.group(1), match.group(2)


def ort_providers(device, quantized: bool = False) -> list:
    """ONNX Runtime providers for ``device``: CUDA first where possible, the CPU always as fallback.

    Parameters
    ----------
    device : torch.device
    quantized : bool
        The graph is dynamically quantized to int8: CPU only.

    Returns
    -------
    list of provider names or ``(name, options)`` pairs, for ``onnxruntime.InferenceSession(providers=...)``.
    """
    import onnxruntime as ort

    if device.type == "cuda" and not quantized and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
