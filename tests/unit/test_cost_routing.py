"""The cost strategy ranks by expected all-in cost per share wherever the no-trade-through rule allows."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, strategies as st

from gateway.analytics.learning import LearningConfig, VenueLearning
from gateway.analytics.venue_stats import VenueStatsConfig
from gateway.core.market import BookSnapshot, MarketView, VenueInfo
from gateway.core.routing import (
    CostWeights,
    PlanRequest,
    RouteDecision,
    RoutingPolicy,
    expected_costs,
    plan,
    trade_through_violations,
)
from gateway.core.routing.cost import cost_penalties, plan_cost
from gateway.core.routing.survey import far_side, survey_of
from gateway.core.types import Side, Strategy, Urgency, VenueKind
from tests.unit.test_router import FEES, PROPERTY, SYM, legs, make_market, request, side_levels, toxic

COST, SWEEP = Strategy.COST, Strategy.SWEEP


def lit(name: str, taker_fee: str = "0.0030", protected: bool = True) -> VenueInfo:
    return VenueInfo(name, VenueKind.LIT, D("-0.0020"), D(taker_fee), 300, True, protected=protected)


# Two clean venues at 100.02 and TOX one tick better, whose fills are followed by a 20 bps adverse move.
TOXIC_BOOKS = {"TOX": ([], [("100.01", 500)]), "ARCA": ([], [("100.02", 500)]), "BATS": ([], [("100.02", 500)])}


def toxic_case(protected: bool, strategy: Strategy) -> RouteDecision:
    where = {"TOX": lit("TOX", protected=protected), "ARCA": lit("ARCA"), "BATS": lit("BATS")}
    learning = toxic("TOX")
    return plan(request(500, "100.03", strategy=strategy), make_market(TOXIC_BOOKS), where, RoutingPolicy(), learning)


def test_cost_passes_a_better_priced_toxic_venue_that_is_unprotected():
    assert legs(toxic_case(False, SWEEP)) == [("TOX", 500, "100.01")]
    decision = toxic_case(False, COST)
    assert legs(decision) == [("ARCA", 500, "100.02")]
    assert "by expected all-in cost per share" in decision.reason
    assert "passed unprotected quotes at TOX" in decision.reason


def test_cost_still_takes_a_better_priced_toxic_venue_that_is_protected():
    assert legs(toxic_case(True, COST)) == [("TOX", 500, "100.01")]


def test_cost_passes_an_unprotected_quote_whose_fee_outweighs_its_price():
    where = {"FEE": lit("FEE", "0.03", protected=False), "ARCA": lit("ARCA", "0")}
    market = make_market({"FEE": ([], [("100.00", 300)]), "ARCA": ([], [("100.01", 300)])})
    order = request(300, "100.02", strategy=COST)
    assert legs(plan(order, market, where, RoutingPolicy())) == [("ARCA", 300, "100.01")]
    protected = {**where, "FEE": lit("FEE", "0.03")}
    assert legs(plan(order, market, protected, RoutingPolicy())) == [("FEE", 300, "100.00")]


def test_cost_sells_pass_an_unprotected_toxic_bid_too():
    where = {"TOX": lit("TOX", protected=False), "ARCA": lit("ARCA")}
    learning = toxic("TOX")
    market = make_market({"TOX": ([("100.00", 400)], []), "ARCA": ([("99.99", 400)], [])})
    order = request(400, "99.98", side=Side.SELL, strategy=COST)
    assert legs(plan(order, market, where, RoutingPolicy(), learning)) == [("ARCA", 400, "99.99")]


def test_cost_goes_deeper_only_as_far_as_protected_quotes_allow():
    # TOX (unprotected) holds 100.01; ARCA (protected) shows 100.02 then 100.04, BATS 100.03. Skipping TOX
    # means taking ARCA's 100.02 and BATS's 100.03 before ARCA's 100.04: both protected, so both are taken.
    where = {"TOX": lit("TOX", protected=False), "ARCA": lit("ARCA"), "BATS": lit("BATS")}
    learning = toxic("TOX")
    market = make_market(
        {
            "TOX": ([], [("100.01", 1000)]),
            "ARCA": ([], [("100.02", 100), ("100.04", 1000)]),
            "BATS": ([], [("100.03", 100)]),
        }
    )
    decision = plan(request(500, "100.05", strategy=COST), market, where, RoutingPolicy(), learning)
    assert trade_through_violations(decision, Side.BUY, SYM, market, where) == []
    assert sum(c.qty for c in decision.children) == 500


# --- exploration: a venue the cost strategy left keeps being tried -------------------------------------

EXPLORING = RoutingPolicy(cost=CostWeights(explore_every=10, explore_qty=100))
WHERE = {"TOX": lit("TOX", protected=False), "ARCA": lit("ARCA"), "BATS": lit("BATS")}


def test_cost_gives_a_venue_it_left_a_small_share_once_no_parent_used_it_for_explore_every_parents():
    learning = toxic("TOX")
    for _ in range(9):
        learning.routed(["ARCA", "BATS"], new_parent=True)
    order = request(500, "100.03", strategy=COST)
    assert legs(plan(order, make_market(TOXIC_BOOKS), WHERE, EXPLORING, learning)) == [("ARCA", 500, "100.02")]
    learning.routed(["ARCA", "BATS"], new_parent=True)
    decision = plan(order, make_market(TOXIC_BOOKS), WHERE, EXPLORING, learning)
    assert legs(decision) == [("TOX", 100, "100.01"), ("ARCA", 400, "100.02")]
    assert "explored TOX with 100 shares: no cost parent used it for 10 parents" in decision.reason
    learning.routed(["TOX", "ARCA", "BATS"], new_parent=True)  # used now: the count starts again
    assert legs(plan(order, make_market(TOXIC_BOOKS), WHERE, EXPLORING, learning)) == [("ARCA", 500, "100.02")]


def test_an_exploration_that_would_trade_through_leaves_the_plan_as_it_was():
    """BIG is due for a share, but the shares it would take come off A's better round lots too, leaving one
    standing at 100.01 under a child at 100.02: plan() keeps the plan without exploring."""
    where = {"A": lit("A", "0"), "C": lit("C", "0"), "BIG": lit("BIG", "0.0090")}
    books = {"A": ([], [("100.01", 200)]), "C": ([], [("100.02", 100)]), "BIG": ([], [("100.02", 500)])}
    learning = VenueLearning(list(where), [])
    for _ in range(3):
        learning.routed(["A", "C"], new_parent=True)
    policy = RoutingPolicy(cost=CostWeights(explore_every=3, explore_qty=200))
    order = request(300, "100.02", strategy=COST, lot=100)
    explored = explore_alone(order, make_market(books), where, policy, learning)
    assert legs(explored) == [("A", 100, "100.01"), ("BIG", 200, "100.02")]
    assert trade_through_violations(explored, Side.BUY, SYM, make_market(books), where, 100)
    decision = plan(order, make_market(books), where, policy, learning)
    assert legs(decision) == [("A", 200, "100.01"), ("C", 100, "100.02")]
    assert "explored" not in decision.reason


def explore_alone(order, market, where, policy, learning) -> RouteDecision:
    """What exploring alone makes of the cost plan, before plan()'s trade-through guard."""
    survey = survey_of(order, market, where)
    penalties = cost_penalties(order, survey, policy.cost, learning, market)
    preference = {venue[0]: rank for rank, venue in enumerate(survey.lit)}
    survey.lit.sort(key=lambda venue: penalties[venue[0]])
    reachable = far_side(order, survey.lit)
    explored, fallback = plan_cost(order, survey, reachable, 300, penalties, learning, policy.cost, preference)
    assert fallback is not None
    return explored


