"""Labelled datasets of sentence pairs or single texts: readers, label names and stable example ids.

Every reader returns a :class:`Dataset` whose examples carry a stable id, the two
sentences (or one text, ``text_b`` None) and the gold label *name* (never a bare
integer code: codes differ between files, see ``../shared/data/README.md``).

A *task* says what is classified and with which labels: ``nli`` and ``pi``
are sentence-pair tasks with standard label names (:data:`TASKS`);
``text-classification`` (the Hugging Face pipeline name) classifies single
texts or pairs into the labels the data names (names in the file, integer
codes named with ``label_names``, or a recognised format's standard names).

Known formats are recognised by their header line:

==============  =====================================  ====================  ==========
format          header                                 labels                quoting
==============  =====================================  ====================  ==========
``snli``        ``premise hypothesis label``           0/1/2 = e/n/c         csv
``glue``        ``index label sentence1 sentence2``    MRPC 0/1, RTE 0/1      csv
``taxinli``     ``... prem hyp label pairID ...``      names                 none
``msr``         ``Quality #1 ID #2 ID #1 String ...``  0/1 (BOM, CRLF)       none
``sick``        ``pair_ID sentence_A sentence_B ...``  names (upper case)    csv
``ag_news``     ``index text label`` (single text)     0-3 = World/Sports/   csv
                                                       Business/Sci/Tech
``sst2``        ``sentence label index`` (single)      0/1 = neg/pos         csv
==============  =====================================  ====================  ==========

Any other CSV/TSV/JSONL/Parquet file is read with an explicit
:class:`ColumnMap`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError, SettingsError

__all__ = [
    "TASKS",
    "PAIR_TASKS",
    "IMAGE_TASKS",
    "READERS",
    "Example",
    "Dataset",
    "ColumnMap",
    "load_dataset",
    "as_dataset",
    "normalize_label", "check_label_names",
    "file_sha256",
]

#: Standard label names of each task, in trusteq's canonical class order.
#: ``nli`` has a 3-way form (SNLI, MNLI, SICK) and a 2-way form (RTE);
#: ``text-classification`` has none: its labels come from the data.
TASKS: dict[str, tuple[tuple[str, ...], ...]] = {
    "nli": (("entailment", "neutral", "contradiction"), ("entailment", "not_entailment")),
    "pi": (("not_paraphrase", "paraphrase"),),
    "text-classification": (),
    "image-classification": (),
}

#: Tasks whose examples are images (:attr:`Example.image`); read by :mod:`trusteq.images`.
IMAGE_TASKS = ("image-classification",)

#: Readers of the tasks whose data are not text, by task, registered by the module that reads them
#: (:func:`trusteq.images.read_images` for :data:`IMAGE_TASKS`): ``reader(source, columns, label_names,
#: skip_invalid, keep)`` -> (examples, dropped rows, label names in class order, SHA-256 of what was read, format).
READERS: dict = {}

#: Tasks whose examples must be sentence pairs.
PAIR_TASKS = ("nli", "pi")

_SYNONYMS = {
    "entails": "entailment",
    "entailed": "entailment",
    "non_entailment": "not_entailment",
    "contradicts": "contradiction",
    "contradictory": "contradiction",
    "equivalent": "paraphrase",
    "duplicate": "paraphrase",
    "is_duplicate": "paraphrase",
    "not_equivalent": "not_paraphrase",
    "non_paraphrase": "not_paraphrase",
    "not_duplicate": "not_paraphrase",
    "non_equivalent": "not_paraphrase",
}

# Integer codes of the known formats, by task.
_GLUE_CODES = {"pi": ("not_paraphrase", "paraphrase"), "nli": ("entailment", "not_entailment")}
_SNLI_CODES = ("entailment", "neutral", "contradiction")
_AG_NEWS_CODES = ("World", "Sports", "Business", "Sci/Tech")
_SST2_CODES = ("negative", "positive")


def check_label_names(names) -> None:
    """Refuse label names two of which are one label once normalised (:func:`normalize_label`).

    Raises
    ------
    SettingsError
        "label names [...] repeat a name".
    """
    if len({normalize_label(n) for n in names}) != len(names):
        raise SettingsError(f"label names {list(names)} repeat a name")


def normalize_label(name: str) -> str:
    """Return the standard spelling of a label name.

    Lower-cases, turns spaces and hyphens into underscores and maps common
    synonyms (``equivalent`` -> ``paraphrase``, ``non_entailment`` ->
    ``not_entailment``, ...). Unknown names are returned normalised but
    otherwise unchanged.
    """
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    return _SYNONYMS.get(key, key)


@dataclass(frozen=True)
class Example:
    """One labelled sentence pair, single text or image.

    Attributes
    ----------
    id : str
        Stable identifier, unique within its dataset (from the file's id
        column, else the 0-based data row index).
    text_a : str
        First sentence (premise / sentence 1), or the single text; for an
        image, where it was read (the path as the data names it, or
        ``FILE#INDEX`` in an IDX file), shown in reports.
    text_b : str or None
        Second sentence; None for a single text or an image.
    label : str
        Gold label, a normalised name (:func:`normalize_label`).
    columns : tuple of (str, str)
        Other columns kept from the file (``load_dataset(keep=...)``), as
        ``(column, value)``; a missing value is ``""``.
    image : ndarray of uint8, shape (H, W, C), C in {1, 3}, or None
        The pixels of an image example (grey-scale C = 1, RGB C = 3); None for text.
    """

    id: str
    text_a: str
    text_b: str | None
    label: str
    columns: tuple[tuple[str, str], ...] = ()
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    def column(self, name: str) -> str:
        """The kept column ``name``'s value (KeyError if it was not kept)."""
        return dict(self.columns)[name]

    @property
    def input(self):
        """What a model is given: the image (H, W, C) uint8, else the pair ``(text_a, text_b)``."""
        return self.image if self.image is not None else (self.text_a, self.text_b)

    @property
    def key(self) -> tuple:
        """The example's content as cache-key parts: ``(text_a, text_b)``; for an image, its pixels' SHA-256,
        shape and dtype (not where it was read: the same pixels from a gzipped or raw file share a key)."""
        if self.image is None:
            return self.text_a, self.text_b
        pixels = np.ascontiguousarray(self.image)
        return "image", hashlib.sha256(pixels.tobytes()).hexdigest(), list(pixels.shape), str(pixels.dtype)


@dataclass
class Dataset:
    """A list of examples with the task's label names in canonical order.

    Attributes
    ----------
    examples : list of Example
    task : str
        ``"nli"``, ``"pi"`` or ``"text-classification"``.
    label_names : tuple of str
        Class order used for every probability matrix in trusteq, shape (K,).
    source : str
        File path or dataset name it was read from.
    sha256 : str
        Hash of the file bytes (or of the dataset name and split).
    format : str
        Recognised format (``snli``, ``glue``, ``taxinli``, ``msr``, ``sick``,
        ``ag_news``, ``sst2``, ``columns``, ``hf``).
    n_rows : int
        Number of data rows in the source before any ``limit``.
    limit : int or None
        Size of the seeded sample, if one was taken.
    dropped : list of dict
        Rows dropped with ``skip_invalid``: ``row``, ``id``, ``field``, ``reason``.
    """

    examples: list[Example]
    task: str
    label_names: tuple[str, ...]
    source: str
    sha256: str
    format: str
    n_rows: int = 0
    limit: int | None = None
    dropped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.examples]

    @property
    def pairs(self) -> list[tuple[str, str | None]]:
        """Text inputs, shape (n,): ``(text_a, text_b)``, or ``(text, None)`` for single texts.

        Raises
        ------
        DataError
            The examples are images (text models cannot be trained or run on them; see :attr:`inputs`).
        """
        if self.kind == "image":
            raise DataError(self.source, "these examples are images, not texts: image classifiers are trained with "
                                         "trusteq train (trusteq.workshop.images) and compared with --task "
                                         "image-classification")
        return [(e.text_a, e.text_b) for e in self.examples]

    @property
    def inputs(self) -> list:
        """Model inputs, length n (:attr:`Example.input`): pairs, or images (H, W, C) uint8."""
        return [e.input for e in self.examples]

    @property
    def texts(self) -> str:
        """The input kind (:attr:`kind`), under its earlier name."""
        return self.kind

    @property
    def kind(self) -> str:
        """The input kind: ``"image"``, ``"single"`` (single texts) or ``"pair"``."""
        if self.examples and self.examples[0].image is not None:
            return "image"
        return "single" if self.examples and self.examples[0].text_b is None else "pair"

    @property
    def y(self) -> np.ndarray:
        """Gold class indices into :attr:`label_names`, shape (n,), dtype int64."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return np.array([index[e.label] for e in self.examples], dtype=np.int64)


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a generic file hold the pair (or the single text), the label and the id.

    Each column is a header name, or a 0-based index (as ``int`` or a string
    of digits) when the file has no header line (``header=False``).
    ``text_b`` None means single texts in ``text_a`` (``--text``).
    ``label_names`` names integer label codes: code ``i`` is
    ``label_names[i]``. ``image`` (``--image``, task ``image-classification``)
    is the column of image paths, relative to the file's folder; ``text_a``
    and ``text_b`` are then None.
    """

    text_a: str | int | None
    text_b: str | int | None
    label: str | int
    id: str | int | None = None
    header: bool = True
    label_names: tuple[str, ...] | None = None
    image: str | int | None = None


