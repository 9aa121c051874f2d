"""Pair-aware word segmentation, perturbation and the LIME/SHAP explainers."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import is_valid_linkage

from conftest import NLI
from trusteq.data import Example
from trusteq.explain import Lockstep, explain_examples, pair_linkage, render, segment
from trusteq.models import TaskModel, load_model


def test_segment_keeps_sentences_apart():
    feats = segment("A dog runs.", "The dog sleeps, doesn't it?")
    assert [(f.word, f.sentence, f.position) for f in feats] == [
        ("A", "a", 0), ("dog", "a", 1), ("runs", "a", 2),
        ("The", "b", 0), ("dog", "b", 1), ("sleeps", "b", 2), ("doesn't", "b", 3), ("it", "b", 4)]
    # "dog" appears in both sentences: two features


def test_render_removes_words_within_their_sentence():
    a, b = "A dog runs.", "The dog sleeps."
    feats = segment(a, b)
    keep = np.array([True, False, True, True, False, True])
    assert render(a, b, feats, keep) == ("A runs.", "The sleeps.")
    # removing every word never merges the sentences: the pair stays a pair
    assert render(a, b, feats, np.zeros(6, dtype=bool)) == (".", ".")
    assert render(a, b, feats, np.ones(6, dtype=bool)) == (a, b)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_segmentation_round_trips_arbitrary_text(a, b):
    feats = segment(a, b)
    keep = np.ones(len(feats), dtype=bool)
    ra, rb = render(a, b, feats, keep)
    assert ra == " ".join(a.split()) and rb == " ".join(b.split())
    for f in feats:
        assert (a if f.sentence == "a" else b)[f.start:f.end] == f.word
    rng = np.random.default_rng(0)
    drop = rng.random(len(feats)) < 0.5
    ra, rb = render(a, b, feats, ~drop)
    kept_a = [f.word for f, d in zip(feats, drop) if f.sentence == "a" and not d]
    assert [f.word for f in segment(ra, "x") if f.sentence == "a"] == kept_a


@pytest.mark.parametrize("n_a,n_b", [(1, 1), (2, 3), (5, 1), (7, 9), (1, 12)])
def test_pair_linkage_is_valid_and_joins_sentences_last(n_a, n_b):
    z = pair_linkage(n_a, n_b)
    assert is_valid_linkage(z)
    assert z.shape == (n_a + n_b - 1, 4)
    assert z[-1, 3] == n_a + n_b
    # the root's children are exactly the two sentences
    d = n_a + n_b

    def leaves(node):
        if node < d:
            return {node}
        row = z[int(node) - d]
        return leaves(int(row[0])) | leaves(int(row[1]))
    kids = [leaves(int(z[-1, 0])), leaves(int(z[-1, 1]))]
    assert sorted(map(sorted, kids)) == sorted([list(range(n_a)), list(range(n_a, d))])


def keyword_model(word, sentence):
    """A transparent model: P(entailment) is high iff ``word`` is in the given sentence."""
    def fn(pairs):
        out = []
        for a, b in pairs:
            text = a if sentence == "a" else b
            hit = word in text.split() or any(w.strip(".,") == word for w in text.split())
            out.append([0.9, 0.05, 0.05] if hit else [0.1, 0.45, 0.45])
        return np.array(out)
    return fn


EX = [Example("e1", "A dog is running in the park.", "A dog is outside.", "entailment"),
      Example("e2", "Two people are eating lunch.", "Nobody eats outside.", "contradiction")]


@pytest.mark.parametrize("explainer", ["lime", "shap", "shap-permutation"])
def test_explainers_find_the_decisive_word_in_its_sentence(explainer):
    # "dog" is in both sentences of e1, but only sentence b's copy matters
    models = {"kw": keyword_model("dog", "b")}
    out = explain_examples(models, EX[:1], [0], explainer=explainer, seed=0, n_samples=300)["kw"][0]
    top = int(np.argmax(np.abs(out.weights)))
    assert (out.features[top].word, out.features[top].sentence) == ("dog", "b")
    assert out.weights[top] > 0
    assert len(out.weights) == len(out.features) == len(segment(EX[0].text_a, EX[0].text_b))


def and_model(pairs):
    """Three-word interactions: permutation order matters for Shapley estimates."""
    out = []
    for a, b in pairs:
        words = set((a + " " + b).replace(".", "").split())
        score = 0.1 + 0.4 * ("people" in words) * ("outside" in words) * ("eating" in words) + \
            0.3 * ("dog" in words) * ("park" in words) * ("running" in words)
        out.append([score, (1 - score) / 2, (1 - score) / 2])
    return np.array(out)


@pytest.mark.parametrize("explainer", ["lime", "shap-permutation"])
def test_seeded_and_order_independent(explainer):
    models = {"kw": and_model}
    a = explain_examples(models, EX, [0, 2], explainer=explainer, seed=5, n_samples=120)["kw"]
    b = explain_examples(models, EX[::-1], [2, 0], explainer=explainer, seed=5, n_samples=120)["kw"][::-1]
    for x, y in zip(a, b):
        assert np.array_equal(x.weights, y.weights)
    c = explain_examples(models, EX, [0, 2], explainer=explainer, seed=6, n_samples=120)["kw"]
    assert not all(np.array_equal(x.weights, y.weights) for x, y in zip(a, c))


def test_lime_shares_perturbations_between_models():
    seen = {"m1": [], "m2": []}

    def recorder(name):
        def fn(pairs):
            seen[name].append(list(pairs))
            return np.full((len(pairs), 3), 1 / 3)
        return fn
    explain_examples({"m1": recorder("m1"), "m2": recorder("m2")}, EX[:1], [0], explainer="lime", seed=0, n_samples=200)
    assert seen["m1"] == seen["m2"]
    assert len(seen["m1"][0]) == len(set(seen["m1"][0]))  # de-duplicated
    assert all(isinstance(p, tuple) and len(p) == 2 for p in seen["m1"][0])


def test_real_model_and_record(nli_models):
    tm = TaskModel(load_model(str(nli_models["ref"])), NLI)
    out = explain_examples({"ref": tm}, EX, [0, 2], explainer="lime", seed=0, n_samples=100)["ref"]
    rec = out[0].to_record(NLI)
    assert rec["explained_class"] == "entailment" and rec["seed"] == 0
    assert {f["sentence"] for f in rec["features"]} == {"a", "b"}
    assert all(set(f) == {"word", "sentence", "position", "weight"} for f in rec["features"])
    assert np.isfinite(out[1].weights).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown explainer"):
        explain_examples({}, EX, [0, 0], explainer="gradcam")
    with pytest.raises(ValueError, match="targets"):
        explain_examples({}, EX, [0], explainer="lime")


def test_lockstep_joins_one_call_per_thread_per_round():
    calls = []

    def fn(pairs):
        calls.append(list(pairs))
        return np.array([[len(a)] for a, _ in pairs])
    lock = Lockstep(fn, 3)
    got = {}

    def work(i, n_calls):
        got[i] = [lock.call(i, [("x" * (10 * i + r), "")] * (i + 1))[:, 0].tolist() for r in range(n_calls)]
        lock.finish(i)
    threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate([2, 1, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # each thread gets its own rows back
    assert got == {0: [[0], [1]], 1: [[10, 10]], 2: [[20] * 3, [21] * 3, [22] * 3]}
    # round 1 joins all three threads in thread order; later rounds those still running
    assert [len(c) for c in calls] == [1 + 2 + 3, 1 + 3, 3]
    assert calls[0][:3] == [("", ""), ("x" * 10, ""), ("x" * 10, "")]


def test_lockstep_passes_model_errors_to_every_thread():
    def fn(pairs):
        raise RuntimeError("model broke")
    lock = Lockstep(fn, 2)
    errors = []

    def work(i):
        try:
            lock.call(i, [("a", "b")])
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            lock.finish(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["model broke", "model broke"]


def test_shap_block_batches_calls_and_matches_one_at_a_time(monkeypatch):
    calls = []

    def fn(pairs):
        calls.append(len(pairs))
        return and_model(pairs)
    examples = EX * 3
    together = explain_examples({"m": fn}, examples, [0, 2] * 3, explainer="shap", n_samples=200)["m"]
    n_together = len(calls)
    monkeypatch.setattr("trusteq.explain._shap.SHAP_BLOCK", 1)
    alone = explain_examples({"m": fn}, examples, [0, 2] * 3, explainer="shap", n_samples=200)["m"]
    for x, y in zip(together, alone):
        assert np.array_equal(x.weights, y.weights) and x.n_evals == y.n_evals
    assert n_together < (len(calls) - n_together) / 3  # six examples share each round's call
