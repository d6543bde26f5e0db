"""The market a routing decision read, put on record compactly: each book's top levels once, then references.

A `book` record goes with each decision: per lit book the router read, either its levels (the first time
that snapshot is recorded) or a reference to the earlier record that holds them (`at`: that record's time),
since the same snapshot has the same levels. Snapshots are told apart by venue, symbol, venue seq and venue
timestamp. The ledger advances only once a record is committed, so a reference never names a record that
was not written.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.core.market import BookSnapshot, Level

Identity = tuple[str, str, int, int]  # venue, symbol, seq, ts_ns


class BookRecordError(ValueError):
    """A book record that cannot be read back: malformed, or its reference names no record holding the levels."""


def identity(snapshot: BookSnapshot) -> Identity:
    return snapshot.venue, snapshot.symbol, snapshot.seq, snapshot.ts_ns


def _levels(levels: Sequence[Level], depth: int) -> list[list]:
    return [[str(level.price), level.qty] for level in levels[:depth]]


@dataclass(frozen=True, slots=True)
class BookBody:
    """One decision's book record: the body to write and the snapshots it gives levels for (for the ledger)."""

    body: dict
    written: tuple[Identity, ...]


class BookLedger:
    """Which snapshot of each (venue, symbol) was last written with its levels, and in which record."""

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("a book record keeps at least one level per side")
        self.depth = depth
        self._written: dict[tuple[str, str], tuple[Identity, int]] = {}  # (venue, symbol) -> (identity, at)

    def body(self, books: Iterable[BookSnapshot]) -> BookBody:
        """The record of these books: levels for a snapshot not written before, a reference otherwise."""
        out, written = [], []
        for snapshot in books:
            key = identity(snapshot)
            entry: dict = {"venue": snapshot.venue, "symbol": snapshot.symbol, "seq": snapshot.seq,
                           "ts_ns": snapshot.ts_ns}
            known = self._written.get(key[:2])
            if known is not None and known[0] == key:
                entry["at"] = known[1]
            else:
                entry["bids"] = _levels(snapshot.bids, self.depth)
                entry["asks"] = _levels(snapshot.asks, self.depth)
                written.append(key)
            out.append(entry)
        return BookBody({"books": out}, tuple(written))

    def committed(self, book: BookBody, at_ns: int) -> None:
        """The record holding `book` is on the trail with time at_ns: later records may refer to it."""
        for key in book.written:
            self._written[key[:2]] = (key, at_ns)


def read_books(body: Mapping, resolve: Callable[[Identity, int], tuple[list, list] | None]) -> list[BookSnapshot]:
    """The snapshots a book record names; `resolve(identity, at)` finds the (bids, asks) of a referenced one
    in the record at that time, or None."""
    books = []
    for entry in body.get("books", ()):
        try:
            key = (entry["venue"], entry["symbol"], int(entry["seq"]), int(entry["ts_ns"]))
            if "at" in entry:
                levels = resolve(key, int(entry["at"]))
                if levels is None:
                    raise BookRecordError(f"book record refers to {key[0]} {key[1]} seq {key[2]} in a record at "
                                          f"{entry['at']} that does not hold it")
                bids, asks = levels
            else:
                bids, asks = entry["bids"], entry["asks"]
            books.append(BookSnapshot(key[0], key[1], _parse(bids), _parse(asks), key[2], key[3]))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            if isinstance(exc, BookRecordError):
                raise
            raise BookRecordError(f"malformed book record entry {entry!r}: {exc}") from None
    return books


def levels_in(body: Mapping, key: Identity) -> tuple[list, list] | None:
    """The (bids, asks) a book record body writes out for the snapshot `key`, if it does."""
    for entry in body.get("books", ()):
        if "at" not in entry and (entry.get("venue"), entry.get("symbol"), entry.get("seq"),
                                  entry.get("ts_ns")) == key:
            return entry.get("bids", []), entry.get("asks", [])
    return None


def _parse(levels: Sequence) -> tuple[Level, ...]:
    return tuple(Level(Decimal(price), int(qty)) for price, qty in levels)
