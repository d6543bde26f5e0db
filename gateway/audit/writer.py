"""The audit writer: one thread that numbers, chains and group-commits what every other thread submits."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

import structlog

from gateway.audit.records import Entry, Record, chain
from gateway.metrics import Metrics

log = structlog.get_logger("gateway.audit")


class Store(Protocol):
    def open(self) -> tuple[int, str]: ...
    def append(self, records: list[Record]) -> None: ...
    def close(self) -> None: ...


class AuditWriter:
    """Callers submit entries and may wait until they are committed; the writer commits in batches.

    A batch is whatever queued up while the previous commit ran, so under load many entries
    share one commit. A failed commit is retried (with backoff, loudly) until it succeeds:
    whoever waits for it waits, because nothing may be acted on before it is on record.
    """

    def __init__(self, store: Store, max_batch: int = 2000, metrics: Metrics | None = None) -> None:
        self.store = store
        self.max_batch = max_batch
        self.metrics = metrics
        self._queue: deque[Entry] = deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._running = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._next_seq = 1
        self._last_hash = ""
        self.records_at_start = 0
        # Counters for metrics and benchmarks.
        self.batches = 0
        self.errors = 0
        self.last_batch_size = 0
        self.commit_seconds = 0.0
        self._failing = False

    def start(self) -> None:
        last_seq, self._last_hash = self.store.open()
        self.records_at_start = last_seq
        self._next_seq = last_seq + 1
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Commit everything submitted so far, then close the store."""
        with self._cond:
            if not self._running:
                return
            self._running = False
            self._cond.notify_all()
        self._thread.join()
        self.store.close()

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def writable(self) -> bool:
        """Running, and its last commit (if any) did not fail."""
        return self._running and self._thread.is_alive() and not self._failing

    def submit(self, entries: list[Entry]) -> int:
        """Queue entries; the returned ticket is reached when all of them are committed."""
        with self._cond:
            self._queue.extend(entries)
            self._submitted += len(entries)
            self._cond.notify_all()
            return self._submitted

    def record(self, entry: Entry) -> None:
        """Queue one entry without waiting for it."""
        self.submit([entry])

    def wait(self, ticket: int) -> None:
        with self._cond:
            while self._committed < ticket:
                self._cond.wait()

    def commit(self, entries: list[Entry]) -> None:
        """Submit and wait: the entries are durable when this returns."""
        self.wait(self.submit(entries))

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._cond.wait()
                if not self._queue:
                    return
                count = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(count)]
            records = chain(batch, self._next_seq, self._last_hash)
            self._write(records)
            self._next_seq += len(records)
            self._last_hash = records[-1].hash
            with self._cond:
                self._committed += len(records)
                self._cond.notify_all()

    def _write(self, records: list[Record]) -> None:
        delay = 0.05
        while True:
            started = time.perf_counter()
            try:
                self.store.append(records)
            except Exception as exc:
                self.errors += 1
                self._failing = True
                if self.metrics is not None:
                    self.metrics.audit_errors.inc()
                log.error("audit.commit_failed", error=str(exc), batch=len(records), retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.commit_seconds = time.perf_counter() - started
            self.batches += 1
            self.last_batch_size = len(records)
            self._failing = False
            if self.metrics is not None:
                self.metrics.audit_records.inc(len(records))
                self.metrics.audit_batch.observe(len(records))
                self.metrics.audit_commit_latency.observe(self.commit_seconds)
            return
