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
