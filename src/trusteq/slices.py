"""Slices: where a candidate breaks. The verdict per value of a data column, a gold label or a length bucket.

``--slice COL`` splits the evaluated examples by a column of the data file (MNLI's ``genre``), by the gold label
(``label``) or by length (``length``: quartiles of the words per example, text_a and text_b together). Each slice
gets every dimension of the verdict, decided on the slice's examples alone: predictions and calibration always
(slices of fewer than :data:`MIN_SLICE` examples are untested), explanations on the slice's explained examples
(untested below :data:`MIN_SLICE_EXPLAINED`). report.json: ``comparisons.<candidate>.slices["COL=VALUE"]`` =
``{"column", "value", "n", "explained", "verdict": {"overall", "dimensions"}}``.

Multiplicity (:data:`MULTIPLICITY`, recorded under ``settings.slices``):

* "equivalent in every slice" is an intersection-union test (Berger 1982, Technometrics 24(4); Berger & Hsu 1996,
  Statist. Sci. 11(4), Sec. 3): each slice decided at level alpha, their conjunction is a level-alpha claim, with no
  correction. ``trusteq gate --policy`` with ``slices: true`` reads it so.
* "dimension D is not equivalent in slice v" is one claim among the slices of a column: within a candidate, a column
  and a dimension they are made by Holm's (1979, Scand. J. Statist. 6(2)) step-down procedure. With m slices and r
  claims already made, the slices still open are decided at level alpha / (m - r); a slice not equivalent at alpha
  but not at its Holm level is stated inconclusive. Its parts record the level they were decided at (``alpha``).

Anytime validity carries over: a slice's explained examples are the slice's members among the seeded permutation
the explanations followed, so its confidence sequences hold at the (data-dependent) point where explaining stopped.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .data import Dataset
from .errors import SettingsError
from .metrics.verdict import NOT_EQUIVALENT, decide_calibration, decide_predictions, dimension, undecided, verdict
from .protocols import EXPLAIN_BLOCK

__all__ = ["RESERVED", "MIN_SLICE", "MIN_SLICE_EXPLAINED", "MULTIPLICITY", "kept_columns", "slice_values",
           "decide_slices", "holm", "slice_record"]

#: Slice "columns" that are not data columns: the gold label, and word-count quartiles.
RESERVED = ("label", "length")

#: Fewest examples for a slice's predictions and calibration to be tested.
MIN_SLICE = 20

#: Fewest explained examples for a slice's explanations to be tested (one explanation block).
MIN_SLICE_EXPLAINED = EXPLAIN_BLOCK

MULTIPLICITY = ("'equivalent in every slice': intersection-union, each slice at alpha (Berger 1982); 'not "
                "equivalent' in a slice: Holm's step-down over the slices of a column, per candidate and dimension "
                "(Holm 1979)")


def kept_columns(slices: Sequence[str]) -> tuple[str, ...]:
    """The data columns ``slices`` need kept from the file (:func:`trusteq.data.load_dataset` ``keep``)."""
    return tuple(c for c in slices if c not in RESERVED)


def slice_record(columns: Sequence[str]) -> dict:
    """``{"slices": settings.slices}`` of report.json when slices were asked for, else empty."""
    if not columns:
        return {}
    return {"slices": {"columns": list(columns), "min_examples": MIN_SLICE, "min_explained": MIN_SLICE_EXPLAINED,
                       "multiplicity": MULTIPLICITY}}


def slice_values(dataset: Dataset, column: str) -> list[str]:
    """Each example's slice of ``column``, length n: the kept column's value (``"(missing)"`` for an empty one),
    the gold label (``label``) or a word-count bucket such as ``"13-17 words"`` (``length``).

    Raises
    ------
    SettingsError
        ``column`` was not kept on the examples (a Dataset built without ``keep=``); ``length`` of images.
    """
    if column == "label":
        return [e.label for e in dataset.examples]
    if column == "length" and dataset.kind == "image":
        raise SettingsError("slice 'length' counts words; images have none (slice by 'label' or a column)")
    if column == "length":
        return _length_buckets([len(e.text_a.split()) + len((e.text_b or "").split()) for e in dataset.examples])
    try:
        return [e.column(column) or "(missing)" for e in dataset.examples]
    except KeyError:
        raise SettingsError(f"slice column '{column}' is not on the examples; load the data with "
                            f"keep=('{column}',) or pass the file's path") from None


def _length_buckets(words: Sequence[int]) -> list[str]:
    """Word counts in buckets cut at their quartiles (ties merge buckets), named by their ranges."""
    words = np.asarray(words)
    cuts = np.unique(np.quantile(words, [0.25, 0.5, 0.75], method="lower"))
    bucket = np.searchsorted(cuts, words, side="left")  # bucket b holds cuts[b-1] < w <= cuts[b]
    names = {}
    for b in np.unique(bucket):
        members = words[bucket == b]
        names[b] = f"{members.min()}-{members.max()} words" if members.min() != members.max() else \
            f"{members.min()} words"
    return [names[b] for b in bucket]


def holm(tests: Mapping[str, Callable[[float], dict]], alpha: float) -> dict[str, dict]:
    """Each key's dimension, "not equivalent" only where Holm's step-down procedure claims it (Holm 1979).

    Parameters
    ----------
    tests : mapping key -> callable
        ``tests[k](level)`` decides slice ``k``'s dimension at level ``level`` (a dict with ``decision``).
    alpha : float
        The family's level.

    Returns
    -------
    dict key -> dimension
        Decided at ``alpha`` unless not equivalent there; those are decided again at ``alpha / (m - r)`` (m keys, r
        claims made so far) while any of them is not equivalent at it, and keep their last decision.
    """
    out = {k: test(alpha) for k, test in tests.items()}
    still = [k for k, d in out.items() if d["decision"] == NOT_EQUIVALENT]
    claimed = 0
    while still:
        level = alpha / (len(tests) - claimed)
        out.update({k: tests[k](level) for k in still})
        hits = [k for k in still if out[k]["decision"] == NOT_EQUIVALENT]
        if not hits:
            break
        claimed += len(hits)
        still = [k for k in still if k not in hits]
    return out


def _untested(template: dict, reason: str, n: int) -> dict:
    """``template``'s dimension with every part untested for ``reason`` (its margins and tests kept)."""
    return dimension({name: undecided(reason, margin=p["margin"], test=p["test"], n=n,
                                      **{k: p[k] for k in ("margin_name", "measure") if k in p})
                      for name, p in template["parts"].items()})


