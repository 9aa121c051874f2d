"""Image datasets (task image-classification) read through trusteq.data.load_dataset: IDX pairs, image folders
and tables of image paths, with tiny images made here (no download)."""

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trusteq.data import ColumnMap, load_dataset, normalize_label
from trusteq.errors import DataError
from trusteq.images import FASHION_MNIST_LABELS, decode_image

TASK = "image-classification"
TABLE = ColumnMap(text_a=None, text_b=None, label="label", image="path")
FASHION_T10K = Path(__file__).resolve().parents[2] / "shared/data/fashion_mnist/t10k-images-idx3-ubyte.gz"


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(folder: Path, images: np.ndarray, labels, gz: bool = False, prefix: str = "t10k") -> Path:
    """An IDX images file and its labels file in ``folder``; returns the images file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    end = ".gz" if gz else ""
    parts = {"images-idx3": idx_bytes(2051, images), "labels-idx1": idx_bytes(2049, np.asarray(labels))}
    for part, content in parts.items():
        (folder / f"{prefix}-{part}-ubyte{end}").write_bytes(gzip.compress(content) if gz else content)
    return folder / f"{prefix}-images-idx3-ubyte{end}"


def grey(n: int, h: int = 4, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def save(path: Path, pixels: np.ndarray, mode: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path) if mode else Image.fromarray(pixels).save(path)
    return pixels


def rgb(seed: int, h: int = 4, w: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def error(source, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(source, TASK, **kwargs)
    return info.value


# ---------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_with_label_names(tmp_path, gz):
    pixels = grey(5)
    path = write_idx(tmp_path, pixels, [0, 1, 2, 1, 0], gz=gz)
    ds = load_dataset(path, TASK, label_names=["Cat", "Dog", "Bird"])
    assert ds.format == "idx" and ds.kind == "image" and ds.n_rows == 5
    assert ds.label_names == ("cat", "dog", "bird")
    assert ds.ids == ["0", "1", "2", "3", "4"]
    assert [e.label for e in ds.examples] == ["cat", "dog", "bird", "dog", "cat"]
    assert ds.examples[3].text_a == f"{path.name}#3" and ds.examples[3].text_b is None
    assert all(x.shape == (4, 5, 1) and x.dtype == np.uint8 for x in ds.inputs)
    np.testing.assert_array_equal(np.stack(ds.inputs)[..., 0], pixels)
    labels = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    assert ds.sha256 == hashlib.sha256(path.read_bytes() + labels.read_bytes()).hexdigest()
    assert list(ds.y) == [0, 1, 2, 1, 0]


def test_idx_fashion_names_from_the_path(tmp_path):
    path = write_idx(tmp_path / "Fashion", grey(10, 28, 28), list(range(10)), gz=True)
    ds = load_dataset(path, TASK)
    assert ds.label_names == tuple(normalize_label(n) for n in FASHION_MNIST_LABELS)
    assert ds.label_names[0] == "t_shirt/top" and ds.examples[9].label == "ankle_boot"


@pytest.mark.parametrize("folder,size", [("digits", 28), ("fashion", 8)])
def test_idx_without_names_asks_for_them(tmp_path, folder, size):
    path = write_idx(tmp_path / folder, grey(3, size, size), [0, 1, 2])
    err = error(path)
    assert "--label-names" in str(err) and "labels-idx1" in err.path


def test_idx_code_without_a_name(tmp_path):
    path = write_idx(tmp_path, grey(4), [0, 1, 5, 1])
    err = error(path, label_names=["a", "b"])
    assert err.path.endswith("t10k-labels-idx1-ubyte") and err.row == 2 and err.field == "label"
    assert "5" in err.detail
    ds = load_dataset(path, TASK, label_names=["a", "b"], skip_invalid=True)
    assert ds.ids == ["0", "1", "3"] and ds.n_rows == 4
    assert ds.dropped == [{"row": 2, "id": "2", "field": "label", "reason": err.detail}]


@pytest.mark.parametrize("part,magic", [("images-idx3", 2049), ("labels-idx1", 2051), ("images-idx3", 0)])
def test_idx_wrong_magic(tmp_path, part, magic):
    path = write_idx(tmp_path, grey(2), [0, 1])
    target = tmp_path / f"t10k-{part}-ubyte"
    content = bytearray(target.read_bytes())
    content[:4] = np.array([magic], dtype=">i4").tobytes()
    target.write_bytes(bytes(content))
    err = error(path, label_names=["a", "b"])
    assert err.path == str(target) and "magic number" in err.detail


def test_idx_count_mismatch(tmp_path):
    path = write_idx(tmp_path, grey(3), [0, 1])
    err = error(path, label_names=["a", "b"])
    assert "labels-idx1" in err.path and "2 labels" in err.detail and "3 images" in err.detail


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    path = write_idx(tmp_path, grey(3), [0, 1, 0])
    content = path.read_bytes()[:-7]
    path.write_bytes(gzip.compress(content) if gz else content)
    err = error(path, label_names=["a", "b"])
    assert err.path == str(path) and "truncated" in err.detail


def test_idx_missing_labels_file_and_labels_file_given(tmp_path):
    path = write_idx(tmp_path, grey(2), [0, 1])
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    err = error(labels, label_names=["a", "b"])
    assert err.path == str(labels) and "images file" in err.detail
    labels.unlink()
    err = error(path, label_names=["a", "b"])
    assert err.path == str(path) and "t10k-labels-idx1-ubyte" in err.detail


def test_idx_not_an_idx_file(tmp_path):
    short = tmp_path / "x-images-idx3-ubyte"
    short.write_bytes(b"\x00\x00")
    (tmp_path / "x-labels-idx1-ubyte").write_bytes(idx_bytes(2049, np.array([0, 1])))
    assert "not an IDX file" in error(short, label_names=["a", "b"]).detail
    other = tmp_path / "pictures.bin"
    other.write_bytes(b"hello")
    assert "IDX images file" in error(other).detail
    assert error(tmp_path / "absent").detail == "no such file or folder"


# ---------------------------------------------------------------------------
# image folder


def make_folder(root: Path) -> dict[str, np.ndarray]:
    """Two classes of PNG and JPEG RGB images, one nested, plus hidden entries; returns the PNGs' pixels."""
    pngs = {"dog/b.png": rgb(1), "cat/a.PNG": rgb(2), "cat/sub/c.png": rgb(3)}
    for rel, pixels in pngs.items():
        save(root / rel, pixels)
    save(root / "dog/a.jpg", rgb(4, 8, 8))
    save(root / "cat/z.JPEG", rgb(5, 6, 7))
    (root / "cat/.DS_Store").write_bytes(b"junk")
    (root / ".hidden").mkdir()
    (root / ".hidden/notes.txt").write_text("ignored")
    (root / "dog/.cache").mkdir()
    (root / "dog/.cache/x.txt").write_text("ignored")
    return pngs


