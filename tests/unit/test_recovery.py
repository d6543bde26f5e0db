"""Replaying an audit trail rebuilds the engine exactly and finds what was decided but never sent."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
import quickfix as fix

from gateway import recovery
from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, chain
from gateway.core.breaker import BreakerPolicy, Breakers, CircuitState
from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.routing.venue_planner import VenuePlanner
from gateway.core.routing.venue_rules import VenueRules
from gateway.core.types import (
    ExecType,
    ExecutionReport,
    OrdStatus,
    SendChild,
    TimeInForce,
    Urgency,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument
from gateway.fix import codec
from gateway.fix.sessions import StoreState

OMS = "FIX.4.4:SORGW->OMS"
LITA = "FIX.4.4:SORGW->LITA"


def make_engine(boot: str) -> OrderEngine:
    market = MarketView()
    market.update(BookSnapshot("LITA", "AAPL", (Level(D("99.99"), 500),), (Level(D("100.01"), 500),), 1, 0))
    venues = {"LITA": VenueInfo("LITA", VenueKind.LIT, D("-0.002"), D("0.003"), 300, True)}
    return OrderEngine({"AAPL": Instrument("AAPL", D("0.01"))}, venues, market, IdSource(boot), ManualClock())


def raw(msg_type: str, fields: dict[int, str]) -> str:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString("FIX.4.4"))
    msg.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields.items():
        msg.setField(tag, value)
    return msg.toString()


class Trail:
    """Drives an engine the way the service does, writing the entries the service would write."""

    def __init__(self, engine: OrderEngine) -> None:
        self.engine = engine
        self.entries: list[Entry] = [Entry("config", entries.to_json({"boot": "old"}))]
        self.sent: list = []

    def step(self, inbound: Entry, out, send: bool = True) -> None:
        self.entries.append(inbound)
        self.entries += entries.for_outbox(out, 0, {})
        for command in out.commands:
            self.sent.append(command)
            if send:
                self.entries.append(
                    entries.fix_message(
                        "out", OMS if isinstance(command, ExecutionReport) else LITA, self.out_raw(command), 0
                    )
                )

    @staticmethod
    def out_raw(command) -> str:
        if isinstance(command, ExecutionReport):
            return codec.execution_report(command, "FIX.4.4").toString()
        return codec.new_order_single(command, "FIX.4.4").toString()


def _order_then_fill(trail: Trail) -> tuple[SendChild, ExecutionReport]:
    """An order for 300 sent to LITA and filled there; the fill's report to the OMS is decided but not sent."""
    d = raw("D", {11: "P1", 55: "AAPL", 54: "1", 38: "300", 40: "2", 44: "100.01", 59: "0", 9701: "H"})
    out = trail.engine.on_new_order(codec.parse_new_order(fix.Message(d, False), OMS, Urgency.MEDIUM))
    trail.step(entries.fix_message("in", OMS, d, 0, None, "P1"), out)
    (child,) = [c for c in out.commands if isinstance(c, SendChild)]
    report = raw(
        "8",
        {
            37: "V1",
            11: child.cl_ord_id,
            17: "LITA-X1",
            150: "F",
            39: "2",
            55: "AAPL",
            54: "1",
            38: "300",
            32: "300",
            31: "100.01",
            14: "300",
            151: "0",
            6: "100.01",
        },
    )
    out = trail.engine.on_venue_report(codec.parse_venue_report(fix.Message(report, False), "LITA"))
    trail.step(entries.fix_message("in", LITA, report, 0, None, child.cl_ord_id), out, send=False)
    (fill_report,) = [c for c in out.commands if isinstance(c, ExecutionReport)]
    return child, fill_report


