"""Word features of a sentence pair (or a single text), the input with words removed, and an explanation record.

Like lime's ``IndexedString``, this module owns the text domain: every model
is explained over the same word features, whatever its tokenizer. An image's
features are regions (:mod:`._regions`); :func:`features` and :func:`perturb`
give any example's features and perturbed model input, whatever its kind.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._regions import erase, image_regions

__all__ = ["WORD", "Feature", "Explanation", "segment", "render", "features", "perturb", "example_seed"]

#: A word: letters/digits/underscore, with inner apostrophes ("don't").
WORD = re.compile(r"\w+(?:['\u2019]\w+)*")


@dataclass(frozen=True)
class Feature:
    """One word of a sentence pair.

    Attributes
    ----------
    word : str
    sentence : {"a", "b"}
    position : int
        0-based index of the word within its sentence.
    start, end : int
        Character span in that sentence.
    """

    word: str
    sentence: str
    position: int
    start: int
    end: int

    def record(self) -> dict:
        """The word's keys in ``explanations.jsonl``."""
        return {"word": self.word, "sentence": self.sentence, "position": self.position}


@dataclass
class Explanation:
    """Attributions of one model on one example.

    Attributes
    ----------
    example_id : str
    model : str
    explainer : str
    seed : int
    explained_class : int
        Index into the task's label names.
    features : list of Feature (words) or Region (image regions), length d
    weights : ndarray, shape (d,)
        Attribution of each feature to the explained class's probability
        (LIME: ridge coefficient; SHAP: Shapley/Owen value, in probability
        units).
    n_evals : int
        Model evaluations spent (after de-duplication for LIME).
    """

    example_id: str
    model: str
    explainer: str
    seed: int
    explained_class: int
    features: list[Feature]
    weights: np.ndarray
    n_evals: int

    def to_record(self, label_names: Sequence[str]) -> dict:
        """The ``explanations.jsonl`` form of this explanation."""
        return {
            "example_id": self.example_id,
            "model": self.model,
            "explainer": self.explainer,
            "seed": self.seed,
            "explained_class": label_names[self.explained_class],
            "n_evals": self.n_evals,
            "features": [{**f.record(), "weight": float(w)} for f, w in zip(self.features, self.weights)],
        }


def segment(text_a: str, text_b: str | None) -> list[Feature]:
    """Word features of a pair: those of ``text_a`` then those of ``text_b``.

    Words are maximal runs matching :data:`WORD`; punctuation and spaces are
    not features and are never removed. A single text (``text_b`` None) has
    only ``"a"`` features.
    """
    feats = []
    for sentence, text in _sentences(text_a, text_b):
        for pos, m in enumerate(WORD.finditer(text)):
            feats.append(Feature(m.group(), sentence, pos, m.start(), m.end()))
    return feats


def features(example) -> list:
    """An example's features: its words (:func:`segment`), or an image's regions
    (:func:`._regions.image_regions`)."""
    if example.image is not None:
        return image_regions(example.image)
    return segment(example.text_a, example.text_b)


def perturb(example, features: Sequence, keep: np.ndarray) -> list:
    """The model inputs of ``example`` with, in input i, the features where ``keep[i]`` (shape (m, d)) is False
    removed: pairs (:func:`render`), or images with those regions erased (:func:`._regions.erase`). Length m."""
    if example.image is not None:
        return list(erase(example.image, features, keep))
    return [render(example.text_a, example.text_b, features, row) for row in keep]


def _sentences(text_a: str, text_b: str | None) -> list[tuple[str, str]]:
    return [("a", text_a)] if text_b is None else [("a", text_a), ("b", text_b)]


def render(text_a: str, text_b: str | None, features: Sequence[Feature], keep: np.ndarray) -> tuple[str, str | None]:
    """The pair with the features where ``keep`` is False removed.

    Parameters
    ----------
    keep : ndarray of bool, shape (d,)

    Returns
    -------
    (text_a', text_b'): each sentence with its removed words cut out and runs
    of spaces collapsed; never merged. ``text_b'`` is None for a single text.
    """
    out = []
    for sentence, text in _sentences(text_a, text_b):
        pieces, last = [], 0
        for f, k in zip(features, keep):
            if f.sentence != sentence or k:
                continue
            pieces.append(text[last:f.start])
            last = f.end
        pieces.append(text[last:])
        out.append(" ".join("".join(pieces).split()))
    return out[0], (out[1] if text_b is not None else None)


def example_seed(seed: int, example_id: str) -> int:
    """Seed of one example's perturbations: independent of order and batching."""
    return (int(seed) * 1_000_003 + zlib.crc32(example_id.encode("utf-8"))) % (2**32)
