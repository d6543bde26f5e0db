"""Children fitted to what each venue accepts, and the planner that applies the venues' rules to a plan."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.routing import PlanRequest, RoutingPolicy, plan
from gateway.core.routing.venue_planner import VenuePlanner, VenuePolicy
from gateway.core.routing.venue_rules import VenueRules, fit, protective_price, round_price
from gateway.core.types import (
    CancelChild,
    ChildSpec,
    ExecType,
    ExecutionReport,
    NewOrder,
    OrdStatus,
    OrdType,
    SendChild,
    Side,
    Strategy,
    TimeInForce,
    Urgency,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument

LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET
DAY, IOC, FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
PLAIN = VenueRules(order_types=frozenset({LIMIT}), tifs=frozenset({DAY}), tick=D("0.05"), lot=100)
TICK = D("0.01")


@pytest.mark.parametrize(
    "price, buy, expected",
    [
        ("190.03", True, "190.00"),
        ("190.03", False, "190.05"),
        ("190.05", True, "190.05"),
        ("190.05", False, "190.05"),
        ("190.07", True, "190.05"),
        ("190.01", False, "190.05"),
    ],
)
def test_prices_round_onto_the_tick_in_the_orders_favour(price, buy, expected):
    assert round_price(D(price), D("0.05"), buy) == D(expected)


def test_a_limit_child_never_rounds_beyond_its_limit():
    for cents in range(19000, 19100):
        limit = D(cents) / 100
        assert round_price(limit, D("0.05"), True) <= limit <= round_price(limit, D("0.05"), False)


def child(qty=1000, price="190.03", ord_type=LIMIT, tif=IOC) -> ChildSpec:
    return ChildSpec("PLNX", qty, D(price) if price else None, ord_type, tif, "take")


def test_ioc_becomes_day_canceled_on_ack_with_price_and_quantity_fitted():
    fitted = fit(child(1050), PLAIN, TICK, 1, True, None, 50)
    assert fitted.child == ChildSpec("PLNX", 1000, D("190.00"), LIMIT, DAY, "take", cancel_on_ack=True)
    assert "50 kept with the parent" in fitted.note


def test_a_child_that_rounds_to_no_lot_is_not_sent():
    fitted = fit(child(99), PLAIN, TICK, 1, True, None, 50)
    assert fitted.child is None and "less than its lot of 100" in fitted.note


def test_the_lot_is_a_multiple_of_the_symbol_lot_and_the_venue_lot():
    rules = VenueRules(lot=40)
    assert fit(child(250), rules, TICK, 25, True, None, 50).child.qty == 200  # lcm(25, 40)


def test_below_the_venue_minimum_is_not_sent():
    assert fit(child(300), VenueRules(min_qty=500), TICK, 1, True, None, 50).child is None


def test_market_becomes_a_protective_limit_beyond_the_far_touch():
    buy = fit(child(price=None, ord_type=MARKET), PLAIN, TICK, 1, True, D("190.01"), 50).child
    sell = fit(child(price=None, ord_type=MARKET), PLAIN, TICK, 1, False, D("189.99"), 50).child
    assert (buy.ord_type, buy.price) == (LIMIT, D("190.95"))  # 190.01 + 0.5% = 190.96..., down to the tick
    assert (sell.ord_type, sell.price) == (LIMIT, D("189.05"))
    assert protective_price(D(100), 0, D("0.05"), True) == D(100)


def test_market_with_no_quote_to_protect_it_is_not_sent():
    fitted = fit(child(price=None, ord_type=MARKET), PLAIN, TICK, 1, True, None, 50)
    assert fitted.child is None and "protective" in fitted.note


def test_fok_at_a_venue_without_fok_is_not_sent_and_an_accepted_child_is_untouched():
    assert fit(child(tif=FOK), PLAIN, TICK, 1, True, None, 50).child is None
    original = child(price="190.03", tif=DAY)
    assert fit(original, VenueRules(), TICK, 1, True, None, 50).child is original


# --- the planner --------------------------------------------------------------------------------------


def book(venue, bids, asks) -> BookSnapshot:
    return BookSnapshot(
        venue, "AAPL", tuple(Level(D(p), q) for p, q in bids), tuple(Level(D(p), q) for p, q in asks), 1, 0
    )


def lit(name, connected=True, fee="0.003", latency=300) -> VenueInfo:
    return VenueInfo(name, VenueKind.LIT, D("-0.002"), D(fee), latency, connected)


VENUES = {"LITA": lit("LITA"), "PLNX": lit("PLNX", latency=100)}
INSTRUMENTS = {"AAPL": Instrument("AAPL", TICK)}


def market(*books) -> MarketView:
    view = MarketView()
    for b in books:
        view.update(b)
    return view


def request(qty=1000, limit="190.03", tif=IOC, ex_destination=None, order_id="O1", side=Side.BUY) -> PlanRequest:
    return PlanRequest(
        order_id,
        "AAPL",
        side,
        qty,
        LIMIT if limit else MARKET,
        D(limit) if limit else None,
        tif,
        Urgency.HIGH,
        ex_destination=ex_destination,
    )


def planner(remainders=True) -> VenuePlanner:
    return VenuePlanner(
        {"LITA": VenueRules(), "PLNX": VenueRules(market_data=False, tick=D("0.05"), lot=100)},
        INSTRUMENTS,
        VenuePolicy(50, remainders),
    )


def test_a_venue_without_a_feed_is_unseen_even_if_a_book_is_published_for_it():
    view = market(book("LITA", [], [("190.02", 300)]), book("PLNX", [], [("190.00", 5000)]))
    decision = planner(remainders=False)(request(), view, VENUES, RoutingPolicy())
    assert [(c.venue, c.qty, c.price) for c in decision.children] == [("LITA", 300, D("190.02"))]


def test_a_cost_plan_through_the_planner_sees_what_the_router_sees_without_the_unfed_venue():
    """The planner's view of the market (no book for a venue without a feed) serves the cost strategy's survey
    and quote ages as the market itself does."""
    clock = ManualClock(10_000_000_000)
    view = MarketView(clock, max_age_ns=5_000_000_000)
    for venue, ts_ns in (("LITA", 9_000_000_000), ("LITB", 9_999_000_000), ("PLNX", 9_999_000_000)):
        view.update(BookSnapshot(venue, "AAPL", (), (Level(D("190.01"), 300),), 1, ts_ns))
    venues = {**VENUES, "LITB": lit("LITB")}
    order = dataclasses.replace(request(300, order_id="C1"), strategy=Strategy.COST)
    planner = VenuePlanner({"PLNX": VenueRules(market_data=False)}, INSTRUMENTS)
    decision = planner(order, view, venues, RoutingPolicy())
    bare = plan(order, view, {name: info for name, info in venues.items() if name != "PLNX"}, RoutingPolicy())
    assert [b.venue for b in decision.books] == ["LITB", "LITA"]  # by all-in cost: no PLNX
    legs = [(c.venue, c.qty) for c in decision.children]
    assert legs == [(c.venue, c.qty) for c in bare.children] == [("LITB", 300)]  # LITA's quote is a second old
    assert decision.candidates == bare.candidates


def test_remainder_goes_once_to_the_unquoted_venue_capped_at_the_best_quote_and_fitted():
    view = market(book("LITA", [], [("190.02", 300)]))
    plan = planner()
    decision = plan(request(), view, VENUES, RoutingPolicy())
    assert [(c.venue, c.qty, c.price, c.tif) for c in decision.children] == [
        ("LITA", 300, D("190.02"), IOC),
        ("PLNX", 700, D("190.00"), IOC),
    ]
    assert "remainder 700 to PLNX" in decision.reason
    again = plan(request(700), view, VENUES, RoutingPolicy())  # the next round: PLNX had its chance
    assert [c.venue for c in again.children] == ["LITA"]


def test_remainders_stay_off_unless_the_policy_allows_them_and_never_for_fok():
    view = market(book("LITA", [], [("190.02", 300)]))
    assert [c.venue for c in planner(False)(request(), view, VENUES, RoutingPolicy()).children] == ["LITA"]
    assert planner()(request(tif=FOK), view, VENUES, RoutingPolicy()).children == ()


def test_a_day_order_with_no_quoted_venue_rests_on_the_unquoted_one():
    decision = planner()(request(qty=250, tif=DAY), market(), VENUES, RoutingPolicy())
    assert decision.phase == "unquoted"
    assert [(c.venue, c.qty, c.price, c.tif) for c in decision.children] == [("PLNX", 200, D("190.00"), DAY)]


def test_directed_to_an_unquoted_venue_is_capped_at_the_best_other_quote_then_fitted():
    view = market(book("LITA", [("189.99", 300)], [("190.01", 300)]))
    decision = planner()(
        request(tif=DAY, ex_destination="PLNX", side=Side.SELL, limit="189.96"), view, VENUES, RoutingPolicy()
    )
    # The sell may not go below LITA's 189.99 bid; on PLNX's 0.05 tick in the seller's favour that is 190.00.
    assert [(c.venue, c.qty, c.price) for c in decision.children] == [("PLNX", 1000, D("190.00"))]


# --- the engine ends an emulated IOC with the cancel's acknowledgement ----------------------------------


def test_an_emulated_ioc_is_canceled_on_ack_and_its_cancel_ack_ends_it():
    rules = {"PLNX": VenueRules(tifs=frozenset({DAY}), market_data=False)}
    engine = OrderEngine(INSTRUMENTS, {"PLNX": lit("PLNX")}, MarketView(), IdSource("t"), ManualClock())
    engine.planner = VenuePlanner(rules, INSTRUMENTS, VenuePolicy(unquoted_remainders=True))
    out = engine.on_new_order(NewOrder("S", "P1", "AAPL", Side.BUY, 500, LIMIT, D("190.00"), IOC))
    (send,) = [c for c in out.commands if isinstance(c, SendChild)]
    assert (send.spec.tif, send.spec.cancel_on_ack) == (DAY, True)
    out = engine.on_venue_report(VenueReport("PLNX", send.cl_ord_id, "X1", ExecType.NEW, OrdStatus.NEW))
    (cancel,) = out.commands
    assert isinstance(cancel, CancelChild) and cancel.orig_cl_ord_id == send.cl_ord_id
    out = engine.on_venue_report(
        VenueReport("PLNX", send.cl_ord_id, "X2", ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, 200, D("190.00"))
    )
    assert [c.exec_type for c in out.commands] == [ExecType.TRADE]  # no second cancel
    out = engine.on_venue_report(VenueReport("PLNX", cancel.cl_ord_id, "X3", ExecType.CANCELED, OrdStatus.CANCELED))
    (final,) = [c for c in out.commands if isinstance(c, ExecutionReport)]
    assert (final.ord_status, final.cum_qty, final.leaves_qty) == (OrdStatus.EXPIRED, 200, 0)
