"""The book record of a routing decision: levels once per snapshot, references after, read back exactly."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from gateway.audit.entries import to_json
from gateway.core.book_record import BookLedger, BookRecordError, read_books, written
from gateway.core.market import BookSnapshot, Level


def snap(venue: str, seq: int, bids=((D("9.99"), 100), (D("9.98"), 200)), asks=((D("10.01"), 300),)) -> BookSnapshot:
    return BookSnapshot(
        venue, "XYZ", tuple(Level(p, q) for p, q in bids), tuple(Level(p, q) for p, q in asks), seq, 1_000 + seq
    )


def resolver(history: dict[int, dict]):
    """resolve() over written bodies by record time, as the replay reader does."""

    def resolve(venue, symbol, seq, at):
        body = history.get(at, {"books": []})
        entry = next((e for e in body["books"] if e["venue"] == venue and e["seq"] == seq and "at" not in e), None)
        return None if entry is None or body["symbol"] != symbol else written(entry)

    return resolve


def test_a_snapshot_is_written_once_then_referred_to_until_it_changes():
    ledger = BookLedger(depth=10)
    a1, b1 = snap("A", 1), snap("B", 1)
    first = ledger.record("XYZ", [a1, b1], 500)
    assert all("bids" in e and "at" not in e for e in first["books"])
    a2 = snap("A", 2, bids=((D("9.99"), 50),))
    second = ledger.record("XYZ", [a2, b1], 600)
    entries = {e["venue"]: e for e in second["books"]}
    assert entries["A"]["bids"] == [["9.99", 50]] and "at" not in entries["A"]
    assert entries["B"] == {"venue": "B", "seq": 1, "at": 500}
    third = ledger.record("XYZ", [a2, b1], 700)
    assert {e["venue"]: e.get("at") for e in third["books"]} == {"A": 600, "B": 500}
    history = {t: json.loads(to_json(body)) for t, body in ((500, first), (600, second), (700, third))}
    assert read_books(history[700], resolver(history)) == [a2, b1]
    assert read_books(history[600], resolver(history)) == [a2, b1]
    assert len(to_json(third)) < len(to_json(second)) < len(to_json(first))


def test_a_venue_restarting_its_sequence_is_a_new_snapshot():
    ledger = BookLedger(depth=10)
    ledger.record("XYZ", [snap("A", 5)], 500)
    restarted = BookSnapshot("A", "XYZ", (), (Level(D("10.02"), 10),), 5, 9_999)  # same seq, another time
    entry = ledger.record("XYZ", [restarted], 600)["books"][0]
    assert entry["asks"] == [["10.02", 10]] and entry["ts_ns"] == 9_999


def test_levels_past_the_depth_are_not_kept():
    ledger = BookLedger(depth=1)
    entry = ledger.record("XYZ", [snap("A", 1)], 500)["books"][0]
    assert entry["bids"] == [["9.99", 100]] and entry["asks"] == [["10.01", 300]]
    with pytest.raises(ValueError):
        BookLedger(depth=0)


def test_a_reference_to_a_record_that_does_not_hold_the_book_is_an_error():
    ledger = BookLedger(depth=10)
    ledger.record("XYZ", [snap("A", 1)], 500)
    body = json.loads(to_json(ledger.record("XYZ", [snap("A", 1)], 600)))
    with pytest.raises(BookRecordError, match="does not hold it"):
        read_books(body, resolver({}))
    with pytest.raises(BookRecordError, match="malformed"):
        read_books({"symbol": "XYZ", "books": [{"venue": "A"}]}, resolver({}))
    with pytest.raises(BookRecordError, match="without a symbol"):
        read_books({"books": []}, resolver({}))
