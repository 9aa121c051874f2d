"""Labelled image datasets (task ``image-classification``): three layouts, one decoding.

:func:`trusteq.data.load_dataset` calls :func:`read_images` for an image task. The layout is decided
from ``source`` and the columns: a folder is an image folder; a file with ``ColumnMap.image`` set is a
table; any other file must be an IDX images file. Formats:

``idx``
    ``source`` is an IDX images file (raw or ``.gz``). Ids ``"0"`` .. ``"n-1"``; ``text_a`` is
    ``FILE#INDEX`` (FILE: the images file's name). Digest: the images file's bytes, then the labels
    file's bytes, as stored (compressed or not).
``imagefolder``
    ``source`` is a folder in torchvision's ImageFolder layout. Id = ``text_a`` = the image's path
    relative to the folder, with ``/``; examples sorted by it. Digest: each image's relative path and
    bytes, in that order.
``columns``
    ``source`` is a CSV/TSV/JSONL/Parquet table with an image column. Ids as for text (the ``--id``
    column, else the row index); ``text_a`` is the image column's value as written. Digest: the
    table's bytes, then each image file's bytes in row order.

**IDX** (the MNIST / Fashion-MNIST format): the images file has a big-endian int32 header (magic 2051,
count, rows, cols) followed by uint8 pixels, giving images (28, 28, 1) for MNIST; its labels file lies
beside it, named with ``images-idx3`` replaced by ``labels-idx1`` (``images.idx3`` by ``labels.idx1``;
magic 2049, count, then uint8 labels). A labels file given as ``source`` is refused. The labels are
integer codes, named by ``label_names`` (code ``i`` is ``label_names[i]``). Without names, a path
whose file or folder name contains ``fashion`` (any case), with 28x28 images and codes 0..9, gets
:data:`FASHION_MNIST_LABELS`;
any other IDX pair must be given ``--label-names``.

**Image folder**: one sub-folder per class holding ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif`` or
``.webp`` files (any case, at any depth in the class folder). Class names are the sub-folder names,
normalised (:func:`trusteq.data.normalize_label`), in sorted order unless ``label_names`` gives the
order (then every folder must be named there and every name must have a folder). Names starting with
``.`` are ignored; any other file that is not an image, and any file directly in the folder, is an
error: nothing is silently left out.

**Table**: the ``image`` column of a :class:`~trusteq.data.ColumnMap` holds image paths, relative to the
table file's folder (absolute paths allowed); the label, id, header, ``label_names`` and kept columns
are read and checked as for text (:func:`trusteq.data.load_dataset`).

**Label names** are normalised (:func:`trusteq.data.normalize_label`): Fashion-MNIST's ``T-shirt/top``
is ``t_shirt/top``. A dataset needs two classes or more.

**Decoding** (:func:`decode_image`, Pillow): every image becomes a read-only uint8 array (H, W, C).
Mode ``L`` gives C = 1 and ``RGB`` C = 3. Other modes are converted: ``1`` (0/255) to ``L``; ``LA``
to ``L`` (alpha dropped); ``P``, ``PA``, ``RGBA``, ``RGBX``, ``CMYK``, ``YCbCr`` and the rest to
``RGB`` (alpha dropped, not composited); 16-bit grey (``I;16*``) to ``L`` by dividing by 257;
32-bit integer (``I``) and float (``F``) grey to ``L``: floats within 0..1 are multiplied by 255,
values within 0..255 kept, integers within 0..65535 divided by 257, anything else rescaled from its
minimum..maximum to 0..255. An animated image gives its first frame. If one dataset mixes grey and
colour images, every grey image is repeated to three channels, so a dataset has one channel count.
Sizes may differ between images (a model that needs one size refuses later).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from . import data
from .data import ColumnMap, Example, normalize_label
from .errors import DataError

__all__ = ["read_images", "decode_image", "FASHION_MNIST_LABELS"]

#: Fashion-MNIST's class names, code 0..9, as its README spells them (normalised when used).
FASHION_MNIST_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                        "Bag", "Ankle boot")

#: File name endings read as images in an image folder (compared in lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

_TASK = "image-classification"
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".parquet")
_IDX_IMAGES, _IDX_LABELS = 2051, 2049
_BUFFER = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")
# "train-images-idx3-ubyte" (and "train-images.idx3-ubyte", as some copies spell it) -> "train-labels-idx1-ubyte"
_IMAGES_PART, _LABELS_PART = re.compile(r"images([-.])idx3"), re.compile(r"labels[-.]idx1")


def read_images(
    source: str,
    columns: ColumnMap | None,
    label_names: tuple[str, ...] | None,
    skip_invalid: bool,
    keep: Sequence[str],
) -> tuple[list[Example], list[dict], tuple[str, ...], str, str]:
    """Read a labelled image dataset: an IDX pair, an image folder or a table of image paths.

    Parameters
    ----------
    source : str
        An IDX images file, a folder of class folders, or a CSV/TSV/JSONL/Parquet table.
    columns : ColumnMap or None
        For a table: ``image`` and ``label`` (``id``, ``header``, ``label_names`` optional).
    label_names : tuple of str or None
        Names of the integer label codes 0..K-1, or (image folder) the class order.
    skip_invalid : bool
        Drop invalid rows and undecodable images instead of refusing the data.
    keep : sequence of str
        Table columns to keep on each example (:attr:`Example.columns`); a table only.

    Returns
    -------
    examples : list of Example
        In a stable order (IDX: file order; folder: sorted relative path; table: row order); each
        ``image`` a read-only uint8 array (H, W, C), C in {1, 3}, one C for the whole dataset.
    dropped : list of dict
        With ``skip_invalid``: ``row`` (None in a folder), ``id``, ``field``, ``reason``.
    label_names : tuple of str
        Normalised class names, in class order, two or more.
    sha256 : str
        Hex digest of the content read (see the module docstring).
    format : str
        ``"idx"``, ``"imagefolder"`` or ``"columns"``.

    Raises
    ------
    DataError
        ``source`` missing; a labels file given for an images file, no labels file beside it, a wrong
        magic number, counts that differ, truncated data; unnamed integer codes, codes without a name;
        a non-image or stray file, an undecodable image, fewer than two classes; a table without
        ``--image`` and ``--label``, or one of the table errors of :func:`trusteq.data.load_dataset`.
        The message names the file, and the row and field where there is one.
    """
    path = Path(source)
    if not path.exists():
        raise DataError(source, "no such file or folder")
    if columns is not None and columns.image is not None:
        if path.is_dir():
            raise DataError(source, "--image names a column of a table, but this is a folder (an image folder "
                                    "needs no columns)")
        return _read_table(path, columns, label_names, skip_invalid, keep)
    if _suffix(path) in _TABLE_SUFFIXES:
        raise DataError(source, "a table of images needs a column mapping: --image COL (the image paths) and "
                                "--label COL")
    if keep:
        raise DataError(source, f"only a table has columns to keep; got {list(keep)}", field=str(keep[0]))
    if path.is_dir():
        return _read_folder(path, label_names, skip_invalid)
    return _read_idx(path, label_names, skip_invalid)


def decode_image(path: str | Path) -> np.ndarray:
    """The pixels of an image file, converted as the module docstring says.

    Returns
    -------
    ndarray of uint8, shape (H, W, C), C in {1, 3}
        Read-only; C = 1 for grey-scale images, 3 for colour.

    Raises
    ------
    DataError
        Naming the file: it cannot be read, or Pillow cannot decode it.
    """
    return _decode(path, _read_bytes(path, "cannot read image"))


# ---------------------------------------------------------------------------
# IDX


def _read_idx(path: Path, label_names, skip_invalid: bool):
    """Examples of an IDX images file and the labels file beside it (see :func:`read_images`)."""
    if _LABELS_PART.search(path.name):
        raise DataError(path, "this is an IDX labels file; give the images file ('images-idx3' in its name): its "
                              "labels are read from beside it")
    if not _IMAGES_PART.search(path.name):
        raise DataError(path, "not an image folder, a table or an IDX images file (whose name contains "
                              "'images-idx3', its labels file's 'labels-idx1')")
    labels_path = path.with_name(_IMAGES_PART.sub(r"labels\1idx1", path.name))
    if not labels_path.is_file():
        raise DataError(path, f"no labels file beside it (expected {labels_path.name})")
    image_bytes, label_bytes = _read_bytes(path), _read_bytes(labels_path)
    images = _idx_array(path, image_bytes, _IDX_IMAGES, 3)
    codes = _idx_array(labels_path, label_bytes, _IDX_LABELS, 1)
    if len(codes) != len(images):
        raise DataError(labels_path, f"holds {len(codes)} labels but {path.name} holds {len(images)} images")
    names = _idx_names(path, labels_path, images.shape[1:], codes, label_names)
    images = images[..., None]
    images.flags.writeable = False
    normal = [normalize_label(n) for n in names]
    examples, dropped = [], []
    for i, code in enumerate(codes.tolist()):
        if code >= len(names):
            err = DataError(labels_path, f"unknown label code {code}; expected 0..{len(names) - 1} "
                                         f"({', '.join(names)})", row=i, field="label")
            if not skip_invalid:
                raise err
            dropped.append({"row": i, "id": str(i), "field": "label", "reason": err.detail})
            continue
        examples.append(Example(str(i), f"{path.name}#{i}", None, normal[code], image=images[i]))
    digest = hashlib.sha256(image_bytes)
    digest.update(label_bytes)
    return _checked(path, examples, dropped), dropped, _class_names(path, normal), digest.hexdigest(), "idx"


def _idx_array(path: Path, content: bytes, magic: int, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file's bytes (gzipped or raw), shape given by its header."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(path, f"not a readable gzip file ({exc})") from None
    size = 4 * (1 + ndim)
    if len(content) < size:
        raise DataError(path, f"not an IDX file: {len(content)} bytes, shorter than its {size}-byte header")
    header = np.frombuffer(content, ">i4", count=1 + ndim)
    if int(header[0]) != magic:
        kind = "images" if magic == _IDX_IMAGES else "labels"
        raise DataError(path, f"not an IDX {kind} file: magic number {int(header[0])}, expected {magic}")
    shape = tuple(int(d) for d in header[1:])
    n = int(np.prod(shape))
    if len(content) - size != n:
        state = "truncated" if len(content) - size < n else "longer than its header says"
        raise DataError(path, f"{state}: the header promises {n} bytes of data {shape}, the file has "
                              f"{len(content) - size}")
    return np.frombuffer(content, np.uint8, count=n, offset=size).reshape(shape)


def _idx_names(path: Path, labels_path: Path, size: tuple, codes: np.ndarray, label_names) -> tuple[str, ...]:
    """The names of an IDX pair's integer codes: ``label_names``, Fashion-MNIST's, else an error."""
    if label_names is not None:
        return tuple(label_names)
    top = int(codes.max()) if len(codes) else -1
    if "fashion" in f"{path.parent.name}/{path.name}".lower() and size == (28, 28) and top <= 9:
        return FASHION_MNIST_LABELS
    raise DataError(labels_path, f"labels are integer class codes 0..{top}, not names; name them in code order "
                                 f"with --label-names", field="label")


# ---------------------------------------------------------------------------
# image folder


def _read_folder(root: Path, label_names, skip_invalid: bool):
    """Examples of an ImageFolder layout: one sub-folder per class (see :func:`read_images`)."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise DataError(stray[0], f"a file directly in the image folder {root}; images go in one sub-folder per "
                                  f"class")
    folders = _class_folders(root, entries, label_names)
    names = _class_names(root, list(folders))
    files = sorted((_relative(f, root), f, name) for name, folder in folders.items() for f in _images_in(folder))
    h = hashlib.sha256()
    examples, dropped = [], []
    for rel, file, name in files:
        content = _read_bytes(file)
        h.update(rel.encode() + b"\0" + content)
        try:
            examples.append(Example(rel, rel, None, name, image=_decode(file, content)))
        except DataError as err:
            if not skip_invalid:
                raise
            dropped.append({"row": None, "id": rel, "field": "image", "reason": err.detail})
    return _checked(root, examples, dropped), dropped, names, h.hexdigest(), "imagefolder"


