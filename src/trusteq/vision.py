"""Image classifiers behind the :class:`~trusteq.models.PairClassifier` interface.

Two kinds of model:

* :class:`ImageClassifier` (kind ``"transformers-image"``): a Hugging Face
  ``AutoModelForImageClassification`` with its ``AutoImageProcessor``, from a
  local folder or a hub id, run with PyTorch;
* :class:`ONNXImageClassifier` (kind ``"onnx-image"``): a folder with
  ``model.onnx`` (input ``pixel_values`` (n, C, H, W) float32, output
  ``logits`` (n, C_out)), ``config.json`` (``id2label``, ``num_channels``) and
  ``preprocessor_config.json``, run with ONNX Runtime
  (:func:`export_onnx_image` writes one from an :class:`ImageClassifier` folder).

Inputs
    A list of n images, each an ndarray of uint8 of shape (H, W, C) with C = 1
    (grey) or 3 (RGB), channels last, as :attr:`trusteq.data.Dataset.inputs`
    gives them for an ``image-classification`` task. Outputs are class
    probabilities (n, K) float64 in the model's own class order (``id2label``).

Preprocessing
    The model's image processor (``preprocessor_config.json``), always its
    PIL/NumPy backend (so that the pixels a model sees do not depend on
    whether torchvision is installed), called with
    ``input_data_format="channels_last"`` (an (H, W, 1) grey image is not
    mistaken for a channels-first one): resizing, cropping, rescaling and
    normalisation as that config says. :func:`image_processor` makes the
    processor of trusteq-trained models: no resizing, pixels / 255, then
    (x - mean) / std per channel.

Batching
    Images are run in input order in batches of ``batch_size``, and every
    forward call gets exactly ``batch_size`` rows: a short last batch is padded
    with zero pixels (their outputs are dropped). Each image's probabilities
    are then the same bit for bit however a caller groups images into calls
    (rows do not interact, and the kernels see one shape), at the cost of at
    most ``batch_size - 1`` padded rows per call.

Fingerprints
    SHA-256 of the weights (PyTorch: every state-dict tensor in key order;
    ONNX: the bytes of ``model.onnx``), the processor's config (``to_dict``,
    JSON with sorted keys) and the class names.

Binding
    :meth:`bind` refuses (:class:`~trusteq.errors.DataError`) data that are not
    images, images whose channel count differs from the model's
    ``num_channels``, and, where the processor does not resize, images whose
    size (H x W) differs from the model's: the processor's ``size``, else the
    config's ``image_size``, (ONNX: else the graph's fixed input size) else
    the first image's (mixed sizes cannot share a batch).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .devices import ort_providers, resolve_device
from .errors import DataError, ModelError
from .models import (PairClassifier, _build, _class_names, _default_name, _dynamic_int8, _softmax, from_pretrained,
                     is_onnx_folder, load_message)

__all__ = ["ImageClassifier", "ONNXImageClassifier", "load_image_model", "export_onnx_image", "is_image_model",
           "image_processor", "load_processor"]

Images = Sequence[np.ndarray]

#: Files that mark a folder as a text model's (a tokenizer).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
                   "spiece.model", "sentencepiece.bpe.model")


def _processor_kwargs() -> dict:
    """``AutoImageProcessor.from_pretrained`` keywords for the PIL/NumPy processor (transformers 5: ``backend``;
    4: ``use_fast=False``)."""
    import transformers

    return {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {"use_fast": False}


def load_processor(source: str, **kwargs):
    """The image processor of ``source`` (``AutoImageProcessor.from_pretrained``), always its PIL/NumPy backend,
    so that the pixels a model sees do not depend on whether torchvision is installed."""
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(source, **_processor_kwargs(), **kwargs)


def _hw(size) -> tuple[int, int] | None:
    """(height, width) of a processor ``size`` (a dict or SizeDict) or config ``image_size`` (int or pair);
    None where it gives no fixed size (``shortest_edge``)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    height, width = get("height"), get("width")
    return (int(height), int(width)) if height and width else None


