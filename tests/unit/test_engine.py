"""The order engine: parent/child state, FIX semantics of the reports it produces, no sockets."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine, Routine
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.types import (
    CancelChild,
    CancelReject,
    CancelRequest,
    ExecType,
    ExecutionReport,
    InvalidOrder,
    NewOrder,
    OrdStatus,
    OrdType,
    QueryChild,
    ReplaceRequest,
    SendChild,
    Side,
    StatusRequest,
    TimeInForce,
    Urgency,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument

S = "FIX.4.4:SORGW->OMS"


def book(venue: str, bids, asks, seq: int = 1) -> BookSnapshot:
    return BookSnapshot(
        venue, "AAPL", tuple(Level(D(p), q) for p, q in bids), tuple(Level(D(p), q) for p, q in asks), seq, 0
    )


def order(cl="P1", qty=500, price="100.02", side=Side.BUY, tif=TimeInForce.DAY, urgency=Urgency.HIGH, **kw):
    return NewOrder(
        S,
        cl,
        kw.pop("symbol", "AAPL"),
        side,
        qty,
        OrdType.LIMIT if price else OrdType.MARKET,
        D(price) if price else None,
        tif,
        urgency=urgency,
        **kw,
    )


def reports(out) -> list[ExecutionReport]:
    return [c for c in out.commands if isinstance(c, ExecutionReport)]


def children(out) -> list[SendChild]:
    return [c for c in out.commands if isinstance(c, SendChild)]


def fill(child: SendChild, qty: int, px: str, exec_id: str, done: bool = False) -> VenueReport:
    status = OrdStatus.FILLED if done else OrdStatus.PARTIALLY_FILLED
    return VenueReport(child.venue, child.cl_ord_id, exec_id, ExecType.TRADE, status, qty, D(px))


def ended(child: SendChild, exec_id: str, exec_type=ExecType.EXPIRED, status=OrdStatus.EXPIRED) -> VenueReport:
    return VenueReport(child.venue, child.cl_ord_id, exec_id, exec_type, status)


def test_new_order_is_acked_then_swept_best_price_first(engine):
    out = engine.on_new_order(order(qty=500))
    ack = reports(out)[0]
    assert (ack.exec_type, ack.ord_status, ack.leaves_qty, ack.cum_qty) == (ExecType.NEW, OrdStatus.NEW, 500, 0)
    sent = {c.venue: c.spec for c in children(out)}
    # 100.01 is shown on both venues (300 + 200): the inverted LITB (taker rebate) goes first.
    assert sent["LITB"].qty == 200 and sent["LITA"].qty == 300
    assert all(s.tif is TimeInForce.IOC and s.price <= D("100.02") for s in sent.values())


def test_fills_roll_up_with_exact_avgpx_and_final_filled(engine):
    out = engine.on_new_order(order(qty=500))
    a, b = sorted(children(out), key=lambda c: c.venue)
    r1 = reports(engine.on_venue_report(fill(a, 300, "100.01", "x1", done=True)))
    r2 = reports(engine.on_venue_report(fill(b, 200, "100.02", "x2", done=True)))
    assert (r1[0].ord_status, r1[0].cum_qty, r1[0].leaves_qty, r1[0].last_mkt) == (
        OrdStatus.PARTIALLY_FILLED,
        300,
        200,
        "LITA",
    )
    last = r2[-1]
    assert (last.ord_status, last.cum_qty, last.leaves_qty) == (OrdStatus.FILLED, 500, 0)
    assert last.avg_px == (D("100.01") * 300 + D("100.02") * 200) / 500


def test_duplicate_venue_exec_id_is_counted_once(engine):
    out = engine.on_new_order(order(qty=500))
    a = sorted(children(out), key=lambda c: c.venue)[0]
    engine.on_venue_report(fill(a, 100, "100.01", "dup"))
    again = engine.on_venue_report(fill(a, 100, "100.01", "dup"))
    assert again.commands == []
    parent = next(iter(engine.parents.values()))
    assert parent.cum_qty == 100


def test_ioc_remainder_expires_after_children_finish(engine):
    out = engine.on_new_order(order(qty=2000, price="100.01", tif=TimeInForce.IOC))
    first, second = children(out)
    assert first.spec.qty + second.spec.qty == 500
    engine.on_venue_report(fill(first, first.spec.qty, "100.01", "f1", done=True))
    # The visible depth within the limit is gone when the last child finishes.
    engine.market.update(book("LITA", [], [("100.02", 300)], seq=2))
    engine.market.update(book("LITB", [], [("100.03", 500)], seq=2))
    out = engine.on_venue_report(fill(second, second.spec.qty, "100.01", "f2", done=True))
    last = reports(out)[-1]
    assert (last.exec_type, last.ord_status, last.cum_qty, last.leaves_qty) == (
        ExecType.EXPIRED,
        OrdStatus.EXPIRED,
        500,
        0,
    )
    assert not children(out)


def test_cancel_waits_for_children_then_reports_canceled(engine):
    out = engine.on_new_order(order(qty=500))
    a, b = sorted(children(out), key=lambda c: c.venue)
    engine.on_venue_report(fill(a, 100, "100.01", "x1"))
    out = engine.on_cancel(CancelRequest(S, "C1", "P1", "AAPL", Side.BUY))
    pending = reports(out)[0]
    assert pending.exec_type is ExecType.PENDING_CANCEL and pending.ord_status is OrdStatus.PENDING_CANCEL
    cancels = [c for c in out.commands if isinstance(c, CancelChild)]
    assert {c.orig_cl_ord_id for c in cancels} == {a.cl_ord_id, b.cl_ord_id}
    engine.on_venue_report(ended(a, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    done = reports(engine.on_venue_report(ended(b, "c2", ExecType.CANCELED, OrdStatus.CANCELED)))
    assert (done[-1].exec_type, done[-1].ord_status, done[-1].cum_qty, done[-1].leaves_qty) == (
        ExecType.CANCELED,
        OrdStatus.CANCELED,
        100,
        0,
    )
    assert done[-1].cl_ord_id == "C1" and done[-1].orig_cl_ord_id == "P1"


def test_cancel_of_filled_order_is_rejected_too_late(engine):
    out = engine.on_new_order(order(qty=500))
    for i, child in enumerate(children(out)):
        engine.on_venue_report(fill(child, child.spec.qty, "100.01", f"f{i}", done=True))
    out = engine.on_cancel(CancelRequest(S, "C1", "P1", "AAPL", Side.BUY))
    (reject,) = out.commands
    assert isinstance(reject, CancelReject) and reject.reason.value == "0" and "too late" in reject.text


def test_unknown_order_cancel_and_status(engine):
    (reject,) = engine.on_cancel(CancelRequest(S, "C9", "NOPE", "AAPL", Side.BUY)).commands
    assert isinstance(reject, CancelReject) and reject.reason.value == "1"
    (status,) = engine.on_status_request(StatusRequest(S, "NOPE", "AAPL", Side.BUY)).commands
    assert status.exec_type is ExecType.ORDER_STATUS and status.ord_status is OrdStatus.REJECTED


def test_replace_down_cancels_children_first_then_reroutes(engine):
    out = engine.on_new_order(order(qty=500))
    a, b = sorted(children(out), key=lambda c: c.venue)
    out = engine.on_replace(
        ReplaceRequest(S, "P2", "P1", "AAPL", Side.BUY, 200, OrdType.LIMIT, D("100.02"), TimeInForce.DAY)
    )
    assert reports(out)[0].exec_type is ExecType.PENDING_REPLACE
    assert len([c for c in out.commands if isinstance(c, CancelChild)]) == 2
    assert not children(out)  # nothing new goes out while the old children may still fill
    engine.on_venue_report(fill(a, 50, "100.01", "x1"))
    engine.on_venue_report(ended(a, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    out = engine.on_venue_report(ended(b, "c2", ExecType.CANCELED, OrdStatus.CANCELED))
    replaced = [r for r in reports(out) if r.exec_type is ExecType.REPLACED][0]
    assert (replaced.order_qty, replaced.cum_qty, replaced.leaves_qty) == (200, 50, 150)
    assert sum(c.spec.qty for c in children(out)) == 150


def test_replace_that_fills_meanwhile_is_rejected(engine):
    out = engine.on_new_order(order(qty=500))
    a, b = sorted(children(out), key=lambda c: c.venue)
    engine.on_replace(ReplaceRequest(S, "P2", "P1", "AAPL", Side.BUY, 250, OrdType.LIMIT, D("100.02"), TimeInForce.DAY))
    engine.on_venue_report(fill(a, 300, "100.01", "x1", done=True))
    out = engine.on_venue_report(ended(b, "c2", ExecType.CANCELED, OrdStatus.CANCELED))
    (reject,) = [c for c in out.commands if isinstance(c, CancelReject)]
    assert "too late" in reject.text
    parent = next(iter(engine.parents.values()))
    assert parent.qty == 500 and parent.cum_qty == 300


@pytest.mark.parametrize(
    "new, text",
    [
        (order(qty=0), "OrderQty"),
        (order(price="100.015"), "tick"),
        (order(symbol="ZZZZ"), "unknown symbol"),
        (order(ex_destination="NOWHERE"), "ExDestination"),
    ],
)
def test_validation_rejects(engine, new, text):
    (er,) = engine.on_new_order(new).commands
    assert er.exec_type is ExecType.REJECTED and er.ord_status is OrdStatus.REJECTED and text in er.text


def test_duplicate_cl_ord_id_is_rejected(engine):
    engine.on_new_order(order())
    (er,) = engine.on_new_order(order()).commands
    assert er.ord_rej_reason.value == "6"


def test_invalid_order_becomes_rejected_report(engine):
    (er,) = engine.on_invalid_order(InvalidOrder(S, "X1", "AAPL", None, 0, "missing required field Side (54)")).commands
    assert er.ord_status is OrdStatus.REJECTED and "Side" in er.text


def test_rejected_child_is_rerouted_elsewhere(engine):
    out = engine.on_new_order(order(qty=200, price="100.01"))
    (first,) = children(out)
    assert first.venue == "LITB"
    out = engine.on_venue_report(
        VenueReport("LITB", first.cl_ord_id, "r1", ExecType.REJECTED, OrdStatus.REJECTED, text="simulated")
    )
    (second,) = children(out)
    assert second.venue == "LITA" and second.spec.qty == 200


def test_directed_order_rejected_by_venue_is_canceled_with_reason(engine):
    out = engine.on_new_order(order(qty=100, ex_destination="LITA"))
    (child,) = children(out)
    out = engine.on_child_rejected("LITA", child.cl_ord_id, "session reject: bad field")
    last = reports(out)[-1]
    assert last.ord_status is OrdStatus.CANCELED and "LITA rejected" in last.text


def test_directed_ioc_order_ends_with_the_venues_answer_and_is_not_sent_again(engine):
    out = engine.on_new_order(order(qty=500, tif=TimeInForce.IOC, ex_destination="LITA"))
    (child,) = children(out)
    engine.on_venue_report(fill(child, 300, "100.01", "x1"))
    out = engine.on_venue_report(ended(child, "x2", ExecType.CANCELED, OrdStatus.CANCELED))
    assert children(out) == []
    last = reports(out)[-1]
    assert (last.ord_status, last.cum_qty, last.leaves_qty) == (OrdStatus.EXPIRED, 300, 0)
    assert last.text == "LITA filled 300 of 500 IOC"


def test_medium_urgency_probes_dark_with_ioc_then_sweeps(engine):
    out = engine.on_new_order(order(qty=400, urgency=Urgency.MEDIUM))
    (dark,) = children(out)
    assert dark.venue == "DRKA" and dark.spec.tif is TimeInForce.IOC
    out = engine.on_venue_report(fill(dark, 100, "100.00", "d1"))
    out = engine.on_venue_report(ended(dark, "d2"))
    assert {c.venue for c in children(out)} <= {"LITA", "LITB"}
    assert sum(c.spec.qty for c in children(out)) == 300


def test_low_urgency_rests_dark_until_the_timeout_then_goes_lit(engine):
    engine.policy = dataclasses.replace(engine.policy, dark_timeout_ns=1_000_000_000)
    out = engine.on_new_order(order(qty=400, urgency=Urgency.LOW))
    (dark,) = children(out)
    assert dark.venue == "DRKA" and dark.spec.tif is TimeInForce.DAY
    engine.on_venue_report(VenueReport("DRKA", dark.cl_ord_id, "d0", ExecType.NEW, OrdStatus.NEW))
    engine.on_venue_report(fill(dark, 100, "100.00", "d1"))
    engine.clock.advance(999_999_999)
    assert not engine.on_timer(engine.clock.now_ns()).commands
    engine.clock.advance(1)
    out = engine.on_timer(engine.clock.now_ns())
    (cancel,) = [c for c in out.commands if isinstance(c, CancelChild)]
    assert cancel.orig_cl_ord_id == dark.cl_ord_id
    assert not engine.on_timer(engine.clock.now_ns()).commands  # asked once
    out = engine.on_venue_report(VenueReport("DRKA", cancel.cl_ord_id, "d2", ExecType.CANCELED, OrdStatus.CANCELED))
    assert {c.venue for c in children(out)} <= {"LITA", "LITB"}
    assert sum(c.spec.qty for c in children(out)) == 300
    assert all(c.spec.tif is TimeInForce.IOC for c in children(out))  # a day parent's lit takes are IOC


def test_learning_sees_sends_acks_fills_and_dark_outcomes(engine):
    out = engine.on_new_order(order(qty=400, urgency=Urgency.MEDIUM))
    (dark,) = children(out)
    engine.clock.advance(250_000)
    engine.on_venue_report(fill(dark, 100, "100.00", "d1"))
    engine.on_venue_report(ended(dark, "d2"))
    score = engine.learning.score("DRKA")
    assert (score.children, score.fills, score.latency_us) == (1, 1, 250.0)
    assert engine.learning.dark.tail("DRKA")[:2] == (1.0, 1.0)  # an exact observation: 1 unit there, not 2
    assert engine.learning.dark.tail("DRKA")[2] == 0.0


def test_day_limit_without_liquidity_posts_on_best_rebate_venue(engine):
    out = engine.on_new_order(order(qty=100, price="99.95"))
    (post,) = children(out)
    assert post.spec.purpose == "post" and post.venue == "LITA" and post.spec.tif is TimeInForce.DAY


def test_children_never_exceed_parent_leaves(engine):
    out = engine.on_new_order(order(qty=2000, price="100.03"))
    assert sum(c.spec.qty for c in children(out)) <= 2000


def test_disconnected_venue_is_not_routed_to(engine):
    engine.on_venue_status("LITB", False)
    out = engine.on_new_order(order(qty=500))
    assert {c.venue for c in children(out)} == {"LITA"}
    assert any(
        ("LITB", "disconnected") in {(e.venue, e.reason) for e in d.exclusions}
        for d in out.decisions
        if hasattr(d, "exclusions")
    )


def test_venue_reconnecting_resumes_a_waiting_day_order(engine):
    for venue in ("LITA", "LITB", "DRKA"):
        engine.on_venue_status(venue, False)
    out = engine.on_new_order(order(qty=100))
    assert reports(out)[0].ord_status is OrdStatus.NEW and not children(out)
    out = engine.on_venue_status("LITA", True)
    (child,) = children(out)
    assert child.venue == "LITA" and child.spec.qty == 100


def test_stale_books_are_not_routed_to_at_their_displayed_price():
    clock = ManualClock(start_ns=10_000_000_000)
    market = MarketView(clock, max_age_ns=2_000_000_000)
    market.update(BookSnapshot("LITA", "AAPL", (), (Level(D("100.01"), 300),), 1, clock.now_ns()))
    market.update(BookSnapshot("LITB", "AAPL", (), (Level(D("100.02"), 300),), 1, clock.now_ns() - 1_500_000_000))
    venues = {name: VenueInfo(name, VenueKind.LIT, D("0"), D("0.003"), 300, True) for name in ("LITA", "LITB")}
    engine = OrderEngine({"AAPL": Instrument("AAPL", D("0.01"))}, venues, market, IdSource("s"), clock)
    clock.advance(1_000_000_000)  # LITB's book is now 2.5 s old, LITA's 1 s
    out = engine.on_new_order(order(qty=600, price="100.02", tif=TimeInForce.IOC))
    assert [(c.venue, c.spec.qty) for c in children(out)] == [("LITA", 300)]
    assert market.book("LITB", "AAPL") is None and market.age_ns("LITB", "AAPL") == 2_500_000_000
    clock.advance(5_000_000_000)  # the feed went quiet: nothing is fresh, nothing is routed
    out = engine.on_new_order(order(cl="P2", qty=100, price="100.02", tif=TimeInForce.IOC))
    assert not children(out) and reports(out)[-1].ord_status is OrdStatus.EXPIRED


def test_a_cancel_that_could_not_reach_a_down_venue_is_sent_when_it_is_back(engine):
    out = engine.on_new_order(order(qty=100, price="99.95"))  # rests on LITA
    (post,) = children(out)
    engine.on_venue_report(VenueReport("LITA", post.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    engine.on_venue_status("LITA", False)
    out = engine.on_cancel(CancelRequest(S, "C1", "P1", "AAPL", Side.BUY))
    (cancel,) = [c for c in out.commands if isinstance(c, CancelChild)]
    engine.on_cancel_unsent(cancel.orig_cl_ord_id)  # the service could not send it
    out = engine.on_venue_status("LITA", True)
    (again,) = [c for c in out.commands if isinstance(c, CancelChild)]
    assert again.orig_cl_ord_id == post.cl_ord_id and again.cl_ord_id != cancel.cl_ord_id
    done = engine.on_venue_report(VenueReport("LITA", again.cl_ord_id, "c1", ExecType.CANCELED, OrdStatus.CANCELED))
    assert reports(done)[-1].ord_status is OrdStatus.CANCELED


def test_a_child_the_venue_never_answers_is_queried_and_rerouted_if_unknown(engine):
    engine.child_timeout_ns = 1_000_000_000
    out = engine.on_new_order(order(qty=200))
    (child,) = children(out)
    engine.clock.advance(999_999_999)
    assert not engine.on_timer(engine.clock.now_ns()).commands
    engine.clock.advance(1)
    (query,) = engine.on_timer(engine.clock.now_ns()).commands
    assert isinstance(query, QueryChild) and query.cl_ord_id == child.cl_ord_id
    assert not engine.on_timer(engine.clock.now_ns()).commands  # not again until another timeout passes
    unknown = VenueReport(
        child.venue, child.cl_ord_id, "s1", ExecType.ORDER_STATUS, OrdStatus.REJECTED, text="unknown order"
    )
    out = engine.on_venue_report(unknown)
    assert [c.spec.qty for c in children(out)] == [200]  # routed again


def _queries(out) -> list[str]:
    return [c.cl_ord_id for c in out.commands if isinstance(c, QueryChild)]


def test_a_child_whose_answer_is_queued_behind_earlier_ones_is_asked_only_once_the_queue_stops(engine):
    """A burst: the venue answers the children in the order they went out, slower than they went out; the
    ones still waiting are not asked about while their answers are queued behind the others'."""
    engine.child_timeout_ns = S_NS = 1_000_000_000
    sent = []
    for i in range(3):
        (child,) = children(engine.on_new_order(order(f"Q{i}", qty=100, price="100.01", ex_destination="LITA")))
        sent.append(child)
        engine.clock.advance(1_000_000)
    engine.clock.advance(S_NS)  # every child waited past the timeout; the venue answers the first now
    engine.on_venue_report(VenueReport("LITA", sent[0].cl_ord_id, "a0", ExecType.NEW, OrdStatus.NEW))
    assert _queries(engine.on_timer(engine.clock.now_ns())) == []
    assert engine.timer_due_ns > engine.clock.now_ns()  # looked at again later, not at every tick
    engine.clock.advance(S_NS // 2)
    engine.on_venue_report(VenueReport("LITA", sent[1].cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    assert _queries(engine.on_timer(engine.clock.now_ns())) == []
    engine.clock.advance(S_NS)  # then nothing from the venue for a timeout: the last child is asked about
    assert _queries(engine.on_timer(engine.clock.now_ns())) == [sent[2].cl_ord_id]


def test_a_child_skipped_by_the_venue_or_queued_too_long_is_asked_about(engine):
    engine.child_timeout_ns = S_NS = 1_000_000_000
    (first,) = children(engine.on_new_order(order("K0", qty=100, price="100.01", ex_destination="LITA")))
    engine.clock.advance(1_000_000)
    (later,) = children(engine.on_new_order(order("K1", qty=100, price="100.01", ex_destination="LITA")))
    engine.clock.advance(S_NS)
    engine.on_venue_report(VenueReport("LITA", later.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    assert _queries(engine.on_timer(engine.clock.now_ns())) == [first.cl_ord_id]  # answered a later one: skipped
    (waiting,) = children(engine.on_new_order(order("K2", qty=1000, price="100.01", ex_destination="LITA")))
    waited = []
    for i in range(14):  # the venue keeps reporting on an earlier child: K2's answer may be behind them ...
        engine.clock.advance(S_NS // 2)
        engine.on_venue_report(fill(later, 1, "100.01", f"f{i}"))
        if waiting.cl_ord_id in _queries(engine.on_timer(engine.clock.now_ns())):
            waited.append(engine.clock.now_ns() - engine.child(waiting.cl_ord_id).sent_ns)
    assert waited[0] == 6 * S_NS  # ... but not for more than six timeouts


def test_a_reconnecting_venue_is_asked_about_its_live_children_and_missed_fills_are_booked(engine):
    out = engine.on_new_order(order(qty=100, price="99.95"))  # rests: nothing takeable
    (post,) = children(out)
    engine.on_venue_report(VenueReport(post.venue, post.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    engine.on_venue_status(post.venue, False)
    out = engine.on_venue_status(post.venue, True)
    (query,) = [c for c in out.commands if isinstance(c, QueryChild)]
    assert query.cl_ord_id == post.cl_ord_id
    status = VenueReport(
        post.venue,
        post.cl_ord_id,
        "s1",
        ExecType.ORDER_STATUS,
        OrdStatus.FILLED,
        leaves_qty=0,
        cum_qty=100,
        avg_px=D("99.95"),
    )
    (fill_report,) = reports(engine.on_venue_report(status))
    assert (fill_report.exec_type, fill_report.last_qty, fill_report.last_px, fill_report.ord_status) == (
        ExecType.TRADE,
        100,
        D("99.95"),
        OrdStatus.FILLED,
    )


def test_a_dark_child_the_venue_does_not_know_teaches_nothing_about_the_pool(engine):
    out = engine.on_new_order(order(qty=400, urgency=Urgency.MEDIUM))
    (dark,) = children(out)
    unknown = VenueReport("DRKA", dark.cl_ord_id, "s1", ExecType.ORDER_STATUS, OrdStatus.REJECTED, text="unknown order")
    out = engine.on_venue_report(unknown)
    assert sum(c.spec.qty for c in children(out)) == 400  # all of it goes lit
    assert engine.learning.dark.tail("DRKA") == (1.0,)  # no observation: it never reached the pool


def test_the_dark_timeout_is_a_routine_notice(engine):
    engine.policy = dataclasses.replace(engine.policy, dark_timeout_ns=1)
    engine.on_new_order(order(qty=400, urgency=Urgency.LOW))
    engine.clock.advance(1)
    out = engine.on_timer(engine.clock.now_ns())
    assert [type(d) for d in out.decisions] == [Routine]


def test_a_possible_duplicate_of_a_filled_order_is_answered_with_its_status_not_rejected(engine):
    sent = children(engine.on_new_order(order(qty=300, price="100.01")))
    engine.on_venue_report(fill(sent[0], sent[0].spec.qty, "100.01", "V1", done=True))
    for c in sent[1:]:
        engine.on_venue_report(fill(c, c.spec.qty, "100.01", f"V-{c.cl_ord_id}", done=True))
    assert engine.parents[engine.order_id_for(S, "P1")].status is OrdStatus.FILLED

    out = engine.on_new_order(order(qty=300, price="100.01", poss_dup=True))
    [status] = reports(out)
    assert (status.exec_type, status.ord_status, status.cum_qty, status.leaves_qty) == (
        ExecType.ORDER_STATUS,
        OrdStatus.FILLED,
        300,
        0,
    )
    assert not children(out) and len(engine.parents) == 1
    # Without the flag the same ClOrdID is a duplicate and refused, naming it.
    [dup] = reports(engine.on_new_order(order(qty=300, price="100.01")))
    assert dup.ord_status is OrdStatus.REJECTED and "P1" in dup.text


def test_a_possible_duplicate_cancel_or_replace_already_seen_is_answered_with_status(engine):
    engine.on_new_order(order(qty=100, price="99.00"))  # rests: nothing marketable
    first = engine.on_cancel(CancelRequest(S, "X1", "P1", "AAPL", Side.BUY))
    assert reports(first) or [c for c in first.commands if isinstance(c, CancelChild)]
    again = engine.on_cancel(CancelRequest(S, "X1", "P1", "AAPL", Side.BUY, poss_dup=True))
    assert not [c for c in again.commands if isinstance(c, (CancelReject, CancelChild))]
    [status] = reports(again)
    assert status.exec_type is ExecType.ORDER_STATUS and status.cl_ord_id == "X1"


def test_a_possible_duplicate_of_an_unknown_order_is_a_new_order(engine):
    out = engine.on_new_order(order(cl="P9", qty=100, poss_dup=True))
    assert reports(out)[0].exec_type is ExecType.NEW and children(out)


def test_a_venue_that_resends_reports_is_waited_for_its_own_fills_not_booked_at_an_average(engine):
    """The venue's status runs ahead of its reports: each execution is reported as it happened, once."""
    engine.venues = {name: dataclasses.replace(info, resends=True) for name, info in engine.venues.items()}
    out = engine.on_new_order(order(qty=100, price="99.95"))
    (post,) = children(out)
    engine.on_venue_report(VenueReport(post.venue, post.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    engine.on_venue_status(post.venue, False)
    engine.on_venue_status(post.venue, True)
    status = VenueReport(
        post.venue,
        post.cl_ord_id,
        "s1",
        ExecType.ORDER_STATUS,
        OrdStatus.FILLED,
        leaves_qty=0,
        cum_qty=100,
        avg_px=D("99.955"),
    )
    out = engine.on_venue_report(status)
    assert not reports(out) and not children(out)
    assert engine.child(post.cl_ord_id).live  # held: its quantity is not routed again while its fills are due
    out = engine.on_venue_report(fill(post, 40, "99.95", "f1"))
    out2 = engine.on_venue_report(fill(post, 60, "99.96", "f2", done=True))
    assert [(r.last_qty, r.last_px) for r in reports(out) + reports(out2)] == [(40, D("99.95")), (60, D("99.96"))]
    assert reports(out2)[-1].ord_status is OrdStatus.FILLED


def test_a_venue_whose_reports_never_come_is_booked_from_its_status_after_the_waits(engine):
    engine.venues = {name: dataclasses.replace(info, resends=True) for name, info in engine.venues.items()}
    (post,) = children(engine.on_new_order(order(qty=100, price="99.95")))
    engine.on_venue_report(VenueReport(post.venue, post.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    asked = 0
    for n in range(engine.status_waits + 1):
        status = VenueReport(
            post.venue,
            post.cl_ord_id,
            f"s{n}",
            ExecType.ORDER_STATUS,
            OrdStatus.FILLED,
            leaves_qty=0,
            cum_qty=100,
            avg_px=D("99.95"),
        )
        out = engine.on_venue_report(status)
        if n < engine.status_waits:
            assert not reports(out)
            engine.clock.advance(engine.child_timeout_ns)
            queries = [c for c in engine.on_timer(engine.clock.now_ns()).commands if isinstance(c, QueryChild)]
            asked += len(queries)
    assert asked == engine.status_waits
    (booked,) = reports(out)
    assert (booked.last_qty, booked.last_px, booked.ord_status) == (100, D("99.95"), OrdStatus.FILLED)
