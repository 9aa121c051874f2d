"""Controls with known answers for the verdict: a synthetic paraphrase data set and keyword models.

Two disjoint word sets, A and B (12 words each: 6 per class), each determine the
label: sentence a holds 3 words of A for the example's class, sentence b 3
words of B for the same class, both among filler words; 10% of gold labels are
flipped, so a model reading either set is right 90% of the time. The
reference reads A, and its probability (9:1 odds for 3 consistent words) is
calibrated on this data.

* ``identical``: the reference's function under another name: equivalent everywhere.
* ``temperature``: the reference's logits divided by T = 2: the same predictions,
  flatter probabilities (calibration not equivalent).
* ``other_reasons``: reads B instead of A: the same probabilities on every example,
  for other reasons (explanations not equivalent).
* ``accuracy_drop``: the reference with its prediction reversed on the pairs (about 1 in 7) whose
  text hashes to 0 mod 7: predictions not equivalent.
"""

from __future__ import annotations

import zlib

import numpy as np

from trusteq.data import Dataset, Example
from trusteq.explain import WORD
from trusteq.models import CallableClassifier

LABELS = ("not_paraphrase", "paraphrase")
A = {0: "amber basalt cobalt dahlia ember fennel".split(), 1: "garnet hazel indigo jasper kelp lilac".split()}
B = {0: "maple nectar onyx pewter quartz russet".split(), 1: "saffron teal umber violet willow yarrow".split()}
FILLER = ("the a man woman dog cat sat ran near over under with and park house river road tree car book said "
          "today again very small large old new blue green").split()
SLOPE = np.log(9) / 3  # three consistent words -> odds 9:1 -> probability 0.9


def dataset(n: int = 600, seed: int = 0, noise: float = 0.1, single: bool = False) -> Dataset:
    """The synthetic data set (n examples, ``pi`` labels); ``single``: each pair joined into one text
    (task ``text-classification``, the same labels)."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        cls = int(rng.integers(0, 2))
        a = list(rng.choice(A[cls], 3, replace=False)) + list(rng.choice(FILLER, 5, replace=False))
        b = list(rng.choice(B[cls], 3, replace=False)) + list(rng.choice(FILLER, 5, replace=False))
        rng.shuffle(a)
        rng.shuffle(b)
        gold = 1 - cls if rng.random() < noise else cls
        text_a, text_b = " ".join(a) + ".", " ".join(b) + "."
        examples.append(Example(str(i), f"{text_a} {text_b}", None, LABELS[gold]) if single
                        else Example(str(i), text_a, text_b, LABELS[gold]))
    task = "text-classification" if single else "pi"
    return Dataset(examples, task, LABELS, "synthetic:controls", f"controls-{n}-{seed}-{noise}-{single}", "synthetic",
                   n)


def _keyword_probs(pairs, words: dict, temperature: float = 1.0) -> np.ndarray:
    out = np.empty((len(pairs), 2))
    for i, (a, b) in enumerate(pairs):
        tokens = WORD.findall(f"{a} {b or ''}".lower())
        score = sum(t in words[1] for t in tokens) - sum(t in words[0] for t in tokens)
        p1 = 1 / (1 + np.exp(-SLOPE * score / temperature))
        out[i] = (1 - p1, p1)
    return out


def _dropped(pairs) -> np.ndarray:
    probs = _keyword_probs(pairs, A)
    for i, (a, b) in enumerate(pairs):
        if zlib.crc32(f"{a}|{b}".encode()) % 7 == 0:
            probs[i] = probs[i][::-1]
    return probs


def models() -> dict[str, CallableClassifier]:
    """The reference and the four controls, as models trusteq can compare."""
    fns = {"reference": lambda p: _keyword_probs(p, A), "identical": lambda p: _keyword_probs(p, A),
           "temperature": lambda p: _keyword_probs(p, A, temperature=2.0),
           "other_reasons": lambda p: _keyword_probs(p, B), "accuracy_drop": _dropped}
    return {name: CallableClassifier(fn, LABELS, name) for name, fn in fns.items()}


def decisions(result, candidate) -> tuple[str, dict]:
    """A candidate's overall verdict and its decision per dimension."""
    v = result["comparisons"][candidate]["verdict"]
    return v["overall"], {d: x["decision"] for d, x in v["dimensions"].items()}


