"""Decoder-only LLMs as classifiers: prompts, label words, the scores against transformers, refusals, explanations
over the example's words only, and an identical copy (tiny random Llama models built here, no download)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import trusteq
from trusteq.cli import main
from trusteq.data import Dataset, Example
from trusteq.errors import ModelError, SettingsError
from trusteq.llm import CausalLMClassifier, PromptSpec, parse_label_words, parse_template
from trusteq.metrics.verdict import EQUIVALENT
from trusteq.models import load_model

WORDS = ("the a film movie plot actors story music was is very quite really truly not boring dull great good bad "
         "fun moving awful brilliant tedious lovely review sentiment answer positive negative terrible and").split()
SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "<user>", "</user>", "<assistant>", "Review:", "Sentiment:"]
CHAT = ("{% for m in messages %}<user> {{ m['content'] }} </user>{% endfor %}"
        "{% if add_generation_prompt %} <assistant> {% endif %}")
TEMPLATE = "Review: {text}\nSentiment:"
LABEL_WORDS = {"negative": "bad", "positive": "very good"}  # "very good": a word of two tokens


def tiny_llm(folder, seed: int = 0, chat: bool = True):
    """A random 2-layer Llama with a whitespace word-level tokenizer over WORDS (and a chat template)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[EOS]")
    if chat:
        fast.chat_template = CHAT
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llms(tmp_path_factory):
    root = tmp_path_factory.mktemp("llms")
    ref = tiny_llm(root / "ref")
    copy = root / "copy"
    shutil.copytree(ref, copy)
    return {"ref": ref, "copy": copy, "other": tiny_llm(root / "other", seed=1),
            "plain": tiny_llm(root / "plain", chat=False)}