@dataclass
class _Raw:
    """Rows as read from a file, before validation."""

    fmt: str
    records: list[tuple[int, dict]]  # (row number for messages, record)
    text_a: str | int
    text_b: str | int | None
    label: str | int
    id: str | int | None
    codes: tuple[str, ...] | str | None = None
    columns: list = field(default_factory=list)


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_dataset(
    source: str | Path,
    task: str,
    columns: ColumnMap | None = None,
    limit: int | None = None,
    seed: int = 0,
    split: str = "test",
    skip_invalid: bool = False,
    label_names: Sequence[str] | None = None,
    keep: Sequence[str] = (),
) -> Dataset:
    """Read a labelled dataset of sentence pairs or single texts.

    Parameters
    ----------
    source : str or path
        A file (known format, or CSV/TSV/JSONL/Parquet with ``columns``), or
        ``hf:NAME[:CONFIG]`` (e.g. ``hf:glue:mrpc``) for a Hugging Face ``datasets`` dataset (needs
        ``pip install trusteq[hf]`` and a network or a local copy).
    task : {"nli", "pi", "text-classification"}
        Natural language inference or paraphrase identification (pairs, the
        standard labels of :data:`TASKS`), or any classification of single
        texts or pairs into the labels the data names.
    columns : ColumnMap, optional
        Column mapping; required for files of no known format
        (``text_b=None`` for single texts).
    limit : int, optional
        Keep a seeded random sample of this many examples, in file order.
    seed : int
        Seed of that sample.
    split : str
        Split of a Hugging Face dataset.
    skip_invalid : bool
        Drop invalid rows (missing or unknown label, empty text, undecodable
        bytes, wrong field count, duplicate id) instead of refusing the file;
        each dropped row is listed in :attr:`Dataset.dropped`.
    label_names : sequence of str, optional
        Names of the integer label codes 0..K-1 (``--label-names``), in that
        order; overrides a known format's codes and ``columns.label_names``.
        Under ``text-classification`` it is also the class order.
    keep : sequence of str
        Other columns to keep on each example (:attr:`Example.columns`), e.g.
        MNLI's ``genre`` for slices; each must exist in the file.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unreadable or empty file, undecodable bytes, missing column, empty
        text, missing or unknown label, duplicate id, single texts for a pair
        task, fewer than two labels. The message names the file, the row
        (1-based line, header = line 1) and the field.
    SettingsError
        Unknown ``task``; repeated ``label_names``; ``limit < 1`` (a ``ValueError`` too).
    """
    if task not in TASKS:
        raise SettingsError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if label_names is not None:
        label_names = tuple(str(n) for n in label_names)
        check_label_names(label_names)
    src = str(source)
    if columns is not None and (columns.image is not None) != (task in IMAGE_TASKS):
        raise SettingsError(f"--image (a column of image paths) is for task image-classification, not '{task}'"
                            if columns.image is not None else
                            f"task '{task}' reads images: give the image column with --image, not text columns")
    if task in READERS:
        examples, dropped, label_names, digest, fmt = READERS[task](src, columns, label_names, skip_invalid, keep)
        return _sample(Dataset(examples, task, label_names, src, digest, fmt, len(examples) + len(dropped),
                               None, dropped), limit, seed)
    if src.startswith("hf:"):
        raw, digest = _read_hf(src[3:], split, columns, keep)
    else:
        path = Path(src)
        if not path.is_file():
            raise DataError(src, "no such file" if not path.exists() else "not a regular file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(src, f"cannot read file: {exc.strerror or exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        raw = _read_file(src, data, columns, keep)
    _check_texts(src, raw, task)
    raw.codes = _codes(src, label_names if label_names is not None else raw.codes, task)
    examples, dropped = _validate(src, raw, task, skip_invalid)
    n_rows = len(examples) + len(dropped)
    label_names = _label_set(src, task, examples, raw.codes)
    return _sample(Dataset(examples, task, label_names, src, digest, raw.fmt, n_rows, None, dropped), limit, seed)


def _sample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """``dataset`` cut to a seeded sample of ``limit`` examples in file order (``limit`` None: all of it)."""
    if limit is None:
        return dataset
    if limit < 1:
        raise SettingsError(f"limit must be >= 1, got {limit}")
    dataset.limit = limit
    if limit < len(dataset):
        keep = np.sort(np.random.default_rng(seed).choice(len(dataset), size=limit, replace=False))
        dataset.examples = [dataset.examples[i] for i in keep]
    return dataset


def _check_texts(path: str, raw: _Raw, task: str) -> None:
    """Refuse single texts for a pair task, naming the file and the text column."""
    if raw.text_b is None and task in PAIR_TASKS:
        raise DataError(path, f"task '{task}' classifies sentence pairs but the data has single texts (column "
                              f"{raw.text_a!r}); use --task text-classification, or give the pair with --text-a and "
                              f"--text-b", row=1, field=str(raw.text_a))


def as_dataset(source, task: str, columns: ColumnMap | None = None,
               label_names: Sequence[str] | None = None) -> Dataset:
    """``source`` itself if it is a :class:`Dataset`, else :func:`load_dataset` of it (same errors)."""
    if isinstance(source, Dataset):
        return source
    return load_dataset(source, task, columns=columns, label_names=label_names)


# ---------------------------------------------------------------------------
# reading


def _decode(path: str, data: bytes) -> str:
    """UTF-8 text; undecodable bytes survive as surrogate escapes, found per row by ``_validate``."""
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _read_file(path: str, data: bytes, columns: ColumnMap | None, keep: Sequence[str] = ()) -> _Raw:
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        if columns is None:
            raise DataError(path, "a Parquet file needs a column mapping (--text-a, --text-b or --text, and --label)")
        return _read_parquet(path, data, columns, keep)
    text = _decode(path, data)
    if not text.strip():
        raise DataError(path, "the file is empty")
    if suffix in (".jsonl", ".ndjson"):
        if columns is None:
            raise DataError(path, "a JSONL file needs a column mapping (--text-a, --text-b or --text, and --label)")
        return _read_jsonl(path, text, columns, keep)
    delimiter = "," if suffix == ".csv" else "\t"
    first = text.splitlines()[0]
    header = first.split(delimiter)
    if columns is None:
        known = _known_format(header)
        if known is None:
            raise DataError(
                path,
                f"unrecognised header {first[:120]!r}; give the columns with --text-a and --text-b (pairs) or "
                f"--text (single texts), and --label",
                row=1,
            )
        fmt, quoting, ta, tb, lab, id_col, codes = known
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting))
        return _records(path, fmt, rows, True, ta, tb, lab, id_col, codes, keep)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return _records(
        path, "columns", rows, columns.header, columns.text_a, columns.text_b, columns.label, columns.id,
        columns.label_names, keep,
    )


