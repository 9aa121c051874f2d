"""Word-level LIME and SHAP explanations of sentence-pair classifiers.

Pair-aware perturbation
-----------------------
Both sentences are split into words by one model-independent segmentation
(:func:`segment`), so models with different tokenizers are explained over the
same features and their attributions are comparable. Each feature knows its
sentence (``"a"`` or ``"b"``) and its position there: a word present in both
sentences is two features. A perturbation removes a set of words from their
own sentence and hands the model the two perturbed sentences as a *pair*: the
separator is never a feature, is never removed, and the sentences are never
merged (a sentence may become empty).

Explainers
----------
* ``"lime"``: LIME (Ribeiro et al. 2016) through ``lime.lime_base.LimeBase``
  with the settings of ``lime.lime_text.LimeTextExplainer``: the number of
  removed words drawn uniformly from 1..d, cosine distance x 100 between
  binary masks, kernel ``sqrt(exp(-D^2 / 25^2))``, weighted ridge regression
  over all d features. Masks are drawn once per (example, seed) and shared by
  every model explained on that example; identical perturbed pairs are
  evaluated once.
* ``"shap"``: ``shap.PartitionExplainer`` (Owen values over a hierarchy), the
  paper's choice; the hierarchy joins adjacent words within a sentence, and
  the two sentences only at the root. Deterministic: seeds do not change it.
  shap evaluates a handful of masks per call (about 10), so the examples
  passed together are explained in parallel threads whose model calls are
  joined into one batch per round (``_Lockstep``); which masks share a
  batch depends only on the inputs, so results stay reproducible.
* ``"shap-permutation"``: ``shap.PermutationExplainer`` over plain random
  permutations (seeded; shap's hierarchy-respecting shuffle draws from numba's
  unseeded generator), at least 2d+1 evaluations (one forward and backward
  permutation).

An explanation is a pure function of (model, examples, settings), so
:func:`explain_examples` can be spread over processes or machines.
"""

from __future__ import annotations

import re
import threading
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .data import Example

__all__ = ["EXPLAINERS", "Feature", "Explanation", "segment", "render", "pair_linkage", "explain_examples"]

EXPLAINERS = ("lime", "shap", "shap-permutation")

#: A word: letters/digits/underscore, with inner apostrophes ("don't").
WORD = re.compile(r"\w+(?:['\u2019]\w+)*")

ModelFn = Callable[[list[tuple[str, str]]], np.ndarray]


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
    features : list of Feature, length d
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
            "features": [{"word": f.word, "sentence": f.sentence, "position": f.position, "weight": float(w)}
                         for f, w in zip(self.features, self.weights)],
        }


def segment(text_a: str, text_b: str) -> list[Feature]:
    """Word features of a pair: those of ``text_a`` then those of ``text_b``.

    Words are maximal runs matching :data:`WORD`; punctuation and spaces are
    not features and are never removed.
    """
    feats = []
    for sentence, text in (("a", text_a), ("b", text_b)):
        for pos, m in enumerate(WORD.finditer(text)):
            feats.append(Feature(m.group(), sentence, pos, m.start(), m.end()))
    return feats


def render(text_a: str, text_b: str, features: Sequence[Feature], keep: np.ndarray) -> tuple[str, str]:
    """The pair with the features where ``keep`` is False removed.

    Parameters
    ----------
    keep : ndarray of bool, shape (d,)

    Returns
    -------
    (text_a', text_b'): each sentence with its removed words cut out and runs
    of spaces collapsed; never merged.
    """
    out = []
    for sentence, text in (("a", text_a), ("b", text_b)):
        pieces, last = [], 0
        for f, k in zip(features, keep):
            if f.sentence != sentence or k:
                continue
            pieces.append(text[last:f.start])
            last = f.end
        pieces.append(text[last:])
        out.append(" ".join("".join(pieces).split()))
    return out[0], out[1]