def _class_folders(root: Path, folders: list[Path], label_names) -> dict[str, Path]:
    """Class name -> folder, in class order (sorted names, or ``label_names``'s order)."""
    by_name: dict[str, Path] = {}
    for folder in folders:
        name = normalize_label(folder.name)
        if name in by_name:
            raise DataError(folder, f"folders '{by_name[name].name}' and '{folder.name}' are one class '{name}'")
        by_name[name] = folder
    if label_names is None:
        return {name: by_name[name] for name in sorted(by_name)}
    order = [normalize_label(n) for n in label_names]
    unnamed = sorted(set(by_name) - set(order))
    if unnamed:
        raise DataError(by_name[unnamed[0]], f"class folder '{by_name[unnamed[0]].name}' is not among the label "
                                             f"names {list(label_names)}")
    missing = [n for n in order if n not in by_name]
    if missing:
        raise DataError(root, f"no class folder for label name(s) {missing}; the folders are "
                              f"{sorted(p.name for p in folders)}")
    return {name: by_name[name] for name in order}


def _images_in(folder: Path) -> list[Path]:
    """The image files at any depth in a class folder, leaving out hidden names; any other file is an error."""
    found = []
    for file in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in file.relative_to(folder).parts) or file.is_dir():
            continue
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(file, f"not an image file (an image folder holds {', '.join(IMAGE_SUFFIXES)} files)")
        found.append(file)
    if not found:
        raise DataError(folder, "a class folder with no images")
    return found