def test_exploration_is_off_with_explore_every_0():
    learning = toxic("TOX")
    for _ in range(50):
        learning.routed(["ARCA"], new_parent=True)
    decision = plan(request(500, "100.03", strategy=COST), make_market(TOXIC_BOOKS), WHERE, RoutingPolicy(), learning)
    assert legs(decision) == [("ARCA", 500, "100.02")]


def parents_until_back(policy: RoutingPolicy, parents: int = 300) -> int | None:
    """TOX was 2 bps toxic over 30 fills and is clean from now on: the parent (of `parents`) from which the
    cost strategy sends it everything again, each parent's fills marked as the engine marks them."""
    learning = VenueLearning(list(WHERE), [], LearningConfig(stats=VenueStatsConfig(toxicity_half_life=5)))
    for _ in range(30):
        learning.child_sent("TOX", 100, 0)
        learning.child_filled(SYM, "TOX", Side.BUY, 100, D("100.02"), 0, D("100.015"))
        learning.child_done("TOX", 100, 100, True)
    learning.mid(SYM, 5_000_000_000, D("99.995"))
    assert learning.score("TOX").toxicity > 0.5
    now = 10_000_000_000
    for parent in range(parents):
        decision = plan(request(500, "100.03", strategy=COST), make_market(TOXIC_BOOKS), WHERE, policy, learning)
        if legs(decision) == [("TOX", 500, "100.01")]:
            return parent
        learning.routed([child.venue for child in decision.children], new_parent=True)
        for child in decision.children:
            learning.child_sent(child.venue, child.qty, now)
            learning.child_filled(SYM, child.venue, Side.BUY, child.qty, child.price, now, D("100.015"))
            learning.child_done(child.venue, child.qty, child.qty, True)
        now += 1_000_000_000
        learning.mid(SYM, now, D("100.015"))  # no move after any fill: every venue is clean now
    return None


