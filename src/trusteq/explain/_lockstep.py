"""Threads whose model calls are joined into one batch per round."""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np

__all__ = ["Lockstep", "run_in_lockstep"]


class Lockstep:
    """Joins the model calls of n threads into one call per round.

    A round starts when every thread still running has made a call (or
    finished); their pairs are evaluated together by one call of ``fn``, in
    thread order, and each thread gets its rows back. A batch's composition
    therefore depends only on what the threads ask for, never on timing.

    Parameters
    ----------
    fn : callable
        Maps a list of pairs to an array of m rows.
    n : int
        Threads; thread i calls ``call(i, pairs)`` and, at its end, ``finish(i)``.

    Raises
    ------
    Exception
        Whatever ``fn`` raised, in every thread of that round.
    """

    def __init__(self, fn: Callable[[list], np.ndarray], n: int):
        self._fn = fn
        self._running = n
        self._pending: dict[int, list] = {}
        self._results: dict[int, object] = {}
        self._cond = threading.Condition()

    def call(self, i: int, pairs: list) -> np.ndarray:
        with self._cond:
            self._pending[i] = pairs
            self._run_if_complete()
            while i not in self._results:
                self._cond.wait()
            out = self._results.pop(i)
        if isinstance(out, BaseException):
            raise out
        return out

    def finish(self, i: int) -> None:
        with self._cond:
            self._running -= 1
            self._run_if_complete()

    def _run_if_complete(self) -> None:
        if not self._pending or len(self._pending) < self._running:
            return
        order = sorted(self._pending)
        try:
            probs = np.asarray(self._fn([p for i in order for p in self._pending[i]]))
            bounds = np.cumsum([0] + [len(self._pending[i]) for i in order])
            for j, i in enumerate(order):
                self._results[i] = probs[bounds[j]:bounds[j + 1]]
        except Exception as exc:  # every waiting thread re-raises it
            for i in order:
                self._results[i] = exc
        self._pending.clear()
        self._cond.notify_all()


def run_in_lockstep(fn: Callable[[list], np.ndarray], items: Sequence, work: Callable) -> list:
    """``work(model_fn, *item)`` for every item, each in its own thread, model calls joined by :class:`Lockstep`.

    ``model_fn`` is the thread's view of ``fn``. Returns the results in item
    order; the first exception raised by any item is raised again here.
    """
    lockstep = Lockstep(fn, len(items))
    done: list = [None] * len(items)

    def thread(i, item):
        try:
            done[i] = work(lambda pairs: lockstep.call(i, pairs), *item)
        except BaseException as exc:
            done[i] = exc
        finally:
            lockstep.finish(i)

    threads = [threading.Thread(target=thread, args=(i, item), daemon=True) for i, item in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in done:
        if isinstance(r, BaseException):
            raise r
    return done
