"""The trust-preserving search (trusteq.search): the smallest equivalent candidate, and its level-alpha guarantee."""

import json
import zlib

import numpy as np
import pytest

import controls
from trusteq.errors import SettingsError
from trusteq.metrics.verdict import EQUIVALENT, MARGINS, decide_predictions
from trusteq.models import CallableClassifier
from trusteq.trust_search import Candidate, build_candidates, search, select_and_confirm, split_dataset


def test_split_is_seeded_disjoint_and_complete():
    data = controls.dataset(100)
    sel, conf = split_dataset(data, 0.3, seed=4)
    assert (len(sel), len(conf)) == (70, 30)
    assert set(sel.ids).isdisjoint(conf.ids) and sorted(sel.ids + conf.ids, key=int) == data.ids
    assert sel.ids == sorted(sel.ids, key=int)  # each split keeps the data's order
    again, _ = split_dataset(data, 0.3, seed=4)
    assert again.ids == sel.ids and sel.sha256 != conf.sha256 != data.sha256
    assert split_dataset(data, 0.3, seed=5)[0].ids != sel.ids
    with pytest.raises(SettingsError, match="share in"):
        split_dataset(data, 1.0)


def _confirmation_breaker(data, seed):
    """A model equal to the reference on the selection split and wrong on the confirmation split (it knows the
    split: the permutation is seeded), so selection picks it and confirmation must refuse it."""
    _, conf = split_dataset(data, 0.5, seed)
    hidden = {(e.text_a, e.text_b) for e in conf.examples}

    def fn(pairs):
        probs = controls._keyword_probs(pairs, controls.A)
        flip = np.array([tuple(p) in hidden and zlib.crc32(p[0].encode()) % 3 == 0 for p in pairs])
        probs[flip] = probs[flip][:, ::-1]
        return probs
    return fn


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Candidates by size: the smallest is wrong on ~1 pair in 7, the middle is the reference's function (the
    answer), the largest is too (never tried)."""
    m = controls.models()
    out = tmp_path_factory.mktemp("search")
    cands = [Candidate("big", m["identical"], size_bytes=300), Candidate("drop", m["accuracy_drop"], size_bytes=100),
             Candidate("mid", controls.models()["identical"], size_bytes=200, parameters=10, nonzero_parameters=9)]
    summary = search(m["reference"], cands, controls.dataset(1200), "pi", out, explainers=[], progress=False)
    return summary, out


def test_the_smallest_equivalent_candidate_is_chosen_and_confirmed(searched):
    summary, out = searched
    assert [c["name"] for c in summary["candidates"]] == ["drop", "mid", "big"]  # smallest first
    drop, mid, big = summary["candidates"]
    assert drop["tried"] and drop["verdict"]["overall"] == "not equivalent"
    assert mid["verdict"]["overall"] == EQUIVALENT and mid["effective_bytes"] == 180  # 9 of 10 weights non-zero
    assert not big["tried"] and "mid" in big["why_not"]
    assert summary["selected"] == summary["chosen"] == "mid"
    g = summary["guarantee"]
    assert g["confirmation_verdict"] == EQUIVALENT and g["selection_examples"] + g["confirmation_examples"] == 1200
    confirmation = json.loads((out / summary["chosen_report"]).read_text())
    assert confirmation["candidates"] == ["mid"] and confirmation["data"]["examples"] == 600
    assert json.loads((out / "search.json").read_text())["chosen"] == "mid"
    assert (out / "selection" / "drop" / "report.json").exists() and not (out / "selection" / "big").exists()
    assert (out / "search.md").read_text().startswith("# Smallest trust-equivalent candidate: mid")
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG" and "(search.png)" in (out / "search.md").read_text()
    html = (out / "search.html").read_text()
    assert "<h1>Smallest trust-equivalent candidate: mid</h1>" in html and "data:image/png;base64," in html
    assert "selection/drop/report.html" in html and "confirmation/report.html" in html


def test_a_candidate_that_fails_confirmation_is_not_chosen(tmp_path):
    m, data = controls.models(), controls.dataset(1200)
    breaker = CallableClassifier(_confirmation_breaker(data, 0), controls.LABELS, "breaker")
    summary = search(m["reference"], [Candidate("breaker", breaker, size_bytes=1),
                                      Candidate("same", m["identical"], size_bytes=2)],
                     data, "pi", tmp_path, explainers=[], progress=False)
    assert summary["selected"] == "breaker" and summary["chosen"] is None and summary["chosen_report"] is None
    assert summary["confirmation_report"] == "confirmation/report.json"
    assert summary["guarantee"]["confirmation_verdict"] == "not equivalent"
    assert not summary["candidates"][1]["tried"]  # the confirmation data are looked at once, for one candidate
    assert "breaker was equivalent on the selection split but not equivalent on the confirmation split" in \
        (tmp_path / "search.md").read_text()


def _on_margin(n, rng):
    """Predictions whose flip rate is exactly the margin (2.5% each way, accuracy unchanged): not equivalent."""
    counts = rng.multinomial(n, (0.85, 0.025, 0.025, 0.1))
    right, wrong = [1.0, 0.0], [0.0, 1.0]
    p_ref = np.repeat([right, right, wrong, wrong], counts, axis=0)
    p_cand = np.repeat([right, wrong, right, wrong], counts, axis=0)
    return np.zeros(n, dtype=int), p_ref, p_cand


@pytest.mark.slow
def test_choosing_among_candidates_on_their_margin_is_wrong_at_most_alpha():
    """Eight candidates, every one exactly on the flip-rate margin (so none is equivalent): the search's procedure
    (select_and_confirm) chooses one at most alpha of the time, while choosing the first that looks equivalent on
    the same data it was found on would be wrong far more often. Each failing candidate has a successor (as
    partial compression adds), also on the margin, so up to 16 are tried. 2,000 replications, n = 2,000 per
    split."""
    rng, reps, k, alpha = np.random.default_rng(27), 2000, 8, 0.05

    def verdict(data):
        return decide_predictions(*data, margins=MARGINS, alpha=alpha)["decision"]

    chosen = naive = 0
    for _ in range(reps):
        selection = {c: _on_margin(2000, rng) for c in range(2 * k)}
        confirmation = {c: _on_margin(2000, rng) for c in range(2 * k)}
        selected, confirmed = select_and_confirm(range(k), lambda c: verdict(selection[c]),
                                                 lambda c: verdict(confirmation[c]),
                                                 lambda c: c + k if c < k else None, key=lambda c: c % k + c / 100)
        chosen += confirmed == EQUIVALENT
        naive += selected is not None
    rate, se = chosen / reps, np.sqrt(alpha * (1 - alpha) / reps)
    assert rate <= alpha + 2 * se, rate
    assert naive / reps > 0.25, naive / reps  # without the confirmation split: about 1 - (1 - 0.045)^16 = 0.52


@pytest.mark.slow
def test_search_from_the_command_line_builds_orders_and_saves_the_chosen_model(nli_models, shared_data, tmp_path):
    from trusteq.cli import main

    out = tmp_path / "search"
    code = main([str(a) for a in ("search", "--reference", nli_models["ref"], "--methods", "prune:0.9,int8",
                                  "--data", shared_data / "snli/test.tsv", "--task", "nli", "--limit", 400,
                                  "--explainers", "none", "--bootstrap", 50, "--no-progress", "--out", out)])
    summary = json.loads((out / "search.json").read_text())
    built = [c for c in summary["candidates"] if "partial_of" not in c]  # partial compression may add others
    assert code == 0 and sorted(c["method"] for c in built) == ["int8", "prune:0.9"]
    sizes = [c["effective_bytes"] for c in summary["candidates"]]
    assert sizes == sorted(sizes) and summary["candidates"][0]["tried"]  # smallest first
    assert all((out / "candidates" / m / "trusteq-model.json").exists() for m in ("int8", "prune-0.9"))
    assert summary["guarantee"]["selection_examples"] == summary["guarantee"]["confirmation_examples"] == 200
    if summary["chosen"]:
        assert (out / "chosen" / "trusteq-model.json").exists()
        assert main(["gate", str(out / summary["chosen_report"])]) == 0
    else:
        assert not (out / "chosen").exists()


def test_the_successor_of_a_failing_candidate_is_queued_by_size():
    """select_and_confirm tries a failing candidate's successor in size order among the rest."""
    tried = []
    sizes = {"a": 1, "b": 5, "a+": 3, "a++": 7}

    def select(c):
        tried.append(c)
        return EQUIVALENT if c == "b" else "not equivalent"

    confirmed_on = []
    selected, confirmed = select_and_confirm(["a", "b"], select, lambda c: confirmed_on.append(c) or EQUIVALENT,
                                             lambda c: {"a": "a+", "a+": "a++"}.get(c), key=sizes.get)
    assert tried == ["a", "a+", "b"] and (selected, confirmed) == ("b", EQUIVALENT) and confirmed_on == ["b"]