def decide_slices(dataset: Dataset, columns: Sequence[str], probs: Mapping[str, np.ndarray], verdicts: dict,
                  explain: Callable, explained: Mapping[str, Sequence[str]], margins, settings) -> dict[str, dict]:
    """Per candidate, its slices' verdicts (layout in the module docstring).

    Parameters
    ----------
    dataset : Dataset
        The evaluated examples, n of them.
    columns : sequence of str
        The slice columns (``settings.slices``).
    probs : mapping model name -> ndarray (n, K)
        Probabilities, reference first.
    verdicts : dict candidate -> verdict
        The overall verdicts (their dimensions are the templates of untested slice dimensions).
    explain : callable
        ``explain(candidate, dimension, index, level)``: the explanation dimension decided at level ``level`` on
        the candidate's explained examples at positions ``index`` (sorted) of ``explained[candidate]``.
    explained : mapping candidate -> sequence of str
        Ids of each candidate's explained examples, in explanation order (empty if not explained).

    Raises
    ------
    SettingsError
        A slice column not on the examples.
    """
    out: dict[str, dict] = {c: {} for c in verdicts}
    for column in columns:
        values = np.array(slice_values(dataset, column), dtype=object)
        for cand, overall in verdicts.items():
            decide = _SliceDecider(dataset, values, probs, cand, overall, explain, explained[cand], margins, settings)
            dims = {dim: holm({v: (lambda level, dim=dim, v=v: decide(dim, v, level)) for v in decide.keys},
                              settings.alpha)
                    for dim in overall["dimensions"]}
            for v in decide.keys:
                out[cand][f"{column}={v}"] = {
                    "column": column, "value": v, "n": int(decide.masks[v].sum()), "explained": len(decide.index(v)),
                    "verdict": verdict({dim: dims[dim][v] for dim in overall["dimensions"]})}
    return out


class _SliceDecider:
    """``self(dim, value, level)``: one candidate's dimension ``dim`` decided on slice ``value`` at ``level``."""

    def __init__(self, dataset, values, probs, cand, overall, explain, explained_ids, margins, settings):
        self.keys = list(dict.fromkeys(sorted(values)))
        self.masks = {v: values == v for v in self.keys}
        where = {ex_id: i for i, ex_id in enumerate(dataset.ids)}
        self.positions = np.array([where[i] for i in explained_ids], dtype=np.int64)
        self.y, self.ref, self.cand = dataset.y, next(iter(probs.values())), probs[cand]
        self.name, self.overall, self.explain, self.margins, self.s = cand, overall, explain, margins, settings

    def index(self, v) -> np.ndarray:
        """Positions, among the candidate's explained examples, of those in slice ``v``."""
        return np.flatnonzero(self.masks[v][self.positions])

    def __call__(self, dim: str, v: str, level: float) -> dict:
        mask = self.masks[v]
        if dim.startswith("explanations."):
            index = self.index(v)
            d = self.explain(self.name, dim, index, level)
            tested = any(p["interval"] is not None for p in d["parts"].values())
            if tested and len(index) < MIN_SLICE_EXPLAINED:
                return _untested(d, f"{len(index)} explained examples in this slice (< {MIN_SLICE_EXPLAINED})",
                                 len(index))
            return d
        n = int(mask.sum())
        if n < MIN_SLICE:
            return _untested(self.overall["dimensions"][dim], f"{n} examples in this slice (< {MIN_SLICE})", n)
        return _output_dimension(dim, self.y[mask], self.ref[mask], self.cand[mask], self.margins, level, self.s)


def _output_dimension(dim: str, y, p_ref, p_cand, margins, level: float, settings) -> dict:
    """The predictions or calibration dimension of a slice at ``level``."""
    if dim == "predictions":
        return decide_predictions(y, p_ref, p_cand, margins=margins, alpha=level)
    return decide_calibration(y, p_ref, p_cand, margins=margins, alpha=level, test=settings.calibration_test,
                              plan=False)