def reviews(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    good, bad = ["great", "good", "fun", "moving", "brilliant", "lovely"], ["boring", "dull", "awful", "tedious", "bad"]
    examples = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        words = [str(w) for w in rng.choice(["the", "a"], 1)] + [str(rng.choice(["film", "movie", "plot", "story"]))]
        words += ["was", str(rng.choice(["very", "quite", "really", "truly"]))] + \
            [str(w) for w in rng.choice(good if label else bad, int(rng.integers(1, 4)))]
        examples.append(Example(str(i), " ".join(words), None, ("negative", "positive")[label]))
    return Dataset(examples, "text-classification", ("negative", "positive"), "synthetic:reviews", f"reviews-{n}",
                   "synthetic", n)


def direct_probabilities(folder, texts, label_words=LABEL_WORDS, template=TEMPLATE, chat=True) -> np.ndarray:
    """Class probabilities computed with transformers alone, one unpadded example at a time: the summed
    log-probabilities of each label word's tokens after the prompt, renormalised over the classes."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    out = []
    for text in texts:
        prompt = template.replace("{text}", text)
        if chat:
            prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        head = tok(prompt, add_special_tokens=not chat)["input_ids"]
        scores = []
        for word in label_words.values():
            ids = tok(prompt + ("" if prompt[-1].isspace() else " ") + word, add_special_tokens=not chat)["input_ids"]
            with torch.inference_mode():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
            scores.append(sum(float(logp[j - 1, ids[j]]) for j in range(len(head), len(ids))))
        scores = np.array(scores)
        out.append(np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum())
    return np.array(out)


def test_template_and_label_words_are_parsed():
    assert parse_template("Review: {text}\\nSentiment:") == "Review: {text}\nSentiment:"
    assert parse_label_words("negative=bad, positive=very good") == {"negative": "bad", "positive": "very good"}
    for bad, message in (("negative=bad,positive=", "empty word"), ("negative=bad,positive=bad", "both"),
                         ("negative", "NAME=WORD"), ("negative=bad", "two or more"),
                         ("negative=bad,negative=good", "twice"), ("=bad,positive=good", "empty label")):
        with pytest.raises(SettingsError, match=message):
            parse_label_words(bad)
    with pytest.raises(SettingsError, match="empty"):
        parse_template("  ")


def test_template_from_a_file(tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("Review: {text}\nIs it good?\n")
    assert parse_template(f"@{path}") == "Review: {text}\nIs it good?\n"
    with pytest.raises(SettingsError, match="cannot read"):
        parse_template(f"@{tmp_path / 'missing.txt'}")


def test_render_needs_the_placeholders_of_the_data():
    spec = PromptSpec(TEMPLATE, LABEL_WORDS)
    assert spec.render("a good film", None) == "Review: a good film\nSentiment:"
    with pytest.raises(SettingsError, match=r"\{text_a\} and \{text_b\}"):
        spec.render("a", "b")
    pair = PromptSpec("Premise: {text_a} Hypothesis: {text_b} Answer:", {"entailment": "yes", "neutral": "maybe"})
    assert pair.render("x", "y") == "Premise: x Hypothesis: y Answer:"


def test_prompt_goes_through_the_chat_template(llms):
    clf = CausalLMClassifier(str(llms["ref"]), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu")
    assert clf.chat_template
    assert clf.prompt_text("a good film", None) == "<user> Review: a good film\nSentiment: </user> <assistant> "
    assert [len(w) for w in clf.word_ids] == [1, 2]
    plain = CausalLMClassifier(str(llms["plain"]), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu")
    assert not plain.chat_template and plain.prompt_text("a good film", None) == "Review: a good film\nSentiment:"


@pytest.mark.parametrize("model", ["ref", "plain"])
def test_label_word_probabilities_equal_a_direct_transformers_computation(llms, model):
    """Batched, right-padded scoring of single- and two-token label words equals the unpadded computation."""
    data = reviews(24)
    clf = CausalLMClassifier(str(llms[model]), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu", batch_size=8)
    got = clf.predict_proba(data.pairs)
    want = direct_probabilities(llms[model], [e.text_a for e in data.examples], chat=model == "ref")
    np.testing.assert_allclose(got, want, atol=1e-5)
    one = CausalLMClassifier(str(llms[model]), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu", batch_size=1)
    np.testing.assert_allclose(one.predict_proba(data.pairs), got, atol=1e-6)


def _code(argv) -> int:
    """``main(argv)``'s exit code, argparse's own refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_a_causal_lm_without_a_prompt_is_refused(llms, tmp_path, capsys):
    with pytest.raises(ModelError, match="--prompt-template and --label-words"):
        load_model(str(llms["ref"]))
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\tindex\n" + "".join(f"{e.text_a}\t{int(e.label == 'positive')}\t{i}\n"
                                                         for i, e in enumerate(reviews(10).examples)))
    base = ["compare", "--reference", str(llms["ref"]), "--candidate", str(llms["copy"]), "--data", str(data),
            "--task", "text-classification", "--explainers", "none", "--out", str(tmp_path / "o"), "--no-progress"]
    assert _code(base) == 2
    assert "--prompt-template" in capsys.readouterr().err
    assert _code([*base, "--prompt-template", TEMPLATE, "--label-words", "negative=bad,positive=bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both 'negative' and 'positive'" in err[0]
    assert _code([*base, "--prompt-template", TEMPLATE]) == 2
    assert "both prompt_template" in capsys.readouterr().err
    assert _code([*base, "--prompt-template", "Premise: {text_a} Hypothesis: {text_b}", "--label-words",
                 "negative=bad,positive=good"]) == 2
    assert "needs {text}" in capsys.readouterr().err
    assert _code([*base, "--prompt-template", TEMPLATE, "--label-words", "neg=bad,positive=good"]) == 2
    assert "neg" in capsys.readouterr().err


def test_an_onnx_export_of_a_causal_lm_is_refused_with_what_to_give(llms, tmp_path):
    folder = tmp_path / "onnx-llm"
    shutil.copytree(llms["ref"], folder)
    (folder / "model.safetensors").unlink()
    (folder / "model.onnx").write_bytes(b"not read")
    with pytest.raises(ModelError, match="ONNX export of a causal LM.*Hugging Face folder or the .gguf file"):
        CausalLMClassifier(str(folder), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu")


def test_identical_copy_is_equivalent_and_the_report_records_the_prompt(llms, tmp_path):
    data = reviews(600)
    result = trusteq.compare(str(llms["ref"]), [str(llms["copy"]), str(llms["other"])], data,
                             task="text-classification", prompt_template=TEMPLATE, label_words=LABEL_WORDS,
                             explainers=[], progress=False)
    copy = result["comparisons"]["copy"]["verdict"]["dimensions"]
    assert copy["predictions"]["decision"] == EQUIVALENT and copy["calibration"]["decision"] == EQUIVALENT
    assert result["settings"]["prompt"] == {"template": TEMPLATE, "label_words": LABEL_WORDS,
                                            "chat_template": {"ref": True, "copy": True, "other": True}}
    assert result["models"]["ref"]["kind"] == "causal-lm"
    trusteq.write_report(result, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["settings"]["prompt"]["template"] == TEMPLATE


def test_explanations_vary_the_examples_words_only(llms, monkeypatch):
    """Every prompt the explainers make is the template around a subset of the example's words, and every
    attributed feature is a word of the example: the template and the label words are never features."""
    data = reviews(4)
    seen = []
    original = CausalLMClassifier.prompt_text

    def spy(self, text_a, text_b):
        if text_a not in ("x", "y z"):  # the probes of the label words' tokens and of the prompts' shared prefix
            seen.append(text_a)
        return original(self, text_a, text_b)

    monkeypatch.setattr(CausalLMClassifier, "prompt_text", spy)
    result = trusteq.compare(str(llms["ref"]), [str(llms["other"])], data, task="text-classification",
                             prompt_template=TEMPLATE, label_words=LABEL_WORDS, explainers=["lime", "shap"],
                             explain_limit=4, explain_all=True, lime_samples=40, shap_evals=64, progress=False)
    originals = {e.text_a: set(e.text_a.split()) for e in data.examples}
    vocabulary = set().union(*originals.values())
    assert len(seen) > 100
    assert all(set(text.split()) <= vocabulary for text in seen)
    for explained in result.explanations.values():
        for run in explained.runs:
            for e in run.explanations:
                assert {f.word for f in e.features} <= vocabulary


def test_a_prompted_llm_travels_to_another_process_as_its_recipe(llms):
    """Ray actors and other processes get the model's recipe (source, prompt, sizes), rebuilt to the same
    fingerprint and the same probabilities."""
    import pickle

    from trusteq.models import TaskModel

    model = TaskModel(CausalLMClassifier(str(llms["ref"]), PromptSpec(TEMPLATE, LABEL_WORDS), device="cpu"),
                      ("negative", "positive"))
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again.model, CausalLMClassifier) and again.fingerprint == model.fingerprint
    pairs = reviews(5).pairs
    np.testing.assert_array_equal(again(pairs), model(pairs))
