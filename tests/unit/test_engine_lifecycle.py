"""The engine over an order's whole life: finished orders leave memory, a venue that stays down, stopping."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
import quickfix as fix

from gateway import recovery
from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, chain
from gateway.core.types import (
    CancelChild,
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    OrdRejReason,
    OrdStatus,
    QueryChild,
    SendChild,
    Side,
    StatusRequest,
    Urgency,
    VenueReport,
)
from gateway.fix import codec
from tests.unit.test_engine import children, fill, order, reports
from tests.unit.test_recovery import LITA, OMS, Trail, make_engine, raw

SECOND = 1_000_000_000
S = "FIX.4.4:SORGW->OMS"
S2 = "FIX.4.2:SORGW->OMS2"


def filled_order(engine, cl: str, qty: int = 300) -> list[SendChild]:
    """A buy that takes LITA's and LITB's offers and fills completely."""
    out = engine.on_new_order(order(cl=cl, qty=qty))
    sent = children(out)
    for i, child in enumerate(sent):
        engine.on_venue_report(fill(child, child.spec.qty, str(child.spec.price), f"{cl}-x{i}", done=True))
    return sent


def resting(engine, cl: str = "P1", qty: int = 100, session: str = S) -> SendChild:
    """A buy below the offers: it rests as one child on LITA, acknowledged."""
    new = dataclasses.replace(order(cl=cl, qty=qty, price="99.95"), session=session)
    (child,) = children(engine.on_new_order(new))
    engine.on_venue_report(VenueReport("LITA", child.cl_ord_id, f"{cl}-ack", ExecType.NEW, OrdStatus.NEW))
    return child


def sizes(engine) -> tuple[int, ...]:
    return (
        len(engine.parents),
        len(engine._by_cl_ord_id),
        len(engine._children),
        len(engine._unanswered),
        len(engine._finished),
    )


# --- finished orders leave memory ---------------------------------------------------------------------------


def test_a_finished_order_leaves_memory_after_the_retention_and_its_final_state_answers(engine):
    engine.retain_finished_ns = 10 * SECOND
    sent = filled_order(engine, "P1")
    order_id = engine.order_id_for(S, "P1")
    assert engine.parents[order_id].status is OrdStatus.FILLED
    engine.clock.advance(9 * SECOND)
    assert engine.on_timer(engine.clock.now_ns()).decisions == []  # late venue reports still find it
    engine.clock.advance(2 * SECOND)
    out = engine.on_timer(engine.clock.now_ns())
    assert any(order_id in str(d) for d in out.decisions)  # on record, so a replay forgets it at the same tick
    assert sizes(engine) == (0, 0, 0, 0, 0)

    (status,) = reports(engine.on_status_request(StatusRequest(S, "P1", "AAPL", Side.BUY)))
    assert (status.exec_type, status.ord_status, status.order_id, status.cum_qty, status.leaves_qty) == (
        ExecType.ORDER_STATUS,
        OrdStatus.FILLED,
        order_id,
        300,
        0,
    )
    assert status.avg_px == D("100.01")
    (dup,) = reports(engine.on_new_order(order(cl="P1", qty=100)))
    assert dup.ord_status is OrdStatus.REJECTED and dup.ord_rej_reason is OrdRejReason.DUPLICATE_ORDER
    (reject,) = engine.on_cancel(CancelRequest(S, "C1", "P1", "AAPL", Side.BUY)).commands
    assert isinstance(reject, CancelReject) and reject.reason is CxlRejReason.TOO_LATE
    assert reject.order_id == order_id and reject.ord_status is OrdStatus.FILLED
    # A venue's late repeat of a fill finds nothing to change.
    late = engine.on_venue_report(fill(sent[0], sent[0].spec.qty, "100.01", "P1-x0", done=True))
    assert late.commands == []


def test_a_parent_stays_while_a_child_is_live_even_when_it_is_final(engine):
    engine.retain_finished_ns = SECOND
    first, second = children(engine.on_new_order(order(qty=500)))
    # One venue fills more than its child (an overfill): the parent is final while the other child works.
    engine.on_venue_report(fill(first, first.spec.qty, "100.01", "f1"))
    engine.on_venue_report(fill(first, second.spec.qty, "100.01", "f2", done=True))
    order_id = engine.order_id_for(S, "P1")
    parent = engine.parents[order_id]
    assert parent.status is OrdStatus.FILLED and [c.cl_ord_id for c in parent.live_children()] == [second.cl_ord_id]
    engine.clock.advance(5 * SECOND)
    engine.on_timer(engine.clock.now_ns())
    assert order_id in engine.parents
    assert [c.cl_ord_id for c in engine.working_children()] == [second.cl_ord_id]
    engine.on_venue_report(VenueReport(second.venue, second.cl_ord_id, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    assert engine.working_children() == []
    engine.clock.advance(3 * SECOND)
    engine.on_timer(engine.clock.now_ns())
    assert order_id not in engine.parents


def test_engine_maps_do_not_grow_with_the_number_of_finished_orders(engine):
    engine.retain_finished_ns = SECOND
    engine.finished.capacity = 50
    for i in range(300):
        filled_order(engine, f"N{i}", qty=100)
        engine.clock.advance(SECOND // 10)
        engine.on_timer(engine.clock.now_ns())
    assert len(engine.parents) <= 21  # about two seconds' worth: the retention plus the sweep interval
    engine.clock.advance(3 * SECOND)
    engine.on_timer(engine.clock.now_ns())
    assert sizes(engine) == (0, 0, 0, 0, 0)
    assert len(engine.finished) == 50
    assert engine.finished.get(S, "N299") is not None and engine.finished.get(S, "N0") is None
    # Beyond the window a ClOrdID is new again; inside it, a duplicate.
    assert reports(engine.on_new_order(order(cl="N0", qty=100)))[0].ord_status is not OrdStatus.REJECTED
    assert reports(engine.on_new_order(order(cl="N299", qty=100)))[0].ord_status is OrdStatus.REJECTED


def test_working_children_are_found_without_walking_the_finished_orders_kept_in_memory(engine):
    resting(engine, "R1")
    for i in range(200):
        filled_order(engine, f"N{i}", qty=100)
    assert len(engine.parents) == 201  # all retained for late reports
    assert list(engine._unsettled) == [engine.order_id_for(S, "R1")]  # only it is walked
    (child,) = engine.working_children()
    assert child.parent_id == engine.order_id_for(S, "R1") and child.leaves_qty == 100
    assert engine.exposure(S) == (100, D("9995.00"))


# --- a venue that stays down ----------------------------------------------------------------------------------


def test_children_at_a_venue_down_past_the_timeout_are_held_in_doubt_and_the_oms_is_told(engine):
    engine.venue_down_timeout_ns = 2 * SECOND
    child = resting(engine, qty=100)
    engine.on_venue_status("LITA", False)
    engine.clock.advance(SECOND)
    assert engine.on_timer(engine.clock.now_ns()).commands == []
    engine.clock.advance(SECOND)
    out = engine.on_timer(engine.clock.now_ns())
    (told,) = reports(out)
    assert (told.exec_type, told.ord_status, told.leaves_qty) == (ExecType.ORDER_STATUS, OrdStatus.NEW, 100)
    assert "LITA" in told.text and "100 in doubt" in told.text and child.cl_ord_id in told.text
    assert not children(out) and list(engine.in_doubt) == [child.cl_ord_id]
    engine.clock.advance(10 * SECOND)
    assert engine.on_timer(engine.clock.now_ns()).commands == []  # told once per outage, never re-routed

    out = engine.on_cancel(CancelRequest(S, "C1", "P1", "AAPL", Side.BUY))
    (pending,) = reports(out)
    assert pending.ord_status is OrdStatus.PENDING_CANCEL and "pending until LITA answers" in pending.text
    (cancel,) = [c for c in out.commands if isinstance(c, CancelChild)]
    engine.on_cancel_unsent(cancel.orig_cl_ord_id)

    out = engine.on_venue_status("LITA", True)
    assert [c.cl_ord_id for c in out.commands if isinstance(c, QueryChild)] == [child.cl_ord_id]
    (again,) = [c for c in out.commands if isinstance(c, CancelChild)]
    out = engine.on_venue_report(
        VenueReport("LITA", child.cl_ord_id, "s1", ExecType.ORDER_STATUS, OrdStatus.NEW, cum_qty=0, leaves_qty=100)
    )
    (resolved,) = reports(out)
    assert "LITA answered" in resolved.text and engine.in_doubt == {}
    out = engine.on_venue_report(VenueReport("LITA", again.cl_ord_id, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    assert reports(out)[-1].ord_status is OrdStatus.CANCELED


def test_a_venue_back_before_the_timeout_holds_nothing(engine):
    engine.venue_down_timeout_ns = 2 * SECOND
    resting(engine, qty=100)
    engine.on_venue_status("LITA", False)
    engine.clock.advance(SECOND)
    engine.on_venue_status("LITA", True)
    engine.clock.advance(5 * SECOND)
    assert reports(engine.on_timer(engine.clock.now_ns())) == [] and engine.in_doubt == {}


# --- stopping ---------------------------------------------------------------------------------------------------


def test_shutdown_cancels_every_child_and_ends_each_parent_canceled_once_its_children_are_out(engine):
    first = resting(engine, "P1", qty=100)
    second = resting(engine, "P2", qty=100)
    out = engine.on_shutdown("gateway shutting down")
    cancels = {c.orig_cl_ord_id: c for c in out.commands if isinstance(c, CancelChild)}
    assert set(cancels) == {first.cl_ord_id, second.cl_ord_id} and reports(out) == []
    out = engine.on_venue_report(
        VenueReport("LITA", cancels[first.cl_ord_id].cl_ord_id, "c1", ExecType.CANCELED, OrdStatus.CANCELED)
    )
    (done,) = reports(out)
    assert (done.cl_ord_id, done.exec_type, done.ord_status, done.text) == (
        "P1",
        ExecType.CANCELED,
        OrdStatus.CANCELED,
        "gateway shutting down",
    )
    assert not children(out)  # not re-routed
    # P2's venue never answers: what stays working, and where, is reported.
    (left,) = reports(engine.on_left_working("gateway shutting down"))
    assert left.cl_ord_id == "P2" and left.exec_type is ExecType.ORDER_STATUS and left.ord_status is OrdStatus.NEW
    assert f"100 at LITA (child {second.cl_ord_id})" in left.text
    # An order arriving meanwhile is acknowledged and canceled, never routed.
    out = engine.on_new_order(order(cl="P3", qty=100))
    assert [r.ord_status for r in reports(out)] == [OrdStatus.NEW, OrdStatus.CANCELED] and not children(out)


def test_an_oms_disconnect_cancels_only_that_sessions_orders(engine):
    mine = resting(engine, "P1", qty=100)
    resting(engine, "Q1", qty=100, session=S2)
    out = engine.on_oms_disconnect(S, "OMS gone")
    assert [c.orig_cl_ord_id for c in out.commands if isinstance(c, CancelChild)] == [mine.cl_ord_id]
    (cancel,) = [c for c in out.commands if isinstance(c, CancelChild)]
    out = engine.on_venue_report(VenueReport("LITA", cancel.cl_ord_id, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    assert [(r.session, r.ord_status, r.text) for r in reports(out)] == [(S, OrdStatus.CANCELED, "OMS gone")]
    assert engine.parents[engine.order_id_for(S2, "Q1")].live


@pytest.mark.parametrize("capacity", [0])
def test_no_final_states_kept_means_no_status_from_memory(engine, capacity):
    engine.retain_finished_ns = 0
    engine.finished.capacity = capacity
    filled_order(engine, "P1")
    engine.clock.advance(2 * SECOND)
    engine.on_timer(engine.clock.now_ns())
    (status,) = reports(engine.on_status_request(StatusRequest(S, "P1", "AAPL", Side.BUY)))
    assert status.ord_rej_reason is OrdRejReason.UNKNOWN_ORDER


# --- recovery -------------------------------------------------------------------------------------------------


class CancelTrail(Trail):
    """A trail whose steps may also cancel children."""

    @staticmethod
    def out_raw(command) -> str:
        if isinstance(command, CancelChild):
            return codec.order_cancel_request(command, "FIX.4.4").toString()
        return Trail.out_raw(command)


def test_a_replay_forgets_the_same_orders_at_the_same_recorded_tick_and_replays_a_shutdown():
    original = make_engine("old")
    original.retain_finished_ns = SECOND
    trail = CancelTrail(original)
    clock = original.clock

    def new_order(cl: str, price: str) -> None:
        d = raw("D", {11: cl, 55: "AAPL", 54: "1", 38: "300", 40: "2", 44: price, 59: "0", 9701: "H"})
        out = original.on_new_order(codec.parse_new_order(fix.Message(d, False), OMS, Urgency.MEDIUM))
        trail.step(entries.fix_message("in", OMS, d, clock.now_ns(), None, cl), out)

    def venue(fields: dict[int, str]) -> None:
        report = raw("8", {37: "V1", 55: "AAPL", 54: "1", 38: "300", **fields})
        out = original.on_venue_report(codec.parse_venue_report(fix.Message(report, False), "LITA"))
        trail.step(entries.fix_message("in", LITA, report, clock.now_ns(), None, fields[11]), out)

    def tick() -> None:
        out = original.on_timer(clock.now_ns())
        if out.commands or out.decisions:  # the service records only ticks that did something
            trail.step(
                Entry("event", entries.to_json({"event": "timer", "now_ns": clock.now_ns()}), ts_ns=clock.now_ns()), out
            )

    new_order("F1", "100.01")
    (child,) = original.parents[original.order_id_for(OMS, "F1")].children
    venue({11: child, 17: "X1", 150: "F", 39: "2", 32: "300", 31: "100.01", 14: "300", 151: "0", 6: "100.01"})
    for _ in range(30):
        clock.advance(SECOND // 10)
        tick()
    new_order("R1", "99.90")  # rests on LITA
    (resting_child,) = original.parents[original.order_id_for(OMS, "R1")].children
    venue({11: resting_child, 17: "A1", 150: "0", 39: "0", 32: "0", 14: "0", 151: "300", 6: "0"})
    out = original.on_shutdown("gateway shutting down")
    trail.step(
        Entry("event", entries.to_json({"event": "shutdown", "text": "gateway shutting down"}), ts_ns=clock.now_ns()),
        out,
    )
    assert original.finished.get(OMS, "F1") is not None and original.closing

    rebuilt = make_engine("new")
    rebuilt.retain_finished_ns = SECOND
    result = recovery.replay(rebuilt, chain(trail.entries, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    assert sizes(rebuilt) == sizes(original)
    assert set(rebuilt.parents) == set(original.parents)
    assert rebuilt.finished.get(OMS, "F1") == original.finished.get(OMS, "F1")
    assert rebuilt.parents[rebuilt.order_id_for(OMS, "R1")].close_reason == "gateway shutting down"
    assert result.unsent == []
