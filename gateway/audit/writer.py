"""The audit writer: numbers, chains and group-commits what every thread submits, one commit at a time."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol

import structlog

from gateway.audit import checkpoints
from gateway.audit.records import GENESIS, Entry, Record, chain
from gateway.metrics import Metrics

log = structlog.get_logger("gateway.audit")

RETRY_MIN_S, RETRY_MAX_S = 0.05, 2.0
PROBE_S = 0.2  # an idle writer checks the store this often
STOP_TIMEOUT_S = 10.0


class Store(Protocol):
    def open(self, create: bool = True) -> tuple[int, str]: ...
    def append(self, records: list[Record]) -> None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


class LostRecords(RuntimeError):
    """The store, reopened, ends before the records this writer committed."""


class AuditWriter:
    """Callers submit entries and may wait until they are committed; the writer commits in batches.

    A batch is whatever queued up while the previous commit ran, so under load many entries
    share one commit. A caller that waits for its entries writes the batch itself when no commit is
    running (no hand-off to the writer thread and back on the order path); the writer thread writes
    what nobody waits for, probes the store while idle, and takes over after a failure. Only one
    thread commits at a time, so records are numbered and chained in submission order. A failed
    commit closes the store and reopens it (with backoff, loudly) until
    the batch is on record: whoever waits for it waits, because nothing may be acted on before it
    is on record. The reopened store's last record tells whether the failed commit had in fact
    gone through, so a batch is never written twice nor skipped.

    With a key, records are chained with HMAC-SHA256, and with a checkpoint path the committed head is
    signed onto that file (and the log, and a metric) every checkpoint_interval_s while it moves, and at stop.
    """

    def __init__(
        self,
        store: Store,
        max_batch: int = 2000,
        metrics: Metrics | None = None,
        key: bytes | None = None,
        checkpoint_path: Path | None = None,
        checkpoint_interval_s: float = 60.0,
    ) -> None:
        if checkpoint_path is not None and key is None:
            raise ValueError("audit checkpoints are signed with the audit key: set audit.hmac_key_env")
        self.store = store
        self.max_batch = max_batch
        self.metrics = metrics
        self.key = key
        self.checkpoint_path = checkpoint_path
        self.checkpoint_interval_s = checkpoint_interval_s
        self._checkpointed: tuple[int, str] | None = None
        self._checkpoint_due = 0.0
        self._queue: deque[Entry] = deque()
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # callers waiting for a commit or for the store to be writable
        self._work = threading.Condition(lock)  # the writer thread waiting for entries nobody waits for
        self._submitted = 0
        self._committed = 0
        self._wake_at = 0  # the last ticket submitted with `wake`: the writer thread commits up to it unasked
        self._running = False
        self._busy = False  # a thread is committing (or probing): the store is its own until it is done
        self._probed = 0.0  # monotonic time of the last probe
        self._retry_at = 0.0  # monotonic time before which a failed store is not reopened (the backoff)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._next_seq = 1
        self._last_hash = ""
        self.records_at_start = 0
        # Counters for metrics and benchmarks.
        self.batches = 0
        self.errors = 0
        self.reconnects = 0
        self.unstorable = 0
        self.last_batch_size = 0
        self.commit_seconds = 0.0
        self._failing = False
        self._connected = True
        self._delay = RETRY_MIN_S

    def start(self) -> None:
        last_seq, self._last_hash = self.store.open()
        self.records_at_start = last_seq
        self._next_seq = last_seq + 1
        self._checkpoint_due = time.monotonic() + self.checkpoint_interval_s
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Commit everything submitted so far, then close the store (after STOP_TIMEOUT_S if it refuses commits)."""
        with self._cond:
            if not self._running:
                return
            self._running = False
            self._cond.notify_all()
            self._work.notify()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error(
                "audit.stopped_uncommitted",
                entries=self._submitted - self._committed,
                detail="the audit store still refuses commits; these entries are not on record",
            )
            return
        self._checkpoint()
        self.store.close()

    @property
    def committed(self) -> int:
        """The ticket (see submit) reached so far."""
        return self._committed

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def writable(self) -> bool:
        """Running, and its last commit (if any) did not fail."""
        return self._running and self._thread.is_alive() and not self._failing

    def wait_writable(self, timeout: float) -> bool:
        """True at once while commits succeed; while the store refuses them, wait up to timeout seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._failing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return self.writable

    def submit(self, entries: list[Entry], wake: bool = True) -> int:
        """Queue entries; the returned ticket is reached when all of them are committed. `wake`: the writer
        thread commits them now; otherwise they go with the next commit, or the writer's next look (PROBE_S)."""
        with self._cond:
            self._queue.extend(entries)
            self._submitted += len(entries)
            if wake:
                self._wake_at = self._submitted
                self._work.notify()
            return self._submitted

    def record(self, entry: Entry) -> None:
        """Queue one entry without waiting for it."""
        self.submit([entry])

    def wait(self, ticket: int) -> None:
        """Return once the entries up to `ticket` are committed, committing them on this thread when no other
        commit is running and the store is up (otherwise the running commit, or the writer thread, does)."""
        lead = True  # until a commit of ours failed: then the writer thread retries it, with its backoff
        while True:
            with self._cond:
                while self._committed < ticket and (
                    not lead or self._busy or not self._queue or not self._connected or not self._running
                ):
                    self._cond.wait()
                if self._committed >= ticket:
                    return
                batch = self._take()
            committed = False
            try:
                committed = self._commit(batch, once=True)
            except Exception:
                log.exception("audit.writer_error", batch=len(batch))
                self._count_error()
            lead = committed
            self._done(batch, committed)

    def commit(self, entries: list[Entry]) -> None:
        """Submit and wait: the entries are durable when this returns."""
        self.wait(self.submit(entries, wake=not self._connected))  # in an outage the writer thread reconnects

    def _take(self) -> list[Entry]:
        """The next batch, the store reserved for it (the condition held)."""
        self._busy = True
        return [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]

    def _done(self, batch: list[Entry], committed: bool) -> None:
        """A batch is on record, or goes back to the head of the queue; the store is free again."""
        with self._cond:
            if committed:
                self._committed += len(batch)
            else:
                self._queue.extendleft(reversed(batch))
            self._busy = False
            self._cond.notify_all()
            # Entries that came in meanwhile go with their waiting caller's commit; the writer thread takes over
            # after a failure, and commits at once only what was submitted with `wake` (a mark waits: PROBE_S).
            if self._queue and (not committed or self._wake_at > self._committed):
                self._work.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._busy or (self._running and not self._queue):
                    # Idle: look at the store now and then, so an outage is known before an order waits on it.
                    self._work.wait(self._delay if not self._connected else PROBE_S)
                if self._busy:
                    continue
                if not self._queue:
                    if not self._running:
                        return
                    if time.monotonic() - self._probed < (PROBE_S if self._connected else self._delay):
                        continue
                    self._busy = True
                    batch = None
                else:
                    batch = self._take()
            if batch is None:
                try:
                    self._probed = time.monotonic()
                    self._probe()
                    self._checkpoint_if_due()
                finally:
                    self._done([], True)
                continue
            try:
                self._commit(batch)
            except Exception:
                # A defect of ours, not the store's nor a peer's: the batch goes back and is tried again.
                log.exception("audit.writer_error", batch=len(batch))
                self._count_error()
                self._done(batch, False)
                time.sleep(RETRY_MAX_S)
                continue
            try:
                self._checkpoint_if_due()
            finally:
                self._done(batch, True)

    def _checkpoint_if_due(self) -> None:
        if self.checkpoint_path is None or time.monotonic() < self._checkpoint_due:
            return
        self._checkpoint_due = time.monotonic() + self.checkpoint_interval_s
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Sign the committed head, unless already signed, onto the checkpoint file, the log and the metric; a
        failure is logged, never raised: the trail itself is on record, only its outside witness is missing."""
        key = self.key
        if self.checkpoint_path is None or key is None or self._checkpointed == (self._next_seq - 1, self._last_hash):
            return  # (no key without a path: __init__ refuses a checkpoint_path without one)
        checkpoint = checkpoints.Checkpoint(self._next_seq - 1, self._last_hash, time.time_ns())
        try:
            checkpoints.append(self.checkpoint_path, checkpoint, key)
        except Exception as exc:  # the writer thread must outlive a full disk or a read-only file
            log.error("audit.checkpoint_failed", path=str(self.checkpoint_path), seq=checkpoint.seq, error=str(exc))
            return
        self._checkpointed = (checkpoint.seq, checkpoint.hash)
        log.info(
            "audit.checkpoint",
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            ts_ns=checkpoint.ts_ns,
            mac=checkpoint.signature(key),
        )
        if self.metrics is not None:
            self.metrics.audit_checkpoint_seq.set(checkpoint.seq)

    def _probe(self) -> None:
        try:
            if self._connected:
                self.store.ping()
                return
            head = self._reopen()
            self._refuse_lost_records(head, self._next_seq - 1)
        except Exception as exc:
            self._failed(exc, "audit.store_unreachable", 0)
            return
        if head != (self._next_seq - 1, self._last_hash):
            self._head_moved(head)
            self._next_seq, self._last_hash = head[0] + 1, head[1]
        self._resumed()

    def _commit(self, batch: list[Entry], once: bool = False) -> bool:
        """Write one batch; return once it is on record, reopening the store as often as that takes. `once`:
        after a failed attempt return False instead (the writer thread retries)."""
        records = self._chain(batch, self._next_seq, self._last_hash)
        while True:
            try:
                if not self._connected:
                    # Whoever failed last (a caller's commit hands its batch to this thread) set the backoff.
                    if (pause := self._retry_at - time.monotonic()) > 0:
                        time.sleep(pause)
                    head = self._reopen()
                    if head == (records[-1].seq, records[-1].hash):
                        log.warning("audit.commit_was_durable", seq=records[-1].seq)  # only its answer was lost
                        self._on_record(records)
                        return True
                    self._refuse_lost_records(head, records[0].seq - 1)
                    if head != (records[0].seq - 1, records[0].prev_hash):
                        self._head_moved(head)
                        records = self._chain(batch, head[0] + 1, head[1])
                started = time.perf_counter()
                self.store.append(records)
            except Exception as exc:
                self._failed(exc, "audit.commit_failed", len(batch))
                if once:
                    return False
                time.sleep(self._delay)
                continue
            self.commit_seconds = time.perf_counter() - started
            self.batches += 1
            self.last_batch_size = len(records)
            if self.metrics is not None:
                self.metrics.audit_records.inc(len(records))
                self.metrics.audit_batch.observe(len(records))
                self.metrics.audit_commit_latency.observe(self.commit_seconds)
            self._on_record(records)
            return True

    def _reopen(self) -> tuple[int, str]:
        """Open the store again after a failure; its last (seq, hash)."""
        head = self.store.open(create=False)  # a table gone missing stays missing: it is not made anew
        self._connected = True
        self.reconnects += 1
        if self.metrics is not None:
            self.metrics.audit_reconnects.inc()
        log.warning("audit.reconnected", head_seq=head[0])
        return head

    def _refuse_lost_records(self, head: tuple[int, str], committed: int) -> None:
        """A reopened store that ends before what this writer committed lost records (a table dropped, renamed or
        restored from an old copy): writing on would start a second chain, so the store counts as failing."""
        if head[0] < committed:
            raise LostRecords(
                f"the audit store ends at record {head[0]} but {committed} were committed: "
                "records are missing; not writing until they are back"
            )

    def _head_moved(self, head: tuple[int, str]) -> None:
        # Not where this writer left it (another writer, or a restore): the chain continues after what is there.
        log.error("audit.head_moved", expected_seq=self._next_seq - 1, found_seq=head[0])

    def _failed(self, exc: Exception, event: str, batch: int) -> None:
        self._count_error()
        self._retry_at = time.monotonic() + self._delay
        with self._cond:
            self._failing = True
        log.error(
            event if self._connected else "audit.reconnect_failed",
            error=str(exc),
            error_type=type(exc).__name__,
            batch=batch,
            retry_in=self._delay,
        )
        self._close_quietly()
        self._connected = False
        self._delay = min(self._delay * 2, RETRY_MAX_S)

    def _on_record(self, records: list[Record]) -> None:
        self._next_seq = records[-1].seq + 1
        self._last_hash = records[-1].hash
        self._resumed()

    def _resumed(self) -> None:
        self._delay = RETRY_MIN_S
        if not self._failing:  # set and cleared only by the thread holding the store
            return
        with self._cond:
            log.warning("audit.commits_resumed", next_seq=self._next_seq)
            self._failing = False
            self._cond.notify_all()

    def _chain(self, batch: list[Entry], next_seq: int, prev_hash: str) -> list[Record]:
        try:
            return chain(batch, next_seq, prev_hash, self.key)
        except Exception:
            return chain([self._storable(entry) for entry in batch], next_seq, prev_hash, self.key)

    def _storable(self, entry: Entry) -> Entry:
        """The entry, or in its place a record of why it could not be stored as given (never silently dropped)."""
        try:
            chain([entry], 1, GENESIS)
            return entry
        except Exception as exc:
            self.unstorable += 1
            if self.metrics is not None:
                self.metrics.audit_unstorable.inc()
            log.error("audit.entry_unstorable", kind=repr(entry.kind), error=repr(exc))
            body = json.dumps({"error": repr(exc), "entry": repr(entry)}).encode()
            ts_ns = entry.ts_ns if isinstance(entry.ts_ns, int) else time.time_ns()
            return Entry("unstorable", body, ts_ns=ts_ns)

    def _count_error(self) -> None:
        self.errors += 1
        if self.metrics is not None:
            self.metrics.audit_errors.inc()

    def _close_quietly(self) -> None:
        try:
            self.store.close()
        except Exception as exc:
            log.warning("audit.close_failed", error=str(exc))