def pair_linkage(n_a: int, n_b: int) -> np.ndarray:
    """Hierarchy over the d = n_a + n_b features as a SciPy linkage matrix.

    Within each sentence adjacent spans are joined pairwise, bottom-up (a
    balanced binary tree over word order); the two sentence trees are joined
    last. Heights increase with level, so the matrix is monotone.

    Returns
    -------
    ndarray, shape (d - 1, 4): ``[left, right, height, size]`` rows.

    Raises
    ------
    ValueError
        d < 2.
    """
    if n_a + n_b < 2:
        raise ValueError("a pair needs at least two word features to build a hierarchy")
    rows: list[list[float]] = []
    next_id = n_a + n_b

    def build(leaves: list[int]) -> tuple[int, int, int]:
        nonlocal next_id
        nodes = [(leaf, 1, 0) for leaf in leaves]  # (id, size, level)
        while len(nodes) > 1:
            merged = []
            for i in range(0, len(nodes) - 1, 2):
                (left, ls, ll), (right, rs, rl) = nodes[i], nodes[i + 1]
                level = max(ll, rl) + 1
                rows.append([left, right, level, ls + rs])
                merged.append((next_id, ls + rs, level))
                next_id += 1
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
        return nodes[0]

    roots = [build(list(range(0, n_a)))] if n_a else []
    if n_b:
        roots.append(build(list(range(n_a, n_a + n_b))))
    if len(roots) == 2:
        (left, ls, ll), (right, rs, rl) = roots
        rows.append([left, right, max(ll, rl) + 1, ls + rs])
    z = np.array(rows, dtype=np.float64)
    # Rows must be ordered by height for a valid linkage; ids were assigned in
    # creation order, so sort stably by height and relabel.
    order = np.argsort(z[:, 2], kind="stable")
    if not np.array_equal(order, np.arange(len(z))):
        d = n_a + n_b
        new_id = {d + old: d + new for new, old in enumerate(order)}
        z = z[order]
        for row in z:
            row[0] = new_id.get(int(row[0]), row[0])
            row[1] = new_id.get(int(row[1]), row[1])
    return z


def example_seed(seed: int, example_id: str) -> int:
    """Seed of one example's perturbations: independent of order and batching."""
    return (int(seed) * 1_000_003 + zlib.crc32(example_id.encode("utf-8"))) % (2**32)


def explain_examples(models: Mapping[str, ModelFn], examples: Sequence[Example], targets: Sequence[int],
                     explainer: str = "lime", seed: int = 0, n_samples: int = 1000) -> dict[str, list[Explanation]]:
    """Explain each example's ``targets[i]`` class for every model.

    Parameters
    ----------
    models : mapping name -> fn
        Each fn maps a list of pairs to probabilities (m, K) in task order.
    examples : sequence of Example, length n
    targets : sequence of int, length n
        Class index to explain for each example (same for all models).
    explainer : {"lime", "shap", "shap-permutation"}
    seed : int
    n_samples : int
        LIME: perturbed samples per example (the original included). SHAP:
        ``max_evals`` per example.

    Returns
    -------
    dict name -> list of n Explanation, in example order.

    Raises
    ------
    ValueError
        Unknown explainer, fewer targets than examples, ``n_samples < 2``.
    """
    if explainer not in EXPLAINERS:
        raise ValueError(f"unknown explainer {explainer!r}; expected one of {EXPLAINERS}")
    if len(targets) != len(examples):
        raise ValueError(f"{len(targets)} targets for {len(examples)} examples")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    out: dict[str, list[Explanation]] = {name: [] for name in models}
    features = [segment(ex.text_a, ex.text_b) for ex in examples]
    seeds = [example_seed(seed, ex.id) for ex in examples]
    if explainer == "lime":
        per_example = [_lime(models, ex, feats, int(t), s, n_samples)
                       for ex, feats, t, s in zip(examples, features, targets, seeds)]
    else:
        state = np.random.get_state()  # shap may reseed numpy's global generator
        try:
            per_model = {name: _shap_together(fn, examples, features, targets, seeds, n_samples, explainer)
                         for name, fn in models.items()}
        finally:
            np.random.set_state(state)
        per_example = [{name: per_model[name][i] for name in models} for i in range(len(examples))]
    for ex, feats, target, results in zip(examples, features, targets, per_example):
        for name, (weights, n_evals) in results.items():
            out[name].append(Explanation(ex.id, name, explainer, seed, int(target), feats, weights, n_evals))
    return out


class _Lockstep:
    """Joins the model calls of n threads into one call per round.

    A round starts when every thread still running has made a call (or
    finished); their pairs are evaluated together by one call of ``fn``, in
    thread order, and each thread gets its rows back. A batch's composition
    therefore depends only on what the threads ask for, never on timing.

    Parameters
    ----------
    fn : callable
        Maps a list of pairs to an array of m rows.
    n : int
        Threads; thread i calls ``call(i, pairs)`` and, at its end, ``finish(i)``.

    Raises
    ------
    Exception
        Whatever ``fn`` raised, in every thread of that round.
    """

    def __init__(self, fn: ModelFn, n: int):
        self._fn = fn
        self._running = n
        self._pending: dict[int, list] = {}
        self._results: dict[int, object] = {}
        self._cond = threading.Condition()

    def call(self, i: int, pairs: list) -> np.ndarray:
        with self._cond:
            self._pending[i] = pairs
            self._run_if_complete()
            while i not in self._results:
                self._cond.wait()
            out = self._results.pop(i)
        if isinstance(out, BaseException):
            raise out
        return out

    def finish(self, i: int) -> None:
        with self._cond:
            self._running -= 1
            self._run_if_complete()

    def _run_if_complete(self) -> None:
        if not self._pending or len(self._pending) < self._running:
            return
        order = sorted(self._pending)
        try:
            probs = np.asarray(self._fn([p for i in order for p in self._pending[i]]))
            bounds = np.cumsum([0] + [len(self._pending[i]) for i in order])
            for j, i in enumerate(order):
                self._results[i] = probs[bounds[j]:bounds[j + 1]]
        except Exception as exc:  # every waiting thread re-raises it
            for i in order:
                self._results[i] = exc
        self._pending.clear()
        self._cond.notify_all()


