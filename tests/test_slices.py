"""Slices (per-column verdicts with their multiplicity) and the worst examples, on controls with known answers."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

import controls
import trusteq
from trusteq.cli import main
from trusteq.errors import DataError
from trusteq.metrics.verdict import EQUIVALENT, INCONCLUSIVE, MARGINS, NOT_EQUIVALENT, decide_predictions
from trusteq.slices import MIN_SLICE, _length_buckets, holm
from trusteq.worst import COLUMNS, worst_examples


def _hashed(e) -> bool:
    """The pairs whose prediction the accuracy_drop control reverses (tests/controls.py)."""
    return zlib.crc32(f"{e.text_a}|{e.text_b}".encode()) % 7 == 0


@pytest.fixture(scope="module")
def sliced():
    """The controls on 1,400 pairs with a ``group`` column that isolates accuracy_drop's reversed pairs, sliced by
    it and by the gold label; LIME on a fixed sample of 300."""
    data = controls.dataset(1400)
    data = replace(data, examples=[replace(e, columns=(("group", "hashed" if _hashed(e) else "rest"),))
                                   for e in data.examples])
    m = controls.models()
    return data, trusteq.compare(m["reference"], [m["identical"], m["accuracy_drop"], m["other_reasons"]], data,
                                 task="pi", explainers=["lime"], explain_limit=300, explain_all=True,
                                 lime_samples=200, slices=("group", "label"), progress=False)


@pytest.mark.parametrize("seed", range(30))
def test_holm_claims_what_statsmodels_holm_rejects(seed):
    """The step-down over decisions at levels alpha / (m - r) rejects exactly the hypotheses statsmodels' Holm
    rejects, for p-values skewed towards 0 and ties."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 12))
    p = np.round(rng.beta(0.3, 2.0, size=m), 3)
    tests = {str(i): (lambda level, pi=pi: {"decision": NOT_EQUIVALENT if pi <= level else INCONCLUSIVE})
             for i, pi in enumerate(p)}
    claimed = {k for k, d in holm(tests, 0.05).items() if d["decision"] == NOT_EQUIVALENT}
    expected = {str(i) for i in np.flatnonzero(multipletests(p, alpha=0.05, method="holm")[0])}
    assert claimed == expected


def test_length_buckets_cut_at_quartiles():
    words = [3, 5, 5, 8, 9, 12, 12, 20]
    names = _length_buckets(words)
    assert names == ["3-5 words", "3-5 words", "3-5 words", "8 words", "9-12 words", "9-12 words", "9-12 words",
                     "20 words"]
    assert _length_buckets([7] * 5) == ["7 words"] * 5


def test_slices_find_where_the_candidate_breaks(sliced):
    """accuracy_drop reverses its prediction on the hashed pairs only: not equivalent there (after Holm), and its
    predictions are equivalent on the rest; the identical copy is never not equivalent."""
    data, result = sliced
    drop = result["comparisons"]["accuracy_drop"]["slices"]
    assert drop["group=hashed"]["verdict"]["dimensions"]["predictions"]["decision"] == NOT_EQUIVALENT
    assert drop["group=rest"]["verdict"]["dimensions"]["predictions"]["decision"] == EQUIVALENT
    same = result["comparisons"]["identical"]["slices"]
    assert all(v["verdict"]["overall"] != NOT_EQUIVALENT for v in same.values())
    assert same["group=rest"]["verdict"]["overall"] == EQUIVALENT