def _processor_digest(processor) -> str:
    text = json.dumps(processor.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else int(image.shape[-1])


def _describe(channels: int) -> str:
    return {1: "1 channel (grey)", 3: "3 channels (RGB)"}.get(channels, f"{channels} channels")


class _ImageModel(PairClassifier):
    """Shared batching, binding and provenance of image classifiers; pickled as their recipe.

    Subclasses set ``processor``, ``num_channels``, ``name``, ``class_names``, ``source`` and ``device``
    and define :meth:`_logits`.
    """

    batch_size: int = 64

    def __reduce__(self):
        return _build, (self.recipe(),)

    def one_pair_per_call(self) -> None:
        """One image per forward call from now on (batches of 1, with no padding)."""
        self.batch_size = 1

    @property
    def batch_policy(self) -> str:
        """How images are grouped into forward calls (:attr:`trusteq.models.TaskModel.batching`)."""
        return f"fixed batches of {self.batch_size}, padded" if self.batch_size > 1 else "one image per call"

    def _pixels(self, images: Images) -> np.ndarray:
        """``images`` preprocessed: pixel values (n, C, H', W') float32."""
        arrays = [np.asarray(im)[..., None] if np.ndim(im) == 2 else np.asarray(im) for im in images]
        out = self.processor(images=arrays, return_tensors="np", input_data_format="channels_last")
        return np.asarray(out["pixel_values"], dtype=np.float32)

    def batch_plan(self, images: Images) -> list[np.ndarray]:
        """The forward calls :meth:`predict_proba` makes: consecutive indices, ``batch_size`` per call."""
        n, size = len(images), self.batch_size
        return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]

    def predict_batch(self, images: Images) -> np.ndarray:
        """Probabilities (n, K) of one batch of :meth:`batch_plan`: exactly the rows :meth:`predict_proba` gives."""
        return self.predict_proba(images)

    def predict_proba(self, images: Images, progress: bool = False) -> np.ndarray:
        """Class probabilities (n, K) float64 of ``images`` (each (H, W, C) uint8), rows summing to 1.

        Every forward call gets exactly ``batch_size`` rows (a short batch is padded with zeros).
        """
        from tqdm.auto import tqdm

        out = np.empty((len(images), len(self.class_names)), dtype=np.float64)
        with tqdm(total=len(images), desc=f"predict {self.name}", unit="image", leave=False,
                  disable=not progress) as bar:
            for idx in self.batch_plan(images):
                pixels = self._pixels([images[i] for i in idx])
                pad = np.zeros((self.batch_size - len(idx), *pixels.shape[1:]), dtype=pixels.dtype)
                out[idx] = _softmax(np.asarray(self._logits(np.concatenate([pixels, pad])))[:len(idx)])
                bar.update(len(idx))
        return out

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def resizes(self) -> bool:
        """Whether the processor resizes images (then any size fits)."""
        return bool(getattr(self.processor, "do_resize", False))

    def expected_size(self) -> tuple[tuple[int, int], str] | None:
        """The (height, width) the model needs and where it comes from, or None (the data decide)."""
        size = _hw(getattr(self.processor, "size", None))
        if size:
            return size, "its processor's size"
        size = _hw(getattr(self.config, "image_size", None))
        return (size, "its config's image_size") if size else None

    def bind(self, dataset) -> None:
        """Refuse data the model cannot take, before any work.

        Raises
        ------
        DataError
            The data are not images; an image's channel count differs from the model's ``num_channels``;
            or the processor does not resize and an image's H x W differs from :meth:`expected_size` (or,
            without one, from the first image's). The error names the data source and, as its field, the
            first offending image (``Example.text_a``); the message says what the model needs and what
            was found.
        """
        if dataset.kind != "image":
            raise DataError(dataset.source, f"model '{self.name}' classifies images but the data hold "
                                            f"{dataset.kind} texts")
        examples = dataset.examples
        bad = [e for e in examples if _channels(e.image) != self.num_channels]
        if bad:
            raise DataError(dataset.source, f"model '{self.name}' needs images with {_describe(self.num_channels)}"
                            f" (config num_channels), found {_describe(_channels(bad[0].image))} (example id "
                            f"{bad[0].id}; {len(bad)} of {len(examples)} images differ)", field=bad[0].text_a)
        if self.resizes() or not examples:
            return
        first = f"the first image '{examples[0].text_a}', as the model has no size of its own"
        size, why = self.expected_size() or (tuple(examples[0].image.shape[:2]), first)
        bad = [e for e in examples if tuple(e.image.shape[:2]) != size]
        if bad:
            h, w = bad[0].image.shape[:2]
            raise DataError(dataset.source, f"model '{self.name}' needs images of {size[0]}x{size[1]} pixels "
                            f"(H x W; from {why}, and its processor does not resize), found {h}x{w} (example id "
                            f"{bad[0].id}; {len(bad)} of {len(examples)} images differ)", field=bad[0].text_a)

    def info(self) -> dict:
        size = self.expected_size()
        return {**super().info(), "source": self.source, "device": str(self.device), "batch_size": self.batch_size,
                "image_size": list(size[0]) if size else None, "channels": self.num_channels,
                "resizes": self.resizes(), "processor": self.processor.to_dict().get("image_processor_type",
                                                                                    type(self.processor).__name__)}

    def _digest_tail(self, h) -> str:
        """Finish fingerprint ``h`` with the processor config and class names; the hex digest."""
        h.update(_processor_digest(self.processor).encode())
        h.update(json.dumps(self.class_names).encode())
        return h.hexdigest()


