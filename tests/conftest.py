"""Shared fixtures: tiny randomly initialised BERT pair classifiers (no download)."""

from __future__ import annotations

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


NLI = ("entailment", "neutral", "contradiction")
PI = ("not_paraphrase", "paraphrase")


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