def test_image_folder_png_and_jpeg(tmp_path):
    pngs = make_folder(tmp_path)
    ds = load_dataset(tmp_path, TASK)
    assert ds.format == "imagefolder" and ds.kind == "image"
    assert ds.label_names == ("cat", "dog")
    assert ds.ids == ["cat/a.PNG", "cat/sub/c.png", "cat/z.JPEG", "dog/a.jpg", "dog/b.png"]
    assert [e.text_a for e in ds.examples] == ds.ids
    assert [e.label for e in ds.examples] == ["cat", "cat", "cat", "dog", "dog"]
    images = dict(zip(ds.ids, ds.inputs))
    for rel, pixels in pngs.items():
        np.testing.assert_array_equal(images[rel], pixels)
    assert images["cat/z.JPEG"].shape == (6, 7, 3) and images["cat/z.JPEG"].dtype == np.uint8
    assert images["dog/a.jpg"].shape == (8, 8, 3)
    assert not images["dog/b.png"].flags.writeable


def test_image_folder_digest_follows_the_pixels(tmp_path):
    make_folder(tmp_path)
    first = load_dataset(tmp_path, TASK)
    assert load_dataset(tmp_path, TASK).sha256 == first.sha256
    save(tmp_path / "dog/b.png", rgb(9))
    second = load_dataset(tmp_path, TASK)
    assert second.sha256 != first.sha256
    keys = [e.key for e in (first.examples[-1], second.examples[-1])]
    assert keys[0][0] == keys[1][0] == "image" and keys[0] != keys[1]


def test_image_folder_mixing_grey_and_rgb_gives_three_channels(tmp_path):
    g = save(tmp_path / "a/g.png", grey(1, 3, 3)[0])
    c = save(tmp_path / "b/c.png", rgb(1, 3, 3))
    ds = load_dataset(tmp_path, TASK)
    assert [x.shape for x in ds.inputs] == [(3, 3, 3), (3, 3, 3)]
    np.testing.assert_array_equal(ds.inputs[0], np.repeat(g[..., None], 3, axis=2))
    np.testing.assert_array_equal(ds.inputs[1], c)
    (tmp_path / "b/c.png").unlink()
    save(tmp_path / "b/c.png", grey(1, 3, 3, seed=2)[0])
    assert [x.shape for x in load_dataset(tmp_path, TASK).inputs] == [(3, 3, 1), (3, 3, 1)]


