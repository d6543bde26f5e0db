"""The embedded audit store: one SQLite file in WAL mode; bodies are BLOBs (TEXT in files written before)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import structlog

from gateway.audit.records import FIELDS, GENESIS, Record, as_bytes

log = structlog.get_logger("gateway.audit")

WAL_COPY_S = 0.1  # how often the store's own thread moves committed WAL pages into the database file

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session TEXT,
    order_id TEXT,
    cl_ord_id TEXT,
    body BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_order ON audit (order_id);
CREATE INDEX IF NOT EXISTS audit_cl_ord ON audit (cl_ord_id);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ns);
"""
COLUMNS = ", ".join(FIELDS)
INSERT = f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._copier: WalCopier | None = None  # started by the first append: readers never write

    def open(self, create: bool = True) -> tuple[int, str]:
        """Create the file and table if needed (`create`); return (last seq, last hash) to continue the chain."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The writer thread opens the store; readers (CLI) open their own.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process (the WAL is in the OS); FULL would also survive power loss.
        self._db.execute("PRAGMA synchronous=NORMAL")
        if create:
            self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    @property
    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"the audit store {self.path} is not open")
        return self._db

    def append(self, records: list[Record]) -> None:
        """Write a batch in one transaction (the group commit); records are rows in column order already."""
        db = self._open_db
        if self._copier is None:
            # SQLite's own checkpoint runs inside the commit that crosses 1000 WAL pages, which then takes
            # milliseconds (an fsync and a copy of every page); a thread of the store's own does it instead.
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._copier = WalCopier(self.path)
            self._copier.start()
        if len(records) == 1:
            db.execute(INSERT, records[0])  # one statement is a transaction of its own
            return
        db.execute("BEGIN")
        try:
            db.executemany(INSERT, records)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def records(self, start_ns: int | None = None, end_ns: int | None = None) -> Iterator[Record]:
        query, args = f"SELECT {COLUMNS} FROM audit", []
        if start_ns is not None or end_ns is not None:
            query += " WHERE ts_ns >= ? AND ts_ns < ?"
            args = [start_ns or 0, end_ns or 2**63 - 1]
        for row in self._open_db.execute(query + " ORDER BY seq", args):
            yield _record(row)

    def for_order(self, key: str) -> list[Record]:
        """Every record of the order that `key` (an OrderID or any ClOrdID of it) names, in seq order."""
        order_ids = [
            r[0]
            for r in self._open_db.execute(
                "SELECT DISTINCT order_id FROM audit WHERE (order_id = ? OR cl_ord_id = ?) AND order_id IS NOT NULL"
                " AND order_id != 'NONE'",
                (key, key),
            )
        ]
        marks = ",".join("?" * len(order_ids))
        rows = self._open_db.execute(
            f"SELECT {COLUMNS} FROM audit WHERE order_id IN ({marks}) OR (cl_ord_id = ? AND "
            "(order_id IS NULL OR order_id = 'NONE')) ORDER BY seq",
            (*order_ids, key),
        )
        return [_record(row) for row in rows]

    def last_before(self, kind: str, seq: int) -> Record | None:
        """The newest record of this kind before record seq (e.g. the config an order ran under)."""
        row = self._open_db.execute(
            f"SELECT {COLUMNS} FROM audit WHERE kind = ? AND seq < ? ORDER BY seq DESC LIMIT 1", (kind, seq)
        ).fetchone()
        return None if row is None else _record(row)

    def ping(self) -> None:
        """A file store is there as long as its file is: nothing to check."""

    def close(self) -> None:
        if self._copier is not None:
            self._copier.stop()
            self._copier = None
        if self._db is not None:
            self._db.close()  # the last connection to close checkpoints what is left and removes the WAL
            self._db = None


class WalCopier:
    """A thread with a connection of its own that copies committed WAL pages into the database file every
    WAL_COPY_S (a PASSIVE checkpoint: commits go on meanwhile), so that the WAL stays short while no commit
    pays for the copy. Errors are logged once per run of them and tried again; a commit never sees them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.copied = 0  # checkpoints run (the tests wait on it)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sorgw-audit-wal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        failing = False
        while not self._stopping.wait(WAL_COPY_S):
            try:
                if db is None:  # mode=rw: a file that is gone is not made anew here
                    db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.copied += 1
                failing = False
            except sqlite3.Error as exc:
                if not failing:
                    log.warning("audit.wal_copy_failed", path=str(self.path), error=str(exc))
                failing = True
                if db is not None:
                    db.close()
                    db = None
        if db is not None:
            db.close()


def _record(row: tuple) -> Record:
    seq, ts_ns, kind, session, order_id, cl_ord_id, body, prev_hash, hash_ = row
    # A file written before bodies were bytes has TEXT bodies; SQLite keeps each value's own type.
    return Record(seq, ts_ns, kind, session, order_id, cl_ord_id, as_bytes(body), prev_hash, hash_)
