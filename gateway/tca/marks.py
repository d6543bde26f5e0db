"""Markout marks: the NBBO and each lit venue's touch recorded at set horizons after each fill, on a thread of
their own so the order path never waits for them."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("gateway.tca.marks")

MAX_WAITING = 100_000  # marks not yet due beyond this many: the newest is not scheduled (logged once)


K = TypeVar("K")


class MarkTimer(Generic[K]):
    """Calls `mark([(key, horizon_ms), ...])` once per horizon after `schedule(key)`, each at its horizon (monotonic
    time); the marks due by the time the thread wakes come in one call, oldest first, so that the market is read
    once for all of them.

    A mark due after stop() is not made: the market after a stop is not known. Exceptions from `mark` are
    logged and never end the thread.
    """

    def __init__(self, horizons_ms: tuple[int, ...], mark: Callable[[list[tuple[K, int]]], None]) -> None:
        self.horizons_ms = horizons_ms
        self._mark = mark
        self._heap: list[tuple[float, int, K, int]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._running = False
        self._full_logged = False
        self._thread = threading.Thread(target=self._run, name="sorgw-marks", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def schedule(self, key: K) -> None:
        now = time.monotonic()
        with self._cond:
            if len(self._heap) + len(self.horizons_ms) > MAX_WAITING:
                if not self._full_logged:
                    self._full_logged = True
                    log.warning("tca.marks_full", waiting=len(self._heap), detail="fills go unmarked until it drains")
                return
            due = self._heap[0][0] if self._heap else None
            for horizon in self.horizons_ms:
                heapq.heappush(self._heap, (now + horizon / 1000, next(self._order), key, horizon))
            if due is None or self._heap[0][0] < due:  # otherwise the thread already wakes in time for it
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if not self._running:
                    return
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    _, _, key, horizon = heapq.heappop(self._heap)
                    due.append((key, horizon))
            try:
                self._mark(due)
            except Exception:
                if len(due) == 1:
                    log.exception("tca.mark_failed")
                    continue
                for one in due:  # a defect in one fill's mark must not cost the others theirs
                    try:
                        self._mark([one])
                    except Exception:
                        log.exception("tca.mark_failed")
