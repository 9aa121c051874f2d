"""One validator per input kind, shared by every module.

Each raises with a message that names what was checked (an option, a model,
an array) and shows the bad value, so the CLI can print it as one line.

* probabilities: :func:`check_probability_matrix` (a model's output or a
  metric's input), :func:`check_probabilities` (gold classes with probabilities);
* shapes: :func:`check_same_shape`;
* options: :func:`check_at_least`, :func:`check_option`;
* output folders: :func:`check_output_dir`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Collection

import numpy as np

from .errors import SettingsError, TrustEqError

__all__ = ["check_probability_matrix", "check_probabilities", "check_same_shape", "check_at_least", "check_option",
           "check_output_dir"]

#: Largest deviation of a probability row's sum from 1.
ATOL = 1e-4


def check_probability_matrix(probs, *, what: str = "y_prob", n: int | None = None, n_classes: int | None = None,
                             error: type[Exception] = ValueError, atol: float = ATOL) -> np.ndarray:
    """Refuse anything but a valid (n, K) probability matrix; return it as float64.

    Parameters
    ----------
    probs : array-like, shape (n, K)
    what : str, default="y_prob"
        How messages name the matrix, e.g. ``"model 'small'"``.
    n, n_classes : int, optional
        Expected rows and columns.
    error : exception class, default=ValueError
        Raised on failure (:class:`~trusteq.errors.ModelError` for model output).
    atol : float, default=1e-4
        Largest allowed ``|row sum - 1|``.

    Raises
    ------
    error
        Not 2-D, empty, wrong shape, K < 2, NaN or infinite values, negative
        values, or a row that does not sum to 1; the message names ``what``
        and the first bad row.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise error(f"{what} must be 2-D (n, K), got shape {probs.shape}")
    if (n is not None and probs.shape[0] != n) or (n_classes is not None and probs.shape[1] != n_classes):
        raise error(f"{what}: shape {probs.shape}, expected ({n}, {n_classes})")
    if probs.shape[0] == 0:
        raise error(f"{what} is empty (n = 0)")
    if probs.shape[1] < 2:
        raise error(f"{what} needs at least 2 classes, got K={probs.shape[1]}")
    for bad, problem in ((~np.isfinite(probs).all(axis=1), "NaN or infinite values"),
                         ((probs < 0).any(axis=1), "negative values")):
        if bad.any():
            raise error(f"{what} contains {problem} (first in row {int(np.argmax(bad))})")
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > atol
    if off.any():
        i = int(np.argmax(off))
        raise error(f"{what}: the probabilities of row {i} sum to {sums[i]:.6f}; rows must sum to 1 (within "
                    f"{atol}: softmax outputs, not logits)")
    return probs


def check_probabilities(y_true, y_prob, atol: float = ATOL) -> tuple[np.ndarray, np.ndarray]:
    """Validate gold classes with probabilities, the input of every calibration metric.

    Returns
    -------
    y_true : ndarray of int64, shape (n,)
    y_prob : ndarray of float64, shape (n, K)

    Raises
    ------
    ValueError
        See :func:`check_probability_matrix`; also ``y_true`` not 1-D, of
        another length, not integer, or outside [0, K).
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D (n,), got shape {y_true.shape}")
    y_prob = check_probability_matrix(y_prob, atol=atol)
    n, k = y_prob.shape
    if len(y_true) != n:
        raise ValueError(f"y_true has {len(y_true)} entries but y_prob has {n} rows")
    if not np.issubdtype(y_true.dtype, np.integer) and not np.all(np.equal(np.mod(y_true, 1), 0)):
        raise ValueError("y_true must hold integer class indices")
    y_true = y_true.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"y_true must be in [0, {k}), got values in [{y_true.min()}, {y_true.max()}]")
    return y_true, y_prob


def check_same_shape(a, b, *, names: tuple[str, str] = ("a", "b"), ndim: int | None = None,
                     what: str = "arrays") -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays of one shape (and ``ndim`` dimensions, if given), not empty.

    Raises
    ------
    ValueError
        Shapes or dimensions differ, or the arrays are empty.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or (ndim is not None and a.ndim != ndim):
        dims = f"{ndim}-D " if ndim is not None else ""
        raise ValueError(f"{what} must be {dims}of the same shape (same length); got {names[0]} {a.shape} and "
                         f"{names[1]} {b.shape}")
    if a.size == 0:
        raise ValueError(f"{what} are empty (no examples)")
    return a, b


def check_at_least(name: str, value, low) -> None:
    """Refuse an option below its smallest allowed value.

    Raises
    ------
    SettingsError
        ``value < low``: "``name`` must be >= ``low``, got ``value``" (a ``ValueError`` too).
    """
    if value < low:
        raise SettingsError(f"{name} must be >= {low}, got {value}")


def check_option(name: str, value, allowed: Collection) -> None:
    """Refuse a value that is not one of ``allowed`` (or, for a list, any such element).

    Raises
    ------
    SettingsError
        Naming the option, the unknown value(s) and the allowed ones (a ``ValueError`` too).
    """
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        shown = unknown if isinstance(value, (list, tuple)) else repr(value)
        raise SettingsError(f"unknown {name} {shown}; expected one of {list(allowed)}")


def check_output_dir(path, *, create: bool = True) -> Path:
    """Make sure files can be written into folder ``path``.

    Called before any work, so a bad ``--out`` costs seconds, not a run.

    Parameters
    ----------
    path : str or Path
    create : bool, default=True
        Leave the folder (and missing parents) in place; with False, folders
        made for the check are removed again, so nothing is left behind.

    Raises
    ------
    TrustEqError
        The folder cannot be created (a parent is a file, a read-only or
        virtual file system) or a file cannot be written there.
    """
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".trusteq-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TrustEqError(f"output folder {path}: cannot write there ({exc.strerror or exc})") from None
    finally:
        if not create:
            for folder in missing:  # deepest first
                if folder.is_dir():
                    folder.rmdir()
    return path