def _relative(file: Path, root: Path) -> str:
    return file.relative_to(root).as_posix()


# ---------------------------------------------------------------------------
# table of image paths


def _read_table(path: Path, columns: ColumnMap, label_names, skip_invalid: bool, keep: Sequence[str]):
    """Examples of a table whose ``columns.image`` holds image paths (see :func:`read_images`)."""
    src = str(path)
    if columns.label is None:
        raise DataError(src, "a table of images needs --image COL (the image paths) and --label COL")
    if not path.is_file():
        raise DataError(src, "not a regular file")
    table = _read_bytes(path, "cannot read file")
    mapping = ColumnMap(text_a=columns.image, text_b=None, label=columns.label, id=columns.id,
                        header=columns.header, label_names=columns.label_names)
    raw = data._read_file(src, table, mapping, keep)
    raw.codes = data._codes(src, label_names if label_names is not None else raw.codes, _TASK)
    examples, dropped = data._validate(src, raw, _TASK, skip_invalid)
    rows: dict[str, int] = {}
    for row, rec in raw.records:
        rows.setdefault(rec["__id__"], row)
    h = hashlib.sha256(table)
    decoded = []
    for ex in examples:
        file = Path(ex.text_a) if Path(ex.text_a).is_absolute() else path.parent / ex.text_a
        try:
            content = _read_bytes(file)
            h.update(content)
            decoded.append(replace(ex, image=_decode(file, content)))
        except DataError as err:
            why = err.detail.removeprefix("cannot read file: ")
            bad = DataError(src, f"cannot read image '{ex.text_a}': {why}", row=rows[ex.id],
                            field=str(columns.image))
            if not skip_invalid:
                raise bad from None
            dropped.append({"row": bad.row, "id": ex.id, "field": bad.field, "reason": bad.detail})
    decoded = _checked(src, decoded, dropped)
    dropped.sort(key=lambda d: d["row"])
    return decoded, dropped, data._label_set(src, _TASK, decoded, raw.codes), h.hexdigest(), "columns"


