"""Decoder-only LLMs as classifiers: a prompt template, label words, and the next-token log-probabilities.

A :class:`PromptSpec` says how an example becomes a prompt (``{text}``, or ``{text_a}`` and ``{text_b}`` for
pairs) and which *label word* stands for each class. :class:`CausalLMClassifier` scores each class by the
log-probability the model gives its label word right after the prompt (a word of several tokens by the sum of its
tokens' log-probabilities, each given the prompt and the word's earlier tokens) and renormalises over the classes:

    p(c | x) = exp(log P(w_c | prompt(x))) / sum_k exp(log P(w_k | prompt(x)))

(the "verbalizer" scoring of Schick & Schütze 2021, EACL, Eq. 1-2; lm-evaluation-harness scores multiple-choice
answers the same way). Where the tokenizer has a chat template, the rendered prompt is the user's message and the
label word follows the assistant's turn header; the word gets a leading space when the prompt does not end in
whitespace (lm-evaluation-harness' ``target_delimiter``). Only the example's own words vary in explanations: the
template and the label words are never features, since the explainers perturb ``text``/``text_a``/``text_b`` and the
classifier renders the template around them.

Models load through :func:`trusteq.workshop.llms.load_causal_lm`: Hugging Face ``AutoModelForCausalLM`` folders
and hub ids, GGUF files (dequantized to fp32 once, into the cache), and the workshop's compressed folders.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .devices import resolve_device
from .errors import ModelError, SettingsError
from .models import Pairs, _TokenizedClassifier, _default_name, _tokenizer_digest

__all__ = ["PromptSpec", "CausalLMClassifier", "parse_template", "parse_label_words"]

_FIELDS = re.compile(r"\{(text|text_a|text_b)\}")


def parse_template(text: str) -> str:
    """A ``--prompt-template`` value: ``@FILE`` reads FILE (UTF-8), else ``\\n`` in the text is a newline.

    Raises
    ------
    SettingsError
        ``@FILE`` cannot be read, or the template is empty.
    """
    text = str(text)
    if text.startswith("@"):
        try:
            text = Path(text[1:]).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"prompt template {text}: cannot read the file ({exc.strerror or exc})") from None
    else:
        text = text.replace("\\n", "\n")
    if not text.strip():
        raise SettingsError("the prompt template is empty")
    return text


def parse_label_words(text) -> dict[str, str]:
    """``NAME=WORD[,NAME=WORD...]`` (or a mapping) as ``{label name: word}``, in the given order.

    Raises
    ------
    SettingsError
        A pair without ``=``, an empty name or word, a name given twice, or one word given to two labels.
    """
    if isinstance(text, Mapping):
        pairs = [(str(k), str(v)) for k, v in text.items()]
    else:
        pairs = []
        for item in str(text).split(","):
            name, sep, word = item.partition("=")
            if not sep:
                raise SettingsError(f"label words: expected NAME=WORD, got {item.strip()!r}")
            pairs.append((name.strip(), word))
    out: dict[str, str] = {}
    for name, word in pairs:
        if not name or not word.strip():
            raise SettingsError(f"label words: an empty {'label name' if not name else 'word'} in {name}={word!r}")
        if name in out:
            raise SettingsError(f"label words: label '{name}' is given twice")
        if word.strip() in {w.strip() for w in out.values()}:
            other = next(k for k, w in out.items() if w.strip() == word.strip())
            raise SettingsError(f"label words: '{word.strip()}' is the word of both '{other}' and '{name}'")
        out[name] = word.strip()
    if len(out) < 2:
        raise SettingsError("label words: a classifier needs a word for each of two or more labels")
    return out


@dataclass(frozen=True)
class PromptSpec:
    """How an example becomes a prompt, and the word of each class.

    Attributes
    ----------
    template : str
        With ``{text}`` (single texts) or ``{text_a}`` and ``{text_b}`` (pairs); other braces are kept as written.
    label_words : mapping label name -> word
        The data's label names (matched by name, as any model's classes) and their words, two or more.
    """

    template: str
    label_words: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "label_words", parse_label_words(self.label_words))

    def render(self, text_a: str, text_b: str | None) -> str:
        """The prompt of one example (before any chat template).

        Raises
        ------
        SettingsError
            The template lacks the placeholders the example needs (``{text}``, or ``{text_a}`` and ``{text_b}``).
        """
        names = set(_FIELDS.findall(self.template))
        needed = {"text"} if text_b is None else {"text_a", "text_b"}
        if not needed <= names:
            kind = "single texts" if text_b is None else "sentence pairs"
            raise SettingsError(f"the prompt template needs {' and '.join('{' + n + '}' for n in sorted(needed))} "
                                f"for {kind}; it has {sorted('{' + n + '}' for n in names) or 'no placeholder'}")
        values = {"text": text_a, "text_a": text_a, "text_b": text_b or ""}
        return _FIELDS.sub(lambda m: values[m.group(1)], self.template)

    def record(self) -> dict:
        return {"template": self.template, "label_words": dict(self.label_words)}


class CausalLMClassifier(_TokenizedClassifier):
    """A decoder-only LLM classifying by the log-probabilities of its label words (see the module docstring).

    Parameters
    ----------
    source : str
        A Hugging Face causal-LM folder or hub id, a ``.gguf`` file, or a folder made by ``trusteq compress``.
    prompt : PromptSpec
    name : str, optional
        Name in reports (default: the folder or file name).
    max_length : int
        Tokens per prompt; a longer one is cut in its example's words (the longer text first), never in the
        template, and counted as truncated.
    batch_size : int
        Prompts per forward pass (length batches, right-padded; each prompt's scores do not depend on its batch).
    offline : bool
        Never touch the network.
    device : str
        As for every model (:func:`trusteq.devices.resolve_device`); int8 models run on the CPU.

    Attributes
    ----------
    class_names : tuple of str
        The label names of ``prompt.label_words``, in its order, shape (C,).
    chat_template : bool
        Whether the tokenizer's chat template wraps the prompt.
    word_ids : list of list of int
        Each class's label-word tokens as they follow the prompt.

    Raises
    ------
    ModelError
        The model cannot be loaded, or a label word does not tokenize as a continuation of the prompt.
    """

    kind = "causal-lm"

    def __init__(self, source: str, prompt: PromptSpec, name: str | None = None, max_length: int = 128,
                 batch_size: int = 16, offline: bool = False, device="auto", threads: int | None = None):
        import torch

        from .workshop.llms import load_causal_lm

        self.device, self.threads, self.offline = resolve_device(device), threads, offline
        self.source, self.prompt = str(source), prompt
        self.model, tokenizer, self.load_info = load_causal_lm(self.source, offline=offline)
        super().__init__(tokenizer, max_length, batch_size)
        tokenizer.padding_side = "right"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._torch = torch
        self.name = name or _default_name(self.source)
        self.class_names = tuple(prompt.label_words)
        self.chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.word_ids = self._label_word_ids()
        self.fingerprint = self._fingerprint()
        if self.load_info.get("method") != "int8":  # dynamic int8 kernels run on the CPU
            self.model.to(self.device)

    def bind(self, dataset) -> None:
        """Refuse, before any work, a template without the placeholders the data's examples need."""
        if len(dataset):
            self.prompt.render(*dataset.pairs[0])

    # -- prompts -------------------------------------------------------------

    def prompt_text(self, text_a: str, text_b: str | None) -> str:
        """The full prompt the model reads: the rendered template, inside the chat template where there is one."""
        rendered = self.prompt.render(text_a, text_b)
        if not self.chat_template:
            return rendered
        return self.tokenizer.apply_chat_template([{"role": "user", "content": rendered}], tokenize=False,
                                                  add_generation_prompt=True)

    def _ids(self, text: str) -> list[int]:
        # a chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. <bos>)
        return list(self.tokenizer(text, add_special_tokens=not self.chat_template)["input_ids"])

    def _label_word_ids(self) -> list[list[int]]:
        """Each word's tokens after a prompt (a leading space unless the prompt ends in whitespace), checked to
        leave the prompt's own tokens unchanged."""
        probe = self.prompt_text("x", "y" if "{text_a}" in self.prompt.template else None)
        head = self._ids(probe)
        out = []
        for label, word in self.prompt.label_words.items():
            continuation = word if probe[-1:].isspace() else " " + word
            ids = self._ids(probe + continuation)
            if ids[:len(head)] != head or len(ids) == len(head):
                raise ModelError(f"model '{self.name}': label word {word!r} of '{label}' does not tokenize as a "
                                 f"continuation of the prompt; choose another word or end the template differently")
            out.append(ids[len(head):])
        return out

    def _encode(self, pairs: Pairs):
        ids = [self._fit(a, b) for a, b in pairs]
        return {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}

    def _fit(self, text_a: str, text_b: str | None) -> list[int]:
        """The prompt's tokens, its example's words cut from the end of the longer text until it fits."""
        ids = self._ids(self.prompt_text(text_a, text_b))
        words = [text_a.split(), (text_b or "").split()]
        while len(ids) > self.max_length and any(len(w) > 1 for w in words):
            longer = int(len(words[1]) > len(words[0]))
            words[longer] = words[longer][:-1]
            ids = self._ids(self.prompt_text(" ".join(words[0]), None if text_b is None else " ".join(words[1])))
        return ids

    def count_truncated(self, pairs: Pairs) -> int:
        return int(sum(len(self._ids(self.prompt_text(a, b))) > self.max_length for a, b in pairs))

    # -- scoring -------------------------------------------------------------

    def _logits(self, batch) -> np.ndarray:
        """Per class, the log-probability of its label word after each prompt, shape (n, C) (softmax: the
        renormalised class probabilities)."""
        torch = self._torch
        ids = torch.as_tensor(np.asarray(batch["input_ids"]), device=self.device)
        mask = torch.as_tensor(np.asarray(batch["attention_mask"]), device=self.device)
        last = mask.sum(dim=1) - 1
        scores = np.zeros((len(ids), len(self.word_ids)))
        with torch.inference_mode():
            first = self._log_probs(ids, mask, last[:, None])[:, 0]  # (n, V)
            for c, word in enumerate(self.word_ids):
                scores[:, c] = first[:, word[0]].double().cpu().numpy()
                if len(word) > 1:
                    scores[:, c] += self._rest(ids, mask, last, word)
        return scores

    def _rest(self, ids, mask, last, word: list[int]) -> np.ndarray:
        """Sum over a multi-token word's later tokens of their log-probabilities given the prompt and the word's
        earlier tokens, shape (n,)."""
        torch = self._torch
        n, k = len(ids), len(word) - 1
        width = int(last.max()) + 1 + k
        ext = torch.full((n, width), int(self.tokenizer.pad_token_id), dtype=ids.dtype, device=ids.device)
        ext_mask = torch.zeros((n, width), dtype=mask.dtype, device=mask.device)
        steps = torch.arange(k, device=ids.device)
        for i in range(n):
            end = int(last[i]) + 1
            ext[i, :end], ext_mask[i, :end + k] = ids[i, :end], 1
            ext[i, end:end + k] = torch.as_tensor(word[:-1], dtype=ids.dtype, device=ids.device)
        logp = self._log_probs(ext, ext_mask, last[:, None] + 1 + steps[None, :])  # (n, k, V): after each token
        target = torch.as_tensor(word[1:], device=ids.device)
        return logp[:, steps, target].sum(dim=1).double().cpu().numpy()

    def _log_probs(self, ids, mask, positions):
        """Next-token log-probabilities at ``positions`` (n, k) of each row, shape (n, k, V): the model's logits
        computed at those positions only (``logits_to_keep``), the prompts' shared prefix read from its key/value
        cache (computed once per model) where every row starts with it."""
        torch = self._torch
        keep, where = torch.unique(positions, return_inverse=True)
        prefix = self._prefix()
        p = len(prefix)
        if p and ids.shape[1] > p and bool((ids[:, :p] == prefix.to(ids.device)).all()) and int(keep.min()) >= p:
            cache = copy.deepcopy(self._prefix_cache)
            cache.batch_repeat_interleave(len(ids))
            out = self.model(input_ids=ids[:, p:], attention_mask=mask, logits_to_keep=keep - p,
                             **{self._cache_arg: cache})
        else:
            out = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep)
        rows = torch.arange(len(ids), device=ids.device)[:, None]
        return torch.log_softmax(out.logits.float(), dim=-1)[rows, where]  # logits: (n, len(keep), V)

    def _prefix(self):
        """The token ids every prompt of this template starts with (empty if under 8 tokens, where the cache does
        not pay); their key/value cache is built on first use."""
        if not hasattr(self, "_prefix_ids"):
            import inspect

            torch = self._torch
            two = [self._ids(self.prompt_text(t, t if "{text_a}" in self.prompt.template else None))
                   for t in ("x", "y z")]
            n = next((i for i, (a, b) in enumerate(zip(*two)) if a != b), min(map(len, two)))
            self._prefix_ids = torch.as_tensor(two[0][:n - 1] if n >= 8 else [], dtype=torch.long)
            self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters \
                else "past_key_values"
            if len(self._prefix_ids):
                with torch.inference_mode():
                    out = self.model(input_ids=self._prefix_ids[None].to(self.device), use_cache=True)
                self._prefix_cache = getattr(out, "cache", None) or out.past_key_values
        return self._prefix_ids

    # -- provenance ----------------------------------------------------------

    def _fingerprint(self) -> str:
        h = hashlib.sha256(b"causal-lm\0")
        h.update(str(self.load_info.get("fingerprint") or _weights_digest(self.model)).encode())
        h.update(_tokenizer_digest(self.tokenizer).encode())
        h.update(json.dumps({**self.prompt.record(), "chat_template": self.chat_template,
                             "word_ids": self.word_ids, "max_length": self.max_length}, sort_keys=True).encode())
        return h.hexdigest()

    def arguments(self) -> dict:
        return {"source": self.source, "prompt": self.prompt, "name": self.name, "max_length": self.max_length,
                "batch_size": self.batch_size, "offline": self.offline}

    def info(self) -> dict:
        return {**super().info(), "source": self.source, **{k: v for k, v in self.load_info.items()
                                                            if k not in ("kind", "fingerprint")},
                "chat_template": self.chat_template,
                "label_word_tokens": {c: len(w) for c, w in zip(self.class_names, self.word_ids)}}


def _weights_digest(model) -> str:
    """SHA-256 of every tensor of ``model``'s state dict, quantized ones (dynamic int8) by their integers and
    scales."""
    import torch

    h = hashlib.sha256()

    def add(value):
        if isinstance(value, (tuple, list)):
            for v in value:
                add(v)
        elif isinstance(value, torch.Tensor):
            if value.is_quantized:
                add(value.int_repr())
                add(value.q_per_channel_scales() if value.qscheme() in (torch.per_channel_affine,
                                                                        torch.per_channel_symmetric)
                    else torch.tensor([value.q_scale()]))
            else:
                h.update(value.detach().contiguous().cpu().numpy().tobytes())
        elif value is not None:
            h.update(repr(value).encode())

    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        add(value)
    return h.hexdigest()
