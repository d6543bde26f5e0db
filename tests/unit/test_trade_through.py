"""No trade-through: the checker catches children priced through a better protected quote, and plans pass it."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from hypothesis import given, strategies as st

from gateway.core.market import BookSnapshot, MarketView, VenueInfo
from gateway.core.routing import Exclusion, RouteDecision, RoutingPolicy, plan, router, trade_through_violations
from gateway.core.types import ChildSpec, OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind
from tests.unit.test_router import (
    FEES,
    PROPERTY,
    SYM,
    VENUES,
    make_market,
    request,
    route,
    scenarios,
    side_levels,
    venues,
)

LIMIT, IOC = OrdType.LIMIT, TimeInForce.IOC


def take(venue: str, qty: int, price: str | None) -> ChildSpec:
    return ChildSpec(
        venue, qty, None if price is None else D(price), OrdType.MARKET if price is None else LIMIT, IOC, "take"
    )


def decision(*children: ChildSpec, exclusions: tuple[Exclusion, ...] = ()) -> RouteDecision:
    return RouteDecision("O1", "take", children, (), exclusions, make_market().nbbo(SYM, VENUES), "test")


def violations(d: RouteDecision, side: Side = Side.BUY, where: dict[str, VenueInfo] = VENUES) -> list[str]:
    return trade_through_violations(d, side, SYM, make_market(), where)


def traded_through(found: list[str]) -> list[str]:
    """The venues whose quotes the reported children trade through."""
    return [v.split(" leaves ")[1].split("'s ")[0] for v in found]


def test_a_full_sweep_is_clean():
    assert violations(route(request(1000, "100.03"))) == []


def test_skipping_a_better_venue_is_a_violation():
    found = violations(decision(take("ARCA", 500, "100.02")))
    assert found == ["BUY 500 at 100.02 on ARCA leaves BATS's better 100.01 standing"]


def test_a_better_level_only_partly_taken_is_a_violation():
    children = take("ARCA", 300, "100.01"), take("BATS", 100, "100.01"), take("EDGA", 300, "100.02")
    assert traded_through(violations(decision(*children))) == ["BATS"]


def test_a_child_priced_short_of_its_venues_level_does_not_take_it():
    children = take("ARCA", 300, "100.01"), take("BATS", 200, "100.00"), take("EDGA", 300, "100.02")
    assert traded_through(violations(decision(*children))) == ["BATS"]


def test_a_child_never_trades_through_its_own_venue():
    # ARCA's 100.01 is left partly standing, but only ARCA's own child is priced above it.
    children = take("BATS", 200, "100.01"), take("ARCA", 100, "100.01")
    assert violations(decision(*children)) == []
    through_arca = take("BATS", 200, "100.01"), take("ARCA", 100, "100.01"), take("EDGA", 300, "100.02")
    assert traded_through(violations(decision(*through_arca))) == ["ARCA"]


def test_equal_prices_elsewhere_are_not_better():
    assert violations(decision(take("ARCA", 300, "100.01"))) == []


def test_a_market_child_counts_as_the_worst_price():
    assert violations(decision(take("EDGA", 100, None))) != []
    quiet = make_market({"EDGA": ([], [("100.02", 300)])})
    assert trade_through_violations(decision(take("EDGA", 100, None)), Side.BUY, SYM, quiet, VENUES) == []


def test_sell_children_must_not_sell_below_a_better_bid():
    found = violations(decision(take("EDGA", 200, "99.99")), side=Side.SELL)
    assert traded_through(found) == ["ARCA", "BATS"]
    assert (
        violations(
            decision(take("ARCA", 400, "100.00"), take("BATS", 300, "100.00"), take("EDGA", 200, "99.99")),
            side=Side.SELL_SHORT,
        )
        == []
    )


@pytest.mark.parametrize(
    "where, exclusions",
    [
        (venues(BATS={"connected": False}), ()),
        (venues(BATS={"protected": False}), ()),
        (VENUES, (Exclusion("BATS", "rejected this order"),)),
    ],
)
def test_only_routable_protected_quotes_count(where, exclusions):
    assert violations(decision(take("ARCA", 500, "100.02"), exclusions=exclusions), where=where) == []


def test_other_exclusions_do_not_hide_a_quote():
    assert violations(decision(take("ARCA", 500, "100.02"), exclusions=(Exclusion("BATS", "odd"),))) != []


def test_an_odd_lot_is_not_a_protected_quote():
    market = make_market(
        {
            "ARCA": ([], [("100.01", 150)]),
            "BATS": ([], [("100.00", 99), ("100.02", 500)]),
            "EDGA": ([], [("100.02", 300)]),
        }
    )
    children = decision(take("ARCA", 100, "100.01"), take("EDGA", 300, "100.02"))
    # ARCA's 50 left at 100.01 and BATS's 99 at 100.00 are odd lots at a lot of 100, round lots at a lot of 1.
    assert trade_through_violations(children, Side.BUY, SYM, market, VENUES, lot=100) == []
    assert sorted(set(traded_through(trade_through_violations(children, Side.BUY, SYM, market, VENUES)))) == [
        "ARCA",
        "BATS",
    ]


def test_a_round_lot_left_standing_is_still_protected():
    market = make_market({"ARCA": ([], [("100.01", 250)]), "EDGA": ([], [("100.02", 300)])})
    children = decision(take("ARCA", 100, "100.01"), take("EDGA", 300, "100.02"))
    found = trade_through_violations(children, Side.BUY, SYM, market, VENUES, lot=100)
    assert found == ["BUY 300 at 100.02 on EDGA leaves ARCA's better 100.01 standing"]


def test_dark_and_resting_children_do_not_count():
    dark = ChildSpec("DRK1", 500, D("100.05"), LIMIT, IOC, "dark")
    post = ChildSpec("BATS", 500, D("100.00"), LIMIT, TimeInForce.DAY, "post")
    assert violations(decision(dark, post)) == []


def test_plan_refuses_to_return_a_decision_that_trades_through(monkeypatch):
    far_side = router.far_side

    def without_bats(order, lit):
        return far_side(order, [v for v in lit if v[0] != "BATS"])

    monkeypatch.setattr(router, "far_side", without_bats)
    with pytest.raises(AssertionError, match="BATS"):
        route(request(1000, "100.03"))


# --- properties ---------------------------------------------------------------------------------------


@PROPERTY
@given(scenarios())
def test_every_plan_is_free_of_trade_throughs(scenario):
    order, market, where, learning = scenario
    decision = plan(order, market, where, RoutingPolicy(), learning)
    assert trade_through_violations(decision, order.side, SYM, market, where, order.lot) == []


@st.composite
def lit_sweeps(draw):
    """Only lit, protected, connected venues with odd-sized levels, and lot-sized IOC orders: stress the sweep."""
    names = [f"L{i}" for i in range(draw(st.integers(2, 6)))]
    where = {
        n: VenueInfo(n, VenueKind.LIT, D(0), draw(st.sampled_from(FEES)), draw(st.integers(50, 900)), True)
        for n in names
    }
    market = MarketView()
    for n in names:
        market.update(BookSnapshot(n, SYM, side_levels(draw, 9999, -1), side_levels(draw, 10001, 1), 1, 0))
    lot = draw(st.sampled_from([1, 10, 100]))
    side = draw(st.sampled_from(Side))
    reach = draw(st.none() | st.integers(0, 9))  # ticks beyond the touch; None for a market order
    limit = None if reach is None else str(D(10001 + reach) / 100 if side.is_buy else D(9999 - reach) / 100)
    order = request(
        draw(st.integers(1, 3000 // lot)) * lot,
        limit,
        side=side,
        urgency=Urgency.HIGH,
        lot=lot,
        strategy=draw(st.sampled_from([Strategy.SWEEP, Strategy.COST, Strategy.LIQUIDITY])),
    )
    return order, market, where


@PROPERTY
@given(lit_sweeps())
def test_lot_rounded_sweeps_are_free_of_trade_throughs(scenario):
    order, market, where = scenario
    result = plan(order, market, where, RoutingPolicy())
    assert trade_through_violations(result, order.side, SYM, market, where, order.lot) == []
    assert all(c.qty % order.lot == 0 for c in result.children)


@PROPERTY
@given(lit_sweeps())
def test_dropping_the_best_venues_child_is_caught(scenario):
    order, market, where = scenario
    result = plan(order, market, where, RoutingPolicy())
    if result.phase != "take" or len(result.children) < 2:
        return
    best = result.children[0]  # children come in the order first taken: this venue has the best price
    rest = tuple(c for c in result.children if c is not best)
    book = market.book(best.venue, SYM)
    # Its best round lot (odd lots are not protected quotes), which dropping its child leaves standing.
    best_price = next((lv.price for lv in (book.asks if order.side.is_buy else book.bids) if lv.qty >= order.lot), None)
    worse = [
        c
        for c in rest
        if best_price is not None and (c.price > best_price if order.side.is_buy else c.price < best_price)
    ]
    found = trade_through_violations(
        dataclasses.replace(result, children=rest), order.side, SYM, market, where, order.lot
    )
    assert len(found) == len(worse)
