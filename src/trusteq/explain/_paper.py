"""The explanation protocol of Rai, Kothari, Shelke and Awekar (2025), as pure functions.

"Compressed Models are NOT Trust-equivalent to Their Large Counterparts",
arXiv 2508.13533. The settings below were read from the authors' scripts in
the GitHub repository ``anonymouscode816/small-models-trust-equivalence``
(paths under ``BERT-scripts/``); this is our own code, not theirs.

===========  ==========================================================  ==========================================
             NLI (``NLI/LIME``, ``NLI/SHAP``)                            PI (``PI/LIME``, ``PI/SHAP``)
===========  ==========================================================  ==========================================
merged text  ``premise + " [SEP] " + hypothesis``                        ``q1.strip() + "  " + q2.strip()``
split back   on the first ``" [SEP] "``, else ``"[SEP]"`` (parts           on the first ``"  "`` (parts stripped),
             stripped), else ``(text, "")``                              else ``(text.strip(), "")``
LIME         ``LimeTextExplainer`` defaults (``\\W+`` words, bow),       same, 100 samples, 20 features, explains
             1,000 samples, 20 features, explains all 3 classes          class 1 and splits words by sign
SHAP         ``shap.Explainer`` on ``maskers.Text(whitespace split)``:   ``maskers.Text(r"\\w+|[^\\w\\s]")``,
             Partition, shap's default ``max_evals=500``                 Permutation, ``max(100, 2d + 1)`` evals
top words    gold class, by ``|weight|``, stripped, no ``[SEP]``-like    gold class: LIME words with positive
             tokens, 10 unique strings                                   weight; SHAP tokens by signed value
                                                                         (rounded to 4 d.p.), 10 unique strings
Jaccard      ``|A & B| / |A | B|``, 0 when the union is empty            same
===========  ==========================================================  ==========================================

Their classifier function splits each merged text back into a pair and calls
the model's tokenizer on ``(a, b)``, so the pitfalls of that round trip are
reproduced here (:func:`paper_model`): LIME's ``\\W+`` splitter makes "SEP" a
removable word, and a text without it reaches the model as one segment; shap's
Text masker collapses whitespace, so under SHAP a PI text *never* contains the
double-space separator, and the PI regex, being shap's *split* pattern, drops
the text's last word or punctuation mark from every masked text.

Deliberate differences: every example gets its own seed (their explainer's
random state ran on across a data set); we explain the gold class directly
(for PI, class 0's weights are their class-1 weights negated, as the two
probabilities sum to 1, so the same words are selected); SHAP is seeded (their
PI hierarchy shuffle drew from numba's unseeded generator).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from ..data import Example
from ._shap import _seed_numba

__all__ = ["SEPARATORS", "BUDGETS", "LIME_FEATURES", "PI_SHAP_PATTERN", "DROPPED", "merged_text", "split_merged",
           "paper_model", "paper_masker", "explain_paper_lime", "explain_paper_shap", "paper_top_words",
           "paper_jaccard"]

#: The string between the two sentences of a merged text, per task.
SEPARATORS = {"nli": " [SEP] ", "pi": "  "}
#: The authors' budgets: LIME samples and SHAP ``max_evals`` (for PI, a floor raised to 2d + 1).
BUDGETS = {("nli", "lime"): 1000, ("nli", "shap"): 500, ("pi", "lime"): 100, ("pi", "shap"): 100}
#: LIME features kept per explanation (``num_features``).
LIME_FEATURES = 20
#: The PI SHAP masker's tokenizer argument, which shap reads as a *split* pattern.
PI_SHAP_PATTERN = r"\w+|[^\w\s]"
#: Token strings the authors' Jaccard scripts drop ("[EMPTY]" is their name for an empty SHAP token).
DROPPED = frozenset({"", "[EMPTY]", "[SEP]", "[CLS]", "[PAD]", "<s>", "</s>"})
_RULES = {("nli", "lime"): "abs", ("nli", "shap"): "abs", ("pi", "lime"): "positive", ("pi", "shap"): "signed"}


def _check_task(task: str) -> str:
    if task not in SEPARATORS:
        raise ValueError(f"task must be one of {sorted(SEPARATORS)}, not {task!r}")
    return task


def merged_text(example: Example, task: str, lowercase: bool = False) -> str:
    """The one string the authors explain: both sentences, stripped, joined by ``SEPARATORS[task]``.

    ``lowercase=True`` is their PI scripts' ``--lowercase`` (the earlier PI SHAP script always lowercased).

    Raises
    ------
    ValueError
        Unknown task.
    """
    text = example.text_a.strip() + SEPARATORS[_check_task(task)] + example.text_b.strip()
    return text.lower() if lowercase else text


def split_merged(text: str, task: str) -> tuple[str, str]:
    """The pair the authors' classifier function makes of a (perturbed) merged text.

    NLI (``split_pair_text``): split at the first ``" [SEP] "``, else at the first
    ``"[SEP]"``, parts stripped; neither present: ``(text, "")`` unstripped.
    PI (``split_question_pair``): split at the first ``"  "``; absent:
    ``(text, "")``; both parts stripped.
    """
    text = str(text)
    if _check_task(task) == "nli":
        for sep in (" [SEP] ", "[SEP]"):
            if sep in text:
                a, b = text.split(sep, 1)
                return a.strip(), b.strip()
        return text, ""
    a, b = text.split("  ", 1) if "  " in text else (text, "")
    return a.strip(), b.strip()


def paper_model(fn: Callable[[list[tuple[str, str]]], np.ndarray], task: str) -> Callable[[Sequence[str]], np.ndarray]:
    """Wrap a pair classifier as the authors' text classifier: merged texts in, probabilities out.

    Each text goes through :func:`split_merged`, and ``fn`` gets the pairs.
    A text that lost its separator becomes ``(text, "")``: the authors then
    called ``tokenizer(text, "")``, which encodes ``[CLS] text [SEP] [SEP]``,
    an empty second segment; a trusteq pair model given ``(text, "")`` calls
    its tokenizer the same way, so the model sees what theirs saw.

    Parameters
    ----------
    fn : callable
        ``fn(pairs: list[tuple[str, str]]) -> array (m, K)`` of probabilities.
    task : {"nli", "pi"}

    Returns
    -------
    callable
        ``model(texts: sequence of str, length m) -> ndarray (m, K)`` of float64.

    Raises
    ------
    ValueError
        Unknown task.
    """
    _check_task(task)

    def model(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(fn([split_merged(t, task) for t in texts]), dtype=np.float64)
    return model


def _whitespace_tokenizer(s: str, return_offsets_mapping: bool = True) -> dict:
    """Maximal runs of non-space characters, as a shap Text tokenizer (the authors' NLI ``custom_shap_tokenizer``)."""
    spans = [m.span() for m in re.finditer(r"\S+", s)]
    out = {"input_ids": [s[a:b] for a, b in spans]}
    if return_offsets_mapping:
        out["offset_mapping"] = spans
    return out


def paper_masker(task: str, tokenizer=None):
    """The authors' ``shap.maskers.Text`` for a task (mask token "...", runs of masks collapsed).

    ``tokenizer=None`` gives theirs: whitespace tokens for NLI (so "[SEP]" is one
    token, maskable), shap's ``SimpleTokenizer(PI_SHAP_PATTERN)`` for PI (tokens
    are each word with the spaces before it; the last word or mark is lost).
    They did not use the model's tokenizer; another ``tokenizer`` (a callable or
    a split pattern, as shap accepts) replaces theirs.
    """
    import shap

    if tokenizer is None:
        tokenizer = _whitespace_tokenizer if _check_task(task) == "nli" else PI_SHAP_PATTERN
    return shap.maskers.Text(tokenizer)


def _check_lengths(examples, targets, seeds) -> None:
    if not len(examples) == len(targets) == len(seeds):
        raise ValueError(f"examples, targets and seeds differ in length: {len(examples)}, {len(targets)}, "
                         f"{len(seeds)}")


def explain_paper_lime(fn, examples: Sequence[Example], targets: Sequence[int], seeds: Sequence[int],
                       n_samples: int | None, task: str, lowercase: bool = False) -> list[list[tuple[str, float]]]:
    """LIME on the merged texts, as the authors ran it (``NLI/LIME``, ``PI/LIME`` run scripts).

    ``lime.lime_text.LimeTextExplainer(random_state=seed)`` with its defaults,
    one explainer per example, ``explain_instance(text, paper_model(fn, task),
    labels=[target], num_features=20, num_samples=n_samples)``.

    Parameters
    ----------
    fn : callable
        Pair classifier, ``fn(pairs) -> (m, K)`` probabilities.
    examples : sequence of Example, length n
    targets : sequence of int, length n
        Class explained per example, in ``[0, K)`` (the authors: the gold class).
    seeds : sequence of int, length n
    n_samples : int or None
        Perturbed texts per example (the first is the text itself); None: 1,000 (NLI), 100 (PI).
    task : {"nli", "pi"}
    lowercase : bool
        See :func:`merged_text`.

    Returns
    -------
    list (n) of list of (word, weight)
        LIME's ``as_list``: at most 20 word strings, by decreasing ``|weight|``.

    Raises
    ------
    ValueError
        Unknown task, or lengths differ.
    """
    from lime.lime_text import LimeTextExplainer

    _check_lengths(examples, targets, seeds)
    model = paper_model(fn, task)
    n_samples = n_samples or BUDGETS[task, "lime"]
    out = []
    for ex, target, seed in zip(examples, targets, seeds):
        explainer = LimeTextExplainer(random_state=int(seed))
        exp = explainer.explain_instance(merged_text(ex, task, lowercase), model, labels=(int(target),),
                                         num_features=LIME_FEATURES, num_samples=int(n_samples))
        out.append([(str(w), float(v)) for w, v in exp.as_list(label=int(target))])
    return out


def explain_paper_shap(fn, examples: Sequence[Example], targets: Sequence[int], seeds: Sequence[int],
                       n_evals: int | None, task: str, tokenizer=None,
                       lowercase: bool = False) -> list[list[tuple[str, float]]]:
    """SHAP on the merged texts, as the authors ran it (``NLI/SHAP``, ``PI/SHAP`` run scripts).

    The masker is :func:`paper_masker`; NLI: ``shap.Explainer(...,
    algorithm="partition")``, ``max_evals=n_evals``; PI: ``algorithm="permutation"``,
    ``max_evals=max(n_evals, 2d + 1)`` over the d masker tokens (their rule,
    which they counted as ``len(re.findall(PI_SHAP_PATTERN, text))``, the same d).
    Seeded per example: numpy's global generator (Partition breaks queue ties
    with it) and, for PI, numba's (Permutation shuffles along the masker's
    hierarchy with it); numpy's global state is restored afterwards, numba's
    is left reseeded.

    Parameters
    ----------
    fn, examples, targets, seeds, task, lowercase
        As in :func:`explain_paper_lime`.
    n_evals : int or None
        Model evaluations; None: 500 (NLI), a floor of 100 (PI).
    tokenizer : callable, str or None
        See :func:`paper_masker`.

    Returns
    -------
    list (n) of list of (token, value)
        Every masker token in text order (shap's token strings, trailing or
        leading spaces included) with its SHAP value for the target class,
        in probability units.

    Raises
    ------
    ValueError
        Unknown task, or lengths differ.
    """
    import shap

    _check_lengths(examples, targets, seeds)
    model = paper_model(fn, task)
    budget = n_evals or BUDGETS[task, "shap"]
    out = []
    state = np.random.get_state()
    try:
        for ex, target, seed in zip(examples, targets, seeds):
            text, masker = merged_text(ex, task, lowercase), paper_masker(task, tokenizer)
            np.random.seed(int(seed))
            if task == "nli":
                explainer, max_evals = shap.Explainer(model, masker, algorithm="partition"), budget
            else:
                _seed_numba(int(seed))
                d = len(masker.data_transform(text)[0])
                explainer = shap.Explainer(model, masker, algorithm="permutation", seed=int(seed))
                max_evals = max(budget, 2 * d + 1)
            exp = explainer([text], max_evals=max_evals, silent=True)
            out.append([(str(tok), float(v)) for tok, v in zip(exp.data[0], np.asarray(exp.values[0])[:, int(target)])])
    finally:
        np.random.set_state(state)
    return out


def paper_top_words(weights: Sequence[tuple[str, float]], task: str, method: str, k: int = 10) -> list[str]:
    """The authors' top-k word strings of one explanation (their ``create_*_jaccard_table.py`` scripts).

    Strings are stripped (never lower-cased); empty strings and :data:`DROPPED`
    tokens are skipped; a repeated string counts once, at its best rank.
    Ranking, stable in the given order:

    * NLI, LIME and SHAP: by decreasing ``|weight|``;
    * PI, LIME: only words with weight > 0 (supporting the explained class), by decreasing ``|weight|``;
    * PI, SHAP: by decreasing weight rounded to 4 decimals (negative ones last).

    Parameters
    ----------
    weights : sequence of (str, float)
        From :func:`explain_paper_lime` or :func:`explain_paper_shap`.
    task : {"nli", "pi"}
    method : {"lime", "shap"}
    k : int

    Returns
    -------
    list of str, length <= k, best first.

    Raises
    ------
    ValueError
        Unknown task or method.
    """
    if (task, method) not in _RULES:
        raise ValueError(f"(task, method) must be one of {sorted(_RULES)}, not {(task, method)!r}")
    rule = _RULES[task, method]
    items = [(str(w).strip(), float(v)) for w, v in weights]
    if rule == "signed":
        items.sort(key=lambda item: round(item[1], 4), reverse=True)
    else:
        items.sort(key=lambda item: abs(item[1]), reverse=True)
    if rule == "positive":
        items = [item for item in items if item[1] > 0]
    words = list(dict.fromkeys(w for w, _ in items if w not in DROPPED))
    return words[:k]


def paper_jaccard(a: Sequence[tuple[str, float]], b: Sequence[tuple[str, float]], task: str, method: str,
                  k: int = 10) -> float:
    """Jaccard index of two explanations' :func:`paper_top_words` sets; 0.0 when both are empty.

    Returns
    -------
    float in [0, 1].

    Raises
    ------
    ValueError
        Unknown task or method.
    """
    sa, sb = set(paper_top_words(a, task, method, k)), set(paper_top_words(b, task, method, k))
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0