def _known_format(header: list[str]):
    h = [c.strip() for c in header]
    if h == ["premise", "hypothesis", "label"]:
        return "snli", csv.QUOTE_MINIMAL, "premise", "hypothesis", "label", None, _SNLI_CODES
    if h == ["index", "label", "sentence1", "sentence2"]:
        return "glue", csv.QUOTE_MINIMAL, "sentence1", "sentence2", "label", "index", "glue"
    if h[:1] == ["Quality"] and "#1 String" in h and "#2 String" in h:
        return "msr", csv.QUOTE_NONE, "#1 String", "#2 String", "Quality", ("#1 ID", "#2 ID"), ("not_paraphrase", "paraphrase")
    if {"prem", "hyp", "label", "pairID"} <= set(h):
        return "taxinli", csv.QUOTE_NONE, "prem", "hyp", "label", h[0], None
    if {"pair_ID", "sentence_A", "sentence_B", "entailment_label"} <= set(h):
        return "sick", csv.QUOTE_MINIMAL, "sentence_A", "sentence_B", "entailment_label", "pair_ID", None
    if h == ["index", "text", "label"]:
        return "ag_news", csv.QUOTE_MINIMAL, "text", None, "label", "index", _AG_NEWS_CODES
    if h == ["sentence", "label", "index"]:
        return "sst2", csv.QUOTE_MINIMAL, "sentence", None, "label", "index", _SST2_CODES
    return None