class ImageClassifier(_ImageModel):
    """A Hugging Face image classifier run with PyTorch.

    Parameters
    ----------
    path_or_id : str
        Local folder or hub id (needs a network unless cached locally) holding
        the model and its ``preprocessor_config.json``.
    name : str, optional
        Name in reports; defaults to the folder name or id.
    batch_size : int
        Images per forward call (every call gets exactly this many rows). Default 64.
    offline : bool
        Never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (:func:`trusteq.devices.resolve_device`).
    threads : int, optional
        Kept for :meth:`recipe` only (PyTorch's thread count is per process).
    max_length : None
        Accepted and ignored (the comparison passes the same keywords to every loader).

    Raises
    ------
    ModelError
        The model or its processor cannot be loaded; the message names the source.
    DeviceError
        ``device`` is malformed or not on this machine.
    """

    kind = "transformers-image"

    def __init__(self, path_or_id: str, name: str | None = None, batch_size: int = 64, offline: bool = False,
                 device="auto", threads: int | None = None, max_length: int | None = None):
        import torch
        from transformers import AutoModelForImageClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.device, self.threads = resolve_device(device), threads
        self.offline = offline = offline or os.environ.get("HF_HUB_OFFLINE") == "1"
        self.source, self.batch_size = str(path_or_id), int(batch_size)
        try:
            self.processor = load_processor(self.source, local_files_only=offline)
            self.model = AutoModelForImageClassification.from_pretrained(self.source, local_files_only=offline)
        except Exception as exc:
            raise ModelError(load_message(self.source, offline, exc, what="a transformers image classifier")) \
                from None
        self.model.eval()
        self._torch = torch
        self.config = self.model.config
        self.num_channels = int(getattr(self.config, "num_channels", 3))
        self.name = name or _default_name(self.source)
        self.class_names = _class_names(self.config)
        self.fingerprint = self._fingerprint()
        self.model.to(self.device)

    def _fingerprint(self) -> str:
        torch = self._torch
        h = hashlib.sha256(b"transformers-image\0")
        for key, tensor in sorted(self.model.state_dict().items()):
            t = tensor.detach().cpu().contiguous().reshape(-1)
            h.update(f"{key}:{t.dtype}:{list(tensor.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())  # any dtype, bfloat16 included
        return self._digest_tail(h)

    def onnx_export(self, out) -> None:
        export_onnx_image(self.source, out)

    def onnx_twin(self, folder) -> "ONNXImageClassifier":
        return ONNXImageClassifier(folder, name=self.name, batch_size=self.batch_size, device=self.device,
                                   threads=self.threads)

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(self.device, dtype=self.model.dtype)
            return self.model(pixel_values=x).logits.float().cpu().numpy()

    def arguments(self) -> dict:
        return {"path_or_id": self.source, "name": self.name, "batch_size": self.batch_size, "offline": self.offline}

    def info(self) -> dict:
        return {**super().info(), "parameters": int(sum(p.numel() for p in self.model.parameters()))}


class ONNXImageClassifier(_ImageModel):
    """An image classifier exported to ONNX (:func:`export_onnx_image`), run with ONNX Runtime.

    Parameters
    ----------
    folder : str or path
        Holds ``model.onnx`` (input ``pixel_values`` (n, C, H, W), output logits (n, K)), ``config.json``
        (``id2label``, ``num_channels``) and ``preprocessor_config.json``.
    name, batch_size, device, max_length
        As :class:`ImageClassifier`; ``device`` picks the provider (:func:`trusteq.devices.ort_providers`).
    threads : int, optional
        ONNX Runtime's intra-op threads (None: its default).

    Raises
    ------
    ModelError
        No ``model.onnx``, no config or processor, or a graph ONNX Runtime rejects.
    DeviceError
        ``device`` is malformed or not on this machine.
    """

    kind = "onnx-image"

    def __init__(self, folder: str | Path, name: str | None = None, batch_size: int = 64, device="auto",
                 threads: int | None = None, max_length: int | None = None):
        import onnxruntime as ort
        from transformers import AutoConfig

        folder = Path(folder)
        graph = folder / "model.onnx"
        self.device, self.threads = resolve_device(device), threads
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            providers = ort_providers(self.device, quantized=self.device.type == "cuda" and _dynamic_int8(graph))
            self.config = AutoConfig.from_pretrained(folder, local_files_only=True)
            self.processor = load_processor(str(folder), local_files_only=True)
            self.session = ort.InferenceSession(str(graph), options, providers=providers)
        except Exception as exc:
            raise ModelError(f"{folder}: cannot load as an ONNX image classifier ({type(exc).__name__}: {exc})") \
                from None
        self.source, self.batch_size = str(folder), int(batch_size)
        self.name = name or _default_name(str(folder))
        self.class_names = _class_names(self.config)
        self.num_channels = int(getattr(self.config, "num_channels", 3))
        self.provider = self.session.get_providers()[0]
        self.input = self.session.get_inputs()[0]
        self.fingerprint = self._digest_tail(hashlib.sha256(b"onnx-image\0" + graph.read_bytes()))

    def expected_size(self) -> tuple[tuple[int, int], str] | None:
        """As :meth:`ImageClassifier.expected_size`, else the graph's fixed (H, W), if it has one."""
        dims = list(self.input.shape)[2:]
        graph = (tuple(dims), "the ONNX graph's input shape") if all(isinstance(d, int) for d in dims) else None
        return super().expected_size() or graph

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32
        return np.asarray(self.session.run(None, {self.input.name: pixels.astype(dtype)})[0], dtype=np.float32)

    def arguments(self) -> dict:
        return {"folder": self.source, "name": self.name, "batch_size": self.batch_size}

    def info(self) -> dict:
        return {**super().info(), "provider": self.provider}


def export_onnx_image(model_dir, out, image_size: tuple[int, int] | None = None) -> Path:
    """Export an :class:`ImageClassifier` folder to ``out/model.onnx``, with its config and processor.

    The graph takes ``pixel_values`` (batch, C, H, W) float32 (batch dynamic, H x W fixed) and returns
    ``logits`` (batch, K); opset 17. ``out`` then loads as an :class:`ONNXImageClassifier`.

    Parameters
    ----------
    model_dir : str or path
        A folder (or cached hub id) of an ``AutoModelForImageClassification`` and its image processor.
    out : str or path
        Folder to write (created).
    image_size : (int, int), optional
        H x W of the graph; default: the processor's ``size``, else the config's ``image_size``, else 224 x 224.

    Returns
    -------
    Path of ``model.onnx``.

    Raises
    ------
    ModelError
        ``model_dir`` cannot be loaded.
    """
    import torch
    from transformers import AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = from_pretrained(AutoModelForImageClassification, model_dir).eval()
    processor = load_processor(str(model_dir))
    height, width = (image_size or _hw(getattr(processor, "size", None))
                     or _hw(getattr(model.config, "image_size", None)) or (224, 224))
    dummy = torch.zeros(2, int(getattr(model.config, "num_channels", 3)), height, width)

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values).logits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model), (dummy,), str(out / "model.onnx"), input_names=["pixel_values"],
                          output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                          dynamo=False, opset_version=17)
    model.config.save_pretrained(out)
    processor.save_pretrained(out)
    return out / "model.onnx"


