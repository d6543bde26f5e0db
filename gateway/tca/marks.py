"""Markout marks: the NBBO and each lit venue's touch recorded at set horizons after each fill, on a thread of
their own so the order path never waits for them."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from operator import itemgetter
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("gateway.tca.marks")

MAX_WAITING = 100_000  # marks not yet due beyond this many: the newest are not scheduled (logged once)
SLACK_SHARE = 0.01  # a mark may be made this share of its horizon early ...
MAX_SLACK_S = 0.010  # ... but never more than this early


def slack_s(horizon_ms: int) -> float:
    """How early a mark at this horizon may be made so that it shares a wake (and a record) with one due then."""
    return min(horizon_ms / 1000 * SLACK_SHARE, MAX_SLACK_S)


K = TypeVar("K")


class MarkTimer(Generic[K]):
    """Calls `mark([(key, horizon_ms), ...])` once per horizon after `schedule(key)`, at its horizon (monotonic
    time) or up to slack_s(horizon) before it, never early on purpose by more: the thread sleeps until the
    earliest mark is due, then takes every mark due within its slack, in one call, in the order they are due,
    so that the market is read (and recorded) once for all of them. Late only as the thread is.

    A mark due after stop() is not made: the market after a stop is not known. Exceptions from `mark` are
    logged and never end the thread.
    """

    def __init__(self, horizons_ms: tuple[int, ...], mark: Callable[[list[tuple[K, int]]], None]) -> None:
        self.horizons_ms = horizons_ms
        self._mark = mark
        # One queue per horizon of (scheduled at, key): each in time order, so each one's head is due first.
        self._queues: list[tuple[int, float, float, deque[tuple[float, K]]]] = [
            (horizon, horizon / 1000, slack_s(horizon), deque()) for horizon in horizons_ms
        ]
        self._first_s = min(horizons_ms) / 1000
        self._waiting = 0
        self._sleeps_until = float("inf")  # when the thread wakes by itself; -inf while it is awake
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
        return self._waiting

    def schedule(self, key: K) -> None:
        with self._cond:
            if self._waiting + len(self._queues) > MAX_WAITING:
                if not self._full_logged:
                    self._full_logged = True
                    log.warning("tca.marks_full", waiting=self._waiting, detail="fills go unmarked until it drains")
                return
            now = time.monotonic()  # read under the lock, so that each queue stays in time order
            item = (now, key)
            for queue in self._queues:
                queue[3].append(item)
            self._waiting += len(self._queues)
            if now + self._first_s < self._sleeps_until:  # otherwise the thread wakes in time for it
                self._sleeps_until = now + self._first_s
                self._cond.notify()

    def _next_due(self) -> float:
        first = float("inf")
        for _, after, _, queue in self._queues:
            if queue and queue[0][0] + after < first:
                first = queue[0][0] + after
        return first

    def _take(self, now: float) -> list[tuple[K, int]]:
        due: list[tuple[float, K, int]] = []
        for horizon, after, slack, queue in self._queues:
            while queue and queue[0][0] + after - slack <= now:
                at, key = queue.popleft()
                due.append((at + after, key, horizon))
        self._waiting -= len(due)
        due.sort(key=itemgetter(0))
        return [(key, horizon) for _, key, horizon in due]

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (next_due := self._next_due()) > (now := time.monotonic()):
                    self._sleeps_until = next_due
                    self._cond.wait(None if next_due == float("inf") else next_due - now)
                if not self._running:
                    return
                self._sleeps_until = float("-inf")
                due = self._take(time.monotonic())
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