def _records(path, fmt, rows, header, ta, tb, lab, id_col, codes, keep=()) -> _Raw:
    if header:
        if not rows:
            raise DataError(path, "the file is empty")
        names = [c.strip() for c in rows[0]]
        body = rows[1:]
        first_line = 2
    else:
        names = list(range(max(len(r) for r in rows))) if rows else []
        body = rows
        first_line = 1
    if not body:
        raise DataError(path, "the file has a header line but no data rows")
    wanted = [c for c in (ta, tb, lab) if c is not None]
    id_cols = id_col if isinstance(id_col, tuple) else ((id_col,) if id_col is not None else ())
    keys = [_column_index(path, col, names, header) for col in [*wanted, *id_cols]]
    kept = {col: _column_index(path, col, names, header) for col in keep}
    records = []
    for offset, row in enumerate(body):
        line = first_line + offset
        rec = {}
        if not any(cell.strip() for cell in row):
            rec["__error__"] = (None, "blank line where a data row was expected")
        elif len(row) != len(names) and header:
            rec["__error__"] = (None, f"expected {len(names)} fields, found {len(row)}")
        for col, key in zip([*wanted, *id_cols], keys):
            rec[col] = row[key] if key < len(row) else None
        rec["__keep__"] = {col: row[key] if key < len(row) else "" for col, key in kept.items()}
        if id_cols:
            parts = [rec.pop(c) for c in id_cols]
            rec["__id__"] = "-".join(p or "" for p in parts)
        else:
            rec["__id__"] = str(offset)
        records.append((line, rec))
    return _Raw(fmt, records, ta, tb, lab, id_col, codes, names)


