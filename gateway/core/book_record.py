"""The market a routing decision read, put on record compactly: each book's top levels once, then references.

A `book` record goes with each decision: per lit book the router read, either its levels (the first time
that snapshot is recorded) or a reference to the earlier record that holds them (`at`: that record's time),
since the same snapshot has the same levels. Snapshots are told apart by venue, symbol, venue seq and venue
timestamp; a reference names the venue and seq, the symbol is the record's. The ledger advances as records
are handed to the audit writer, which writes them in that order and drops none, so a reference always names
a record that is on the trail before the one that refers to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal

from gateway.core.market import BookSnapshot, Level

Identity = tuple[str, str, int, int]  # venue, symbol, seq, ts_ns


class BookRecordError(ValueError):
    """A book record that cannot be read back: malformed, or its reference names no record holding the levels."""


def identity(snapshot: BookSnapshot) -> Identity:
    return snapshot.venue, snapshot.symbol, snapshot.seq, snapshot.ts_ns


def _levels(levels: Sequence[Level], depth: int) -> list[list]:
    return [[str(level.price), level.qty] for level in levels[:depth]]


class BookLedger:
    """Which snapshot of each (venue, symbol) was last written with its levels, and in which record."""

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("a book record keeps at least one level per side")
        self.depth = depth
        self._written: dict[tuple[str, str], tuple[Identity, int]] = {}  # (venue, symbol) -> (identity, at)

    def record(self, symbol: str, books: Iterable[BookSnapshot], at_ns: int) -> dict:
        """The body of the record (time at_ns) of these books of `symbol`: levels for a snapshot not written
        before, else a reference to the record that wrote them."""
        out = []
        for snapshot in books:
            key = identity(snapshot)
            known = self._written.get(key[:2])
            if known is not None and known[0] == key:
                out.append({"venue": snapshot.venue, "seq": snapshot.seq, "at": known[1]})
            else:
                out.append(
                    {
                        "venue": snapshot.venue,
                        "seq": snapshot.seq,
                        "ts_ns": snapshot.ts_ns,
                        "bids": _levels(snapshot.bids, self.depth),
                        "asks": _levels(snapshot.asks, self.depth),
                    }
                )
                self._written[key[:2]] = (key, at_ns)
        return {"symbol": symbol, "books": out}


Levels = tuple[list, list, int]  # bids, asks (as recorded), the snapshot's ts_ns


def read_books(body: Mapping, resolve: Callable[[str, str, int, int], Levels | None]) -> list[BookSnapshot]:
    """The snapshots a book record names; `resolve(venue, symbol, seq, at)` finds the levels of a referenced
    one in the record at that time, or None."""
    books = []
    symbol = body.get("symbol")
    if not isinstance(symbol, str):
        raise BookRecordError(f"book record without a symbol: {dict(body)!r}"[:200])
    for entry in body.get("books", ()):
        try:
            venue, seq = entry["venue"], int(entry["seq"])
            if "at" in entry:
                levels = resolve(venue, symbol, seq, int(entry["at"]))
                if levels is None:
                    raise BookRecordError(
                        f"book record refers to {venue} {symbol} seq {seq} in a record at "
                        f"{entry['at']} that does not hold it"
                    )
            else:
                levels = written(entry)
            bids, asks, ts_ns = levels
            books.append(BookSnapshot(venue, symbol, _parse(bids), _parse(asks), seq, ts_ns))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            if isinstance(exc, BookRecordError):
                raise
            raise BookRecordError(f"malformed book record entry {entry!r}: {exc}") from None
    return books


def written(entry: Mapping) -> Levels:
    """The levels a book record entry writes out (KeyError if it is a reference)."""
    return entry["bids"], entry["asks"], int(entry["ts_ns"])


def _parse(levels: Sequence) -> tuple[Level, ...]:
    return tuple(Level(Decimal(price), int(qty)) for price, qty in levels)
