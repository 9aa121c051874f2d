"""Pair-aware word segmentation, perturbation and the LIME/SHAP explainers."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import is_valid_linkage

from conftest import NLI
from trusteq.data import Example
from trusteq.explain import REGISTRY, exact_cost, explain_examples, pair_linkage, render, segment
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
    out = explain_examples(models, EX[:1], [0], explainer=explainer, seed=0, budget=300)["kw"][0]
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


@pytest.mark.parametrize("explainer,budget", [("lime", 120), ("shap-permutation", 120), ("shap", 30)])
def test_seeded_and_order_independent(explainer, budget):
    models = {"kw": and_model}
    a = explain_examples(models, EX, [0, 2], explainer=explainer, seed=5, budget=budget)["kw"]
    b = explain_examples(models, EX[::-1], [2, 0], explainer=explainer, seed=5, budget=budget)["kw"][::-1]
    for x, y in zip(a, b):
        assert np.array_equal(x.weights, y.weights)
    c = explain_examples(models, EX, [0, 2], explainer=explainer, seed=6, budget=budget)["kw"]
    assert not all(np.array_equal(x.weights, y.weights) for x, y in zip(a, c))


def test_lime_shares_perturbations_between_models():
    seen = {"m1": [], "m2": []}

    def recorder(name):
        def fn(pairs):
            seen[name].append(list(pairs))
            return np.full((len(pairs), 3), 1 / 3)
        return fn
    explain_examples({"m1": recorder("m1"), "m2": recorder("m2")}, EX[:1], [0], explainer="lime", seed=0, budget=200)
    assert seen["m1"] == seen["m2"]
    assert len(seen["m1"][0]) == len(set(seen["m1"][0]))  # de-duplicated
    assert all(isinstance(p, tuple) and len(p) == 2 for p in seen["m1"][0])


def test_real_model_and_record(nli_models):
    tm = TaskModel(load_model(str(nli_models["ref"])), NLI)
    out = explain_examples({"ref": tm}, EX, [0, 2], explainer="lime", seed=0, budget=100)["ref"]
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


@pytest.mark.parametrize("n_a,n_b", [(1, 1), (3, 2), (7, 5), (14, 7), (20, 21), (30, 30)])
def test_exact_cost_is_what_shap_spends_on_a_full_expansion(n_a, n_b):
    import shap

    d = n_a + n_b
    rng = np.random.default_rng(d)
    w, inter = rng.normal(size=d), rng.normal(size=(d, d)) * 0.1
    calls = [0]

    def f(x):
        calls[0] += len(x)
        p = 1 / (1 + np.exp(-(x @ w + np.einsum("ni,ij,nj->n", x, inter, x))))
        return np.stack([p, 1 - p], axis=1)
    explainer = shap.PartitionExplainer(f, shap.maskers.Partition(np.zeros((1, d)), clustering=pair_linkage(n_a, n_b)))
    cost = exact_cost(n_a, n_b)
    at_cost = explainer(np.ones((1, d)), max_evals=cost, silent=True).values[0]
    assert calls[0] == cost
    beyond = explainer(np.ones((1, d)), max_evals=10 * cost, silent=True).values[0]
    assert calls[0] == 2 * cost  # nothing left to expand
    assert np.allclose(at_cost, beyond, atol=1e-12)
    assert exact_cost(20, 21) == 1500 and exact_cost(30, 30) == 2476


def test_shap_is_exact_within_the_budget_and_seed_free():
    exact = explain_examples({"m": and_model}, EX, [0, 2], explainer="shap", seed=0, budget=2000)["m"]
    again = explain_examples({"m": and_model}, EX, [0, 2], explainer="shap", seed=9, budget=500)["m"]
    for x, y in zip(exact, again):
        assert REGISTRY["shap"].exact(x.features, 500)
        assert np.array_equal(x.weights, y.weights) and x.n_evals == y.n_evals
        n_a = sum(f.sentence == "a" for f in x.features)
        assert x.n_evals == exact_cost(n_a, len(x.features) - n_a)
        # Owen values are efficient: they add up to f(pair) - f(empty pair)
        ex = next(e for e in EX if e.id == x.example_id)
        empty_pair = render(ex.text_a, ex.text_b, x.features, np.zeros(len(x.features), dtype=bool))
        full, empty = and_model([(ex.text_a, ex.text_b), empty_pair])
        assert x.weights.sum() == pytest.approx(full[x.explained_class] - empty[x.explained_class])


def test_shap_under_a_binding_budget_is_a_seeded_unbiased_estimate_of_the_exact_values():
    ex = [Example("long", "the quick brown fox jumps over the lazy dog by the river today",
                  "a fast brown fox leaps over a sleeping dog", "entailment")]
    rng = np.random.default_rng(0)
    feats = segment(ex[0].text_a, ex[0].text_b)
    w, inter = rng.normal(size=len(feats)), rng.normal(size=(len(feats), len(feats))) * 0.3

    def fn(pairs):
        out = []
        for a, b in pairs:
            x = np.array([float(f.word in (a if f.sentence == "a" else b).split()) for f in feats])
            p = 1 / (1 + np.exp(-(x @ w + 0.1 * x @ inter @ x)))
            out.append([p, (1 - p) / 2, (1 - p) / 2])
        return np.array(out)
    budget = 100
    assert not REGISTRY["shap"].exact(feats, budget)
    exact = explain_examples({"m": fn}, ex, [0], explainer="shap", budget=10_000)["m"][0].weights
    runs = np.array([explain_examples({"m": fn}, ex, [0], explainer="shap", seed=s, budget=budget)["m"][0].weights
                     for s in range(300)])
    z = (runs.mean(axis=0) - exact) / (runs.std(axis=0, ddof=1) / np.sqrt(len(runs)))
    assert np.all(np.abs(z) < 4.5)  # 21 features; unbiased for the Owen values
    assert len({r.tobytes() for r in runs}) == len(runs)  # every seed its own estimate


def test_shap_under_a_binding_budget_repeats_bit_for_bit_across_runs_and_threads():
    examples, targets = EX * 2, [0, 2, 2, 0]
    first = explain_examples({"m": and_model}, examples, targets, explainer="shap", seed=3, budget=30)["m"]
    assert not any(REGISTRY["shap"].exact(e.features, 30) for e in first)
    results = [None] * 2

    def work(i):
        results[i] = explain_examples({"m": and_model}, examples[::-1], targets[::-1], explainer="shap", seed=3,
                                      budget=30)["m"][::-1]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for other in results:
        assert all(np.array_equal(x.weights, y.weights) for x, y in zip(first, other))
