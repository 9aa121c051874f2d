"""The image workflow as a user runs it: an image folder on disk, trusteq train, distill, compress, compare; and
the one-line errors (exit 2) of bad image data."""

import json

import numpy as np
import pytest
from PIL import Image

from trusteq.cli import main

LABELS = ("left", "middle", "right")


def _write_bands(root, n=90, size=12, seed=0):
    """An image folder (one sub-folder per class) of grey PNGs whose bright vertical third is the class."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = i % 3
        img = rng.normal(60, 30, (size, size))
        img[:, k * size // 3:(k + 1) * size // 3] += 120
        (root / LABELS[k]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="L").save(root / LABELS[k] / f"{i:03d}.png")
    return root


def run(*args):
    return main([str(a) for a in args])


FAST = ["--epochs", "3", "--batch-size", "16", "--learning-rate", "0.01", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    data = _write_bands(root / "bands")
    assert run("train", "--task", "image-classification", "--data", data, "--arch", "resnet-tiny", "--out",
               root / "ref", *FAST) == 0
    assert run("distill", "--task", "image-classification", "--teacher", root / "ref", "--student", "resnet-tiny",
               "--data", data, "--out", root / "student", *FAST) == 0
    assert run("compress", "--model", root / "ref", "--method", "int8", "--data", data, "--out", root / "int8",
               "--task", "image-classification") == 0
    assert run("compress", "--model", root / "ref", "--method", "prune:0.5", "--out", root / "prune") == 0
    return root


@pytest.mark.slow
def test_train_distill_compress_and_compare_from_the_command_line(workflow, tmp_path):
    root = workflow
    student = json.loads((root / "student" / "trusteq-model.json").read_text())
    assert student["method"] == "distill" and student["temperature"] == 2.0 and student["settings"]["epochs"] == 3
    out = tmp_path / "report"
    assert run("compare", "--task", "image-classification", "--data", root / "bands", "--reference", root / "ref",
               "--candidate", root / "int8", "--candidate", root / "prune", "--candidate", root / "student",
               "--explainers", "lime,shap", "--explain-limit", "6", "--explain-all", "--lime-samples", "60",
               "--shap-evals", "300", "--out", out, "--no-progress") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["texts"] == "image" and report["data"]["format"] == "imagefolder"
    assert report["models"]["int8"]["kind"] == "onnx-image" and report["models"]["ref"]["kind"] == "transformers-image"
    assert set(report["comparisons"]) == {"int8", "prune", "student"}
    assert all(c["explained_examples"] == 6 for c in report["comparisons"].values())
    assert (out / "report.html").read_text().count('class="heat"') == 4 * 6


def test_train_refuses_texts(tmp_path, capsys):
    assert run("train", "--task", "nli", "--data", tmp_path / "x.tsv", "--out", tmp_path / "m", *FAST) == 2
    assert "trusteq finetune" in capsys.readouterr().err


def test_image_and_text_columns_together_are_refused(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("path,label\na.png,left\n")
    assert run("compare", "--task", "image-classification", "--data", table, "--image", "path", "--text", "path",
               "--label", "label", "--reference", tmp_path, "--candidate", tmp_path, "--out", tmp_path / "o") == 2
    assert "--image" in capsys.readouterr().err


@pytest.mark.slow
def test_a_missing_image_is_named_with_its_row_and_field(workflow, tmp_path, capsys):
    table = tmp_path / "images.csv"
    table.write_text("file,label\n" + "".join(f"{workflow}/bands/left/{i:03d}.png,left\n" for i in (0, 3))
                     + "missing.png,middle\n")
    code = run("compare", "--task", "image-classification", "--data", table, "--image", "file", "--label", "label",
               "--reference", workflow / "ref", "--candidate", workflow / "prune", "--out", tmp_path / "o")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "images.csv: row 4, field 'file'" in err and "missing.png" in err


@pytest.mark.slow
def test_images_of_another_size_than_the_model_needs_are_refused(workflow, tmp_path, capsys):
    data = _write_bands(tmp_path / "big", n=9, size=15)
    code = run("compare", "--task", "image-classification", "--data", data, "--reference", workflow / "ref",
               "--candidate", workflow / "prune", "--out", tmp_path / "o")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "12x12" in err and "15x15" in err and not (tmp_path / "o").exists()


def test_a_length_slice_of_images_is_refused_before_any_work(tmp_path, capsys):
    data = _write_bands(tmp_path / "b", n=6)
    code = run("compare", "--task", "image-classification", "--data", data, "--reference", tmp_path / "nothing",
               "--candidate", tmp_path / "nothing2", "--slice", "length", "--out", tmp_path / "o")
    assert code == 2 and "images have none" in capsys.readouterr().err