def _one_harmful_layer(folder):
    """A 3-layer tiny BERT whose layers 0 and 2 barely act (their linear weights scaled by 1e-3; the residual
    passes the signal on) while layer 1 carries it: pruning layer 1 flips predictions, pruning the others does
    not."""
    import torch
    from conftest import make_bert
    from transformers import BertForSequenceClassification

    make_bert(folder, controls.LABELS, seed=5, layers=3)
    model = BertForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        for i in (0, 2):
            for m in model.bert.encoder.layer[i].modules():
                if isinstance(m, torch.nn.Linear):
                    m.weight.mul_(1e-3)
    model.save_pretrained(folder)
    return folder


def test_partial_compression_keeps_the_layer_that_causes_the_flips(tmp_path):
    """prune:0.9 of a model whose flips all come from layer 1: the ranking puts layer 1 first, the search keeps it
    unpruned and chooses that candidate (layers 0 and 2 pruned), recording the kept layer."""
    ref = _one_harmful_layer(tmp_path / "ref")
    cands = build_candidates(str(ref), ["prune:0.9"], tmp_path / "candidates", progress=False)
    summary = search(str(ref), cands, controls.dataset(1200), "pi", tmp_path / "out", explainers=[],
                     progress=False, n_boot=50)
    by_name = {c["name"]: c for c in summary["candidates"]}
    base = by_name["prune-0.9"]
    assert base["verdict"]["overall"] == "not equivalent"
    ranking = base["layer_ranking"]["layers"]
    assert ranking[0]["layer"] == 1 and ranking[0]["kl_reduction"] > 10 * max(r["kl_reduction"] for r in ranking[1:])
    assert summary["chosen"] == "prune-0.9-keep-1" and by_name["prune-0.9-keep-1"]["kept_layers"] == [1]
    assert by_name["prune-0.9-keep-1"]["partial_of"] == "prune:0.9"
    assert by_name["prune-0.9"]["effective_bytes"] < by_name["prune-0.9-keep-1"]["effective_bytes"]
    provenance = json.loads((tmp_path / "out" / "chosen" / "trusteq-model.json").read_text())
    assert provenance["kept_uncompressed"] == [1]
    assert not summary["reference"]["model"].startswith("/") and not base["model"].startswith("/")
    assert "layer 1: mean KL" in (tmp_path / "out" / "search.md").read_text()


