"""The PostgreSQL audit store (asyncpg), driven synchronously from the thread that owns it; bodies are bytea."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg

from gateway.audit.records import FIELDS, GENESIS, Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    seq BIGINT PRIMARY KEY,
    ts_ns BIGINT NOT NULL,
    kind TEXT NOT NULL,
    session TEXT,
    order_id TEXT,
    cl_ord_id TEXT,
    body BYTEA NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_order ON {table} (order_id);
CREATE INDEX IF NOT EXISTS {table}_cl_ord ON {table} (cl_ord_id);
CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts_ns);
"""
COLUMNS = ", ".join(FIELDS)
CONNECT_TIMEOUT_S = 5
COMMAND_TIMEOUT_S = 10
# Tables written before bodies were bytes: the text's UTF-8 bytes are what its hashes were computed over.
BODY_TYPE = (
    "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = $1 AND column_name = 'body'"
)
MIGRATE = "ALTER TABLE {table} ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8')"


class PostgresStore:
    """One connection and one private event loop; every call runs to completion on it."""

    def __init__(self, url: str, table: str = "audit") -> None:
        if not table.isidentifier():
            raise ValueError(f"audit table name {table!r} is not a plain identifier")
        self.url = url
        self.table = table
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    @property
    def _open_conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError(f"the audit store's table {self.table} is not open")
        return self._conn

    def open(self, create: bool = True) -> tuple[int, str]:
        """Connect, creating (`create`) or migrating the table; return (last seq, last hash) to continue the chain."""
        if self._loop.is_closed():  # reopened after a failure
            self._loop = asyncio.new_event_loop()
        # Bounded waits: a database that stops answering fails the call, and the writer reconnects.
        self._conn = self._run(asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S))
        if create:
            self._run(self._conn.execute(SCHEMA.format(table=self.table)))
            if self._run(self._conn.fetchval(BODY_TYPE, self.table.lower())) == "text":
                self._run(self._conn.execute(MIGRATE.format(table=self.table)))
        row = self._run(self._conn.fetchrow(f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1"))
        return (row["seq"], row["hash"]) if row else (0, GENESIS)

    def append(self, records: list[Record]) -> None:
        conn = self._open_conn

        async def write() -> None:
            async with conn.transaction():
                await conn.executemany(
                    f"INSERT INTO {self.table} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", records
                )

        self._run(write())

    def records(self, start_ns: int | None = None, end_ns: int | None = None) -> Iterator[Record]:
        rows = self._run(
            self._open_conn.fetch(
                f"SELECT {COLUMNS} FROM {self.table} WHERE ts_ns >= $1 AND ts_ns < $2 ORDER BY seq",
                start_ns or 0,
                end_ns or 2**63 - 1,
            )
        )
        return (Record(*row) for row in rows)

    def for_order(self, key: str) -> list[Record]:
        order_ids = [
            r["order_id"]
            for r in self._run(
                self._open_conn.fetch(
                    f"SELECT DISTINCT order_id FROM {self.table} WHERE (order_id = $1 OR cl_ord_id = $1)"
                    " AND order_id IS NOT NULL AND order_id != 'NONE'",
                    key,
                )
            )
        ]
        rows = self._run(
            self._open_conn.fetch(
                f"SELECT {COLUMNS} FROM {self.table} WHERE order_id = ANY($1::text[]) OR (cl_ord_id = $2 AND "
                "(order_id IS NULL OR order_id = 'NONE')) ORDER BY seq",
                order_ids,
                key,
            )
        )
        return [Record(*row) for row in rows]

    def last_before(self, kind: str, seq: int) -> Record | None:
        """The newest record of this kind before record seq (e.g. the config an order ran under)."""
        row = self._run(
            self._open_conn.fetchrow(
                f"SELECT {COLUMNS} FROM {self.table} WHERE kind = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1", kind, seq
            )
        )
        return None if row is None else Record(*row)

    def ping(self) -> None:
        """Fails when the server is gone, so the writer reconnects before anything waits on a commit."""
        self._run(self._open_conn.execute("SELECT 1"))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._run(self._conn.close(timeout=CONNECT_TIMEOUT_S))
            except Exception:  # the server is gone: drop the socket without a goodbye
                self._conn.terminate()
            self._conn = None
        self._loop.close()
