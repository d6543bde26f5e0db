"""`sorgw audit show` tells an order's markout marks too: `marks` records name no order, only the ExecIDs they mark."""

from __future__ import annotations

import io
from decimal import Decimal as D

from gateway.audit import commands, entries
from gateway.audit.records import Entry
from gateway.audit.sqlite import SqliteStore
from gateway.audit.writer import AuditWriter
from gateway.core.market import Nbbo

MS = 1_000_000
UP = "FIX.4.4:SORGW->OMS"


def _fill(exec_id: str, ts_ns: int) -> Entry:
    body = f"8=FIX.4.4\x0135=8\x0111=A1\x0117={exec_id}\x01150=F\x0139=2\x0132=100\x0131=10.01\x01".encode()
    return Entry("fix_out", body, UP, "O1", "A1", ts_ns)


def _marks(marked: list[tuple[str, int]], ts_ns: int) -> Entry:
    return entries.marks("XYZ", marked, Nbbo(D("10.00"), 100, D("10.02"), 200), {}, ts_ns)


def _shown(tmp_path, trail: list[Entry], key: str) -> str:
    """What `sorgw audit show key` prints for a trail of these entries."""
    writer = AuditWriter(SqliteStore(tmp_path / "audit.db"))
    writer.start()
    writer.commit(trail)
    writer.stop()
    store = SqliteStore(tmp_path / "audit.db")
    store.open()
    shown = io.StringIO()
    try:
        assert commands.show(store, key, shown) == 0
    finally:
        store.close()
    return shown.getvalue()


def test_show_lists_the_marks_of_the_orders_fills_and_only_those(tmp_path):
    horizons = [100, 5000]
    trail = [
        Entry("config", entries.to_json({"config": {"tca": {"markout_horizons_ms": horizons}}}), ts_ns=1),
        Entry("fix_in", b"8=FIX.4.4\x0135=D\x0111=A1\x0138=200\x01", UP, "O1", "A1", 10 * MS),
        _fill("E1", 20 * MS),
        _marks([("E7", 100)], 25 * MS),  # another order's, before this one's first fill
        _fill("E2", 30 * MS),
        _marks([("E1", 100), ("E8", 100)], 120 * MS),
        _marks([("E2", 100)], 130 * MS),
        _marks([("E9", 1000)], 140 * MS),
        _marks([("E1", 5000), ("E2", 5000)], 5030 * MS),
        _marks([("E1", 100)], (30 + 5000 + commands.MARKS_LATE_MS + 1) * MS),  # past any horizon and lateness
    ]
    lines = _shown(tmp_path, trail, "A1").splitlines()
    marks = [line.split("  #")[1].split(None, 1)[1] for line in lines if "mark " in line]
    assert marks == [
        "mark 100 ms after fill E1: NBBO 10.00/10.02",
        "mark 100 ms after fill E2: NBBO 10.00/10.02",
        "mark 5000 ms after fill E1: NBBO 10.00/10.02",
        "mark 5000 ms after fill E2: NBBO 10.00/10.02",
    ]
    seqs = [int(line.split("#")[1].split()[0]) for line in lines]
    assert seqs == sorted(seqs) and len(lines) == 3 + 4  # the order's own three records, then in seq order


def test_a_trail_whose_config_predates_tca_still_shows_the_order(tmp_path):
    trail = [Entry("config", b'{"boot": "b1"}', ts_ns=1), _fill("E1", 20 * MS), _marks([("E1", 0)], 20 * MS)]
    assert "mark 0 ms after fill E1" in _shown(tmp_path, trail, "A1")


def test_an_order_without_fills_shows_no_marks(tmp_path):
    trail = [Entry("fix_in", b"8=FIX.4.4\x0135=D\x0111=B1\x01", UP, "O2", "B1", 5), _marks([("E1", 100)], 9)]
    shown = _shown(tmp_path, trail, "B1")
    assert "mark" not in shown and len(shown.splitlines()) == 1
