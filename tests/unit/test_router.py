"""The router's pure core: sweep order, tie-breaks, limits, FOK, post, dark split, directed, lots; properties."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from gateway.analytics.learning import VenueLearning
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.routing import Candidate, Exclusion, PlanRequest, RouteDecision, RoutingPolicy, plan
from gateway.core.types import ChildSpec, OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind

SYM = "ACME"
LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET
DAY, IOC, FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK

# Three lit venues (EDGA is inverted: it pays takers) and two dark pools.
VENUES = {
    "ARCA": VenueInfo("ARCA", VenueKind.LIT, D("-0.0020"), D("0.0030"), 200, True),
    "BATS": VenueInfo("BATS", VenueKind.LIT, D("-0.0025"), D("0.0030"), 400, True),
    "EDGA": VenueInfo("EDGA", VenueKind.LIT, D("0.0010"), D("-0.0015"), 300, True),
    "DRK1": VenueInfo("DRK1", VenueKind.DARK, D("0"), D("0.0010"), 500, True, min_qty=100),
    "DRK2": VenueInfo("DRK2", VenueKind.DARK, D("0"), D("0.0005"), 800, True, min_qty=1000),
}
# NBBO 100.00 x 100.01, mid 100.005.
BOOKS = {
    "ARCA": ([("100.00", 400), ("99.99", 500)], [("100.01", 300), ("100.02", 500), ("100.04", 1000)]),
    "BATS": ([("100.00", 300), ("99.98", 600)], [("100.01", 200), ("100.03", 400)]),
    "EDGA": ([("99.99", 200), ("99.97", 1000)], [("100.02", 300), ("100.03", 300)]),
}


def snapshot(venue: str, bids, asks, symbol: str = SYM) -> BookSnapshot:
    return BookSnapshot(
        venue, symbol, tuple(Level(D(p), q) for p, q in bids), tuple(Level(D(p), q) for p, q in asks), 1, 0
    )


def make_market(books=None) -> MarketView:
    market = MarketView()
    for venue, (bids, asks) in (BOOKS if books is None else books).items():
        market.update(snapshot(venue, bids, asks))
    return market


def venues(**changes: dict) -> dict[str, VenueInfo]:
    """VENUES with some fields changed per venue, e.g. venues(BATS={"connected": False})."""
    return {name: dataclasses.replace(info, **changes.get(name, {})) for name, info in VENUES.items()}


def request(qty=1000, limit: str | None = "100.03", side=Side.BUY, tif=IOC, urgency=Urgency.HIGH, **kw) -> PlanRequest:
    return PlanRequest(
        "O1", SYM, side, qty, LIMIT if limit else MARKET, D(limit) if limit else None, tif, urgency, **kw
    )


def route(
    order: PlanRequest, market: MarketView | None = None, where=None, policy: RoutingPolicy = RoutingPolicy()
) -> RouteDecision:
    return plan(order, make_market() if market is None else market, VENUES if where is None else where, policy)


def legs(decision: RouteDecision) -> list[tuple[str, int, str | None]]:
    return [(c.venue, c.qty, None if c.price is None else str(c.price)) for c in decision.children]


# --- take ---------------------------------------------------------------------------------------------


def test_venues_go_by_exact_taker_fee_then_latency_then_name_and_exclusions_by_name():
    def lit(fee: str, connected: bool = True) -> VenueInfo:
        return VenueInfo("", VenueKind.LIT, D(0), D(fee), 100, connected)

    where = {
        "ZED": lit("0.003"),
        "ALF": lit("0.00300000001"),  # dearer than ZED by less than a price key unit (1e-8)
        "MID": lit("0.003"),  # ties ZED: the name decides
        "BAD": lit("-0.001", connected=False),
        "QQQ": lit("0.002"),  # no quote
        "AAA": lit("0.01"),  # halted
    }
    book = ([("100.00", 100)], [("100.01", 100)])
    market = make_market({"ZED": book, "ALF": book, "MID": book, "AAA": book})
    decision = route(request(100, halted=frozenset({"AAA"})), market, where)
    assert [b.venue for b in decision.books] == ["MID", "ZED", "ALF"]
    assert legs(decision) == [("MID", 100, "100.01")]
    assert [(e.venue, e.reason) for e in decision.exclusions] == [
        ("AAA", "halted until resumed"),
        ("BAD", "disconnected"),
        ("QQQ", f"no quote for {SYM}"),
    ]


def test_sweep_takes_best_price_first_across_venues():
    decision = route(request(1000, "100.03"))
    assert decision.phase == "take"
    assert legs(decision) == [("ARCA", 500, "100.02"), ("BATS", 200, "100.01"), ("EDGA", 300, "100.02")]
    assert all(c.ord_type is LIMIT and c.tif is IOC and c.purpose == "take" for c in decision.children)
    taken = [(c.venue, str(c.price), c.rank) for c in decision.candidates if c.rank is not None]
    assert taken == [("ARCA", "100.01", 1), ("BATS", "100.01", 2), ("EDGA", "100.02", 3), ("ARCA", "100.02", 4)]


def test_same_price_goes_to_the_cheaper_taker_fee_first_so_the_inverted_venue_leads():
    decision = route(
        request(300, "100.02"),
        make_market(
            {"ARCA": ([], [("100.02", 500)]), "EDGA": ([], [("100.02", 300)]), "BATS": ([], [("100.02", 500)])}
        ),
    )
    assert legs(decision) == [("EDGA", 300, "100.02")]
    assert [(c.venue, c.fee, c.rank) for c in decision.candidates][0] == ("EDGA", D("-0.0015"), 1)


def test_same_price_and_fee_goes_to_the_lower_latency_first():
    decision = route(request(400, "100.01"))
    assert legs(decision) == [("ARCA", 300, "100.01"), ("BATS", 100, "100.01")]
    slow_arca = venues(ARCA={"latency_us": 900})
    assert legs(route(request(400, "100.01"), where=slow_arca)) == [("BATS", 200, "100.01"), ("ARCA", 200, "100.01")]


def test_same_price_fee_and_latency_goes_by_venue_name():
    twins = venues(BATS={"latency_us": 200})
    assert legs(route(request(400, "100.01"), where=twins)) == [("ARCA", 300, "100.01"), ("BATS", 100, "100.01")]


def test_never_beyond_the_limit_and_says_what_was_left():
    decision = route(request(5000, "100.02"))
    assert legs(decision) == [("ARCA", 800, "100.02"), ("BATS", 200, "100.01"), ("EDGA", 300, "100.02")]
    assert all(c.price <= D("100.02") for c in decision.candidates)
    assert "1300 of 5000" in decision.reason


def test_sell_sweeps_bids_highest_first():
    decision = route(request(600, "99.99", side=Side.SELL))
    assert legs(decision) == [("ARCA", 400, "100.00"), ("BATS", 200, "100.00")]
    decision = route(request(1000, "99.99", side=Side.SELL_SHORT))
    assert legs(decision) == [("ARCA", 500, "99.99"), ("BATS", 300, "100.00"), ("EDGA", 200, "99.99")]


def test_market_order_sweeps_every_level_with_limit_children():
    decision = route(request(3000, None))
    assert legs(decision) == [("ARCA", 1800, "100.04"), ("BATS", 600, "100.03"), ("EDGA", 600, "100.03")]
    assert all(c.ord_type is LIMIT and c.tif is IOC for c in decision.children)


def test_excluded_disconnected_and_quoteless_venues_are_skipped_and_listed():
    where = venues(BATS={"connected": False}) | {
        "IEXG": VenueInfo("IEXG", VenueKind.LIT, D("0"), D("0.0009"), 100, True)
    }
    decision = route(request(400, "100.02", excluded=frozenset({"ARCA"})), where=where)
    assert legs(decision) == [("EDGA", 300, "100.02")]
    assert decision.exclusions == (
        Exclusion("ARCA", "rejected this order"),
        Exclusion("BATS", "disconnected"),
        Exclusion("IEXG", f"no quote for {SYM}"),
    )
    assert {c.venue for c in decision.candidates} == {"EDGA"}


def test_nothing_connected_is_said_plainly():
    down = {name: {"connected": False} for name in VENUES}
    decision = route(request(), where=venues(**down))
    assert (decision.phase, decision.children, decision.reason) == ("none", (), "no venue connected")


# --- FOK ----------------------------------------------------------------------------------------------


def test_fok_goes_to_the_one_venue_with_the_best_average_price():
    decision = route(request(300, "100.02", tif=FOK))
    assert decision.children == (ChildSpec("ARCA", 300, D("100.01"), LIMIT, FOK, "take"),)
    assert [(c.venue, c.rank) for c in decision.candidates if c.rank] == [("ARCA", 1)]


def test_fok_tie_on_price_goes_to_the_preferred_venue():
    decision = route(request(200, "100.02", tif=FOK))
    assert legs(decision) == [("ARCA", 200, "100.01")]


def test_fok_that_no_single_venue_can_fill_sends_nothing():
    decision = route(request(2000, "100.04", tif=FOK))
    assert decision.phase == "none" and not decision.children
    assert "no single venue can fill 2000 FOK within limit 100.04" == decision.reason


def test_fok_that_would_trade_through_another_venue_sends_nothing():
    # Only ARCA shows 700 within 100.02, but that takes 100.02 while BATS offers 100.01.
    decision = route(request(700, "100.02", tif=FOK))
    assert not decision.children and "trading through" in decision.reason
    unprotected_bats = venues(BATS={"protected": False})
    assert legs(route(request(700, "100.02", tif=FOK), where=unprotected_bats)) == [("ARCA", 700, "100.02")]


# --- post ---------------------------------------------------------------------------------------------


def test_day_limit_with_nothing_takeable_rests_on_the_best_rebate():
    decision = route(request(500, "100.00", tif=DAY))
    assert decision.phase == "post"
    assert decision.children == (ChildSpec("BATS", 500, D("100.00"), LIMIT, DAY, "post"),)
    assert [(c.venue, c.rank) for c in decision.candidates] == [("BATS", 1), ("ARCA", None), ("EDGA", None)]


def test_post_tie_on_maker_fee_goes_to_the_lower_latency():
    where = venues(ARCA={"maker_fee": D("-0.0025")})
    assert legs(route(request(500, "100.00", tif=DAY), where=where)) == [("ARCA", 500, "100.00")]


def test_ioc_limit_with_nothing_takeable_sends_nothing():
    decision = route(request(500, "100.00", tif=IOC))
    assert (decision.phase, decision.reason) == ("none", "no lit liquidity within limit 100.00 and IOC")


# --- dark ---------------------------------------------------------------------------------------------


def test_dark_first_splits_evenly_in_lots_best_pool_first():
    where = venues(DRK2={"min_qty": 200})
    decision = route(request(700, "100.02", urgency=Urgency.MEDIUM, lot=100), where=where)
    assert decision.phase == "dark"
    assert decision.children == (
        ChildSpec("DRK2", 400, D("100.02"), LIMIT, IOC, "dark"),
        ChildSpec("DRK1", 300, D("100.02"), LIMIT, IOC, "dark"),
    )


def test_dark_drops_the_worst_pool_when_a_minimum_cannot_be_met():
    where = venues(DRK2={"min_qty": 400})
    decision = route(request(600, "100.02", urgency=Urgency.LOW, lot=100), where=where)
    assert legs(decision) == [("DRK2", 600, "100.02")]
    assert [(c.venue, c.qty, c.rank) for c in decision.candidates] == [("DRK2", 600, 1), ("DRK1", 0, None)]
    assert "dropped" in decision.reason


def test_dark_pool_whose_minimum_is_too_large_is_excluded():
    decision = route(request(600, "100.02", urgency=Urgency.MEDIUM))
    assert legs(decision) == [("DRK1", 600, "100.02")]
    assert Exclusion("DRK2", "dark pool minimum 1000 > 600") in decision.exclusions


def test_no_eligible_pool_falls_through_to_take_with_the_exclusions():
    where = venues(DRK1={"min_qty": 5000})
    decision = route(request(400, "100.01", urgency=Urgency.MEDIUM), where=where)
    assert decision.phase == "take"
    assert Exclusion("DRK1", "dark pool minimum 5000 > 400") in decision.exclusions


def test_market_parent_prices_dark_children_at_the_far_side():
    decision = route(request(600, None, urgency=Urgency.MEDIUM))
    assert decision.children == (ChildSpec("DRK1", 600, D("100.01"), LIMIT, IOC, "dark"),)
    decision = route(request(600, None, side=Side.SELL, urgency=Urgency.MEDIUM))
    assert decision.children == (ChildSpec("DRK1", 600, D("100.00"), LIMIT, IOC, "dark"),)


@pytest.mark.parametrize("change", [{"urgency": Urgency.HIGH}, {"dark_done": True}, {"tif": FOK}])
def test_dark_is_skipped_for_high_urgency_once_done_and_for_fok(change):
    order = dataclasses.replace(request(300, "100.02", urgency=Urgency.MEDIUM), **change)
    assert route(order).phase == "take"


def test_dark_is_skipped_when_the_mid_is_outside_the_limit():
    assert route(request(600, "100.00", tif=DAY, urgency=Urgency.MEDIUM)).phase == "post"
    assert route(request(600, "100.01", side=Side.SELL, tif=DAY, urgency=Urgency.MEDIUM)).phase == "post"


def test_low_urgency_rests_day_orders_in_dark_pools():
    decision = route(request(1200, "100.02", urgency=Urgency.LOW))
    assert decision.phase == "dark" and "LOW" in decision.reason
    # No allocator history: an even split, which DRK2's 1000-share minimum turns into one child.
    assert [(c.venue, c.qty, c.tif) for c in decision.children] == [("DRK2", 1200, DAY)]


def test_medium_urgency_probes_with_at_most_probe_qty():
    decision = route(request(5000, "100.02", urgency=Urgency.MEDIUM), policy=RoutingPolicy(probe_qty=1500))
    assert decision.phase == "dark"
    assert sum(c.qty for c in decision.children) == 1500
    assert all(c.tif is IOC for c in decision.children)


@pytest.mark.parametrize("strategy", [Strategy.SWEEP, Strategy.COST, Strategy.LIQUIDITY, Strategy.SINGLE])
def test_only_the_dark_strategy_goes_dark(strategy):
    decision = route(request(600, "100.02", urgency=Urgency.LOW, strategy=strategy))
    assert decision.phase == "take" and decision.strategy is strategy


# --- strategies ---------------------------------------------------------------------------------------


def toxic(venue: str, fills: int = 30) -> VenueLearning:
    """A history in which every fill at `venue` was followed by the mid falling 20 bps (bought, then marked down)."""
    learning = VenueLearning(["ARCA", "BATS", "EDGA"], ["DRK1", "DRK2"])
    for i in range(fills):
        learning.child_sent(venue, 100, i)
        learning.child_filled(SYM, venue, Side.BUY, 100, D("100.02"), i, D("100.015"))
        learning.child_done(venue, 100, 100, True)
    learning.mid(SYM, 5_000_000_000, D("99.82"))
    return learning


def test_sweep_prefers_the_rebate_venue_within_a_price_tier():
    decision = route(request(1000, "100.03", strategy=Strategy.SWEEP))
    assert legs(decision) == [("ARCA", 500, "100.02"), ("BATS", 200, "100.01"), ("EDGA", 300, "100.02")]


def test_cost_avoids_a_toxic_venue_within_a_price_tier():
    order = request(1000, "100.03", strategy=Strategy.COST)
    decision = plan(order, make_market(), VENUES, RoutingPolicy(), toxic("EDGA"))
    # The 100.01 tier whole, then the 100.02 tier: ARCA before EDGA, whose rebate does not pay for its toxicity.
    assert legs(decision) == [("ARCA", 800, "100.02"), ("BATS", 200, "100.01")]


def test_cost_scores_every_candidate_with_its_all_in_price():
    order = request(1000, "100.03", strategy=Strategy.COST)
    decision = plan(order, make_market(), VENUES, RoutingPolicy(), toxic("EDGA"))
    scores = {(c.venue, c.price): c.score for c in decision.candidates}
    edga, arca = scores[("EDGA", D("100.02"))] - D("100.02"), scores[("ARCA", D("100.02"))] - D("100.02")
    assert arca > D("0.003")  # its taker fee and the risk terms every venue carries
    assert edga - arca > D("0.03")  # about 5 bps of toxicity outweigh EDGA's 0.45 cent fee advantage


def test_liquidity_splits_the_marginal_tier_pro_rata():
    decision = route(request(250, "100.01", strategy=Strategy.LIQUIDITY))
    assert sorted(legs(decision)) == [("ARCA", 150, "100.01"), ("BATS", 100, "100.01")]
    assert "pro rata" in decision.reason


def test_single_takes_from_one_venue_without_trading_through_another():
    decision = route(request(1000, "100.03", strategy=Strategy.SINGLE))
    assert legs(decision) == [("ARCA", 300, "100.01")]
    assert all(c.rank is None for c in decision.candidates if c.venue != "ARCA")


# --- directed -----------------------------------------------------------------------------------------


def test_directed_is_capped_at_a_better_quote_elsewhere():
    decision = route(request(1000, "100.03", tif=DAY, ex_destination="EDGA"))
    assert decision.phase == "directed"
    assert decision.children == (ChildSpec("EDGA", 1000, D("100.01"), LIMIT, DAY, "directed"),)
    assert "ARCA" in decision.reason


def test_directed_is_not_capped_by_unprotected_quotes():
    where = venues(ARCA={"protected": False}, BATS={"protected": False})
    decision = route(request(1000, "100.03", ex_destination="EDGA"), where=where)
    assert legs(decision) == [("EDGA", 1000, "100.03")]


def test_directed_market_becomes_a_limit_at_the_better_quote():
    decision = route(request(1000, None, ex_destination="EDGA"))
    assert decision.children == (ChildSpec("EDGA", 1000, D("100.01"), LIMIT, IOC, "directed"),)


def test_directed_within_the_best_quote_keeps_the_parent_terms_and_size():
    decision = route(request(150, "100.01", tif=DAY, ex_destination="ARCA", lot=100))
    assert decision.children == (ChildSpec("ARCA", 150, D("100.01"), LIMIT, DAY, "directed"),)


def test_directed_market_with_no_other_quote_stays_market():
    market = make_market({"EDGA": BOOKS["EDGA"]})
    decision = route(request(100, None, ex_destination="EDGA"), market=market)
    assert decision.children == (ChildSpec("EDGA", 100, None, MARKET, IOC, "directed"),)


def test_directed_to_a_dark_pool():
    assert route(request(300, "100.02", ex_destination="DRK2")).children == (
        ChildSpec("DRK2", 300, D("100.02"), LIMIT, IOC, "directed"),
    )
    assert route(request(300, None, ex_destination="DRK2")).children == (
        ChildSpec("DRK2", 300, D("100.01"), LIMIT, IOC, "directed"),
    )
    assert route(request(300, None, ex_destination="DRK2"), market=MarketView()).children == (
        ChildSpec("DRK2", 300, None, MARKET, IOC, "directed"),
    )


@pytest.mark.parametrize(
    "dest, where, excluded, why",
    [
        ("NOPE", VENUES, frozenset(), "ExDestination NOPE is not a known venue"),
        ("BATS", venues(BATS={"connected": False}), frozenset(), "ExDestination BATS is disconnected"),
        ("BATS", VENUES, frozenset({"BATS"}), "ExDestination BATS rejected this order"),
    ],
)
def test_directed_to_an_unusable_venue_sends_nothing(dest, where, excluded, why):
    decision = route(request(ex_destination=dest, excluded=excluded), where=where)
    assert (decision.phase, decision.children, decision.reason) == ("none", (), why)


# --- lots ---------------------------------------------------------------------------------------------


def test_children_are_lot_multiples_and_the_odd_rest_is_not_placed():
    decision = route(request(1050, "100.03", lot=100))
    assert all(c.qty % 100 == 0 for c in decision.children)
    assert sum(c.qty for c in decision.children) == 1000


def test_an_odd_lot_left_at_a_better_price_does_not_stop_the_sweep():
    market = make_market({"ARCA": ([], [("100.01", 150)]), "BATS": ([], [("100.02", 500)])})
    decision = route(request(500, "100.03", lot=100), market=market)
    assert legs(decision) == [("ARCA", 100, "100.01"), ("BATS", 400, "100.02")]


@pytest.mark.parametrize("strategy", [Strategy.SWEEP, Strategy.COST, Strategy.LIQUIDITY])
def test_odd_lot_residue_does_not_stall_a_round_lot_order(strategy):
    market = make_market(
        {"ARCA": ([], [("100.01", 150)]), "BATS": ([], [("100.02", 250)]), "EDGA": ([], [("100.03", 1000)])}
    )
    decision = route(request(300, "100.03", lot=100, strategy=strategy), market=market)
    assert legs(decision) == [("ARCA", 100, "100.01"), ("BATS", 200, "100.02")]
    assert "odd lots (under 100 shares) left at better prices are not protected quotes" in decision.reason


def test_no_odd_lot_note_when_none_is_passed():
    decision = route(request(1000, "100.03", lot=100))
    assert "odd lot" not in decision.reason


def test_a_venue_showing_only_odd_lots_gets_nothing_and_says_so():
    market = make_market({"ARCA": ([], [("100.01", 50)]), "BATS": ([], [("100.02", 60)])})
    decision = route(request(100, "100.03", lot=100), market=market)
    assert (decision.phase, decision.reason) == ("none", "no venue shows a lot of 100 within the limit")


def test_a_venue_rounds_up_into_the_next_tier_rather_than_leave_an_odd_lot_behind():
    market = make_market({"ARCA": ([], [("100.01", 150), ("100.02", 150)]), "BATS": ([], [("100.02", 1000)])})
    decision = route(request(1000, "100.03", lot=100), market=market)
    assert legs(decision) == [("ARCA", 300, "100.02"), ("BATS", 700, "100.02")]


def test_rounding_up_never_takes_more_than_the_order():
    market = make_market(
        {"ARCA": ([], [("100.01", 150), ("100.02", 50)]), "BATS": ([], [("100.01", 150), ("100.02", 50)])}
    )
    decision = route(request(300, "100.03", lot=100), market=market)
    # Both round down in the 100.01 tier; only ARCA, first in preference, may round up: that is the order.
    assert legs(decision) == [("ARCA", 200, "100.02"), ("BATS", 100, "100.01")]


@pytest.mark.parametrize("strategy", [Strategy.SWEEP, Strategy.COST, Strategy.LIQUIDITY, Strategy.SINGLE])
@pytest.mark.parametrize("lot", [1, 100])
def test_a_level_of_no_size_is_skipped_not_a_quote(strategy, lot):
    market = make_market({"ARCA": ([("100.00", 0)], [("100.00", 0), ("100.03", 100)]), "BATS": ([], [("100.02", 500)])})
    decision = route(request(300, "100.03", lot=lot, strategy=strategy), market=market)
    assert legs(decision) == [("BATS", 300, "100.02")]
    assert (decision.nbbo.ask, decision.nbbo.ask_qty, decision.nbbo.bid) == (D("100.02"), 500, None)


def test_less_than_a_lot_sends_nothing():
    decision = route(request(50, "100.03", lot=100))
    assert (decision.phase, decision.reason) == ("none", "50 is less than one lot of 100")


# --- properties ---------------------------------------------------------------------------------------

NAMES = ("V0", "V1", "V2", "V3", "V4", "V5")
FEES = [D(x) / 10000 for x in range(-30, 31, 5)]
MOSTLY = st.sampled_from([True, True, True, True, False])


@st.composite
def venue_infos(draw) -> dict[str, VenueInfo]:
    count = draw(st.sampled_from([1, 2, 3, 4, 5, 6]))
    return {
        name: VenueInfo(
            name,
            draw(st.sampled_from([VenueKind.LIT, VenueKind.LIT, VenueKind.DARK])),
            draw(st.sampled_from(FEES)),
            draw(st.sampled_from(FEES)),
            draw(st.integers(50, 1000)),
            draw(MOSTLY),
            min_qty=draw(st.sampled_from([1, 100, 500])),
            protected=draw(MOSTLY),
        )
        for name in NAMES[:count]
    }


def side_levels(draw, best: int, step: int) -> tuple[Level, ...]:
    """Up to 6 levels within 10 ticks of best (in cents), moving away by step, odd sizes included."""
    sizes = draw(st.dictionaries(st.integers(0, 9), st.integers(1, 700), max_size=6))
    return tuple(Level(D(best + step * tick) / 100, sizes[tick]) for tick in sorted(sizes))


@st.composite
def markets(draw, where: dict[str, VenueInfo]) -> MarketView:
    market = MarketView()
    for name, info in where.items():
        if info.kind is VenueKind.LIT and draw(MOSTLY):
            mid = draw(st.integers(9996, 10004))  # venues' books may lock or cross each other
            bids, asks = side_levels(draw, mid - 1, -1), side_levels(draw, mid + 1, 1)
            market.update(BookSnapshot(name, SYM, bids, asks, 1, 0))
    return market


@st.composite
def requests(draw, where: dict[str, VenueInfo]) -> PlanRequest:
    limit = draw(st.none() | st.integers(9985, 10015).map(lambda cents: D(cents) / 100))
    lot = draw(st.sampled_from([1, 1, 10, 100]))
    qty = draw(st.integers(1, 3000 // lot)) * lot + draw(st.sampled_from([0, 0, 0, 7]))
    directed = draw(st.integers(0, 6)) == 0
    return PlanRequest(
        "O1",
        SYM,
        draw(st.sampled_from(Side)),
        qty,
        MARKET if limit is None else LIMIT,
        limit,
        draw(st.sampled_from(TimeInForce)),
        draw(st.sampled_from(Urgency)),
        ex_destination=draw(st.sampled_from([*where, "NOPE"])) if directed else None,
        dark_done=draw(st.booleans()),
        excluded=frozenset(draw(st.sets(st.sampled_from(list(where)), max_size=1))),
        lot=lot,
        strategy=draw(st.sampled_from(Strategy)),
    )


@st.composite
def histories(draw, where: dict[str, VenueInfo]) -> VenueLearning:
    """What the engine could have learnt: random acks, fills, markouts and dark outcomes per venue."""
    learning = VenueLearning(
        [n for n, v in where.items() if v.kind is VenueKind.LIT],
        [n for n, v in where.items() if v.kind is VenueKind.DARK],
    )
    for name in where:
        for _ in range(draw(st.integers(0, 3))):
            sent = draw(st.integers(1, 30)) * 100
            filled = draw(st.integers(0, sent // 100)) * 100
            learning.child_sent(name, sent, 0)
            learning.child_acked(name, draw(st.integers(0, 5_000_000)), 0)
            if filled:
                learning.child_filled(SYM, name, Side.BUY, filled, D("100.01"), 0, D("100.005"))
            learning.child_done(name, sent, filled, True)
        learning.mid(SYM, 2_000_000_000, D(draw(st.integers(9990, 10010))) / 100)
    return learning


@st.composite
def scenarios(draw) -> tuple[PlanRequest, MarketView, dict[str, VenueInfo], VenueLearning | None]:
    where = draw(venue_infos())
    return draw(requests(where)), draw(markets(where)), where, draw(st.none() | histories(where))


def beyond(price: D, limit: D, side: Side) -> bool:
    return price > limit if side.is_buy else price < limit


def depth_within(market: MarketView, venue: str, order: PlanRequest) -> int:
    book = market.book(venue, SYM)
    levels = book.asks if order.side.is_buy else book.bids
    return sum(lv.qty for lv in levels if order.limit is None or not beyond(lv.price, order.limit, order.side))


PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(scenarios())
def test_children_stay_within_the_order_its_limit_and_the_displayed_depth(scenario):
    order, market, where, learning = scenario
    decision = plan(order, market, where, RoutingPolicy(), learning)
    assert decision.phase in {"directed", "dark", "take", "post", "none"}
    assert (decision.phase == "none") == (not decision.children)
    assert all(c.qty > 0 for c in decision.children)
    assert sum(c.qty for c in decision.children) <= order.qty
    if order.limit is not None:
        assert all(c.price is not None and not beyond(c.price, order.limit, order.side) for c in decision.children)
    if decision.phase != "directed":
        assert all(c.qty % order.lot == 0 for c in decision.children)
    for child in decision.children:
        assert where[child.venue].connected and child.venue not in order.excluded
    if decision.phase == "take":
        assert len({c.venue for c in decision.children}) == len(decision.children)
        assert all(c.qty <= depth_within(market, c.venue, order) for c in decision.children)
    if decision.phase == "dark":
        placeable = order.qty - order.qty % order.lot
        wanted = placeable if order.urgency is Urgency.LOW else min(placeable, 1000 - 1000 % order.lot)
        placed = sum(c.qty for c in decision.children)
        if learning is not None and wanted >= learning.dark.unit:  # the allocator places whole units
            assert wanted - learning.dark.unit < placed <= wanted
        else:
            assert placed == wanted
        assert all(where[c.venue].kind is VenueKind.DARK and c.qty >= where[c.venue].min_qty for c in decision.children)


@PROPERTY
@given(scenarios())
def test_without_lots_the_sweep_is_the_plain_greedy_one(scenario):
    order, market, where, _ = scenario
    order = dataclasses.replace(
        order,
        lot=1,
        ex_destination=None,
        urgency=Urgency.HIGH,
        tif=IOC if order.tif is FOK else order.tif,
        strategy=Strategy.SWEEP,
    )
    decision = plan(order, market, where, RoutingPolicy())
    assert [(c.venue, c.qty, c.price) for c in decision.children if c.purpose == "take"] == greedy(order, market, where)


def greedy(order: PlanRequest, market: MarketView, where: dict[str, VenueInfo]) -> list:
    """The textbook sweep: every level, best price, fee, latency, name first; take until done."""
    buy = order.side.is_buy
    levels = []
    for name, info in where.items():
        book = market.book(name, SYM)
        if info.kind is VenueKind.LIT and info.connected and name not in order.excluded and book:
            for lv in book.asks if buy else book.bids:
                if order.limit is None or not beyond(lv.price, order.limit, order.side):
                    levels.append((lv.price if buy else -lv.price, info.taker_fee, info.latency_us, name, lv))
    left = order.qty
    taken: dict[str, list] = {}
    for *_, name, lv in sorted(levels):
        if left == 0:
            break
        took = min(lv.qty, left)
        left -= took
        taken.setdefault(name, [0, None])
        taken[name][0] += took
        taken[name][1] = lv.price
    return [(name, qty, price) for name, (qty, price) in taken.items()]


@PROPERTY
@given(scenarios(), st.sampled_from([10, 100]))
def test_with_lots_the_sweep_takes_through_the_last_tier_it_may_stop_in(scenario, lot):
    order, market, where, _ = scenario
    order = dataclasses.replace(
        order,
        lot=lot,
        ex_destination=None,
        urgency=Urgency.HIGH,
        tif=IOC if order.tif is FOK else order.tif,
        strategy=Strategy.SWEEP,
    )
    decision = plan(order, market, where, RoutingPolicy())
    assert sorted((c.venue, c.qty, c.price) for c in decision.children if c.purpose == "take") == sorted(
        in_lots(order, market, where)
    )


def in_lots(order: PlanRequest, market: MarketView, where: dict[str, VenueInfo]) -> list:
    """The lot sweep by its definition, tier by tier from scratch: take every tier better than the marginal one
    whole, each venue rounded down to a lot (odd lots are not protected); the marginal tier is the last one whose
    better tiers, so rounded, fit in the order; in it venues round up first, then share the rest in venue order."""
    buy, lot = order.side.is_buy, order.lot
    books = {}
    for name, info in sorted(where.items(), key=lambda v: (v[1].taker_fee, v[1].latency_us, v[0])):
        book = market.book(name, SYM)
        if info.kind is VenueKind.LIT and info.connected and name not in order.excluded and book:
            levels = [
                lv
                for lv in (book.asks if buy else book.bids)
                if order.limit is None or not beyond(lv.price, order.limit, order.side)
            ]
            if levels:
                books[name] = levels
    tiers = sorted({lv.price for levels in books.values() for lv in levels}, reverse=not buy)

    def before(tier):  # venue -> qty shown at prices better than tier
        return {
            name: sum(lv.qty for lv in levels if beyond(tier, lv.price, order.side)) for name, levels in books.items()
        }

    def at(name, tier):
        return next((lv.qty for lv in books[name] if lv.price == tier), 0)

    marginal = None
    for tier in tiers:
        if sum(shown // lot * lot for shown in before(tier).values()) > order.qty:
            break
        marginal = tier
    if marginal is None:
        return []
    want = {name: shown // lot * lot for name, shown in before(marginal).items()}
    left = order.qty - sum(want.values())
    left -= left % lot
    for name, shown in before(marginal).items():
        reach = shown + at(name, marginal)
        if left and shown % lot and reach // lot * lot > want[name]:
            want[name] += lot
            left -= lot
    for name, shown in before(marginal).items():
        reach = shown + at(name, marginal)
        add = min(reach - reach % lot - want[name], left)
        if add > 0:
            want[name] += add
            left -= add
    children = []
    for name, qty in want.items():
        if qty:
            shown, worst = 0, None
            for lv in books[name]:
                if shown < qty:
                    shown, worst = shown + lv.qty, lv.price
            children.append((name, qty, worst))
    return children


@PROPERTY
@given(scenarios())
def test_decisions_do_not_depend_on_venue_order(scenario):
    order, market, where, learning = scenario
    backwards = dict(reversed(where.items()))
    assert plan(order, market, where, RoutingPolicy(), learning) == plan(
        order, market, backwards, RoutingPolicy(), learning
    )


def test_candidates_are_the_levels_through_the_marginal_price_in_sweep_order():
    decision = route(request(100, "100.02"))
    assert decision.candidates == (
        Candidate("ARCA", D("100.01"), 300, D("0.0030"), 200, 1),
        Candidate("BATS", D("100.01"), 200, D("0.0030"), 400, None),
    )