def test_replay_rebuilds_state_and_returns_only_the_unsent():
    original = make_engine("old")
    trail = Trail(original)
    # The crash: the fill was on record, the report to the OMS was decided but never sent.
    child, fill_report = _order_then_fill(trail)

    rebuilt = make_engine("new")
    result = recovery.replay(rebuilt, chain(trail.entries, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)

    assert result.unsent == [fill_report]  # same ExecID: the OMS gets it once, after the restart
    (parent,) = rebuilt.parents.values()
    (before,) = original.parents.values()
    assert (parent.order_id, parent.cum_qty, parent.notional, parent.status) == (
        before.order_id,
        before.cum_qty,
        before.notional,
        OrdStatus.FILLED,
    )
    assert list(parent.children) == [child.cl_ord_id]
    assert rebuilt.ids.exec_id().startswith("new-")  # new reports after the restart never reuse an ExecID
    # A duplicate of the venue's report (a resend after restart) changes nothing.
    again = rebuilt.on_venue_report(
        VenueReport("LITA", child.cl_ord_id, "LITA-X1", ExecType.TRADE, OrdStatus.FILLED, 300, D("100.01"))
    )
    assert again.commands == []


def test_replay_refuses_a_trail_whose_decisions_do_not_match():
    original = make_engine("old")
    trail = Trail(original)
    d = raw("D", {11: "P1", 55: "AAPL", 54: "1", 38: "300", 40: "2", 44: "100.01", 59: "0", 9701: "H"})
    out = original.on_new_order(codec.parse_new_order(fix.Message(d, False), OMS, Urgency.MEDIUM))
    trail.step(entries.fix_message("in", OMS, d, 0, None, "P1"), out)
    trail.entries = [e for e in trail.entries if e.kind != "decision"]  # a decision removed from the trail
    with pytest.raises(recovery.RecoveryError, match="no decision is on record"):
        recovery.replay(make_engine("new"), chain(trail.entries, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)


def test_replay_keeps_two_sessions_with_one_cl_ord_id_apart_and_restores_emulated_iocs():
    oms42 = "FIX.4.2:SORGW->OMS42"
    original = make_engine("old")
    # LITA takes no IOC: the take children go as DAY, to be canceled once acknowledged.
    original.planner = VenuePlanner({"LITA": VenueRules(tifs=frozenset({TimeInForce.DAY}))}, original.instruments)
    trail = Trail(original)
    for session, fields in ((OMS, {54: "1", 44: "100.01"}), (oms42, {54: "2", 44: "99.99", 21: "1"})):
        d = raw("D", {11: "P1", 55: "AAPL", 38: "200", 40: "2", 59: "0", 9701: "H", **fields})
        out = original.on_new_order(codec.parse_new_order(fix.Message(d, False), session, Urgency.MEDIUM))
        trail.step(entries.fix_message("in", session, d, 0, None, "P1"), out, send=False)
    f = raw("F", {11: "P1-C", 41: "P1", 55: "AAPL", 54: "2"})
    out = original.on_cancel(codec.parse_cancel(fix.Message(f, False), oms42))
    trail.step(entries.fix_message("in", oms42, f, 0, None, "P1-C"), out, send=False)

    rebuilt = make_engine("new")
    recovery.replay(rebuilt, chain(trail.entries, 1, GENESIS), {OMS, oms42}, {LITA: "LITA"}, Urgency.MEDIUM)

    def state(engine):
        return sorted(
            (
                p.session,
                p.cl_ord_id,
                p.side,
                p.status,
                type(p.pending).__name__,
                [(c.cl_ord_id, c.spec) for c in p.children.values()],
            )
            for p in engine.parents.values()
        )

    assert state(rebuilt) == state(original)
    assert rebuilt.order_id_for(OMS, "P1") != rebuilt.order_id_for(oms42, "P1")
    specs = [c.spec for p in rebuilt.parents.values() for c in p.children.values()]
    assert len(specs) == 2 and all(s.tif is TimeInForce.DAY and s.cancel_on_ack for s in specs)


def _filled_order_with_its_report_recorded_at(msg_seq: int) -> tuple[Trail, ExecutionReport]:
    """A trail in which the OMS's fill report is on record with MsgSeqNum msg_seq, after a start whose store said 1."""
    trail = Trail(make_engine("old"))
    trail.entries.append(Entry("store", entries.to_json(recovery.store_record_body(OMS, STORE_AT_START)), OMS))
    _, fill_report = _order_then_fill(trail)
    message = codec.execution_report(fill_report, "FIX.4.4")
    message.getHeader().setField(34, str(msg_seq))
    trail.entries.append(entries.fix_message("out", OMS, message.toString(), 0, None, "P1"))
    return trail, fill_report


STORE_AT_START = StoreState(1, 1, "20261202-10:00:00", True)


@pytest.mark.parametrize(
    "store_now, resent",
    [
        (StoreState(7, 3, "20261202-10:00:00", True), True),  # the report took MsgSeqNum 7, the store never got it
        (StoreState(8, 3, "20261202-10:00:00", True), False),  # stored: the OMS has it or gets it by FIX resend
        (StoreState(1, 1, "20261202-11:00:00", True), False),  # the store was reset since: nothing to tell by
        (StoreState(7, 3, "20261202-10:00:00", False), False),  # reset on logon: on record counts as sent
    ],
)
def test_a_report_on_record_is_sent_again_only_when_the_store_shows_it_was_never_stored(store_now, resent):
    trail, fill_report = _filled_order_with_its_report_recorded_at(7)
    result = recovery.replay(
        make_engine("new"), chain(trail.entries, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM, {OMS: store_now}
    )
    assert result.unsent == ([fill_report] if resent else [])
    assert len(result.never_sent) == (1 if resent else 0)


def test_two_starts_in_the_same_millisecond_get_different_id_prefixes():
    """ExecIDs and OrderIDs carry the start's prefix: a restart within a millisecond, or after the clock was set
    back, must not issue an earlier start's ids again."""
    from gateway.core.clock import ManualClock
    from gateway.service import boot_id

    clock = ManualClock()
    prefixes = {boot_id(clock) for _ in range(50)}
    assert len(prefixes) > 1  # the chance that 50 draws of 1,296 all agree is nil
    assert len({p[:-2] for p in prefixes}) == 1  # the millisecond part is shared; they sort by start time


def test_breakers_start_closed_after_recovery_whatever_the_replayed_runs_left_open():
    engine = make_engine("old")
    engine.breakers = Breakers(engine.venues, BreakerPolicy(failures=1))
    trail = Trail(engine)
    for event in ("logout", "logon", "logout"):  # the recorded run lost LITA: its breaker opened
        trail.entries.append(Entry("session", entries.to_json({"role": "venue", "event": event}), "LITA"))
    rebuilt = make_engine("new")
    rebuilt.breakers = Breakers(rebuilt.venues, BreakerPolicy(failures=1))
    opened = []
    rebuilt.on_venue_status = _spy(rebuilt, opened)
    recovery.replay(rebuilt, chain(trail.entries, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    assert CircuitState.OPEN in opened  # the replay saw the breaker open, as the recorded run did
    assert rebuilt.breakers.states() == {"LITA": CircuitState.CLOSED}


def _spy(engine: OrderEngine, states: list):
    step = engine.on_venue_status

    def on_venue_status(venue: str, connected: bool):
        out = step(venue, connected)
        states.append(engine.breakers.state(venue))
        return out

    return on_venue_status


def _fill_report_stored_at_7(trail: Trail, fill_report: ExecutionReport, sending_time: str) -> bytes:
    message = codec.execution_report(fill_report, "FIX.4.4")
    message.getHeader().setField(34, "7")
    message.getHeader().setField(52, sending_time)
    return message.toString().encode()


def test_a_report_stored_and_sent_whose_record_was_lost_is_recovered_from_the_store_not_sent_again():
    """The persistent store's tap only queues the record: the process died after quickfix stored and sent the
    report, before the record was committed. The store holds it, so it is on record again and not sent twice."""
    trail = Trail(make_engine("old"))
    trail.entries.append(Entry("store", entries.to_json(recovery.store_record_body(OMS, STORE_AT_START)), OMS))
    _, fill_report = _order_then_fill(trail)
    stored = _fill_report_stored_at_7(trail, fill_report, "20261202-10:00:01.250")
    records = chain(trail.entries, 1, GENESIS)
    store_now = {OMS: StoreState(8, 3, "20261202-10:00:00", True)}

    without = recovery.replay(make_engine("new"), records, {OMS}, {LITA: "LITA"}, Urgency.MEDIUM, store_now)
    assert without.unsent == [fill_report]  # from the trail alone: decided, not on record, so sent again

    result = recovery.replay(
        make_engine("new"), records, {OMS}, {LITA: "LITA"}, Urgency.MEDIUM, store_now, {OMS: {7: stored}}
    )
    assert result.unsent == [] and result.never_sent == []
    (recovered,) = result.recovered
    assert (recovered.kind, recovered.session, recovered.body) == ("fix_out", OMS, stored)
    assert recovered.seq == records[-1].seq + 1  # after the trail's last record
    sent_at = datetime(2026, 12, 2, 10, 0, 1, tzinfo=timezone.utc)
    assert recovered.ts_ns == int(sent_at.timestamp()) * 1_000_000_000 + 250_000_000  # its SendingTime
    assert recovered.cl_ord_id == "P1"


def test_only_stored_application_messages_that_no_record_holds_byte_for_byte_are_recovered():
    trail = Trail(make_engine("old"))
    _, fill_report = _order_then_fill(trail)
    on_record = _fill_report_stored_at_7(trail, fill_report, "20261202-10:00:01")
    trail.entries.append(entries.fix_message("out", OMS, on_record.decode(), 0, None, "P1"))
    heartbeat = raw("0", {34: "8"}).encode()
    # The same number with other bytes: a message of another life of the store, or recorded and never stored.
    other = on_record.replace(b"52=20261202-10:00:01", b"52=20261202-10:00:02")
    store_now = {OMS: StoreState(9, 3, "20261202-10:00:00", True)}

    def recovered(stored: dict[int, bytes]) -> list[bytes]:
        result = recovery.replay(
            make_engine("new"),
            chain(trail.entries, 1, GENESIS),
            {OMS},
            {LITA: "LITA"},
            Urgency.MEDIUM,
            store_now,
            {OMS: stored},
        )
        return [r.body for r in result.recovered]

    assert recovered({7: on_record, 8: heartbeat}) == []
    assert recovered({7: other}) == [other]