def test_a_venue_that_cleaned_up_wins_the_flow_back_and_without_exploration_never_does():
    back = parents_until_back(EXPLORING)
    assert back is not None and 50 <= back <= 120  # 10 explorations of 100 shares, one every 10 parents
    assert parents_until_back(RoutingPolicy()) is None


# --- properties ---------------------------------------------------------------------------------------


def all_in(decision: RouteDecision, market: MarketView, extra: dict[str, D], side: Side) -> D:
    """Expected all-in cost of the children (a sell's: minus its net proceeds), walking each book best first."""
    total = D(0)
    for child in decision.children:
        book = market.book(child.venue, SYM)
        left = child.qty
        for level in book.asks if side.is_buy else book.bids:
            if (
                left == 0
                or (side.is_buy and level.price > child.price)
                or (not side.is_buy and level.price < child.price)
            ):
                break
            took = min(left, level.qty)
            total += took * (level.price if side.is_buy else -level.price)
            left -= took
        assert left == 0, "a child asks for more than its venue shows within its price"
        total += child.qty * extra[child.venue]
    return total


@st.composite
def costly_books(draw):
    """Lit venues, some unprotected, with random fees, latencies, books and toxic histories; a cost order."""
    names = [f"L{i}" for i in range(draw(st.integers(2, 6)))]
    where = {
        n: VenueInfo(
            n,
            VenueKind.LIT,
            D(0),
            draw(st.sampled_from([*FEES, D("0.02"), D("0.05")])),
            draw(st.integers(50, 5000)),
            True,
            protected=draw(st.booleans()),
        )
        for n in names
    }
    market = MarketView()
    for n in names:
        market.update(BookSnapshot(n, SYM, side_levels(draw, 9999, -1), side_levels(draw, 10001, 1), 1, 0))
    learning = VenueLearning(names, [])
    for n in names:
        drift = draw(st.sampled_from([0, 0, 1, 2, 5]))  # ticks the mid falls after each fill
        for i in range(draw(st.integers(0, 12))):
            learning.child_sent(n, 100, i)
            learning.child_filled(SYM, n, Side.BUY, 100, D("100.01"), i, D("100.005"))
            learning.child_done(n, 100, draw(st.sampled_from([0, 100])) or 100, True)
        learning.mid(SYM, 5_000_000_000, D("100.005") - D(drift) / 100)
    lot = draw(st.sampled_from([1, 1, 10, 100]))
    side = draw(st.sampled_from(Side))
    reach = draw(st.none() | st.integers(0, 9))
    limit = None if reach is None else D(10001 + reach) / 100 if side.is_buy else D(9999 - reach) / 100
    order = request(
        draw(st.integers(1, 3000 // lot)) * lot,
        None if limit is None else str(limit),
        side=side,
        urgency=Urgency.HIGH,
        lot=lot,
        strategy=COST,
    )
    return order, market, where, learning


@PROPERTY
@given(costly_books())
def test_cost_is_never_worse_than_the_sweep_and_never_trades_through(scenario):
    order, market, where, learning = scenario
    cost = plan(order, market, where, RoutingPolicy(), learning)
    sweep = plan(_as(order, SWEEP), market, where, RoutingPolicy(), learning)
    assert trade_through_violations(cost, order.side, SYM, market, where, order.lot) == []
    assert sum(c.qty for c in cost.children) == sum(c.qty for c in sweep.children)
    assert all(c.qty % order.lot == 0 for c in cost.children)
    extra = expected_costs(order, market, where, CostWeights(), learning)
    assert all_in(cost, market, extra, order.side) <= all_in(sweep, market, extra, order.side)


@PROPERTY
@given(costly_books(), st.integers(1, 5), st.integers(1, 500))
def test_exploring_never_trades_through_nor_changes_how_much_is_taken(scenario, every, qty):
    order, market, where, learning = scenario
    for _ in range(every):
        learning.routed([], new_parent=True)  # every venue is due
    policy = RoutingPolicy(cost=CostWeights(explore_every=every, explore_qty=qty))
    explored = plan(order, market, where, policy, learning)
    plain = plan(order, market, where, RoutingPolicy(), learning)
    assert trade_through_violations(explored, order.side, SYM, market, where, order.lot) == []
    assert all(c.qty % order.lot == 0 and c.qty > 0 for c in explored.children)
    assert sum(c.qty for c in explored.children) >= sum(c.qty for c in plain.children)
    assert sum(c.qty for c in explored.children) <= order.qty


def _as(order: PlanRequest, strategy: Strategy) -> PlanRequest:
    return PlanRequest(
        order.order_id,
        order.symbol,
        order.side,
        order.qty,
        order.ord_type,
        order.limit,
        order.tif,
        order.urgency,
        lot=order.lot,
        strategy=strategy,
    )
