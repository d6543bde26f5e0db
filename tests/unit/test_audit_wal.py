"""The SQLite store's WAL: commits never copy it into the database file; the store's own thread does."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from structlog.testing import capture_logs

from gateway.audit import sqlite as audit_sqlite
from gateway.audit.records import GENESIS, Entry, chain, first_break
from gateway.audit.sqlite import SqliteStore

COMMITS = 1500  # single-record commits of about 4 WAL pages each: SQLite's own checkpoint would run at 1000 pages


def _records(start: int, n: int):
    entries = [Entry("fix_out", b"8=FIX.4.4\x0135=8\x01" + b"x" * 400, "S", f"O{i}", f"C{i}", i) for i in range(n)]
    return chain(entries, start, GENESIS if start == 1 else "0" * 64)


@pytest.fixture
def quick_store(tmp_path, monkeypatch):
    """An open store whose WAL thread looks every 20 ms; closed after the test, whatever it asserted."""
    monkeypatch.setattr(audit_sqlite, "WAL_COPY_S", 0.02)
    store = SqliteStore(tmp_path / "audit.db")
    store.open()
    yield store
    store.close()


def _wal_frames(path) -> tuple[int, int]:
    """(frames in the WAL, frames of it already in the database file), as another connection sees them."""
    probe = sqlite3.connect(path, isolation_level=None)
    try:
        _, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, copied
    finally:
        probe.close()


def _copier_threads() -> int:
    return sum(thread.name == "sorgw-audit-wal" for thread in threading.enumerate())


def test_commits_leave_the_wal_to_the_store_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(audit_sqlite, "WAL_COPY_S", 3600)  # the store's thread never gets to it in this test
    store = SqliteStore(tmp_path / "audit.db")
    store.open()
    for record in _records(1, COMMITS):
        store.append([record])
    frames, _ = _wal_frames(tmp_path / "audit.db")
    # Every commit's pages are still in the WAL: none of the commits ran a checkpoint (SQLite's automatic one
    # would have restarted the WAL at about 1000 pages).
    assert frames >= COMMITS
    store.close()
    assert _copier_threads() == 0
    reader = SqliteStore(tmp_path / "audit.db")
    reader.open()
    records = list(reader.records())
    reader.close()
    assert len(records) == COMMITS and first_break(records) is None


def test_the_store_thread_keeps_the_wal_short(quick_store):
    _copy_in_batches(quick_store, quick_store.path)


def _copy_in_batches(store: SqliteStore, path) -> None:
    records = _records(1, 2000)
    sizes = []
    for batch in range(5):
        for record in records[batch * 400 : (batch + 1) * 400]:
            store.append([record])
        copier = store._copier
        assert copier is not None
        seen = copier.copied
        deadline = time.monotonic() + 10
        while copier.copied < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert copier.copied >= seen + 2, "the store's WAL thread stopped copying"
        sizes.append(path.with_name("audit.db-wal").stat().st_size)
    # Once copied, the WAL starts again from its beginning: it does not grow with every batch.
    assert max(sizes) < 1.5 * sizes[0], sizes


def test_a_reader_starts_no_thread_and_close_stops_the_writers(tmp_path):
    path = tmp_path / "audit.db"
    writer = SqliteStore(path)
    writer.open()
    reader = SqliteStore(path)
    reader.open()
    list(reader.records())
    assert _copier_threads() == 0
    writer.append(list(_records(1, 3)))
    assert _copier_threads() == 1
    reader.close()
    writer.close()
    assert _copier_threads() == 0


def test_a_database_file_gone_is_logged_once_and_not_made_anew(quick_store):
    path = quick_store.path
    with capture_logs() as events:
        quick_store.append(list(_records(1, 3)))  # starts the thread; its first look is WAL_COPY_S later
        path.unlink()  # the writer's open connection goes on; the thread cannot open the file
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # some ten more failed looks
        quick_store.append(list(_records(4, 2)))  # commits never see the thread's trouble
        quick_store.close()
    assert [e["event"] for e in events] == ["audit.wal_copy_failed"]
    assert not path.exists()
