"""Image classifiers (trusteq.vision): tiny random ResNets built from configs, never downloaded."""

import pickle

import numpy as np
import pytest

from conftest import PI, make_bert
from trusteq.data import Dataset, Example
from trusteq.errors import DataError, ModelError
from trusteq.models import TaskModel
from trusteq.vision import ImageClassifier, ONNXImageClassifier, export_onnx_image, image_processor, is_image_model

LABELS = ("zero", "one", "two")


def make_resnet(folder, channels=1, size=(12, 12), seed=0, mean=None, std=None):
    """Save a tiny random ResNetForImageClassification and its processor (no resizing) in ``folder``."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(num_channels=channels, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                          layer_type="basic", num_labels=3, id2label=dict(enumerate(LABELS)),
                          label2id={name: i for i, name in enumerate(LABELS)})
    torch.manual_seed(seed)
    ResNetForImageClassification(config).save_pretrained(folder)
    image_processor(size, channels, mean or [0.5] * channels, std or [0.25] * channels).save_pretrained(folder)
    return folder


def images(n, shape=(12, 12, 1), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def dataset(pictures, source="digits.csv"):
    examples = [Example(str(i), f"img/{i}.png", None, LABELS[i % 3], image=im) for i, im in enumerate(pictures)]
    return Dataset(examples, "image-classification", LABELS, source, "0" * 64, "columns")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision")
    grey = make_resnet(root / "grey")
    onnx = root / "grey-onnx"
    export_onnx_image(grey, onnx)
    return {"grey": grey, "rgb": make_resnet(root / "rgb", channels=3, size=(12, 10), seed=1), "onnx": onnx,
            "root": root}


@pytest.fixture(scope="module")
def grey(folders):
    return ImageClassifier(folders["grey"], batch_size=4, device="cpu")


def test_probabilities_of_grey_images(grey):
    probs = grey.predict_proba(images(10))
    assert probs.shape == (10, 3) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert grey.class_names == LABELS and grey.kind == "transformers-image"
    assert probs.std(axis=0).max() > 1e-4  # the images are told apart
    info = grey.info()
    assert info["image_size"] == [12, 12] and info["channels"] == 1 and info["processor"] == "ViTImageProcessor"
    assert TaskModel(grey, ("two", "one", "zero"))(images(10)).tolist() == probs[:, ::-1].tolist()


def test_outputs_do_not_depend_on_the_callers_grouping(grey):
    pictures = images(10)
    whole = grey.predict_proba(pictures)
    assert [idx.tolist() for idx in grey.batch_plan(pictures)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert np.array_equal(whole, np.vstack([grey.predict_proba(pictures[:3]), grey.predict_proba(pictures[3:])]))
    assert np.array_equal(whole, np.vstack([grey.predict_proba([im]) for im in pictures]))
    planned = np.vstack([grey.predict_batch([pictures[i] for i in idx]) for idx in grey.batch_plan(pictures)])
    assert np.array_equal(whole, planned)


def test_fingerprint_is_stable_and_follows_weights_and_processor(folders, grey, tmp_path):
    import torch
    from transformers import ResNetForImageClassification

    assert ImageClassifier(folders["grey"], device="cpu").fingerprint == grey.fingerprint
    model = ResNetForImageClassification.from_pretrained(folders["grey"])
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    model.save_pretrained(tmp_path / "edited")
    image_processor((12, 12), 1, [0.5], [0.25]).save_pretrained(tmp_path / "edited")
    assert ImageClassifier(tmp_path / "edited", device="cpu").fingerprint != grey.fingerprint
    make_resnet(tmp_path / "other-mean", mean=[0.4])
    assert ImageClassifier(tmp_path / "other-mean", device="cpu").fingerprint != grey.fingerprint


def test_rgb_model_takes_hw3_images(folders):
    rgb = ImageClassifier(folders["rgb"], device="cpu")
    pictures = images(5, shape=(12, 10, 3))
    rgb.bind(dataset(pictures))
    probs = rgb.predict_proba(pictures)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1)
    assert rgb.info()["channels"] == 3 and rgb.info()["image_size"] == [12, 10]


def test_bind_refuses_wrong_channels_and_sizes(grey, monkeypatch):
    grey.bind(dataset(images(4)))
    with pytest.raises(DataError) as err:
        grey.bind(dataset(images(2) + images(2, shape=(12, 12, 3))))
    assert err.value.path == "digits.csv" and err.value.field == "img/2.png"
    assert "1 channel (grey)" in str(err.value) and "3 channels (RGB)" in str(err.value)
    with pytest.raises(DataError) as err:
        grey.bind(dataset(images(3) + images(1, shape=(14, 12, 1))))
    assert err.value.field == "img/3.png" and "12x12" in err.value.detail and "found 14x12" in err.value.detail
    with pytest.raises(DataError, match="classifies images"):
        grey.bind(Dataset([Example("0", "a text", None, "zero")], "text-classification", LABELS, "t.csv", "", "x"))
    # without a size of its own, the first image's size is required of all
    monkeypatch.setattr(grey, "expected_size", lambda: None)
    grey.bind(dataset(images(3, shape=(9, 7, 1))))
    with pytest.raises(DataError, match="first image 'img/0.png'") as err:
        grey.bind(dataset(images(3, shape=(9, 7, 1)) + images(1)))
    assert err.value.field == "img/3.png"
    monkeypatch.setattr(grey.processor, "do_resize", True)  # a resizing processor takes any size
    grey.bind(dataset(images(3) + images(1, shape=(14, 12, 1))))


def test_onnx_export_matches_pytorch(folders, grey):
    onnx = ONNXImageClassifier(folders["onnx"], batch_size=4, device="cpu", threads=1)
    pictures = images(10, seed=3)
    assert onnx.kind == "onnx-image" and onnx.class_names == LABELS
    np.testing.assert_allclose(onnx.predict_proba(pictures), grey.predict_proba(pictures), rtol=0, atol=1e-5)
    assert np.array_equal(onnx.predict_proba(pictures), np.vstack([onnx.predict_proba([im]) for im in pictures]))
    assert onnx.info()["provider"] == "CPUExecutionProvider"


def test_onnx_fingerprint_and_bind(folders, grey, tmp_path):
    onnx = ONNXImageClassifier(folders["onnx"], device="cpu")
    assert ONNXImageClassifier(folders["onnx"], device="cpu").fingerprint == onnx.fingerprint != grey.fingerprint
    with pytest.raises(DataError, match="needs images of 12x12") as err:
        onnx.bind(dataset(images(1) + images(1, shape=(10, 12, 1))))
    assert err.value.field == "img/1.png"
    with pytest.raises(DataError, match="1 channel"):
        onnx.bind(dataset(images(1, shape=(12, 12, 3))))
    with pytest.raises(ModelError, match="cannot load"):
        ONNXImageClassifier(folders["grey"], device="cpu")  # no model.onnx


def test_is_image_model(folders, tmp_path):
    from transformers import BertConfig

    assert is_image_model(folders["grey"]) and is_image_model(folders["onnx"])
    bert = make_bert(tmp_path / "bert", PI, hidden=16, layers=1)
    assert not is_image_model(bert) and not is_image_model(tmp_path / "missing")
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               architectures=["BertForSequenceClassification"]).save_pretrained(tmp_path / "config-only")
    assert not is_image_model(tmp_path / "config-only")
    image_processor((8, 8), 3, [0.5] * 3, [0.5] * 3).save_pretrained(tmp_path / "processor-only")
    assert is_image_model(tmp_path / "processor-only")


@pytest.mark.parametrize("kind", ["grey", "onnx"])
def test_recipe_rebuilds_the_same_model(folders, kind):
    cls = ImageClassifier if kind == "grey" else ONNXImageClassifier
    clf = cls(folders[kind], name="m", batch_size=3, device="cpu")
    pictures = images(7, seed=5)
    for again in (clf.recipe().build(), pickle.loads(pickle.dumps(clf))):
        assert type(again) is cls and again.name == "m" and again.batch_size == 3
        assert again.fingerprint == clf.fingerprint
        assert np.array_equal(again.predict_proba(pictures), clf.predict_proba(pictures))


def test_recipe_refuses_a_replaced_model(tmp_path):
    make_resnet(tmp_path / "m", seed=0)
    recipe = ImageClassifier(tmp_path / "m", device="cpu").recipe()
    make_resnet(tmp_path / "m", seed=1)
    with pytest.raises(ModelError, match="changed since it was loaded"):
        recipe.build()


def test_image_processor_grey_and_rgb(tmp_path):
    from transformers import AutoImageProcessor

    for channels, shape in ((1, (6, 5, 1)), (3, (6, 5, 3))):
        mean, std = [0.5, 0.4, 0.3][:channels], [0.25, 0.2, 0.1][:channels]
        processor = image_processor((6, 5), channels, mean, std)
        pictures = images(2, shape=shape)
        pixels = processor(images=pictures, return_tensors="np", input_data_format="channels_last")["pixel_values"]
        expected = (np.stack(pictures).transpose(0, 3, 1, 2) / 255 - np.array(mean)[:, None, None]) \
            / np.array(std)[:, None, None]
        assert pixels.shape == (2, channels, 6, 5)
        np.testing.assert_allclose(pixels, expected, atol=1e-5)
        processor.save_pretrained(tmp_path / str(channels))
        loaded = AutoImageProcessor.from_pretrained(tmp_path / str(channels))
        assert loaded.to_dict() == processor.to_dict() and not loaded.do_resize
    with pytest.raises(ValueError, match="need 3 values"):
        image_processor((6, 5), 3, [0.5], [0.25])


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="image classifier"):
        ImageClassifier(tmp_path, device="cpu", offline=True)


def test_an_image_classifier_explains_through_its_onnx_runtime_twin(folders):
    from trusteq.predict import onnx_twin

    model = TaskModel(ImageClassifier(folders["grey"], batch_size=4, device="cpu"), LABELS)
    twin, record = onnx_twin(model, images(6))
    assert record["runtime"] == "onnxruntime" and isinstance(twin.model, ONNXImageClassifier)
    assert twin.model.batch_size == 4 and twin.name == model.name and twin.fingerprint != model.fingerprint
    assert np.abs(twin(images(9, seed=3)) - model(images(9, seed=3))).max() <= 1e-5
