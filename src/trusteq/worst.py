"""The worst examples of each candidate: where its outputs or its reasons depart most from the reference's.

Three lists per candidate (:func:`worst_examples`), in the manner of OpenVINO's who_what_benchmark worst examples:

* ``kl``: the examples of largest KL(reference || candidate) (nats, per example: the KL that report.json averages),
  those above 0 only;
* ``flip``: every correctness flip (reference right and candidate wrong, or the reverse), largest KL first;
* ``explanation``: per explainer, the explained examples whose attributions disagree most beyond the noise floor:
  ``gap = floor - agreement``, ``agreement`` the verdict's measure of the candidate against the reference (cosine
  under the pair protocol; an undefined one counts as 0, as in the verdict) and ``floor`` the mean of the
  reference's and the candidate's own floors on that example (the reference's alone where candidates have none;
  an undefined floor counts as 1).

Rows are plain dicts (:data:`COLUMNS`), written as ``worst_examples.csv`` by :mod:`trusteq.report`.
"""

from __future__ import annotations

import numpy as np

from .metrics.agreement import flip_indicators, kl_divergence

__all__ = ["COLUMNS", "WORST_N", "worst_examples"]

#: Examples per list (``kl``, and ``explanation`` per explainer); ``flip`` lists every flip.
WORST_N = 50

COLUMNS = ("candidate", "kind", "explainer", "rank", "example_id", "label", "text_a", "text_b",
           "reference_prediction", "reference_probability", "candidate_prediction", "candidate_probability",
           "kl", "flip", "explanation_agreement", "noise_floor", "explanation_gap")


def worst_examples(result, n: int = WORST_N) -> list[dict]:
    """Rows of the three lists for every candidate of ``result`` (a :class:`trusteq.results.CompareResult`).

    Each row has every key of :data:`COLUMNS`; those that do not apply are ``""`` (``explainer`` and the explanation
    columns outside the ``explanation`` list). ``rank`` starts at 1 in each list.
    """
    s, data = result.summary, result.dataset
    ref = s["reference"]
    rows = []
    for cand in s["candidates"]:
        kl = kl_divergence(result.probs[ref], result.probs[cand])
        c2w, w2c = flip_indicators(data.y, result.probs[ref], result.probs[cand])
        flip = np.where(c2w, "correct_to_wrong", np.where(w2c, "wrong_to_correct", ""))
        row = lambda kind, i, rank, **more: {**_row(result, cand, i, kl, flip), "kind": kind,  # noqa: E731
                                              "rank": rank, **more}
        order = np.argsort(-kl, kind="stable")
        rows += [row("kl", i, r + 1) for r, i in enumerate(order[:n]) if kl[i] > 0]
        rows += [row("flip", i, r + 1) for r, i in enumerate(i for i in order if flip[i])]
        for explainer, (index, agreement, floor) in _explanation_gaps(result, cand).items():
            gap = floor - agreement
            for r, j in enumerate(np.argsort(-gap, kind="stable")[:n]):
                rows.append(row("explanation", index[j], r + 1, explainer=explainer,
                                explanation_agreement=float(agreement[j]), noise_floor=float(floor[j]),
                                explanation_gap=float(gap[j])))
    return rows


def _row(result, cand: str, i: int, kl: np.ndarray, flip: np.ndarray) -> dict:
    """The columns of example ``i`` that every list shares."""
    labels, ex = result.dataset.label_names, result.dataset.examples[i]
    p_ref, p_cand = result.probs[result.summary["reference"]][i], result.probs[cand][i]
    return {**dict.fromkeys(COLUMNS, ""), "candidate": cand, "example_id": ex.id, "label": ex.label,
            "text_a": ex.text_a, "text_b": ex.text_b or "",
            "reference_prediction": labels[int(p_ref.argmax())], "reference_probability": float(p_ref.max()),
            "candidate_prediction": labels[int(p_cand.argmax())], "candidate_probability": float(p_cand.max()),
            "kl": float(kl[i]), "flip": str(flip[i])}


def _explanation_gaps(result, cand: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per explainer that explained ``cand``: the examples' positions in the data, the agreement with the
    reference (undefined: 0) and the floor (undefined: 1), each of shape (n_explained,)."""
    measure = result.summary["settings"].get("verdict_measure")  # None under the paper protocol: its one measure
    where = {ex_id: i for i, ex_id in enumerate(result.dataset.ids)}
    out = {}
    for explainer, er in result.explanations.items():
        n = er.explained(cand)
        if n == 0:
            continue
        key = measure if measure in er.alignment(cand).values else next(iter(er.alignment(cand).values))
        agreement = np.nan_to_num(er.alignment(cand).values[key], nan=0.0)
        floors = [er.noise_floor.values[key][:n]]
        if any(a.kind == "candidate_floor" and a.model == cand for a in er.alignments):
            floors.append(er.candidate_floor(cand).values[key])
        floor = np.mean([np.nan_to_num(f, nan=1.0) for f in floors], axis=0)
        out[explainer] = (np.array([where[i] for i in result.explained_ids[:n]]), agreement, floor)
    return out