def test_a_slice_is_decided_on_its_own_examples(sliced):
    """Each slice's n and explained counts add up, and its predictions dimension at level alpha is the one
    decide_predictions gives on the slice's examples alone."""
    data, result = sliced
    y, p = data.y, result.probs
    hashed = np.array([_hashed(e) for e in data.examples])
    for column in ("group", "label"):
        chosen = {k: v for k, v in result["comparisons"]["identical"]["slices"].items() if v["column"] == column}
        assert sum(v["n"] for v in chosen.values()) == len(data)
        assert sum(v["explained"] for v in chosen.values()) == 300
    rest = result["comparisons"]["identical"]["slices"]["group=rest"]["verdict"]["dimensions"]["predictions"]
    direct = decide_predictions(y[~hashed], p["reference"][~hashed], p["identical"][~hashed], margins=MARGINS,
                                alpha=0.05)
    assert rest["parts"]["flip_rate"]["interval"] == pytest.approx(direct["parts"]["flip_rate"]["interval"])
    assert rest["decision"] == direct["decision"]


def test_other_reasons_break_in_every_label_slice_and_claims_are_holm_corrected(sliced):
    _, result = sliced
    slices = result["comparisons"]["other_reasons"]["slices"]
    for key in ("label=not_paraphrase", "label=paraphrase"):
        lime = slices[key]["verdict"]["dimensions"]["explanations.lime"]
        assert lime["decision"] == NOT_EQUIVALENT
        assert all(p["alpha"] == pytest.approx(0.025) for p in lime["parts"].values()
                   if p["decision"] == NOT_EQUIVALENT)  # two slices: the first Holm level is alpha / 2
        assert slices[key]["verdict"]["dimensions"]["predictions"]["decision"] == EQUIVALENT
    assert result["settings"]["slices"]["columns"] == ["group", "label"]


def test_small_slices_are_untested(sliced):
    """The hashed group has 37 explained pairs, fewer than a block: its explanations are untested, with why."""
    _, result = sliced
    hashed = result["comparisons"]["identical"]["slices"]["group=hashed"]
    assert hashed["explained"] < 50
    part = next(iter(hashed["verdict"]["dimensions"]["explanations.lime"]["parts"].values()))
    assert part["interval"] is None and "explained examples in this slice" in part["reason"]


def test_tiny_slice_outputs_are_untested():
    data = controls.dataset(200)
    first = {e.id for e in data.examples[:MIN_SLICE - 1]}
    data = replace(data, examples=[replace(e, columns=(("g", "few" if e.id in first else "many"),))
                                   for e in data.examples])
    m = controls.models()
    result = trusteq.compare(m["reference"], [m["identical"]], data, task="pi", explainers=[], slices=("g",),
                             progress=False)
    few = result["comparisons"]["identical"]["slices"]["g=few"]
    assert few["n"] == MIN_SLICE - 1
    assert all(d["decision"] == INCONCLUSIVE and "examples in this slice" in d["reason"]
               for d in few["verdict"]["dimensions"].values())


def test_worst_examples_lists(sliced):
    data, result = sliced
    rows = worst_examples(result)
    assert all(set(r) == set(COLUMNS) for r in rows)
    flips = [r for r in rows if r["candidate"] == "accuracy_drop" and r["kind"] == "flip"]
    hashed = {e.id for e in data.examples if _hashed(e)}
    assert {r["example_id"] for r in flips} == hashed  # reversing a prediction flips its correctness
    assert not [r for r in rows if r["candidate"] == "identical" and r["kind"] == "kl"]  # KL 0 everywhere
    gaps = [r["explanation_gap"] for r in rows if r["candidate"] == "other_reasons" and r["kind"] == "explanation"]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0.5


def test_mnli_genre_slices(shared_data, nli_models, tmp_path):
    """--slice genre on MNLI dev: one slice per genre of the sample, every example in one, written to the report."""
    out = tmp_path / "out"
    mnli = shared_data / "mnli" / "taxinli10k_MNLIDev.tsv"
    code = main(["compare", "--reference", str(nli_models["ref"]), "--candidate", str(nli_models["small"]),
                 "--data", str(mnli), "--task", "nli", "--limit", "200", "--explainers", "none", "--slice", "genre",
                 "--slice", "length", "--out", str(out), "--no-progress"])
    assert code == 0
    import json

    report = json.loads((out / "report.json").read_text())
    slices = report["comparisons"]["small"]["slices"]
    genres = {v["value"] for v in slices.values() if v["column"] == "genre"}
    assert genres and genres <= {"fiction", "government", "slate", "telephone", "travel", "facetoface", "letters",
                                 "nineeleven", "oup", "verbatim"}
    assert sum(v["n"] for v in slices.values() if v["column"] == "genre") == 200
    assert sum(v["n"] for v in slices.values() if v["column"] == "length") == 200


