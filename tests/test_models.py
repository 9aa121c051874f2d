"""Model loading, label alignment by name, validation and the prediction cache."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NLI, make_bert
from trusteq import cache
from trusteq.data import Dataset, Example
from trusteq.errors import LabelError, ModelError
from trusteq.models import CallableClassifier, ONNXClassifier, TaskModel, align_labels, length_batches, load_model
from trusteq.predict import onnx_twin, predict

PAIRS = [("A man is sleeping on the grass.", "A man is outside."),
         ("Two dogs are running.", "The cat is sleeping."),
         ("A child is playing with a red ball in the street.", "A child plays.")]


def dataset(pairs=PAIRS, labels=NLI):
    exs = [Example(str(i), a, b, labels[i % len(labels)]) for i, (a, b) in enumerate(pairs)]
    return Dataset(exs, "nli", tuple(labels), "mem", "x" * 64, "columns", len(exs))


def test_alignment_is_by_name_not_position():
    cols = align_labels(("contradiction", "entailment", "neutral"), NLI, "m")
    assert cols.tolist() == [1, 2, 0]
    probs = np.array([[0.7, 0.2, 0.1]])  # model order: contradiction, entailment, neutral
    assert probs[:, cols].tolist() == [[0.2, 0.1, 0.7]]
    assert align_labels(("ENTAILMENT", "Neutral", "contradiction"), NLI, "m").tolist() == [0, 1, 2]


@pytest.mark.parametrize("classes,override,match", [
    (("LABEL_0", "LABEL_1", "LABEL_2"), None, "--label-map m=entailment,neutral,contradiction"),
    (("0", "1", "2"), None, "do not say which label"),
    (("entailment", "neutral"), None, "has 2 classes"),
    (("entailment", "entailment", "neutral"), None, "ambiguous"),
    (("entailment", "neutral", "maybe"), None, "not labels of this task"),
    (("LABEL_0", "LABEL_1", "LABEL_2"), ["entailment", "neutral"], "names 2 classes"),
])
def test_alignment_errors(classes, override, match):
    with pytest.raises(LabelError, match=match):
        align_labels(classes, NLI, "m", override)


def test_override_fixes_generic_labels():
    assert align_labels(("LABEL_0", "LABEL_1", "LABEL_2"), NLI, "m",
                        ["neutral", "contradiction", "entailment"]).tolist() == [2, 0, 1]


def test_hf_model_probabilities_and_shuffled_twin(nli_models):
    m = load_model(str(nli_models["ref"]))
    p = m.predict_proba(PAIRS)
    assert p.shape == (3, 3) and np.allclose(p.sum(axis=1), 1)
    # batching and length sorting do not change results
    m.batch_size = 1
    assert np.allclose(m.predict_proba(PAIRS), p, atol=1e-6)
    # a model whose outputs are reordered gives the same task-order probabilities
    import torch
    from transformers import AutoModelForSequenceClassification

    src = AutoModelForSequenceClassification.from_pretrained(nli_models["ref"])
    order = [2, 0, 1]  # new output j is old class order[j]
    with torch.no_grad():
        src.classifier.weight.copy_(src.classifier.weight[order])
        src.classifier.bias.copy_(src.classifier.bias[order])
    src.config.id2label = {j: NLI[o] for j, o in enumerate(order)}
    src.config.label2id = {v: k for k, v in src.config.id2label.items()}
    folder = nli_models["ref"].parent / "reordered"
    src.save_pretrained(folder)
    m.tokenizer.save_pretrained(folder)
    a = TaskModel(load_model(str(nli_models["ref"])), NLI)(PAIRS)
    b = TaskModel(load_model(str(folder)), NLI)(PAIRS)
    assert np.allclose(a, b, atol=1e-6)


def test_generic_labels_refused_without_map(nli_models):
    with pytest.raises(LabelError, match="--label-map generic="):
        TaskModel(load_model(str(nli_models["generic"])), NLI)
    tm = TaskModel(load_model(str(nli_models["generic"])), NLI, {"generic": list(NLI)})
    assert tm(PAIRS).shape == (3, 3)


def test_truncation_counted(tmp_path):
    folder = make_bert(tmp_path / "short", NLI, max_pos=64)
    m = load_model(str(folder), max_length=12)
    long = [("a man is sitting outside in the street with two dogs and a cat", "a man is outside")]
    assert m.count_truncated(long) == 1
    assert m.count_truncated([("a man", "a dog")]) == 0
    assert m.predict_proba(long).shape == (1, 3)


def test_callable_validation():
    good = CallableClassifier(lambda pairs: np.full((len(pairs), 3), 1 / 3), NLI, "uniform")
    assert TaskModel(good, NLI)(PAIRS).shape == (3, 3)
    for fn, match in [
        (lambda pairs: np.full((len(pairs), 3), np.nan), "NaN"),
        (lambda pairs: np.ones((len(pairs), 3)), "sum to 3"),
        (lambda pairs: np.ones((len(pairs), 2)) / 2, "shape"),
        (lambda pairs: np.array([[1.5, -0.5, 0.0]] * len(pairs)), "negative"),
    ]:
        with pytest.raises(ModelError, match=match):
            TaskModel(CallableClassifier(fn, NLI, "bad"), NLI)(PAIRS)


def test_missing_model_message():
    with pytest.raises(ModelError, match="no such folder"):
        load_model("./does/not/exist")
    with pytest.raises(ModelError, match="some-org/some-model.*local folder|--local-dir"):
        load_model("some-org/some-model", offline=True)


def test_onnx_model_matches_pytorch(nli_models, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = nli_models["ref"]
    model = AutoModelForSequenceClassification.from_pretrained(src).eval()
    tok = AutoTokenizer.from_pretrained(src)
    enc = tok(["a man"], ["a dog"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    out = tmp_path / "onnx"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model), tuple(enc[n] for n in names), str(out / "model.onnx"), input_names=names,
                          output_names=["logits"], dynamic_axes={n: {0: "batch", 1: "seq"} for n in names},
                          dynamo=False, opset_version=17)
    tok.save_pretrained(out)
    model.config.save_pretrained(out)
    onnx_model = load_model(str(out))
    assert isinstance(onnx_model, ONNXClassifier)
    assert np.abs(onnx_model.predict_proba(PAIRS) - load_model(str(src)).predict_proba(PAIRS)).max() < 1e-5


def test_onnx_twin_reproduces_pytorch_and_is_reused(nli_models):
    model = TaskModel(load_model(str(nli_models["shuffled"])), NLI)
    twin, record = onnx_twin(model, PAIRS)
    assert record["runtime"] == "onnxruntime" and record["checked_pairs"] == len(PAIRS)
    assert isinstance(twin.model, ONNXClassifier) and twin.name == model.name
    # Same task order (the shuffled model's columns are aligned by name in both).
    assert np.abs(twin(PAIRS) - model(PAIRS)).max() <= record["max_abs_diff"] <= 1e-5
    assert twin.fingerprint != model.fingerprint  # explanations are cached per runtime
    again, _ = onnx_twin(model, PAIRS)  # the export is kept in the cache folder
    assert again.model.source == twin.model.source


def test_onnx_twin_refused_when_probabilities_differ(nli_models, monkeypatch):
    import trusteq.predict as predict_module

    model = TaskModel(load_model(str(nli_models["ref"])), NLI)
    monkeypatch.setattr(predict_module, "TWIN_ATOL", 0.0)
    kept, record = onnx_twin(model, PAIRS)
    if record["max_abs_diff"] > 0:  # bit-identical outputs would be a legitimate twin
        assert kept is model and "differs" in record["reason"]
    callable_model = TaskModel(CallableClassifier(lambda p: np.full((len(p), 3), 1 / 3), NLI, "c"), NLI)
    assert onnx_twin(callable_model, PAIRS)[0] is callable_model


def test_prediction_cache_hit_and_corruption(nli_models):
    tm = TaskModel(load_model(str(nli_models["ref"])), NLI)
    ds = dataset()
    first = predict(tm, ds)
    assert not first.cached
    second = predict(tm, ds)
    assert second.cached and np.array_equal(first.probs, second.probs)
    entry = next((cache.cache_dir() / "predictions").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])  # truncate
    with pytest.warns(UserWarning, match="corrupt"):
        third = predict(tm, ds)
    assert not third.cached and np.array_equal(third.probs, first.probs)


def test_fingerprint_depends_on_weights(nli_models):
    a = load_model(str(nli_models["ref"]))
    b = load_model(str(nli_models["ref"]))
    c = load_model(str(nli_models["small"]))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def _batch_cost(batches, lengths, overhead):
    return sum(len(b) * max(lengths[i] for i in b) + overhead for b in batches)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=9), st.integers(1, 4), st.sampled_from([0, 5, 40]))
def test_length_batches_are_optimal_against_brute_force(lengths, max_batch, overhead):
    batches = length_batches(np.array(lengths), max_batch, overhead)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))          # every pair exactly once
    assert all(1 <= len(b) <= max_batch for b in batches)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first
    # independent check: every way of cutting the sorted pairs into runs of <= max_batch
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = min(_batch_cost([order[a:b] for a, b in zip((0,) + cuts, cuts + (len(order),))], lengths, overhead)
               for r in range(len(order))
               for cuts in itertools.combinations(range(1, len(order)), r)
               if all(b - a <= max_batch for a, b in zip((0,) + cuts, cuts + (len(order),))))
    assert _batch_cost(batches, lengths, overhead) == pytest.approx(best)


def test_length_batches_split_mixed_lengths():
    # two long and many short pairs: padding the short ones to the long length costs more than a second call
    lengths = np.array([40, 40] + [5] * 30)
    batches = length_batches(lengths, 64, overhead=40)
    assert [sorted(b.tolist()) for b in batches] == [[0, 1], list(range(2, 32))]
    assert len(length_batches(np.full(100, 12), 64, overhead=40)) == 2
