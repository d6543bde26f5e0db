"""Pick the audit store an `audit.url` names: sqlite:///path or postgresql://..."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.sqlite import SqliteStore


def open_store(url: str, table: str = "audit"):
    """A store for the url (PostgreSQL: in `table`), not yet opened; ValueError for any other url."""
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url[len("sqlite:///") :]))
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.audit.postgres import PostgresStore

        return PostgresStore(url, table)
    raise ValueError(f"audit.url {url!r}: expected sqlite:///PATH or postgresql://...")