def load_image_model(spec, name: str | None = None, batch_size: int = 64, offline: bool = False, device="auto",
                     threads: int | None = None, **_) -> PairClassifier:
    """The image classifier in folder ``spec``: an :class:`ONNXImageClassifier` for an ONNX folder, else an
    :class:`ImageClassifier` (a folder or hub id); a built model passes through. Keyword arguments of text
    models (``max_length``) are ignored. Raises ModelError (cannot load) or DeviceError (``device``)."""
    if isinstance(spec, PairClassifier):
        if name:
            spec.name = name
        return spec
    kwargs = dict(name=name, batch_size=batch_size, device=device, threads=threads)
    if is_onnx_folder(spec):
        return ONNXImageClassifier(spec, **kwargs)
    return ImageClassifier(str(spec), offline=offline, **kwargs)


def is_image_model(path) -> bool:
    """Whether ``path`` is a local folder of an image classifier (PyTorch or ONNX).

    True where its ``config.json`` names an ``...ForImageClassification`` architecture, or where it has a
    ``preprocessor_config.json`` and no tokenizer files (:data:`TOKENIZER_FILES`). False for anything else
    (hub ids included: they are not looked up).
    """
    p = Path(str(path))
    if not p.is_dir():
        return False
    try:
        config = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if any(str(a).endswith("ForImageClassification") for a in config.get("architectures") or ()):
        return True
    return (p / "preprocessor_config.json").is_file() and not any((p / f).exists() for f in TOKENIZER_FILES)