def _column_index(path: str, col, names: list, header: bool) -> int:
    if not header:
        try:
            idx = int(col)
        except (TypeError, ValueError):
            raise DataError(path, f"without a header line, columns are 0-based indices; got {col!r}", field=str(col)) from None
        if idx < 0 or idx >= len(names):
            raise DataError(path, f"column index {idx} is out of range (rows have {len(names)} fields)", field=str(col))
        return idx
    if col in names:
        return names.index(col)
    raise DataError(path, f"missing column; the header has {names}", row=1, field=str(col))


def _read_jsonl(path: str, text: str, columns: ColumnMap, keep: Sequence[str] = ()) -> _Raw:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = {"__id__": str(len(records))}
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj, rec["__error__"] = {}, (None, f"not valid JSON ({exc.msg})")
        if not isinstance(obj, dict):
            obj, rec["__error__"] = {}, (None, "expected a JSON object per line")
        for col in (columns.text_a, columns.text_b, columns.label, columns.id):
            if col is None:
                continue
            if col not in obj and "__error__" not in rec:
                rec["__error__"] = (str(col), f"missing key; the object has {sorted(obj)}")
            rec[col] = obj.get(col)
        if columns.id is not None and obj.get(columns.id) is not None:
            rec["__id__"] = str(obj[columns.id])
        for col in keep:
            if col not in obj and "__error__" not in rec:
                rec["__error__"] = (str(col), f"missing key; the object has {sorted(obj)}")
        rec["__keep__"] = {col: _text(obj.get(col)) for col in keep}
        records.append((line_no, rec))
    return _Raw("columns", records, columns.text_a, columns.text_b, columns.label, columns.id, columns.label_names)