def run(explainers=("lime", "shap"), n: int = 600, explain_limit: int = 600, single: bool = False, **kwargs):
    """``trusteq.compare`` of the reference with every control (on single texts with ``single``)."""
    import trusteq

    m = models()
    data = dataset(n, single=single)
    return trusteq.compare(m["reference"], [m[k] for k in ("identical", "temperature", "other_reasons",
                                                            "accuracy_drop")],
                           data, task=data.task, explainers=list(explainers), explain_limit=explain_limit,
                           lime_samples=kwargs.pop("lime_samples", 500), shap_evals=kwargs.pop("shap_evals", 500),
                           progress=False, **kwargs)


# -- the same controls as prompted LLMs --------------------------------------------------------------------------

LLM_TEMPLATE = "Do these two sentences mean the same thing? First: {text_a} Second: {text_b} Answer:"
LLM_LABEL_WORDS = {"not_paraphrase": "no", "paraphrase": "yes"}
LLM_CONTROLS = ("identical", "temperature", "other_reasons", "accuracy_drop")


def llm_models(root) -> dict[str, str]:
    """The reference and the four controls as decoder-only LLMs (folders under ``root``), read through
    :data:`LLM_TEMPLATE` and :data:`LLM_LABEL_WORDS`.

    Each is a one-layer ``LlamaForCausalLM`` whose weights are set by hand: a word-level tokenizer; embeddings
    ``[1, s, 0, 0]`` with ``s = +1`` for a keyword of class 1, ``-1`` of class 0, else 0; queries and keys zero,
    so the attention averages the (normalised) ``s`` over the prompt; the MLP zero; the label words' output rows
    ``+-g`` on that average. ``g`` makes three consistent keywords 9:1 odds, as for :func:`models`:

    * reference: reads A; ``identical``: the same weights (another folder);
    * ``temperature``: ``g / 2`` (the class log-odds halved: T = 2 exactly, as the full-vocabulary softmax
      cancels in the two label words' ratio);
    * ``other_reasons``: reads B (the same probabilities on every example of :func:`dataset`, other words);
    * ``accuracy_drop``: reads A with two words per class counted for the other class (a prediction flips
      wherever both are among an example's three: about 1 in 5).
    """
    from pathlib import Path

    from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    root = Path(root)
    template_words = [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(LLM_TEMPLATE)]
    words = sorted(set(sum(A.values(), []) + sum(B.values(), []) + list(FILLER) + list(LLM_LABEL_WORDS.values())
                       + template_words + ["."]))
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]"] + words)}
    backend = Tokenizer(tok_models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    n_tokens = len(tok(LLM_TEMPLATE.format(text_a=" ".join(["w"] * 8) + ".", text_b=" ".join(["w"] * 8) + "."))
                   ["input_ids"])
    m = 3 * np.sqrt(2) / n_tokens  # the attention's average of s' (= s * sqrt(2) after the RMS norm)
    gain = np.log(9) * np.sqrt(1 + m * m) / (4 * m)
    flipped = {0: A[0][:2], 1: A[1][:2]}
    specs = {"reference": (A, {}, gain), "identical": (A, {}, gain), "temperature": (A, {}, gain / 2),
             "other_reasons": (B, {}, gain), "accuracy_drop": (A, flipped, gain)}
    out = {}
    for name, (keywords, invert, g) in specs.items():
        sign = {w: (1.0 if c else -1.0) * (-1.0 if w in invert.get(c, ()) else 1.0)
                for c, ws in keywords.items() for w in ws}
        out[name] = str(_keyword_llm(root / name, tok, vocab, sign, g))
    return out


def _keyword_llm(folder, tok, vocab: dict, sign: dict, gain: float):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(vocab), hidden_size=4, intermediate_size=4, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=256,
                         tie_word_embeddings=False, pad_token_id=vocab["[PAD]"], eos_token_id=vocab["[EOS]"],
                         bos_token_id=None)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in (model.model.layers[0].input_layernorm, model.model.layers[0].post_attention_layernorm,
                     model.model.norm):
            norm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb[:, 0] = 1.0
        for word, s in sign.items():
            emb[vocab[word], 1] = s
        attn = model.model.layers[0].self_attn
        attn.v_proj.weight[0, 1] = 1.0  # the value: the token's (normalised) s
        attn.o_proj.weight[2, 0] = 1.0  # written to the residual's third dimension
        model.lm_head.weight[vocab[LLM_LABEL_WORDS["paraphrase"]], 2] = gain
        model.lm_head.weight[vocab[LLM_LABEL_WORDS["not_paraphrase"]], 2] = -gain
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def run_llm(root, explainers=("lime", "shap"), n: int = 400, explain_limit: int = 400, **kwargs):
    """``trusteq.compare`` of the reference LLM with every LLM control, on the pairs of :func:`dataset`."""
    import trusteq

    paths = llm_models(root)
    data = dataset(n)
    return trusteq.compare(paths["reference"], [paths[k] for k in LLM_CONTROLS], data, task=data.task,
                           prompt_template=LLM_TEMPLATE, label_words=LLM_LABEL_WORDS, explainers=list(explainers),
                           explain_limit=explain_limit, lime_samples=kwargs.pop("lime_samples", 500),
                           shap_evals=kwargs.pop("shap_evals", 500), progress=False, **kwargs)


