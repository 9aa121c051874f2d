"""Image classifiers of the workshop on a tiny synthetic task: training from scratch (with resume), distillation,
pruning and static int8 quantization (trusteq.workshop.images)."""

import json

import numpy as np
import pytest

from trusteq.data import Dataset, Example
from trusteq.errors import LabelError, SettingsError
from trusteq.workshop.finetune import CHECKPOINT
from trusteq.vision import is_image_model, load_image_model
from trusteq.workshop.images import ARCHITECTURES, ImageTrainSettings, compress_image_model, train_image_classifier

LABELS = ("left", "middle", "right")
#: 150 images, 16 a batch: 10 steps an epoch. No flips: they would swap "left" and "right".
FAST = dict(epochs=2, batch_size=16, learning_rate=1e-2, augment=False)


def bands(n=150, size=12, seed=0, labels=LABELS) -> Dataset:
    """Grey (size, size, 1) uint8 images: noise, and a bright vertical third (left, middle, right) - the class."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        k = i % 3
        img = rng.normal(60, 30, (size, size))
        img[:, k * size // 3:(k + 1) * size // 3] += 120
        pixels = img.clip(0, 255).astype(np.uint8)[..., None]
        examples.append(Example(str(i), f"img#{i}", None, labels[k], image=pixels))
    return Dataset(examples, "image-classification", tuple(labels), "bands", f"sha-{seed}", "test")


def hf_predictions(folder, images) -> np.ndarray:
    """Class indices by the plain transformers API: what `trusteq compare` relies on."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    proc = AutoImageProcessor.from_pretrained(folder)
    x = proc(images=list(images), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    with torch.no_grad():
        return model(pixel_values=x).logits.argmax(1).numpy()


@pytest.fixture(scope="module")
def data():
    return bands()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("img") / "teacher"
    info = train_image_classifier(data, out, arch="resnet-tiny", settings=ImageTrainSettings(**FAST), progress=False,
                                  dev=bands(60, seed=1), device="cpu")
    return out, info


def test_settings_and_arguments_are_checked(data, tmp_path):
    with pytest.raises(SettingsError, match="temperature"):
        ImageTrainSettings(temperature=0)
    with pytest.raises(SettingsError, match="alpha"):
        ImageTrainSettings(alpha=1.5)
    with pytest.raises(SettingsError, match="batch_size"):
        ImageTrainSettings(batch_size=1)
    with pytest.raises(SettingsError, match="unknown image architecture"):
        train_image_classifier(data, tmp_path / "x", arch="vgg")
    with pytest.raises(SettingsError, match="int8 needs --data"):
        compress_image_model(tmp_path, "int8", tmp_path / "q")
    for method in ("drop-layers:2", "gguf:q4_0", "fp16"):
        with pytest.raises(SettingsError, match="expected int8 or prune:S"):
            compress_image_model(tmp_path, method, tmp_path / "q")
    with pytest.raises(SettingsError, match="prune"):
        compress_image_model(tmp_path, "prune:1.5", tmp_path / "q")


def test_settings_make_cli_flags():
    import argparse

    from trusteq.settings import add_arguments, from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, ImageTrainSettings)
    args = parser.parse_args(["--epochs", "3", "--augment", "--temperature", "4", "--alpha", "0.25"])
    assert from_arguments(ImageTrainSettings, args) == ImageTrainSettings(epochs=3, augment=True, temperature=4.0,
                                                                          alpha=0.25)
    assert from_arguments(ImageTrainSettings, parser.parse_args([])) == ImageTrainSettings()


def test_architectures_make_configs_of_the_data():
    for make in ARCHITECTURES.values():
        config = make(1, 3, dict(enumerate(LABELS)))
        assert config.num_channels == 1 and config.num_labels == 3 and config.id2label[2] == "right"
        assert config.label2id == {"left": 0, "middle": 1, "right": 2}