def parquet_table(path: str, data: bytes):
    """The pyarrow Table of a Parquet file's bytes. Raises DataError: unreadable, or no rows."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(path, f"not a readable Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise DataError(path, "the file has no rows")
    return table


def _read_parquet(path: str, data: bytes, columns: ColumnMap, keep: Sequence[str] = ()) -> _Raw:
    table = parquet_table(path, data)
    names = table.column_names
    wanted = [c for c in (columns.text_a, columns.text_b, columns.label, columns.id) if c is not None]
    for col in [*wanted, *keep]:
        if col not in names:
            raise DataError(path, f"missing column; the file has {names}", field=str(col))
    cols = {c: table.column(c).to_pylist() for c in [*wanted, *keep]}
    records = []
    for i in range(table.num_rows):
        rec = {c: cols[c][i] for c in wanted}
        rec["__keep__"] = {c: _text(cols[c][i]) for c in keep}
        rec["__id__"] = str(rec.pop(columns.id)) if columns.id is not None else str(i)
        records.append((i, rec))
    return _Raw("columns", records, columns.text_a, columns.text_b, columns.label, columns.id, columns.label_names)


def _read_hf(name: str, split: str, columns: ColumnMap | None, keep: Sequence[str] = ()):
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise DataError(f"hf:{name}", "reading Hugging Face datasets needs `pip install trusteq[hf]`") from None
    import datasets

    path, _, config = name.partition(":")
    try:
        ds = datasets.load_dataset(path, config or None, split=split)
    except Exception as exc:
        raise DataError(f"hf:{name}", f"cannot load split {split!r} ({exc})") from None
    cols = columns or _guess_hf_columns(name, ds.column_names)
    feature = ds.features.get(cols.label)
    codes = tuple(feature.names) if hasattr(feature, "names") else cols.label_names
    records = []
    for i, row in enumerate(ds):
        rec = {c: row[c] for c in (cols.text_a, cols.text_b, cols.label) if c is not None}
        rec["__keep__"] = {c: _text(row.get(c)) for c in keep}
        rec["__id__"] = str(row[cols.id]) if cols.id is not None else str(i)
        records.append((i, rec))
    digest = hashlib.sha256(f"hf:{name}:{split}:{getattr(ds, '_fingerprint', '')}".encode()).hexdigest()
    return _Raw("hf", records, cols.text_a, cols.text_b, cols.label, cols.id, codes), digest


def _guess_hf_columns(name: str, names: list[str]) -> ColumnMap:
    for a, b in (("premise", "hypothesis"), ("sentence1", "sentence2"), ("question1", "question2"),
                 ("sentence", None), ("text", None)):
        if a in names and (b is None or b in names) and "label" in names:
            return ColumnMap(a, b, "label", "idx" if "idx" in names else None)
    raise DataError(f"hf:{name}", f"cannot tell the text columns among {names}; give --text-a and --text-b, or "
                                  f"--text, and --label")


# ---------------------------------------------------------------------------
# validation


def _codes(path: str, codes, task: str) -> tuple[str, ...] | None:
    """Names of the integer label codes: a GLUE file's depend on its dataset, so on the task."""
    if codes != "glue":
        return codes
    if task in _GLUE_CODES:
        return _GLUE_CODES[task]
    raise DataError(path, "a GLUE file codes its labels 0/1 per dataset (MRPC: not_paraphrase,paraphrase; RTE: "
                          "entailment,not_entailment); name them with --label-names", row=1, field="label")