# -- the same controls as image classifiers ------------------------------------------------------------------------
# 14 x 14 grey images on trusteq's 7 x 7 grid: each region is one 2 x 2 cell. Three marker cells in the top half (set
# A) and three in the bottom half (set B) carry the class: bright (200) for class 1, mid grey (110) for class 0, on a
# dark noisy background (0-40). A model votes +1 per bright cell and -1 per mid-grey cell of its half; an erased
# region takes the image's mean colour (below 75), which votes 0, as a removed keyword does.

IMAGE_SIZE, CELL = 14, 2
IMAGE_LABELS = ("no", "yes")


def image_dataset(n: int = 600, seed: int = 0, noise: float = 0.1) -> Dataset:
    """The synthetic images (n examples, task ``image-classification``)."""
    rng = np.random.default_rng(seed)
    half = IMAGE_SIZE // CELL // 2 * (IMAGE_SIZE // CELL)  # cells in the top half (rows 0-2 of 7: 21 cells)
    examples = []
    for i in range(n):
        cls = int(rng.integers(0, 2))
        image = rng.integers(0, 41, size=(IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.uint8)
        cells = [*rng.choice(half, 3, replace=False), *(rng.choice(half, 3, replace=False) + half + 7)]
        for cell in cells:
            r, c = divmod(int(cell), IMAGE_SIZE // CELL)
            image[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = 200 if cls else 110
        gold = 1 - cls if rng.random() < noise else cls
        examples.append(Example(str(i), f"synthetic#{i}", None, IMAGE_LABELS[gold], image=image))
    return Dataset(examples, "image-classification", IMAGE_LABELS, "synthetic:image-controls",
                   f"image-controls-{n}-{seed}-{noise}", "synthetic", n)


def _votes(images: np.ndarray, top: bool, temperature: float = 1.0) -> np.ndarray:
    """(n, 2) probabilities from the marker votes of the top (A) or bottom (B) half of (n, 14, 14, 1) images."""
    rows = slice(0, 6) if top else slice(8, 14)
    cells = images[:, rows, :, 0].astype(np.float64).reshape(len(images), 3, CELL, 7, CELL).mean(axis=(2, 4))
    score = (cells > 150).sum(axis=(1, 2)) - ((cells > 75) & (cells <= 150)).sum(axis=(1, 2))
    p1 = 1 / (1 + np.exp(-SLOPE * score / temperature))
    return np.stack([1 - p1, p1], axis=1)


def _image_dropped(images: np.ndarray) -> np.ndarray:
    probs = _votes(images, top=True)
    flip = np.array([zlib.crc32(im.tobytes()) % 7 == 0 for im in images])
    probs[flip] = probs[flip][:, ::-1]
    return probs


def image_models() -> dict[str, CallableClassifier]:
    """The reference (reads A) and the four controls as image classifiers on uint8 arrays (n, 14, 14, 1)."""
    fns = {"reference": lambda x: _votes(x, True), "identical": lambda x: _votes(x, True),
           "temperature": lambda x: _votes(x, True, temperature=2.0), "other_reasons": lambda x: _votes(x, False),
           "accuracy_drop": _image_dropped}
    return {name: CallableClassifier(fn, IMAGE_LABELS, name) for name, fn in fns.items()}


def run_images(explainers=("lime", "shap"), n: int = 600, explain_limit: int = 600, **kwargs):
    """``trusteq.compare`` of the image reference with every image control."""
    import trusteq

    m = image_models()
    data = image_dataset(n)
    return trusteq.compare(m["reference"], [m[k] for k in ("identical", "temperature", "other_reasons",
                                                            "accuracy_drop")],
                           data, task=data.task, explainers=list(explainers), explain_limit=explain_limit,
                           lime_samples=kwargs.pop("lime_samples", 500), shap_evals=kwargs.pop("shap_evals", 2000),
                           progress=False, **kwargs)
