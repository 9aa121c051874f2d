"""Shared fixtures: tiny randomly initialised BERT pair classifiers (no download), and report comparisons.

Test modules import the helpers by name, as ``from conftest import NLI, make_bert, assert_reports_close``.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import pytest

WORDS = ("a the man woman dog cat is are not no on in of and with to at playing sitting running outside "
         "inside people child children street water grass ball red blue two three sleeping eating").split()


def make_bert(folder: Path, labels, seed: int = 0, hidden: int = 32, layers: int = 2, max_pos: int = 128) -> Path:
    """Save a tiny random BertForSequenceClassification with a word-level vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase) + \
        list(string.digits) + list(".,!?'\"-") + WORDS + ["##" + c for c in string.ascii_lowercase]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(folder)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=max_pos,
                        num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={name: i for i, name in enumerate(labels)}, initializer_range=0.3)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    return folder


#: Keys of a report that differ between two runs of the same comparison: when it was made and how long it took.
RUN_SPECIFIC = ("created", "timings_s")


def comparable(summary: dict, *, drop=RUN_SPECIFIC, settings=()) -> dict:
    """A report (``result.summary``, ``result.to_dict()`` or a loaded report.json) as report.json stores it,
    without what differs between runs that should give the same report.

    ``drop``: top-level keys removed (each must be there); ``settings``: keys removed from ``settings`` (e.g.
    ``("executor",)`` when comparing executors). A value JSON cannot hold raises ``TypeError``: report.json
    must hold the whole report.
    """
    out = json.loads(json.dumps(summary))
    for key in drop:
        out.pop(key)
    for key in settings:
        out["settings"].pop(key)
    return out


def assert_reports_equal(a: dict, b: dict, *, drop=RUN_SPECIFIC, settings=()) -> None:
    """Two reports are the same, bit for bit, once :func:`comparable` (same ``drop`` and ``settings``).

    Compared as JSON text with sorted keys: every number must have the same repr (NaN equals NaN, as in
    report.json, and 1 differs from 1.0).
    """
    text_a = json.dumps(comparable(a, drop=drop, settings=settings), sort_keys=True)
    text_b = json.dumps(comparable(b, drop=drop, settings=settings), sort_keys=True)
    if text_a != text_b:  # the nested comparison names the first key that differs
        assert_reports_close(json.loads(text_a), json.loads(text_b), atol=0.0)
    assert text_a == text_b


def assert_reports_close(a, b, *, atol: float = 1e-6, rtol: float = 0.0, ignore=(), path: str = "") -> None:
    """Same structure, keys and strings; floats within ``atol`` (or ``rtol``), NaN equal to NaN.

    Runs that differ only in summation order (other thread counts, other batches) move fp32 probabilities by
    ~1e-8 and the report's numbers by less than 1e-6 with the same decisions, hence the default ``atol``.

    Parameters
    ----------
    a, b : nested dicts and lists (e.g. two :func:`comparable` reports)
    atol, rtol : tolerances of ``math.isclose`` for two floats.
    ignore : keys whose values are not compared, at any depth (both reports must still have them).

    Raises
    ------
    AssertionError
        Naming the path of the first difference, e.g. ``.comparisons.small.agreement.value``.
    """
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k not in ignore:
                assert_reports_close(a[k], b[k], atol=atol, rtol=rtol, ignore=ignore, path=f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_reports_close(x, y, atol=atol, rtol=rtol, ignore=ignore, path=f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(b)), (path, a, b)
    else:
        assert a == b, (path, a, b)


NLI = ("entailment", "neutral", "contradiction")
PI = ("not_paraphrase", "paraphrase")


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """No doctest collector for files under tests/: ``--doctest-modules`` (pyproject.toml) is there for
    src/trusteq/metrics, test modules have no doctests, and a second collector would report each import error
    of a test module twice."""
    collectors = yield
    doctest = parent.config.pluginmanager.get_plugin("doctest")
    if doctest is None:  # -p no:doctest
        return collectors
    return [c for c in collectors if not isinstance(c, doctest.DoctestModule)]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRUSTEQ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def nli_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "ref": make_bert(root / "ref", NLI, seed=0, layers=2),
        "small": make_bert(root / "small", NLI, seed=1, layers=1),
        # Same classes in another output order: alignment must be by name.
        "shuffled": make_bert(root / "shuffled", ("contradiction", "entailment", "neutral"), seed=2, layers=1),
        "generic": make_bert(root / "generic", ("LABEL_0", "LABEL_1", "LABEL_2"), seed=3, layers=1),
    }


@pytest.fixture(scope="session")
def pi_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("pimodels")
    return {"ref": make_bert(root / "ref", PI, seed=0), "small": make_bert(root / "small", PI, seed=1, layers=1)}


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED


#: Sentences the tiny causal LM's tokenizer is trained on (byte-level BPE; any text still encodes, byte by byte).
LM_SENTENCES = tuple(f"{a} {b} is {c} {d}." for a, b, c, d in zip(WORDS, WORDS[3:] + WORDS[:3], WORDS[7:] + WORDS[:7],
                                                                  WORDS[11:] + WORDS[:11]))
LM_CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|eos|>\n{% endfor %}"
                    "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def make_causal_lm(folder: Path, seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                   intermediate: int = 128, vocab: int = 300, tie: bool = True, chat: bool = True,
                   init: float = 0.1) -> Path:
    """Save a tiny random ``LlamaForCausalLM`` (fp32) with a byte-level BPE tokenizer of about ``vocab`` tokens
    trained on :data:`LM_SENTENCES`, and return ``folder``.

    The tokenizer has ``<|pad|>``, ``<|bos|>``, ``<|eos|>`` (pad, bos, eos; nothing added automatically) and, with
    ``chat``, :data:`LM_CHAT_TEMPLATE` (``<|user|>...<|eos|>`` then ``<|assistant|>``). Every weight dimension is
    a multiple of 32 with the defaults (GGUF blocks). ``init``: the weights' standard deviation (larger: less uniform
    next-token distributions). Deterministic for a given ``seed``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(LM_SENTENCES, trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|pad|>", bos_token="<|bos|>",
                                  eos_token="<|eos|>", chat_template=LM_CHAT_TEMPLATE if chat else None)
    tok.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, intermediate_size=intermediate, max_position_embeddings=256,
                         tie_word_embeddings=tie, initializer_range=init, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