def test_image_folder_label_order_given(tmp_path):
    make_folder(tmp_path)
    ds = load_dataset(tmp_path, TASK, label_names=["Dog", "Cat"])
    assert ds.label_names == ("dog", "cat") and list(ds.y) == [1, 1, 1, 0, 0]
    err = error(tmp_path, label_names=["dog", "cat", "bird"])
    assert "bird" in err.detail
    err = error(tmp_path, label_names=["dog", "bird"])
    assert err.path == str(tmp_path / "cat") and "not among the label names" in err.detail


def test_image_folder_non_image_file(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "dog/readme.txt").write_text("not an image")
    err = error(tmp_path)
    assert err.path == str(tmp_path / "dog/readme.txt") and "not an image file" in err.detail


def test_image_folder_undecodable_image_and_skip_invalid(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "dog/broken.png").write_bytes(b"\x89PNG not really")
    err = error(tmp_path)
    assert err.path == str(tmp_path / "dog/broken.png") and "cannot decode" in err.detail
    ds = load_dataset(tmp_path, TASK, skip_invalid=True)
    assert "dog/broken.png" not in ds.ids and len(ds) == 5 and ds.n_rows == 6
    assert ds.dropped == [{"row": None, "id": "dog/broken.png", "field": "image", "reason": err.detail}]


def test_image_folder_stray_file_and_one_class(tmp_path):
    save(tmp_path / "cat/a.png", rgb(1))
    err = error(tmp_path)
    assert "two or more" in err.detail
    save(tmp_path / "dog/a.png", rgb(2))
    save(tmp_path / "loose.png", rgb(3))
    err = error(tmp_path)
    assert err.path == str(tmp_path / "loose.png") and "sub-folder per class" in err.detail


# ---------------------------------------------------------------------------
# decoding


@pytest.mark.parametrize("mode,shape", [("1", (2, 3, 1)), ("P", (2, 3, 3)), ("RGBA", (2, 3, 3)), ("LA", (2, 3, 1)),
                                        ("CMYK", (2, 3, 3))])
def test_decode_converts_modes(tmp_path, mode, shape):
    base = Image.fromarray(rgb(1, 2, 3))
    image = base.convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    pixels = decode_image(path)
    assert pixels.shape == shape and pixels.dtype == np.uint8
    if mode in ("RGBA", "P"):
        np.testing.assert_array_equal(pixels, np.asarray(image.convert("RGB")))


def test_decode_scales_16_bit_and_float_grey(tmp_path):
    deep = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "deep.png")[..., 0], [[0, 1, 255]])
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tiff")
    np.testing.assert_array_equal(decode_image(tmp_path / "f.tiff")[..., 0], [[0, 128, 255]])
    with pytest.raises(DataError, match="missing.png"):
        decode_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------
# tables of image paths


