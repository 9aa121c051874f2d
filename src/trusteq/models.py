"""Sentence-pair classifiers behind one interface, and their label alignment.

A model is anything that maps a list of ``(text_a, text_b)`` pairs (``(text, None)``
for single texts) to class
probabilities of shape (n, C) in the model's own class order. Three kinds are
supported:

* :class:`HFClassifier` - a Hugging Face ``AutoModelForSequenceClassification``
  from a local folder or a hub id;
* :class:`ONNXClassifier` - a folder with a ``*.onnx`` graph, ``config.json``
  (for ``id2label``) and tokenizer files, run with ONNX Runtime;
* :class:`CallableClassifier` - any Python callable ``f(pairs) -> (n, C)``.

:func:`align_labels` maps the model's classes onto the task's label names *by
name* (``id2label``), never by position, and :class:`TaskModel` returns
probabilities in the dataset's class order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .data import normalize_label
from .devices import ort_providers, resolve_device
from .errors import LabelError, ModelError
from .validation import check_probability_matrix

__all__ = [
    "PairClassifier",
    "HFClassifier",
    "ONNXClassifier",
    "CallableClassifier",
    "TaskModel",
    "ModelRecipe",
    "load_model",
    "align_labels",
    "export_onnx",
    "is_onnx_folder",
    "load_message",
    "encode_texts",
]

Pairs = Sequence[tuple[str, str | None]]


def encode_texts(tokenizer, pairs: Pairs, **kwargs):
    """``tokenizer`` called on pairs, or on single texts when every second text is None.

    Parameters
    ----------
    pairs : sequence of (str, str or None), length n
        ``(text_a, text_b)`` of a sentence-pair task, or ``(text, None)`` of a
        single-text task (``--task text-classification`` with ``--text``).

    Raises
    ------
    ValueError
        Some but not all second texts are None.
    """
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    missing = sum(x is None for x in b)
    if missing and missing != len(b):
        raise ValueError(f"{missing} of {len(b)} inputs have no second text: pairs and single texts cannot be mixed")
    return tokenizer(a, None if missing else b, **kwargs)


class PairClassifier:
    """Base class: a named model with class names and batched probabilities.

    Attributes
    ----------
    name : str
        Name used in reports.
    class_names : tuple of str
        The model's classes in output order (from ``id2label``), shape (C,).
    fingerprint : str or None
        Content hash of weights, tokenizer and settings; ``None`` disables the
        on-disk prediction cache for this model.
    max_length : int or None
        Maximum number of tokens per pair; longer pairs are truncated.
    no_model : str or None
        Why there is no model to run (None: there is): a stand-in whose
        probabilities are stored (:meth:`lookup`, e.g.
        :class:`trusteq.external.PredictionsFile`). It is never batched,
        explained or sent to an executor, and its explanation dimensions are
        undecided for this reason.
    """

    name: str
    class_names: tuple[str, ...]
    fingerprint: str | None = None
    max_length: int | None = None
    kind: str = "model"
    no_model: str | None = None

    def predict_proba(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        """Class probabilities, shape (n, C), float64, rows sum to 1 (a progress bar over batches if asked)."""
        raise NotImplementedError

    def bind(self, dataset) -> None:
        """Check the model against the data of a comparison before any work (a :class:`~trusteq.data.Dataset`;
        default: nothing to check). Raises :class:`~trusteq.errors.DataError` where they do not fit."""

    def lookup(self, ids: Sequence[str]) -> np.ndarray | None:
        """Stored probabilities (n, C) of the examples ``ids`` of the bound data, or None: run the model."""
        return None

    def count_truncated(self, pairs: Pairs) -> int:
        """Number of pairs longer than ``max_length`` tokens (0 if unknown)."""
        return 0

    #: Whether every call gets one pair (:meth:`one_pair_per_call`).
    single_pairs: bool = False

    def one_pair_per_call(self) -> None:
        """Evaluate one pair per model call from now on (see :meth:`TaskModel.set_pair_by_pair`)."""
        self.single_pairs = True

    def batch_plan(self, pairs: Pairs) -> list[np.ndarray]:
        """The model calls :meth:`predict_calls` makes on ``pairs``: each call's indices, in call order (the
        caller's batch as one call, or one pair per call)."""
        if self.single_pairs:
            return [np.array([i]) for i in range(len(pairs))]
        return [np.arange(len(pairs))] if len(pairs) else []

    def predict_batch(self, pairs: Pairs) -> np.ndarray:
        """Probabilities (n, C) of ``pairs`` in one model call: for a batch of :meth:`batch_plan`, exactly the
        rows :meth:`predict_calls` gives it."""
        return self.predict_proba(pairs)

    def predict_calls(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        """Probabilities (n, C) of ``pairs`` in the calls of :meth:`batch_plan`."""
        if self.single_pairs:
            return np.vstack([self.predict_proba([pair]) for pair in pairs])
        return self.predict_proba(pairs, progress=progress)

    def info(self) -> dict:
        """Provenance of the model for report.json."""
        return {"kind": self.kind, "class_names": list(self.class_names), "fingerprint": self.fingerprint,
                "max_length": self.max_length}

    def onnx_export(self, out) -> None:
        """Export this PyTorch model to ONNX in folder ``out``, which :meth:`onnx_twin` then loads; a model
        with no ONNX Runtime twin (the default) raises NotImplementedError (see :func:`trusteq.predict.onnx_twin`)."""
        raise NotImplementedError

    def onnx_twin(self, folder) -> "PairClassifier":
        """The same model run by ONNX Runtime from the export in ``folder``, on this model's device and threads."""
        raise NotImplementedError

    def arguments(self) -> dict:
        """Constructor arguments that rebuild this model in another process (device and threads apart)."""
        raise TypeError(f"model '{self.name}' ({type(self).__name__}) cannot be rebuilt in another process")

    def recipe(self) -> "ModelRecipe":
        """What rebuilds this model elsewhere (TypeError where :meth:`arguments` cannot say)."""
        return ModelRecipe(self.kind, tuple(sorted(self.arguments().items())), self.fingerprint,
                           str(getattr(self, "device", "cpu")), getattr(self, "threads", None),
                           cls=type(self) if self.kind not in ("transformers", "onnx", "callable") else None)


#: Fixed cost of one forward call, in padded tokens: a batch of n pairs padded
#: to L tokens is taken to cost n * L + BATCH_OVERHEAD. On this project's 2-core
#: CPU minilm-l6 costs ~0.12 ms per padded token at any batch size from 16;
#: of 10, 40 and 100, 40 gave the most pairs/s in an A/B run (one process) on
#: the LIME and SHAP perturbations of 8 SNLI test pairs, called in chunks of
#: 10, 114 and 3,000 pairs.
BATCH_OVERHEAD = 40


def length_batches(lengths: np.ndarray, max_batch: int, overhead: float = BATCH_OVERHEAD) -> list[np.ndarray]:
    """Split pairs into batches that waste little on padding.

    Pairs are sorted longest first and cut into consecutive batches of at
    most ``max_batch`` so that the total padded tokens plus ``overhead`` per
    batch is minimal (dynamic programming over the cut points). On CPU a
    forward pass costs the same per padded token from about 16 pairs up, so
    a mix of lengths is cheaper in several short batches than in one.

    Parameters
    ----------
    lengths : ndarray of int, shape (n,)
        Tokens per pair.
    max_batch : int
        Largest batch, >= 1.

    Returns
    -------
    list of ndarray of int: indices into ``lengths``, longest pairs first.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    tokens = np.asarray(lengths, dtype=np.float64)[order]
    n = len(tokens)
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        j = np.arange(max(0, i - max_batch), i)
        cost = best[j] + (i - j) * tokens[j] + overhead  # tokens[j]: the longest pair of order[j:i]
        k = int(np.argmin(cost))
        best[i], start[i] = cost[k], j[k]
    cuts, i = [], n
    while i > 0:
        cuts.append((int(start[i]), i))
        i = int(start[i])
    return [order[a:b] for a, b in reversed(cuts)]


class _TokenizedClassifier(PairClassifier):
    """Shared batching for models that take tokenizer output; pickled as their :class:`ModelRecipe`."""

    def __init__(self, tokenizer, max_length: int, batch_size: int):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)

    def __reduce__(self):
        return _build, (self.recipe(),)

    def one_pair_per_call(self) -> None:
        """Batches of one pair from now on (the length batches of size 1, through :meth:`predict_proba`)."""
        self.batch_size = 1

    def _encode(self, pairs: Pairs):
        return encode_texts(self.tokenizer, pairs, truncation=True, max_length=self.max_length)

    def count_truncated(self, pairs: Pairs) -> int:
        if not pairs:
            return 0
        enc = encode_texts(self.tokenizer, pairs, truncation=False)
        return int(sum(len(ids) > self.max_length for ids in enc["input_ids"]))

    def _batches(self, pairs: Pairs):
        """Yield (indices, padded numpy batch): pairs of similar length together (see ``length_batches``)."""
        enc = self._encode(pairs)
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        for idx in length_batches(lengths, self.batch_size):
            yield idx, self._pad(enc, idx)

    def _pad(self, enc, idx) -> dict:
        """Pairs ``idx`` of the encoding ``enc`` as one padded numpy batch."""
        return self.tokenizer.pad([{k: enc[k][i] for k in enc.keys()} for i in idx], return_tensors="np")

    def batch_plan(self, pairs: Pairs) -> list[np.ndarray]:
        """The forward calls :meth:`predict_proba` makes on ``pairs``: each call's indices (``length_batches``)."""
        lengths = np.array([len(ids) for ids in self._encode(pairs)["input_ids"]])
        return length_batches(lengths, self.batch_size)

    def predict_batch(self, pairs: Pairs) -> np.ndarray:
        """Probabilities of ``pairs`` in one forward call, shape (n, C): a batch of :meth:`batch_plan`
        gives exactly what :meth:`predict_proba` gives it."""
        enc = self._encode(pairs)
        return _softmax(self._logits(self._pad(enc, range(len(pairs)))))

    def predict_proba(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        out = np.empty((len(pairs), len(self.class_names)), dtype=np.float64)
        with tqdm(total=len(pairs), desc=f"predict {self.name}", unit="pair", leave=False,
                  disable=not progress) as bar:
            for idx, batch in self._batches(pairs):
                out[idx] = _softmax(self._logits(batch))
                bar.update(len(idx))
        return out

    def _logits(self, batch) -> np.ndarray:
        raise NotImplementedError


class HFClassifier(_TokenizedClassifier):
    """A Hugging Face sequence-pair classifier run with PyTorch.

    Parameters
    ----------
    path_or_id : str
        Local folder or hub id (needs a network unless cached locally).
    name : str, optional
        Name in reports; defaults to the folder name or id.
    max_length : int
        Tokens per pair after truncation (``longest_first``). Default 128.
    batch_size : int
        Pairs per forward pass. Default 64.
    offline : bool
        Never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
    device : str or torch.device
        ``"auto"`` (a CUDA GPU if there is one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        (:func:`trusteq.devices.resolve_device`); the weights and every batch move there.
    threads : int, optional
        Kept for :meth:`recipe` only: PyTorch's thread count is per process
        (``torch.set_num_threads``, set by the executor).

    Raises
    ------
    ModelError
        The model cannot be loaded; the message names the id and how to
        provide a local folder.
    DeviceError
        ``device`` is malformed or not on this machine.
    """

    kind = "transformers"

    def __init__(self, path_or_id: str, name: str | None = None, max_length: int = 128, batch_size: int = 64,
                 offline: bool = False, device="auto", threads: int | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.device, self.threads = resolve_device(device), threads
        self.offline = offline = offline or os.environ.get("HF_HUB_OFFLINE") == "1"
        self.source = str(path_or_id)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=offline)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.source, local_files_only=offline)
        except Exception as exc:
            raise ModelError(load_message(self.source, offline, exc)) from None
        super().__init__(tokenizer, max_length, batch_size)
        self.model.eval()
        self._torch = torch
        self.name = name or _default_name(self.source)
        self.class_names = _class_names(self.model.config)
        self.fingerprint = self._fingerprint()
        self.model.to(self.device)

    def arguments(self) -> dict:
        return {"path_or_id": self.source, "name": self.name, "max_length": self.max_length,
                "batch_size": self.batch_size, "offline": self.offline}

    def _fingerprint(self) -> str:
        h = hashlib.sha256(b"transformers\0")
        for key, tensor in sorted(self.model.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        h.update(json.dumps(self.class_names).encode())
        h.update(_tokenizer_digest(self.tokenizer).encode())
        h.update(f"max_length={self.max_length}".encode())
        return h.hexdigest()

    def _logits(self, batch) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inputs = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in batch.items()}
            return self.model(**inputs).logits.float().cpu().numpy()

    def info(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {**super().info(), "source": self.source, "parameters": int(n_params), "device": str(self.device)}

    def onnx_export(self, out) -> None:
        export_onnx(self.source, out)

    def onnx_twin(self, folder) -> "ONNXClassifier":
        return ONNXClassifier(folder, name=self.name, max_length=self.max_length, batch_size=self.batch_size,
                              device=self.device, threads=self.threads)


class ONNXClassifier(_TokenizedClassifier):
    """A sequence-pair classifier exported to ONNX, run with ONNX Runtime.

    The folder holds one ``*.onnx`` graph whose first output is the logits
    (batch, C), a ``config.json`` with ``id2label``, and tokenizer files.

    ``device`` (as :class:`HFClassifier`) picks the provider
    (:func:`trusteq.devices.ort_providers`): CUDA where onnxruntime has it,
    else the CPU; dynamically quantized int8 graphs always run on the CPU.
    ``provider`` is the one used. ``threads``: ONNX Runtime's intra-op threads
    (None: its default, one per physical core).

    Raises
    ------
    ModelError
        No graph, no config, several graphs, or a graph ONNX Runtime rejects.
    DeviceError
        ``device`` is malformed or not on this machine.
    """

    kind = "onnx"

    def __init__(self, folder: str | Path, name: str | None = None, max_length: int = 128, batch_size: int = 64,
                 device="auto", threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoConfig, AutoTokenizer

        folder = Path(folder)
        graphs = sorted(folder.glob("*.onnx"))
        if len(graphs) != 1:
            raise ModelError(f"{folder}: expected exactly one *.onnx file, found {len(graphs)}")
        self.device, self.threads = resolve_device(device), threads
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = ort_providers(self.device, quantized=self.device.type == "cuda" and _dynamic_int8(graphs[0]))
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.session = ort.InferenceSession(str(graphs[0]), options, providers=providers)
        except Exception as exc:
            raise ModelError(f"{folder}: cannot load ONNX model ({exc})") from None
        super().__init__(tokenizer, max_length, batch_size)
        self.source = str(folder)
        self.name = name or _default_name(str(folder))
        self.class_names = _class_names(config)
        self.provider = self.session.get_providers()[0]
        self.input_names = [i.name for i in self.session.get_inputs()]
        h = hashlib.sha256(b"onnx\0")
        h.update(graphs[0].read_bytes())
        h.update(json.dumps(self.class_names).encode())
        h.update(_tokenizer_digest(tokenizer).encode())
        h.update(f"max_length={self.max_length}".encode())
        self.fingerprint = h.hexdigest()

    def _logits(self, batch) -> np.ndarray:
        feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in self.input_names if k in batch}
        missing = [k for k in self.input_names if k not in feeds]
        if missing:
            raise ModelError(f"{self.source}: the graph needs inputs {missing} that the tokenizer does not produce")
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)

    def arguments(self) -> dict:
        return {"folder": self.source, "name": self.name, "max_length": self.max_length, "batch_size": self.batch_size}

    def info(self) -> dict:
        return {**super().info(), "source": self.source, "device": str(self.device), "provider": self.provider}


def _dynamic_int8(graph: Path) -> bool:
    """Whether an ONNX graph is dynamically quantized (integer kernels, which ONNX Runtime runs on the CPU)."""
    import onnx

    ops = {node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node}
    return bool(ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"})


class CallableClassifier(PairClassifier):
    """Wrap ``fn(pairs) -> probabilities (n, C)`` as a model.

    Parameters
    ----------
    fn : callable
        Takes a list of ``(text_a, text_b)`` (images: a uint8 array of shape
        (n, H, W, C), C = 1 grey or 3 RGB) and returns an array (n, C) of
        probabilities in the order of ``class_names``.
    class_names : sequence of str
        Names of the C classes.
    name : str
        Name in reports.
    fingerprint : str, optional
        Stable identifier of the function's behaviour; without it predictions
        are not cached on disk.
    """

    kind = "callable"

    def __init__(self, fn: Callable[[list[tuple[str, str]]], np.ndarray], class_names: Sequence[str], name: str,
                 fingerprint: str | None = None):
        self.fn = fn
        self.class_names = tuple(class_names)
        self.name = name
        self.fingerprint = fingerprint

    def predict_proba(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        if len(pairs) and isinstance(pairs[0], np.ndarray):  # images: one uint8 array (n, H, W, C)
            return np.asarray(self.fn(np.stack(pairs)), dtype=np.float64)
        return np.asarray(self.fn(list(pairs)), dtype=np.float64)

    def arguments(self) -> dict:
        return {"fn": self.fn, "class_names": self.class_names, "name": self.name, "fingerprint": self.fingerprint}


def load_model(spec, name: str | None = None, max_length: int = 128, batch_size: int = 64,
               offline: bool = False, device="auto", threads: int | None = None) -> PairClassifier:
    """Load a model from a folder, a hub id, or pass a model object through.

    Parameters
    ----------
    spec : str, path or PairClassifier
        A folder holding a ``*.onnx`` graph (ONNX Runtime), any other folder
        or a hub id (transformers), or an already built model (kept where it is).
        Image classifiers load with :func:`trusteq.vision.load_image_model`.
    device : str or torch.device, default="auto"
        Where the model runs (:func:`trusteq.devices.resolve_device`).
    threads : int, optional
        ONNX Runtime's intra-op threads (None: its default).

    Raises
    ------
    ModelError
        The model cannot be loaded.
    DeviceError
        ``device`` is malformed or not on this machine.
    """
    if isinstance(spec, PairClassifier):
        if name:
            spec.name = name
        return spec
    path = Path(str(spec))
    if is_onnx_folder(path):
        return ONNXClassifier(path, name=name, max_length=max_length, batch_size=batch_size, device=device,
                              threads=threads)
    if not path.exists() and (str(spec).startswith((".", "/")) or str(spec).count("/") > 1):
        raise ModelError(f"model '{spec}': no such folder")
    if _causal_lm(path):
        raise ModelError(f"model '{spec}' is a decoder-only LLM (a causal LM or a GGUF file), not a classifier: "
                         f"compare it through a prompt, with --prompt-template and --label-words")
    return HFClassifier(str(spec), name=name, max_length=max_length, batch_size=batch_size, offline=offline,
                        device=device, threads=threads)


# ---------------------------------------------------------------------------
# label alignment

_GENERIC = re.compile(r"^(label_?)?\d+$")


def export_onnx(model_dir, out) -> Path:
    """Export a transformers pair classifier to ``out/model.onnx`` (logits output) with config and tokenizer.

    ``out`` then loads as an :class:`ONNXClassifier`. Returns the graph's path.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = from_pretrained(AutoModelForSequenceClassification, model_dir).eval()
    tok = from_pretrained(AutoTokenizer, model_dir)
    enc = tok(["a man is sleeping"], ["a person rests"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            return self.m(**dict(zip(names, args))).logits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model), tuple(enc[n] for n in names), str(out / "model.onnx"), input_names=names,
                          output_names=["logits"], dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
                          dynamo=False, opset_version=17)
    model.config.save_pretrained(out)
    tok.save_pretrained(out)
    return out / "model.onnx"



def align_labels(model_classes: Sequence[str], task_labels: Sequence[str], model_name: str,
                 override: Sequence[str] | None = None) -> np.ndarray:
    """Column order that puts a model's probabilities into the task's class order.

    Parameters
    ----------
    model_classes : sequence of str, shape (C,)
        The model's class names in output order (``id2label``).
    task_labels : sequence of str, shape (K,)
        The dataset's label names in canonical order.
    model_name : str
        Used in error messages.
    override : sequence of str, optional
        Label names for the model's outputs 0..C-1, replacing ``id2label``
        (``--label-map``).

    Returns
    -------
    ndarray of int, shape (K,)
        ``probs[:, cols]`` has column k equal to task label k.

    Raises
    ------
    LabelError
        C differs from K, a class name is generic (``LABEL_0``) with no
        override, a name is not a task label, or two outputs map to one label.
    """
    names = list(override) if override is not None else list(model_classes)
    source = "--label-map" if override is not None else "id2label"
    if len(names) != len(model_classes):
        raise LabelError(f"model '{model_name}': --label-map names {len(names)} classes but the model has "
                         f"{len(model_classes)} outputs")
    if len(names) != len(task_labels):
        raise LabelError(f"model '{model_name}': has {len(names)} classes {list(model_classes)} but the task has "
                         f"{len(task_labels)} labels {list(task_labels)}")
    normalized = [normalize_label(n) for n in names]
    # names like LABEL_0 say nothing, unless the user gave them (--label-map) or the task's labels are those names
    generic = [n for n in names if _GENERIC.match(normalize_label(n))]
    if generic and override is None and set(normalized) != set(task_labels):
        raise LabelError(f"model '{model_name}': class names {names} from {source} do not say which label each "
                         f"output is; pass --label-map {model_name}={','.join(task_labels)} (in the model's output "
                         f"order) after checking the model card")
    unknown = [n for n, m in zip(names, normalized) if m not in task_labels]
    if unknown:
        raise LabelError(f"model '{model_name}': class names {unknown} from {source} are not labels of this task "
                         f"{list(task_labels)}; pass --label-map {model_name}=NAME,NAME,... in output order")
    if len(set(normalized)) != len(normalized):
        raise LabelError(f"model '{model_name}': class names {names} from {source} are ambiguous (two outputs map "
                         f"to the same label)")
    return np.array([normalized.index(label) for label in task_labels], dtype=np.int64)


class TaskModel:
    """A model whose outputs are put in the task's class order.

    Calling it on pairs returns probabilities of shape (n, K), float64,
    validated by :func:`trusteq.validation.check_probability_matrix`.
    """

    def __init__(self, model: PairClassifier, task_labels: Sequence[str],
                 label_map: Mapping[str, Sequence[str]] | None = None):
        self.model = model
        self.name = model.name
        self.task_labels = tuple(task_labels)
        override = None
        if label_map:
            override = label_map.get(model.name, label_map.get("*"))
        self.override = list(override) if override is not None else None
        self.columns = align_labels(model.class_names, self.task_labels, model.name, self.override)
        self.pair_by_pair = False

    def set_pair_by_pair(self) -> None:
        """Evaluate one pair per model call from now on, so that each pair's output depends on that pair alone
        (for models whose outputs depend on their batch mates, such as dynamically quantized int8 models)."""
        self.pair_by_pair = True
        self.model.one_pair_per_call()

    @property
    def batching(self) -> str:
        """How pairs are grouped into model calls; part of every cache key."""
        if self.pair_by_pair:
            return "one pair per call"
        if getattr(self.model, "batch_policy", None):
            return self.model.batch_policy
        size = getattr(self.model, "batch_size", None)
        return f"length batches of up to {size}" if size else "the caller's batches"

    @property
    def fingerprint(self) -> str | None:
        if self.model.fingerprint is None:
            return None
        return hashlib.sha256(f"{self.model.fingerprint}:{self.columns.tolist()}".encode()).hexdigest()

    def __call__(self, pairs: Pairs, progress: bool = False) -> np.ndarray:
        if len(pairs) == 0:
            return np.zeros((0, len(self.task_labels)))
        return self._task_order(self.model.predict_calls(pairs, progress=progress), len(pairs))

    def batch_plan(self, pairs: Pairs) -> list[np.ndarray]:
        """The model calls ``self(pairs)`` makes: the indices of each call's pairs, in call order."""
        return self.model.batch_plan(pairs)

    def lookup(self, ids: Sequence[str]) -> np.ndarray | None:
        """Stored probabilities (n, K) in task order of examples ``ids`` (:meth:`PairClassifier.lookup`, validated
        as model output), or None for a model that is run."""
        probs = self.model.lookup(ids)
        return None if probs is None else self._task_order(probs, len(ids))

    def predict_batch(self, pairs: Pairs) -> np.ndarray:
        """Probabilities (n, K) in task order of ``pairs`` in one model call: for a batch of
        :meth:`batch_plan`, exactly the rows ``self(pairs)`` gives it."""
        return self._task_order(self.model.predict_batch(pairs), len(pairs))

    def _task_order(self, probs, n: int) -> np.ndarray:
        probs = check_probability_matrix(probs, what=f"model '{self.name}' output", n=n,
                                         n_classes=len(self.model.class_names), error=ModelError)
        return probs[:, self.columns]

    def recipe(self) -> "ModelRecipe":
        """What rebuilds this model (classifier, label alignment, batching) in another process.

        Raises
        ------
        TypeError
            The classifier cannot say how (a :class:`PairClassifier` subclass without :meth:`arguments`).
        """
        override = tuple(self.override) if self.override is not None else None
        return replace(self.model.recipe(), task=(self.task_labels, override, self.pair_by_pair))


@dataclass(frozen=True)
class ModelRecipe:
    """How to rebuild a model in another process, sent there instead of its weights.

    Pickling an :class:`HFClassifier` or :class:`ONNXClassifier` (or a
    :class:`TaskModel` holding one) sends its recipe: the classifier is loaded
    again from its source (folder, hub id or ONNX folder, which the other
    process must be able to read at the same path) on the same device, and
    must have the same fingerprint.

    Attributes
    ----------
    kind : str
        :attr:`PairClassifier.kind`: "transformers", "onnx" or "callable".
    arguments : tuple of (name, value)
        Constructor arguments (device and threads apart).
    fingerprint : str or None
    device : str
        Where the model ran ("cpu", "cuda:0").
    threads : int or None
        ONNX Runtime intra-op threads.
    task : (task_labels, override, pair_by_pair) or None
        A :class:`TaskModel`'s alignment and batching; None for a bare classifier.
    cls : type, optional
        The classifier class, for kinds defined outside this module (pickled by reference, so the other process
        imports its module); None: the class of :attr:`kind` here.
    """

    kind: str
    arguments: tuple
    fingerprint: str | None
    device: str = "cpu"
    threads: int | None = None
    task: tuple | None = None
    cls: type | None = None

    def build(self, device=None, threads: int | None = None):
        """The model, on ``device`` (default: :attr:`device`) with ``threads`` (default: :attr:`threads`).

        Returns
        -------
        TaskModel, or a PairClassifier when :attr:`task` is None.

        Raises
        ------
        ModelError
            The source cannot be loaded or its fingerprint changed (the model was replaced on disk).
        """
        cls = self.cls or {c.kind: c for c in (HFClassifier, ONNXClassifier, CallableClassifier)}[self.kind]
        placement = {} if cls is CallableClassifier else {"device": self.device if device is None else device,
                                                          "threads": self.threads if threads is None else threads}
        clf = cls(**dict(self.arguments), **placement)
        if clf.fingerprint != self.fingerprint:
            raise ModelError(f"model '{clf.name}': {getattr(clf, 'source', 'its source')} changed since it was "
                             f"loaded (fingerprint {str(clf.fingerprint)[:12]}, expected {str(self.fingerprint)[:12]})")
        if self.task is None:
            return clf
        labels, override, pair_by_pair = self.task
        model = TaskModel(clf, labels, {clf.name: list(override)} if override is not None else None)
        if pair_by_pair:
            model.set_pair_by_pair()
        return model


def _build(recipe: ModelRecipe):
    """Unpickle a model: ``recipe.build()``."""
    return recipe.build()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _class_names(config) -> tuple[str, ...]:
    id2label = getattr(config, "id2label", None) or {}
    n = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n))


def _tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _causal_lm(path: Path) -> bool:
    """Whether a local ``path`` holds a decoder-only LLM: a GGUF file, or a folder whose config names a
    ``*ForCausalLM`` architecture (transformers would load it as a classifier with a random head)."""
    if path.suffix == ".gguf" or (path.is_dir() and any(path.glob("*.gguf"))):
        return True
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForCausalLM") for a in config.get("architectures") or ())


def _default_name(source: str) -> str:
    return Path(source.rstrip("/")).name or source


def from_pretrained(loader, source, **kwargs):
    """``loader.from_pretrained(source, **kwargs)`` (a transformers Auto class), a source that cannot be loaded
    refused as a :class:`~trusteq.errors.ModelError` naming it (the workshop's commands: one line, exit 2)."""
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(load_message(str(source), False, exc, how="give a local folder")) from None


def is_onnx_folder(path) -> bool:
    """Whether ``path`` is the folder of an ONNX export: a ``*.onnx`` graph and no PyTorch weights."""
    p = Path(str(path))
    return p.is_dir() and any(p.glob("*.onnx")) and not any(p.glob("*.safetensors")) \
        and not any(p.glob("pytorch_model*.bin"))


def load_message(source: str, offline: bool, exc: Exception, what: str = "a transformers sequence classifier",
                 local: str = "a local folder", how: str = "pass --reference/--candidate DIR") -> str:
    """The one-line error for a model that does not load: why, if ``source`` exists; else that it is not
    ``local`` and the hub could not serve it (offline or not), and how to download it and give it (``how``)."""
    if Path(source).exists():
        return f"model '{source}': cannot load as {what} ({type(exc).__name__}: {exc})"
    mode = "offline mode is on, and it" if offline else "it"
    return (f"model '{source}': not {local}, and {mode} could not be loaded from the Hugging Face hub "
            f"({type(exc).__name__}). Download it where a network is available "
            f"(`huggingface-cli download {source} --local-dir DIR`) and {how}")
