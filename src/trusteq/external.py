"""Predictions from a file: a model trusteq cannot run (served elsewhere), compared by its stored probabilities.

A model served by vLLM, quantized with GPTQ/AWQ on a GPU, or behind an API can
be compared by its predictions on the data: a CSV, JSONL or Parquet file with
an ``id`` column holding the data's example ids (:attr:`trusteq.data.Dataset.ids`,
as strings) and one probability column per class, named by the label
(``entailment``) or ``prob_<label>`` (``prob_entailment``, the spelling of
trusteq's own ``predictions.csv``). Class columns are matched to the task's
labels by name, as every model's classes are (:func:`trusteq.data.normalize_label`).

:class:`PredictionsFile` stands in for a model anywhere
:func:`trusteq.compare` takes one. Its predictions and calibration are decided
as any model's; it has no model to explain, so each explanation dimension of
its verdict is undecided with :data:`NO_MODEL_REASON` (and, as the reference,
no candidate is explained). It is never run, cached, batched or sent to an
executor.

>>> import trusteq  # doctest: +SKIP
>>> gptq = trusteq.PredictionsFile("runs/l6-gptq.csv", name="l6-gptq")  # doctest: +SKIP
>>> trusteq.compare("models/l6", [gptq], "test.tsv", task="pi")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Dataset, normalize_label, parquet_table
from .errors import DataError, ModelError
from .models import PairClassifier
from .validation import ATOL

__all__ = ["PredictionsFile", "NO_MODEL_REASON", "ID_COLUMN", "PREFIX"]

#: Why a model given by its predictions is not explained (each part of its explanation dimensions says it).
NO_MODEL_REASON = "not available: predictions from a file, no model to explain"
#: The column of example ids.
ID_COLUMN = "id"
#: The optional prefix of a class column (``prob_entailment``).
PREFIX = "prob_"
#: File suffixes read, by format.
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass
class _Table:
    """A file's records as read: ``(row, {column: raw value})``; ``header`` the columns of every record (CSV,
    Parquet) at ``header_row``, or None when each record has its own (JSONL objects)."""

    records: list[tuple[int, dict]]
    header: list[str] | None
    header_row: int | None


class PredictionsFile(PairClassifier):
    """A model given by its class probabilities on the data, read from a file.

    Parameters
    ----------
    path : str or path
        A ``.csv`` (``.tsv``), ``.jsonl`` (``.ndjson``) or ``.parquet`` file:
        column ``id`` (the data's example ids) and one probability column per
        class, named by the label or ``prob_<label>``; each row's probabilities
        in [0, 1], summing to 1 within 1e-4.
    name : str, optional
        Name in reports; default: the file name without its suffix.

    Attributes
    ----------
    class_names : tuple of str, shape (C,)
        The file's class columns (``prob_`` removed); the task's labels, in
        task order, once :meth:`bind` checked them against the data.
    sha256 : str
        Hash of the file's bytes (report.json ``models.<name>.sha256``).

    Raises
    ------
    DataError
        No such file, an unknown suffix, an empty file, a line that is not a
        JSON object, a CSV row with too many fields, an unreadable Parquet
        file (the message names the file and row). What needs the data is
        checked by :meth:`bind`.
    """

    kind = "predictions-file"
    no_model = NO_MODEL_REASON

    def __init__(self, path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        data = _read_bytes(str(path))
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._table = _read_table(str(path), data)
        header = self._table.header or list(self._table.records[0][1])
        self.class_names = tuple(c.removeprefix(PREFIX) for c in header if c != ID_COLUMN)
        self._by_id: dict[str, np.ndarray] | None = None

    def bind(self, dataset: Dataset) -> None:
        """Check the file against ``dataset`` and keep each of its examples' probabilities, in task order.

        Ids of the file outside the data are refused, except where the data
        is a seeded sample (``limit``) or rows were dropped (``skip_invalid``):
        then rows of examples outside the sample, or dropped, are ignored.

        Raises
        ------
        DataError
            In this order: an unknown column (naming the allowed ones), two
            columns for one class, no ``id`` column, a class with no column
            (for JSONL, per object); then per row: a missing id, a duplicate
            id, an id not in the data, a probability missing, not a number or
            outside [0, 1], probabilities not summing to 1 within 1e-4; then
            the data's ids without a row (the first and how many). The message
            names the file, the row (1-based line, header = line 1; for
            Parquet the 0-based record) and the column.
        """
        path, labels = str(self.path), tuple(dataset.label_names)
        outside_ok = _outside_ok(dataset)
        wanted, by_id, seen, columns = set(dataset.ids), {}, {}, {}
        for row, rec in self._table.records:
            keys = tuple(self._table.header or rec)
            if keys not in columns:  # a header once; each JSON object's keys
                header_row = row if self._table.header is None else self._table.header_row
                columns[keys] = _class_columns(path, header_row, keys, labels)
            ex_id = _example_id(path, row, rec, seen)
            probs = _probabilities(path, row, rec, columns[keys], len(labels))
            if ex_id in wanted:
                by_id[ex_id] = probs
            elif outside_ok is not None and ex_id not in outside_ok:
                raise DataError(path, f"id {ex_id!r} is not an example id of the data ({dataset.source}); the file "
                                      f"must hold the data's ids (the example_id column of trusteq's predictions.csv)",
                                row=row, field=ID_COLUMN)
        missing = [i for i in dataset.ids if i not in by_id]
        if missing:
            raise DataError(path, f"{len(missing)} of the data's {len(dataset)} example ids have no row, the first "
                                  f"{missing[0]!r}; the file needs a row for every example of {dataset.source}",
                            field=ID_COLUMN)
        self.class_names, self._by_id = labels, by_id

    def lookup(self, ids) -> np.ndarray:
        """Probabilities of examples ``ids``, shape (n, C) in :attr:`class_names` order.

        Raises
        ------
        ModelError
            Before :meth:`bind`, or an id the bound data lacks.
        """
        if self._by_id is None:
            raise ModelError(f"model '{self.name}': {self.path} is not checked against the data yet (bind(dataset))")
        unknown = [i for i in ids if i not in self._by_id]
        if unknown:
            raise ModelError(f"model '{self.name}': {self.path} has no row for example id {unknown[0]!r}")
        return np.vstack([self._by_id[i] for i in ids]) if len(ids) else np.zeros((0, len(self.class_names)))

    def predict_proba(self, pairs, progress: bool = False) -> np.ndarray:
        """Never: there is no model to run (ModelError)."""
        raise ModelError(f"model '{self.name}': predictions from a file ({self.path}) cannot be run on new texts; "
                         f"trusteq only looks up the file's rows by example id")

    def info(self) -> dict:
        return {**super().info(), "path": str(self.path), "sha256": self.sha256, "rows": len(self._table.records)}


def _outside_ok(dataset: Dataset) -> set[str] | None:
    """Ids outside ``dataset`` that a file may hold: None (any) when the data is a seeded sample, else the ids of
    rows dropped as invalid."""
    if dataset.limit is not None and len(dataset) < dataset.n_rows - len(dataset.dropped):
        return None
    return {str(d["id"]) for d in dataset.dropped}


# ---------------------------------------------------------------------------
# checking


def _class_columns(path: str, row: int | None, keys, labels: tuple[str, ...]) -> dict[str, int]:
    """Each class column of ``keys`` (a header or a JSON object's keys) with the index of its label.

    Raises
    ------
    DataError
        An unknown column, no id column, two columns for one class, a class with no column (in that order).
    """
    allowed = f"'{ID_COLUMN}' and one column per class, named by the label or {PREFIX}<label>: {', '.join(labels)}"
    out: dict[str, int] = {}
    for key in keys:
        if key == ID_COLUMN:
            continue
        label = _label_of(str(key), labels)
        if label is None:
            raise DataError(path, f"unknown column; expected {allowed}", row=row, field=str(key))
        if label in out.values():
            other = next(k for k, v in out.items() if v == label)
            raise DataError(path, f"a second column for class '{labels[label]}' (first: '{other}')", row=row,
                            field=str(key))
        out[str(key)] = label
    if ID_COLUMN not in keys:
        raise DataError(path, f"no '{ID_COLUMN}' column; expected {allowed}", row=row, field=ID_COLUMN)
    for k, label in enumerate(labels):
        if k not in out.values():
            raise DataError(path, f"no column for class '{label}'; expected {allowed}", row=row, field=label)
    return out


def _label_of(column: str, labels: tuple[str, ...]) -> int | None:
    """The index of the label a column is named by (its name, or ``prob_`` and its name), or None."""
    for name in (column, column[len(PREFIX):] if column.startswith(PREFIX) else None):
        if name is not None and normalize_label(name) in labels:
            return labels.index(normalize_label(name))
    return None


def _example_id(path: str, row: int, rec: dict, seen: dict[str, int]) -> str:
    """The record's id as a string, refusing a missing or duplicate one (``seen``: id -> first row, updated)."""
    value = rec.get(ID_COLUMN)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(path, "missing id", row=row, field=ID_COLUMN)
    ex_id = str(value)
    if ex_id in seen:
        raise DataError(path, f"duplicate id {ex_id!r} (first at row {seen[ex_id]})", row=row, field=ID_COLUMN)
    seen[ex_id] = row
    return ex_id


def _probabilities(path: str, row: int, rec: dict, columns: dict[str, int], n_classes: int) -> np.ndarray:
    """A record's probabilities in task order, shape (K,), each a number in [0, 1], summing to 1 within
    :data:`~trusteq.validation.ATOL`."""
    out = np.empty(n_classes, dtype=np.float64)
    for col, k in columns.items():
        value = rec.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(path, "missing probability", row=row, field=col)
        try:
            p = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            p = math.nan
        if not math.isfinite(p):
            raise DataError(path, f"not a number: {value!r} (expected a probability in [0, 1])", row=row, field=col)
        if not 0.0 <= p <= 1.0:
            raise DataError(path, f"probability {value!r} is outside [0, 1]", row=row, field=col)
        out[k] = p
    if abs(out.sum() - 1.0) > ATOL:
        raise DataError(path, f"the probabilities sum to {out.sum():.6g}; a row must sum to 1 (within {ATOL}: "
                              f"softmax outputs, not logits)", row=row)
    return out


# ---------------------------------------------------------------------------
# reading


def _read_bytes(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise DataError(path, "no such file" if not p.exists() else "not a regular file")
    if p.suffix.lower() not in FORMATS:
        raise DataError(path, f"unknown format '{p.suffix}'; expected a predictions file ending in "
                              f"{', '.join(FORMATS)}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None


def _read_table(path: str, data: bytes) -> _Table:
    """The records of a predictions file (at least one), by its suffix."""
    suffix = Path(path).suffix.lower()
    if FORMATS[suffix] == "parquet":
        return _read_parquet(path, data)
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if not text.strip():
        raise DataError(path, "the file is empty")
    if FORMATS[suffix] == "jsonl":
        return _read_jsonl(path, text)
    return _read_csv(path, text, "\t" if suffix == ".tsv" else ",")


def _read_csv(path: str, text: str, delimiter: str) -> _Table:
    """Header on line 1, records from line 2 (blank lines skipped, still counted)."""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [c.strip() for c in rows[0]]
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise DataError(path, f"expected {len(header)} fields (the header's), found {len(row)}", row=line)
        records.append((line, dict(zip(header, row))))
    if not records:
        raise DataError(path, "the file has a header line but no rows")
    return _Table(records, header, 1)


def _read_jsonl(path: str, text: str) -> _Table:
    """One JSON object per line (blank lines skipped); each object's keys are its columns."""
    records = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            obj = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg})", row=line) from None
        if not isinstance(obj, dict):
            raise DataError(path, "expected a JSON object per line", row=line)
        records.append((line, obj))
    return _Table(records, None, None)


def _read_parquet(path: str, data: bytes) -> _Table:
    """Records numbered from 0, as :mod:`trusteq.data` numbers Parquet rows."""
    table = parquet_table(path, data)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    records = [(i, {name: values[i] for name, values in columns.items()}) for i in range(table.num_rows)]
    return _Table(records, list(table.column_names), None)