#: Examples explained together by SHAP Partition (threads per round of batched model calls).
SHAP_BLOCK = 16


def _shap_together(fn, examples, features, targets, seeds, n_evals, explainer):
    """``_shap`` for each example; Partition runs blocks of examples in lockstep threads."""
    items = list(zip(examples, features, targets, seeds))
    if explainer != "shap":  # the permutation explainer draws from numpy's global generator: one at a time
        return [_shap(fn, ex, feats, int(t), s, n_evals, explainer) for ex, feats, t, s in items]
    results: list = []
    for start in range(0, len(items), SHAP_BLOCK):
        block = items[start:start + SHAP_BLOCK]
        lockstep = _Lockstep(fn, len(block))
        done: list = [None] * len(block)

        def work(i, ex, feats, target, s):
            try:
                done[i] = _shap(lambda pairs: lockstep.call(i, pairs), ex, feats, int(target), s, n_evals, explainer)
            except BaseException as exc:
                done[i] = exc
            finally:
                lockstep.finish(i)

        threads = [threading.Thread(target=work, args=(i, *item), daemon=True) for i, item in enumerate(block)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in done:
            if isinstance(r, BaseException):
                raise r
        results.extend(done)
    return results


def _lime(models, ex, feats, target, seed, n_samples):
    from lime.lime_base import LimeBase
    from sklearn.metrics.pairwise import cosine_distances

    d = len(feats)
    if d == 0:
        return {name: (np.zeros(0), 0) for name in models}
    rng = np.random.default_rng(seed)
    masks = np.ones((n_samples, d), dtype=bool)
    sizes = rng.integers(1, d + 1, size=n_samples - 1)
    for i, size in enumerate(sizes, start=1):
        masks[i, rng.choice(d, size=size, replace=False)] = False
    unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pairs = [render(ex.text_a, ex.text_b, feats, m) for m in unique]
    data = masks.astype(np.float64)
    distances = cosine_distances(data, data[:1]).ravel() * 100
    base = LimeBase(lambda dist: np.sqrt(np.exp(-(dist ** 2) / 25 ** 2)), random_state=seed)
    results = {}
    for name, fn in models.items():
        probs = np.asarray(fn(pairs))[inverse]
        _, exp, _, _ = base.explain_instance_with_data(data, probs, distances, target, d, feature_selection="none")
        weights = np.zeros(d)
        for idx, w in exp:
            weights[idx] = w
        results[name] = (weights, len(unique))
    return results


def _shap(fn, ex, feats, target, seed, n_evals, explainer):
    import shap

    d = len(feats)
    if d == 0:
        return np.zeros(0), 0
    if d == 1:  # one word: its attribution is the full change in probability
        full, empty = fn([render(ex.text_a, ex.text_b, feats, np.array([k])) for k in (True, False)])
        return np.array([full[target] - empty[target]]), 2
    n_a = sum(f.sentence == "a" for f in feats)
    calls = [0]

    def f(x: np.ndarray) -> np.ndarray:
        calls[0] += len(x)
        return np.asarray(fn([render(ex.text_a, ex.text_b, feats, row > 0.5) for row in x]))

    if explainer == "shap":
        masker = shap.maskers.Partition(np.zeros((1, d)), clustering=pair_linkage(n_a, d - n_a))
        values = shap.PartitionExplainer(f, masker)(np.ones((1, d)), max_evals=n_evals, silent=True).values[0]
    else:
        # No hierarchy here: shap shuffles along a hierarchy with numba's
        # own random state, which its ``seed`` does not reach.
        masker = shap.maskers.Independent(np.zeros((1, d)), max_samples=1)
        budget = max(n_evals, 2 * d + 1)
        exp = shap.PermutationExplainer(f, masker, seed=seed)
        values = exp(np.ones((1, d)), max_evals=budget, silent=True).values[0]
    return np.asarray(values)[:, target].astype(np.float64), calls[0]