@pytest.mark.slow
def test_trained_folder_loads_with_transformers_and_learns(trained, data):
    out, info = trained
    assert is_image_model(out) and not (out / CHECKPOINT).exists()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "left", "1": "middle", "2": "right"}
    proc = json.loads((out / "preprocessor_config.json").read_text())
    assert proc["image_mean"] == info["image_mean"] and proc["do_resize"] is False
    pixels = np.stack([e.image for e in data.examples])
    assert info["image_mean"][0] == pytest.approx(pixels.mean() / 255, abs=1e-5)
    predicted = hf_predictions(out, pixels)
    assert np.mean(predicted == data.y) > 0.9
    assert info["train_accuracy"] == pytest.approx(np.mean(predicted == data.y))
    assert np.array_equal(load_image_model(str(out)).predict_proba(list(pixels)).argmax(1), predicted)
    prov = json.loads((out / "trusteq-model.json").read_text())
    assert prov == info and prov["arch"] == "resnet-tiny" and prov["method"] == "train"
    assert prov["image_size"] == [12, 12] and prov["channels"] == 1 and prov["resumed_from_epoch"] == 0
    assert prov["parameters"] > 0 and 0 <= prov["dev"]["accuracy"] <= 1 and prov["settings"]["epochs"] == 2


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(data, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    from trusteq.workshop import images

    settings = ImageTrainSettings(**{**FAST, "augment": True})
    clean = train_image_classifier(data, tmp_path / "clean", "resnet-tiny", settings, progress=False, device="cpu")
    real, calls = images._loss, {"n": 0}

    def crash_in_epoch_2(*a, **k):
        calls["n"] += 1
        if calls["n"] == 13:  # step 3 of epoch 2: the checkpoint of epoch 1 is on disk
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(images, "_loss", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_image_classifier(data, tmp_path / "resumed", "resnet-tiny", settings, progress=False, device="cpu")
    monkeypatch.setattr(images, "_loss", real)
    assert (tmp_path / "resumed" / CHECKPOINT).exists()
    info = train_image_classifier(data, tmp_path / "resumed", "resnet-tiny", settings, progress=False, device="cpu")
    assert info["resumed_from_epoch"] == 1 and clean["resumed_from_epoch"] == 0
    a, b = load_file(tmp_path / "clean" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_checkpoint_of_other_arguments_is_not_resumed(data, tmp_path, monkeypatch):
    from trusteq.workshop import images

    real, calls = images._loss, {"n": 0}

    def crash_in_epoch_2(*a, **k):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(images, "_loss", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_image_classifier(data, tmp_path / "m", "resnet-tiny", ImageTrainSettings(**FAST), progress=False)
    monkeypatch.setattr(images, "_loss", real)
    other = ImageTrainSettings(**{**FAST, "seed": 1})
    assert train_image_classifier(data, tmp_path / "m", "resnet-tiny", other, progress=False)["resumed_from_epoch"] == 0


@pytest.mark.slow
def test_distillation_keeps_the_teachers_labels(trained, data, tmp_path):
    teacher, _ = trained
    info = train_image_classifier(data, tmp_path / "student", "resnet-tiny", ImageTrainSettings(**FAST, seed=3),
                                  progress=False, teacher=teacher)
    assert info["method"] == "distill" and info["teacher"] == str(teacher)
    assert info["temperature"] == 2.0 and info["alpha"] == 0.5 and info["train_accuracy"] > 0.9
    student = json.loads((tmp_path / "student" / "config.json").read_text())
    assert student["id2label"] == json.loads((teacher / "config.json").read_text())["id2label"]
    with pytest.raises(LabelError):
        train_image_classifier(bands(30, labels=("a", "b", "c")), tmp_path / "x", "resnet-tiny",
                               ImageTrainSettings(**FAST), progress=False, teacher=teacher)


@pytest.mark.slow
def test_prune_zeroes_half_of_every_conv_and_linear_weight(trained, data, tmp_path):
    import torch
    from transformers import AutoModelForImageClassification

    src, source_info = trained
    info = compress_image_model(src, "prune:0.5", tmp_path / "pruned")
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "pruned")
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == info["pruned_layers"] > 5
    assert all(abs(float((m.weight == 0).float().mean()) - 0.5) < 0.02 for m in layers)
    assert info["conv_linear_sparsity"] == pytest.approx(0.5, abs=0.01) and info["method"] == "prune:0.5"
    assert info["nonzero_parameters"] < info["parameters"] == source_info["parameters"]
    assert info["source_model"] == str(src) and is_image_model(tmp_path / "pruned")
    assert hf_predictions(tmp_path / "pruned", [e.image for e in data.examples[:5]]).shape == (5,)


@pytest.mark.slow
def test_int8_is_an_onnx_folder_that_agrees_with_fp32(trained, data, tmp_path):
    import onnxruntime as ort

    from trusteq.models import is_onnx_folder

    src, _ = trained
    out = tmp_path / "int8"
    info = compress_image_model(src, "int8", out, data=data)
    assert is_onnx_folder(out) and is_image_model(out)
    assert {f.name for f in out.iterdir()} >= {"model.onnx", "config.json", "preprocessor_config.json"}
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixel_values"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert any(n.op_type == "QuantizeLinear" for n in __import__("onnx").load(str(out / "model.onnx")).graph.node)
    pixels = np.stack([e.image for e in data.examples])
    q = load_image_model(str(out)).predict_proba(list(pixels[:7]))
    assert q.shape == (7, 3) and np.allclose(q.sum(axis=1), 1)
    agree = np.mean(load_image_model(str(out)).predict_proba(list(pixels)).argmax(1) == hf_predictions(src, pixels))
    assert agree > 0.9 and info["calibration_images"] == 150 and info["calibration_agreement"] > 0.9
    assert info["method"] == "int8" and info["size_mb"] > 0 and info["onnx_fp32_size_mb"] > 0


def test_augmentation_is_seeded_and_keeps_the_shape():
    from trusteq.workshop.images import _augment

    images = np.arange(4 * 6 * 6, dtype=np.uint8).reshape(4, 6, 6, 1)
    a = _augment(images, np.random.default_rng(5))
    assert a.shape == images.shape and a.dtype == np.uint8
    assert np.array_equal(a, _augment(images, np.random.default_rng(5)))
    assert not np.array_equal(a, _augment(images, np.random.default_rng(6)))
    # every output is a shifted (zero-filled) window of its image, mirrored or not
    for src, out in zip(images[..., 0], a[..., 0]):
        padded = np.pad(src, 2)
        windows = [padded[y:y + 6, x:x + 6] for y in range(5) for x in range(5)]
        assert any(np.array_equal(out, w) or np.array_equal(out, w[:, ::-1]) for w in windows)


def test_what_is_not_an_image_model_or_image_data_is_refused(tmp_path):
    from trusteq.errors import DataError

    assert not is_image_model(tmp_path) and not is_image_model(tmp_path / "missing")
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert not is_image_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["ResNetForImageClassification"]}))
    assert is_image_model(tmp_path)
    text = Dataset([Example("0", "a text", None, "left")], "text-classification", LABELS, "t", "s", "test")
    with pytest.raises(DataError, match="expected labelled images"):
        train_image_classifier(text, tmp_path / "x", "resnet-tiny")
    mixed = bands(6)
    mixed.examples[0] = Example("0", "big", None, "left", image=np.zeros((14, 12, 1), np.uint8))
    with pytest.raises(DataError, match="one size"):
        train_image_classifier(mixed, tmp_path / "x", "resnet-tiny")
    with pytest.raises(Exception, match="not a folder of a transformers image classifier"):
        compress_image_model(tmp_path, "prune:0.5", tmp_path / "p")  # a config but no weights