def _validate(path: str, raw: _Raw, task: str, skip_invalid: bool) -> tuple[list[Example], list[dict]]:
    """Examples of the valid records, and the dropped ones (only with ``skip_invalid``); ``raw.codes`` resolved."""
    codes = raw.codes
    # None: any name (text-classification without codes); with codes, only their names.
    allowed = {name for names in TASKS[task] for name in names} or (
        {normalize_label(c) for c in codes} if codes is not None else None)
    examples: list[Example] = []
    dropped: list[dict] = []
    seen: dict[str, int] = {}
    for row, rec in raw.records:
        try:
            examples.append(_example(path, row, rec, raw, codes, allowed, task, seen))
        except DataError as err:
            if not skip_invalid:
                raise
            dropped.append({"row": row, "id": rec.get("__id__"), "field": err.field, "reason": err.detail})
    if not examples:
        raise DataError(path, f"no valid rows ({len(dropped)} invalid rows dropped)")
    return examples, dropped


def _example(path, row, rec, raw, codes, allowed, task, seen) -> Example:
    if "__error__" in rec:
        field_name, message = rec["__error__"]
        raise DataError(path, message, row=row, field=field_name)
    for col in (raw.text_a, raw.text_b, raw.label, raw.id if isinstance(raw.id, (str, int)) else None):
        if col is not None and isinstance(rec.get(col), str) and _UNDECODABLE.search(rec[col]):
            raise DataError(path, "bytes are not valid UTF-8 (expected UTF-8 text)", row=row, field=str(col))
    if _UNDECODABLE.search(rec["__id__"]):
        raise DataError(path, "bytes are not valid UTF-8 (expected UTF-8 text)", row=row, field="id")
    texts = []
    for col in (raw.text_a, raw.text_b):
        if col is None:  # single text
            texts.append(None)
            continue
        value = rec[col]
        if value is None:
            raise DataError(path, "missing value", row=row, field=str(col))
        value = str(value)
        if not value.strip():
            raise DataError(path, "empty text (expected a sentence)", row=row, field=str(col))
        texts.append(value.strip())
    label = _parse_label(path, row, raw.label, rec[raw.label], codes, allowed, task)
    ex_id = rec["__id__"]
    if ex_id in seen:
        raise DataError(path, f"duplicate example id {ex_id!r} (first seen at row {seen[ex_id]})", row=row,
                        field=str(raw.id) if isinstance(raw.id, (str, int)) else "id")
    seen[ex_id] = row
    return Example(ex_id, texts[0], texts[1], label, tuple((str(k), v.strip()) for k, v in rec["__keep__"].items()))


def _text(value) -> str:
    """A kept column's value as text (``""`` for a missing one)."""
    return "" if value is None else str(value)


def _parse_label(path, row, col, value, codes, allowed, task) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(path, "missing label", row=row, field=str(col))
    text = str(value).strip()
    if codes is not None and re.fullmatch(r"-?\d+", text):
        code = int(text)
        if 0 <= code < len(codes):
            return normalize_label(codes[code])
        raise DataError(path, f"unknown label code {code}; expected 0..{len(codes) - 1} ({', '.join(codes)})",
                        row=row, field=str(col))
    name = normalize_label(text)
    is_code = re.fullmatch(r"-?\d+", text)
    if (allowed is None and not is_code) or (allowed is not None and name in allowed):
        return name
    hint = " (integer codes need --label-names)" if is_code else ""
    expected = f"; expected one of {sorted(allowed)}" if allowed is not None else ""
    raise DataError(path, f"unknown label {text!r} for task '{task}'{expected}{hint}", row=row, field=str(col))


def _label_set(path: str, task: str, examples: Sequence[Example], codes) -> tuple[str, ...]:
    """The class order: a pair task's standard names; else the codes' names, or the sorted names present."""
    present = {e.label for e in examples}
    if not TASKS[task]:
        names = tuple(normalize_label(c) for c in codes) if codes is not None else tuple(sorted(present))
        if len(names) < 2:
            raise DataError(path, f"only one label {names[0]!r} in the data; a classifier needs two or more (name "
                                  f"every class's code with --label-names)", field="label")
        return names
    for names in TASKS[task]:
        if present <= set(names):
            return names
    raise DataError(path, f"labels {sorted(present)} mix the 3-way and 2-way forms of task '{task}'", field="label")
