"""Errors that trusteq reports to a user as one line (CLI exit code 2).

Every error a user can cause (bad data, labels, models, options, devices,
executors, study files, output folders) is a :class:`TrustEqError` subclass
defined here; the CLI prints its message on one line and exits with code 2.
Anything else is a bug in trusteq: the CLI lets it propagate with its
traceback (exit code 1).
"""

from __future__ import annotations

__all__ = ["TrustEqError", "DataError", "LabelError", "ModelError", "SettingsError", "DeviceError", "ExecutorError"]


class TrustEqError(Exception):
    """A problem with the user's input that trusteq refuses to work around.

    The message is meant to be shown as is, on one line, by the CLI.
    """


class DataError(TrustEqError, ValueError):
    """A data file that cannot be read as labelled sentence pairs.

    Parameters
    ----------
    path : str
        The file (or dataset name) being read.
    message : str
        What was expected and what was found.
    row : int, optional
        1-based line number in the file (the header line is line 1), or the
        0-based record index for formats without lines (Parquet).
    field : str, optional
        The column the problem is in.
    """

    def __init__(self, path, message: str, row: int | None = None, field: str | None = None):
        self.path = str(path)
        self.row = row
        self.field = field
        self.detail = message
        where = self.path
        if row is not None:
            where += f": row {row}"
        if field is not None:
            where += f", field '{field}'" if row is not None else f": field '{field}'"
        super().__init__(f"{where}: {message}")


class LabelError(TrustEqError, ValueError):
    """A model's classes cannot be matched to the task's labels unambiguously."""


class ModelError(TrustEqError, RuntimeError):
    """A model that cannot be loaded or that returns invalid probabilities."""


class SettingsError(TrustEqError, ValueError):
    """An option (a keyword argument, a CLI flag or a study key) with a value trusteq refuses.

    The message names the option and shows the bad value and what is allowed.
    """


class DeviceError(TrustEqError, ValueError):
    """A device option that is malformed or names a device this machine lacks."""


class ExecutorError(TrustEqError, ValueError):
    """An executor that is unknown or cannot start (Ray not installed, cluster unreachable)."""