def write_table(folder: Path, kind: str, rows: list[dict]) -> Path:
    if kind == "csv":
        path = folder / "data.csv"
        lines = [",".join(rows[0])] + [",".join(str(v) for v in row.values()) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    elif kind == "jsonl":
        path = folder / "data.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        import pandas as pd

        path = folder / "data.parquet"
        pd.DataFrame(rows).to_parquet(path)
    return path


def table_rows(folder: Path) -> tuple[list[dict], list[np.ndarray]]:
    pixels = [save(folder / "img" / f"{i}.png", rgb(i)) for i in range(4)]
    labels = ["cat", "dog", "dog", "cat"]
    rows = [{"path": f"img/{i}.png", "label": labels[i], "genre": f"g{i % 2}"} for i in range(4)]
    return rows, pixels


# first data row's number in messages: CSV line 2 (header = line 1), JSONL line 1, Parquet record 0
FIRST_ROW = {"csv": 2, "jsonl": 1, "parquet": 0}


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_table_of_image_paths(tmp_path, kind):
    rows, pixels = table_rows(tmp_path)
    path = write_table(tmp_path, kind, rows)
    ds = load_dataset(path, TASK, columns=TABLE, keep=["genre"])
    assert ds.format == "columns" and ds.kind == "image" and ds.label_names == ("cat", "dog")
    assert ds.ids == ["0", "1", "2", "3"] and [e.text_a for e in ds.examples] == [r["path"] for r in rows]
    for example, expected in zip(ds.examples, pixels):
        np.testing.assert_array_equal(example.image, expected)
    assert [e.column("genre") for e in ds.examples] == ["g0", "g1", "g0", "g1"]
    expected = hashlib.sha256(path.read_bytes() + b"".join((tmp_path / r["path"]).read_bytes() for r in rows))
    assert ds.sha256 == expected.hexdigest()


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_table_missing_image_and_skip_invalid(tmp_path, kind):
    rows, _ = table_rows(tmp_path)
    rows[2]["path"] = "img/absent.png"
    path = write_table(tmp_path, kind, rows)
    err = error(path, columns=TABLE)
    assert err.path == str(path) and err.row == FIRST_ROW[kind] + 2 and err.field == "path"
    assert err.detail.startswith("cannot read image 'img/absent.png': ")
    ds = load_dataset(path, TASK, columns=TABLE, skip_invalid=True)
    assert ds.ids == ["0", "1", "3"] and ds.n_rows == 4
    assert ds.dropped == [{"row": err.row, "id": "2", "field": "path", "reason": err.detail}]


def test_table_codes_ids_and_absolute_paths(tmp_path):
    pixels = [save(tmp_path / f"{i}.png", rgb(i)) for i in range(3)]
    table = tmp_path / "sub" / "t.tsv"
    table.parent.mkdir()
    table.write_text("file\ty\tkey\n" + "".join(f"{tmp_path / f'{i}.png'}\t{i % 2}\tk{i}\n" for i in range(3)))
    columns = ColumnMap(text_a=None, text_b=None, label="y", id="key", image="file")
    ds = load_dataset(table, TASK, columns=columns, label_names=["No", "Yes"])
    assert ds.ids == ["k0", "k1", "k2"] and ds.label_names == ("no", "yes")
    assert [e.label for e in ds.examples] == ["no", "yes", "no"]
    np.testing.assert_array_equal(ds.examples[2].image, pixels[2])


def test_table_needs_image_and_label_columns(tmp_path):
    rows, _ = table_rows(tmp_path)
    path = write_table(tmp_path, "csv", rows)
    assert "--image" in error(path).detail
    from trusteq.errors import SettingsError

    with pytest.raises(SettingsError, match="--image"):
        load_dataset(path, TASK, columns=ColumnMap(text_a="path", text_b=None, label="label"))


def test_limit_samples_images(tmp_path):
    path = write_idx(tmp_path, grey(20), [i % 2 for i in range(20)])
    ds = load_dataset(path, TASK, label_names=["a", "b"], limit=5, seed=1)
    assert len(ds) == 5 and ds.limit == 5 and ds.n_rows == 20
    assert [int(i) for i in ds.ids] == sorted(int(i) for i in ds.ids)
    assert ds.ids != load_dataset(path, TASK, label_names=["a", "b"], limit=5, seed=2).ids
    assert len({e.key[1] for e in ds.examples}) == 5  # the pixels' digest


# ---------------------------------------------------------------------------
# the real data


@pytest.mark.skipif(not FASHION_T10K.exists(), reason="shared Fashion-MNIST not present")
def test_fashion_mnist_t10k():
    ds = load_dataset(FASHION_T10K, TASK)
    assert len(ds) == 10_000 and ds.format == "idx"
    assert {x.shape for x in ds.inputs} == {(28, 28, 1)}
    assert len(ds.label_names) == 10 and ds.label_names[0] == "t_shirt/top"
    assert Counter(e.label for e in ds.examples) == {name: 1000 for name in ds.label_names}


def test_image_columns_and_tasks_must_match(tmp_path):
    from trusteq.errors import SettingsError

    table = tmp_path / "t.csv"
    table.write_text("path,label\na.png,x\n")
    with pytest.raises(SettingsError, match="--image .* is for task image-classification"):
        load_dataset(table, "text-classification", columns=ColumnMap(None, None, "label", image="path"))
    with pytest.raises(SettingsError, match="reads images: give the image column with --image"):
        load_dataset(table, "image-classification", columns=ColumnMap("path", None, "label"))


def test_images_have_no_texts_to_train_a_text_model_on():
    from trusteq.data import Dataset, Example

    ds = Dataset([Example("0", "a#0", None, "x", image=np.zeros((2, 2, 1), np.uint8))], "image-classification",
                 ("x", "y"), "a", "0", "idx")
    with pytest.raises(DataError, match="images, not texts: .*trusteq train"):
        ds.pairs
    assert ds.texts == ds.kind == "image"


def test_digit_classes_match_by_name():
    from trusteq.errors import LabelError
    from trusteq.models import align_labels

    digits = tuple(str(i) for i in range(3))
    assert align_labels(["2", "0", "1"], digits, "m").tolist() == [1, 2, 0]  # MNIST-like: the labels are digits
    assert align_labels(["LABEL_0", "LABEL_1", "LABEL_2"], digits, "m", override=["0", "1", "2"]).tolist() == [0, 1, 2]
    with pytest.raises(LabelError, match="do not say which label"):
        align_labels(["LABEL_0", "LABEL_1"], ("cat", "dog"), "m")
