"""On-disk cache: atomic, checksummed array files keyed by content fingerprints.

Entries are written to a temporary file in the same folder and renamed into
place, so a reader sees either a whole entry or none. Each entry stores a
SHA-256 of its arrays; an entry that fails the check is reported (warning),
deleted and recomputed by the caller.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = ["cache_dir", "key", "entry", "load_or_compute", "load_arrays", "save_arrays", "atomic_write_bytes",
           "atomic_write_text"]


def cache_dir() -> Path:
    """The cache folder: ``$TRUSTEQ_CACHE_DIR``, else ``$XDG_CACHE_HOME/trusteq``, else ``~/.cache/trusteq``."""
    env = os.environ.get("TRUSTEQ_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trusteq"


def key(*parts) -> str:
    """A SHA-256 hex key of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def entry(kind: str, *parts, fan_out: bool = True) -> Path:
    """The file of the cache entry of ``kind`` keyed by ``parts``: ``<cache>/<kind>/<k[:2]>/<k>.npz`` with ``k``
    their :func:`key` (``<cache>/<kind>/<k>.npz`` without ``fan_out``)."""
    k = key(*parts)
    folder = cache_dir() / kind
    return folder / k[:2] / f"{k}.npz" if fan_out else folder / f"{k}.npz"


def load_or_compute(paths: Sequence[Path | None], compute: Callable[[list[int]], Iterable[tuple[int, dict]]],
                    done: Callable[[int, dict, bool], None] | None = None) -> list[dict[str, np.ndarray]]:
    """Every entry's arrays: loaded where the cache has them, else computed and stored as each arrives.

    The one look-up/compute/store loop of trusteq's caches (predictions, both
    explanation caches): an interrupted run loses only what was in flight.

    Parameters
    ----------
    paths : sequence of Path or None, length n
        Each entry's file (:func:`entry`); None: never cached (always computed).
    compute : callable
        ``compute(missing)``, with the indices of the entries the cache lacks,
        yields ``(index, arrays)`` for each of them, in any order.
    done : callable, optional
        ``done(index, arrays, cached)`` after each entry is loaded or computed (progress bars).

    Returns
    -------
    list of n dict name -> ndarray, in the order of ``paths``.
    """
    out: list = [None] * len(paths)
    missing = []
    for i, path in enumerate(paths):
        out[i] = load_arrays(path) if path is not None else None
        if out[i] is None:
            missing.append(i)
        elif done is not None:
            done(i, out[i], True)
    for i, arrays in compute(missing) if missing else ():
        if paths[i] is not None:
            save_arrays(paths[i], arrays)
        out[i] = arrays
        if done is not None:
            done(i, arrays, False)
    return out


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Store named arrays with their checksum, atomically."""
    buf = io.BytesIO()
    np.savez(buf, __checksum__=np.array(_digest(arrays)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: str | Path) -> dict[str, np.ndarray] | None:
    """Load arrays saved by :func:`save_arrays`; ``None`` if absent or corrupt.

    A corrupt or truncated entry is reported with a warning and removed.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = str(arrays.pop("__checksum__"))
        if stored != _digest(arrays):
            raise ValueError("checksum mismatch")
    except Exception as exc:
        warnings.warn(f"trusteq: cache entry {path} is corrupt ({exc}); recomputing", stacklevel=2)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return arrays