def test_a_slice_column_the_file_lacks(shared_data, nli_models, tmp_path, capsys):
    snli = shared_data / "snli" / "test.tsv"
    with pytest.raises(DataError, match="genre"):
        trusteq.compare(nli_models["ref"], [nli_models["small"]], snli, task="nli", limit=50, explainers=[],
                        slices=("genre",), progress=False)
    code = main(["compare", "--reference", str(nli_models["ref"]), "--candidate", str(nli_models["small"]),
                 "--data", str(snli), "--task", "nli", "--limit", "50", "--explainers", "none", "--slice", "genre",
                 "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "genre" in err and str(snli) in err


def _slice_data(rates, n_per: int, rng):
    """Two-class data in slices s0, s1, ...: in slice i a correctness flip each way with probability rates[i] / 2
    (accuracy difference 0, flip rate rates[i]); returns the Dataset and both models' probabilities."""
    from trusteq.data import Dataset, Example

    labels = ("negative", "positive")
    examples, ref, cand = [], [], []
    for i, rate in enumerate(rates):
        u = rng.random(n_per)
        y = rng.integers(0, 2, n_per)
        ref_ok = np.where(u < rate / 2, True, np.where(u < rate, False, rng.random(n_per) < 0.8))
        cand_ok = np.where(u < rate / 2, False, np.where(u < rate, True, ref_ok))
        for j in range(n_per):
            examples.append(Example(f"{i}-{j}", "text", None, labels[y[j]], (("s", f"s{i}"),)))
            ref.append(y[j] if ref_ok[j] else 1 - y[j])
            cand.append(y[j] if cand_ok[j] else 1 - y[j])
    probs = lambda pred: np.where(np.eye(2)[pred] == 1, 0.9, 0.1)  # noqa: E731
    data = Dataset(examples, "text-classification", labels, "synthetic", "x", "synthetic", len(examples))
    return data, {"reference": probs(np.array(ref)), "candidate": probs(np.array(cand))}


def _predictions_slices(data, probs):
    from trusteq.metrics.verdict import verdict
    from trusteq.settings import CompareSettings
    from trusteq.slices import decide_slices

    overall = {"candidate": verdict({"predictions": decide_predictions(data.y, probs["reference"], probs["candidate"],
                                                                       margins=MARGINS, alpha=0.05)})}
    out = decide_slices(data, ["s"], probs, overall, None, {"candidate": []}, MARGINS, CompareSettings())
    return {k: v["verdict"]["dimensions"]["predictions"]["decision"] for k, v in out["candidate"].items()}


@pytest.mark.slow
def test_slice_claims_keep_their_level_on_the_margin():
    """Known truth on the margin, 1,000 replications (bound alpha + 2 Monte Carlo se = 0.064):
    five slices each with its flip rate exactly on the margin (0.05; no accuracy difference): "not equivalent"
    claimed in any slice (Holm) at most alpha; one slice on the margin beside four without flips: "equivalent in
    every slice" at most alpha."""
    rng = np.random.default_rng(0)
    reps, bound = 1000, 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1000)
    any_claim = every_equivalent = 0
    for _ in range(reps):
        decisions = _predictions_slices(*_slice_data([0.05] * 5, 400, rng))
        any_claim += any(d == NOT_EQUIVALENT for d in decisions.values())
        decisions = _predictions_slices(*_slice_data([0.05, 0, 0, 0, 0], 400, rng))
        every_equivalent += all(d == EQUIVALENT for d in decisions.values())
    assert any_claim / reps <= bound
    assert every_equivalent / reps <= bound