def image_processor(image_size: tuple[int, int], channels: int, mean: Sequence[float], std: Sequence[float]):
    """The image processor of a trusteq-trained model: no resizing, pixels / 255, then (x - mean) / std.

    A ``ViTImageProcessor`` (its PIL/NumPy backend) whose ``size`` records ``image_size`` (which
    :meth:`ImageClassifier.bind` then requires of every image). Saved with ``save_pretrained(folder)``, it
    loads back with ``AutoImageProcessor.from_pretrained(folder)``. Called on (H, W, C) uint8 arrays with
    ``input_data_format="channels_last"``, it gives ``pixel_values`` (n, C, H, W) float32.

    Parameters
    ----------
    image_size : (int, int)
        (height, width) in pixels.
    channels : int
        1 (grey) or 3 (RGB).
    mean, std : sequence of float, length ``channels``
        Per-channel mean and standard deviation of the rescaled pixels (in [0, 1]).

    Raises
    ------
    ValueError
        ``mean`` or ``std`` does not have ``channels`` values, or a std is not positive.
    """
    import transformers

    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"image_processor: mean {list(mean)} and std {list(std)} need {channels} values each "
                         f"(std > 0)")
    cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    return cls(do_resize=False, size={"height": int(image_size[0]), "width": int(image_size[1])}, do_rescale=True,
               rescale_factor=1 / 255, do_normalize=True, image_mean=[float(m) for m in mean],
               image_std=[float(s) for s in std])