# ---------------------------------------------------------------------------
# shared


def _suffix(path: Path) -> str:
    """The file's type suffix in lower case, ignoring a final ``.gz``."""
    name = path.name.lower().removesuffix(".gz")
    return Path(name).suffix


def _read_bytes(path: Path | str, what: str = "cannot read file") -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(path, f"{what}: {exc.strerror or exc}") from None


def _checked(source, examples: list[Example], dropped: list[dict]) -> list[Example]:
    """``examples`` with one channel count (grey repeated to RGB when both occur); none left is an error."""
    if not examples:
        raise DataError(source, f"no valid images ({len(dropped)} invalid rows dropped)")
    channels = {ex.image.shape[2] for ex in examples}
    if channels == {1, 3}:
        examples = [replace(ex, image=_read_only(np.repeat(ex.image, 3, axis=2))) if ex.image.shape[2] == 1
                    else ex for ex in examples]
    return examples


def _class_names(source, names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as the class order; fewer than two classes is an error."""
    if len(names) < 2:
        raise DataError(source, f"only {len(names)} class(es) {list(names)}; a classifier needs two or more",
                        field="label")
    return tuple(names)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _decode(path, content: bytes) -> np.ndarray:
    """The pixels of an image file's bytes as uint8 (H, W, C); DataError naming ``path`` if Pillow fails."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as img:
            img.load()
            mode = img.mode
            if mode in ("L", "RGB"):
                pixels = np.array(img)
            elif mode.startswith("I") or mode == "F":
                pixels = _grey_to_uint8(np.array(img), mode)
            elif mode in ("1", "LA", "La"):
                pixels = np.array(img.convert("L"))
            else:
                has_alpha = mode in ("P", "PA") and "transparency" in img.info
                pixels = np.array((img.convert("RGBA") if has_alpha else img).convert("RGB"))
    except UnidentifiedImageError:
        raise DataError(path, "cannot decode image (not an image format Pillow recognises)") from None
    except Exception as exc:  # Pillow raises many types for a bad or unsupported file
        why = _BUFFER.sub("the file", str(exc))  # no memory address in a message
        raise DataError(path, f"cannot decode image ({type(exc).__name__}: {why})") from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return _read_only(np.ascontiguousarray(pixels, dtype=np.uint8))


def _grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float grey values scaled to 0..255 (rules in the module docstring)."""
    values = values.astype(np.float64)
    if mode.startswith("I;16"):
        return np.rint(values / 257).astype(np.uint8)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode == "F" and low >= 0 and high <= 1:
        values = values * 255
    elif low >= 0 and high <= 255:
        pass
    elif mode != "F" and low >= 0 and high <= 65535:
        values = values / 257
    else:
        values = (values - low) * (255 / (high - low))
    return np.rint(np.clip(values, 0, 255)).astype(np.uint8)


data.READERS.update({task: read_images for task in data.IMAGE_TASKS})