def test_int8_keeps_the_matmuls_of_kept_layers_float(tmp_path, pi_models):
    import onnx

    from trusteq.workshop.compress import compress

    info = compress(pi_models["ref"], "int8", tmp_path / "q", keep_layers=[1])
    nodes = onnx.load(str(tmp_path / "q" / "model.onnx")).graph.node
    kept = [n for n in nodes if "/encoder/layer.1/" in n.name and n.op_type.startswith("MatMul")]
    quantized = [n for n in nodes if "/encoder/layer.0/" in n.name and n.op_type == "MatMulInteger"]
    assert kept and all(n.op_type == "MatMul" for n in kept) and quantized
    assert info["kept_uncompressed"] == [1] and info["float_nodes"] == len(kept)
    with pytest.raises(SettingsError, match="has layers 0 to 1"):
        compress(pi_models["ref"], "int8", tmp_path / "q2", keep_layers=[2])
    with pytest.raises(SettingsError, match="applies to int8 and prune"):
        compress(pi_models["ref"], "drop-layers:1", tmp_path / "q3", keep_layers=[0])


def test_partial_compression_applies_only_where_it_can_keep_a_layer(tmp_path, pi_models):
    """DistilBERT names its layers otherwise (transformer.layer): keeping one would silently keep nothing, so it is
    refused, and the search does not compress it again."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from trusteq.workshop.compress import compress, partial_applies

    distil = tmp_path / "distil"
    DistilBertForSequenceClassification(DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2,
                                                          hidden_dim=32)).save_pretrained(distil)
    assert partial_applies(pi_models["ref"], "int8") and partial_applies(pi_models["ref"], "prune:0.5")
    assert not partial_applies(distil, "int8") and not partial_applies(pi_models["ref"], "drop-layers:1")
    assert not partial_applies(tmp_path / "missing", "int8")
    with pytest.raises(SettingsError, match="applies to int8 and prune"):
        compress(distil, "prune:0.5", tmp_path / "p", keep_layers=[0])


def test_size_trust_display_draws_each_tried_candidate_per_dimension():
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from trusteq.display import DECISION_COLOURS, SizeTrustDisplay

    def verdict(pred, expl):
        return {"overall": expl if pred == EQUIVALENT else pred,
                "dimensions": {"predictions": {"decision": pred}, "explanations.lime": {"decision": expl}}}

    summary = {"chosen": "b", "reference": {"size_bytes": 4e6}, "candidates": [
        {"name": "a", "effective_bytes": 1e6, "tried": True, "verdict": verdict("not equivalent", "inconclusive")},
        {"name": "b", "effective_bytes": 2e6, "tried": True, "verdict": verdict(EQUIVALENT, EQUIVALENT)},
        {"name": "c", "effective_bytes": None, "tried": False}]}
    d = SizeTrustDisplay.from_search(summary, ax=Figure().subplots())
    assert d.dimensions_ == ["predictions", "explanations.lime", "overall"]
    labels = [t.get_text() for t in d.ax_.get_xticklabels()]
    assert labels == ["a\n1.0 MB", "b (chosen)\n2.0 MB", "c\nsize ?"] and "reference 4.0 MB" in d.ax_.get_title()
    points = [(tuple(c.get_offsets()[0]), c.get_edgecolors()[0]) for c in d.ax_.collections]
    assert len(points) == 9  # 2 tried x 3 rows, and 3 grey dots for the untried
    assert ((1.0, 0.0), to_rgba(DECISION_COLOURS[EQUIVALENT])) in [(p, tuple(c)) for p, c in points]
    # A selected candidate that the confirmation split does not confirm: the title says so, the label does not
    # call it chosen (its column alone would read as equivalent).
    summary.update(chosen=None, selected="b", guarantee={"confirmation_verdict": "inconclusive"})
    d = SizeTrustDisplay.from_search(summary, ax=Figure().subplots())
    assert "confirmation split: b inconclusive" in d.ax_.get_title()
    assert [t.get_text() for t in d.ax_.get_xticklabels()][1] == "b\n2.0 MB"
    with pytest.raises(ValueError, match="unknown decisions"):
        SizeTrustDisplay([{"name": "x", "megabytes": 1.0, "decisions": {"overall": "maybe"}}])
