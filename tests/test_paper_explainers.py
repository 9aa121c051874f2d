"""The paper's explanation protocol (trusteq.explain._paper): top words, pitfalls, determinism, sanity."""

import re

import numpy as np
import pytest

from conftest import NLI, PI
from trusteq.data import Example
from trusteq.explain._paper import (BUDGETS, SEPARATORS, explain_paper_lime, explain_paper_shap, merged_text,
                                    paper_jaccard, paper_masker, paper_model, paper_top_words, split_merged)

NLI_EX = Example("n1", "A man is sleeping on the grass.", "A dog runs outside in the park.", "entailment")
PI_EX = Example("p1", "How do I learn Python?", "What is the best way to learn Python", "paraphrase")


def keyword_model(labels, target, word, others=(), where="both"):
    """P(target) rises with the count of ``word`` times the counts of ``others`` (an interaction).

    ``where``: "both" reads the whole pair, "b" only the second sentence.
    """
    def fn(pairs):
        out = np.empty((len(pairs), len(labels)))
        for i, (a, b) in enumerate(pairs):
            words = re.findall(r"\w+", (b if where == "b" else f"{a} {b}").lower())
            score = words.count(word) * np.prod([words.count(o) for o in others])
            p = 1 / (1 + np.exp(-(2.0 * score - 1)))
            out[i] = (1 - p) / (len(labels) - 1)
            out[i, target] = p
        return out
    return fn


class Recorder:
    """A pair model that remembers every pair it was given."""

    def __init__(self, fn):
        self.fn, self.pairs = fn, []

    def __call__(self, pairs):
        self.pairs += list(pairs)
        return self.fn(pairs)


# 1. top words and Jaccard ---------------------------------------------------------------------------------

def test_jaccard_by_hand():
    a = [("cat", 0.5), ("dog", -0.4), ("sat", 0.1)]
    b = [("cat", -0.3), ("mat", 0.2), ("dog", 0.01)]
    # top 2 by |weight|: {cat, dog} and {cat, mat}: 1 shared of 3.
    assert paper_jaccard(a, b, "nli", "lime", k=2) == pytest.approx(1 / 3)
    assert paper_jaccard(a, b, "nli", "lime", k=3) == pytest.approx(2 / 4)
    assert paper_jaccard(a, a, "nli", "shap") == 1.0


def test_top_ten_by_absolute_weight():
    weights = [(f"w{i}", (-1) ** i * (i + 1)) for i in range(12)]
    top = paper_top_words(weights, "nli", "lime")
    assert top == [f"w{i}" for i in range(11, 1, -1)]  # the two smallest |weight| are left out
    assert len(paper_top_words(weights, "nli", "shap", k=3)) == 3


def test_word_strings_merged_stripped_and_special_tokens_dropped():
    shap_tokens = [("the ", 0.3), ("cat ", 0.2), ("the", -0.25), ("[SEP] ", 0.9), ("", 0.8), ("[EMPTY]", 0.7),
                   ("The ", 0.1)]
    # One "the" (at its best rank); case kept; [SEP], empty and [EMPTY] never count.
    assert paper_top_words(shap_tokens, "nli", "shap") == ["the", "cat", "The"]
    # LIME's word "SEP" (from " [SEP] ") is not a special token: the authors kept it.
    assert paper_top_words([("SEP", 0.9), ("dog", 0.1)], "nli", "lime") == ["SEP", "dog"]


def test_empty_union_scores_zero():
    assert paper_jaccard([], [], "nli", "lime") == 0.0
    assert paper_jaccard([("[EMPTY]", 1.0)], [("  ", 2.0), ("[SEP]", 1.0)], "pi", "shap") == 0.0
    assert paper_jaccard([("cat", 1.0)], [], "pi", "shap") == 0.0


def test_pi_rules_are_signed():
    lime = [("a", 0.5), ("b", -0.9), ("c", 0.1)]
    assert paper_top_words(lime, "pi", "lime") == ["a", "c"]  # only words for the explained class
    shap = [("x", -0.9), ("y", 0.00001), ("z", 0.00002), ("w", 0.3)]
    assert paper_top_words(shap, "pi", "shap") == ["w", "y", "z", "x"]  # by value to 4 d.p., ties in order


def test_unknown_task_or_method_and_lengths_raise():
    with pytest.raises(ValueError):
        paper_top_words([], "sts", "lime")
    with pytest.raises(ValueError):
        paper_jaccard([], [], "nli", "ig")
    with pytest.raises(ValueError):
        merged_text(NLI_EX, "sts")
    with pytest.raises(ValueError):
        explain_paper_lime(keyword_model(NLI, 0, "dog"), [NLI_EX], [0, 1], [0], 10, "nli")


def test_merge_and_split():
    assert SEPARATORS == {"nli": " [SEP] ", "pi": "  "}
    assert BUDGETS == {("nli", "lime"): 1000, ("nli", "shap"): 500, ("pi", "lime"): 100, ("pi", "shap"): 100}
    nli, pi = merged_text(NLI_EX, "nli"), merged_text(PI_EX, "pi")
    assert nli == "A man is sleeping on the grass. [SEP] A dog runs outside in the park."
    assert pi == "How do I learn Python?  What is the best way to learn Python"
    assert merged_text(PI_EX, "pi", lowercase=True) == pi.lower()
    assert split_merged(nli, "nli") == (NLI_EX.text_a, NLI_EX.text_b)
    assert split_merged("a man ...[SEP] a dog", "nli") == ("a man ...", "a dog")
    assert split_merged(pi, "pi") == (PI_EX.text_a, PI_EX.text_b)
    assert split_merged(" How do I learn? What is", "pi") == ("How do I learn? What is", "")


