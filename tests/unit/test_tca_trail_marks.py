"""The TCA reader on both forms of markout marks: a `marks` record per market read, and an older trail's `mark`
record per (fill, horizon) give a fill the same marks."""

from __future__ import annotations

import json
from decimal import Decimal as D

from gateway.analytics.tca import Mark, Quote
from gateway.audit.records import Record
from gateway.tca.trail import Selection, read_trail

OMS, LITA = "FIX.4.4:SORGW->OMS", "FIX.4.4:SORGW->LITA"
VENUES = {"LITA": ["9.98", "10.02"], "LITB": [None, "10.03"]}


def record(seq: int, ts_ns: int, kind: str, body, session=None, order_id=None) -> Record:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.replace(b"|", b"\x01")
    return Record(seq, ts_ns, kind, session, order_id, None, raw, "", "")


def order_with_a_fill() -> list[Record]:
    """A buy sent to LITA and filled there, reported upstream as ExecID E1."""
    return [
        record(1, 0, "config", {"config": {"venues": [{"name": "LITA", "kind": "lit"}]}}),
        record(2, 10, "fix_in", b"35=D|11=C1|55=XYZ|54=1|38=100|40=2|44=10|", OMS, "O1"),
        record(3, 20, "fix_out", b"35=D|11=K1|38=100|40=2|44=10|", LITA, "O1"),
        record(4, 30, "fix_in", b"35=8|11=K1|150=F|32=100|31=10|17=V1|851=2|", LITA, "O1"),
        record(
            5, 31, "quote", {"exec_id": "E1", "fill": True, "ord_status": "2", "bid": "9.99", "ask": "10.01"}, OMS, "O1"
        ),
    ]


def test_a_marks_record_and_old_mark_records_give_a_fill_the_same_marks():
    market = {"symbol": "XYZ", "bid": "9.98", "ask": "10.02", "venues": VENUES}
    later = {**market, "bid": "9.97"}
    new = [
        record(6, 130, "marks", {**market, "marks": [["E9", 0], ["E1", 100]]}),  # E9: no fill of this trail
        record(7, 1_030, "marks", {**later, "marks": [["E1", 1000]]}),
    ]
    old = [
        record(6, 130, "mark", {**market, "exec_id": "E1", "horizon_ms": 100}),
        record(7, 130, "mark", {**market, "exec_id": "E9", "horizon_ms": 0}),
        record(8, 1_030, "mark", {**later, "exec_id": "E1", "horizon_ms": 1000}),
    ]
    [from_new], _, _ = read_trail(order_with_a_fill() + new, Selection())
    [from_old], _, _ = read_trail(order_with_a_fill() + old, Selection())
    touches = {"LITA": (D("9.98"), D("10.02")), "LITB": (None, D("10.03"))}
    assert from_new.fills[0].marks == (
        Mark(100, 130, Quote(D("9.98"), D("10.02")), touches),
        Mark(1000, 1_030, Quote(D("9.97"), D("10.02")), touches),
    )
    assert from_old == from_new