# 2. LIME's "SEP" ------------------------------------------------------------------------------------------

def test_lime_removes_the_word_sep_and_the_model_then_sees_one_segment():
    rec = Recorder(keyword_model(NLI, 0, "dog"))
    [weights] = explain_paper_lime(rec, [NLI_EX], [0], [1], 200, "nli")
    assert "SEP" in [w for w, _ in weights]
    one_segment = [(a, b) for a, b in rec.pairs if b == ""]
    assert one_segment and all("[]" in a and "[SEP]" not in a for a, _ in one_segment)
    assert (NLI_EX.text_a, NLI_EX.text_b) in rec.pairs  # texts that kept it were split at " [SEP] "
    rec.pairs.clear()
    text = "A man is sleeping on the grass. [] A dog runs outside in the park."
    paper_model(rec, "nli")([text])
    assert rec.pairs == [(text, "")]


def test_lime_credits_sep_when_the_model_reads_the_hypothesis_only():
    fn = keyword_model(NLI, 0, "dog", where="b")  # "dog" counts only in the second segment
    [weights] = explain_paper_lime(fn, [NLI_EX], [0], [1], None, "nli")
    assert set(paper_top_words(weights, "nli", "lime", k=2)) == {"dog", "SEP"}


# 3. shap's whitespace collapse (and the PI split pattern) --------------------------------------------------

def test_shap_text_masker_collapses_the_pi_double_space():
    text = merged_text(PI_EX, "pi")
    masker = paper_masker("pi")
    tokens = masker.data_transform(text)[0]
    [[full]] = masker(np.ones(len(tokens), dtype=bool), text)
    assert "  " in text and "  " not in full
    assert split_merged(full, "pi") == (full, "")
    # The PI regex is shap's *split* pattern: tokens are words with the spaces before them, and the
    # text's last word ("Python") is in no token, so no masked text has it.
    assert [t.strip() for t in tokens[:3]] == ["How", "do", "I"] and tokens[-1].strip() == ""
    assert full == "How do I learn Python? What is the best way to learn"


def test_under_pi_shap_every_pair_has_an_empty_second_sentence():
    rec = Recorder(keyword_model(PI, 1, "best"))
    explain_paper_shap(rec, [PI_EX], [1], [0], None, "pi")
    assert rec.pairs and all(b == "" for _, b in rec.pairs)


def test_nli_shap_masks_sep_as_one_whitespace_token():
    text = merged_text(NLI_EX, "nli")
    masker = paper_masker("nli")
    tokens = [t.strip() for t in masker.data_transform(text)[0]]
    assert "[SEP]" in tokens and "grass." in tokens
    [[masked]] = masker(np.array([t != "[SEP]" for t in tokens]), text)
    assert split_merged(masked, "nli") == (masked, "")


# 4. determinism ---------------------------------------------------------------------------------------------

def test_lime_same_seed_same_output_other_seed_differs():
    fn = keyword_model(NLI, 2, "dog", others=("man",))
    run = lambda seed: explain_paper_lime(fn, [NLI_EX, NLI_EX], [2, 2], [seed, seed + 1], 300, "nli")
    first = run(5)
    assert run(5) == first
    assert first[0] != first[1] and run(6)[0] == first[1]
    pi_fn = keyword_model(PI, 1, "best", others=("how",))
    assert explain_paper_lime(pi_fn, [PI_EX], [1], [3], None, "pi") == \
        explain_paper_lime(pi_fn, [PI_EX], [1], [3], None, "pi")


@pytest.mark.parametrize("task, ex, labels, words", [("nli", NLI_EX, NLI, ("dog", "man", "grass")),
                                                     ("pi", PI_EX, PI, ("best", "how", "way"))])
def test_shap_same_seed_same_output_and_numpy_state_restored(task, ex, labels, words):
    fn = keyword_model(labels, 1, words[0], others=words[1:])  # a 3-way interaction: the order matters
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = explain_paper_shap(fn, [ex], [1], [7], None, task)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.random.seed(999)  # the global state does not leak into the result
    assert explain_paper_shap(fn, [ex], [1], [7], None, task) == first
    if task == "pi":  # the seed reaches the Permutation explainer's hierarchy shuffle (numba's generator)
        assert explain_paper_shap(fn, [ex], [1], [8], None, task) != first


# 5. a keyword model's word comes first -----------------------------------------------------------------------

@pytest.mark.parametrize("task, ex, labels, word", [("nli", NLI_EX, NLI, "dog"), ("pi", PI_EX, PI, "best")])
def test_keyword_in_the_second_sentence_tops_both_explainers(task, ex, labels, word):
    fn = keyword_model(labels, 1, word)
    [lime] = explain_paper_lime(fn, [ex], [1], [0], None, task)
    [shap] = explain_paper_shap(fn, [ex], [1], [0], None, task)
    assert paper_top_words(lime, task, "lime")[0] == word.lower()
    assert paper_top_words(shap, task, "shap")[0] == word.lower()
    assert max(shap, key=lambda t: abs(t[1]))[0].strip() == word
