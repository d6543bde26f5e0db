"""The `cost` strategy: the plan of least expected all-in cost per share (price, fee, toxicity, latency, staleness
and miss risk) the trade-through rule allows, with a bounded share exploring venues it has left."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial
from operator import itemgetter

from gateway.analytics.learning import VenueLearning
from gateway.core.market import KEY_SCALE, MarketView, PriceKey, Row, VenueInfo, price_key, whole_key
from gateway.core.routing.cost_plan import AllInCosts, spread
from gateway.core.routing.decision import Candidate, PlanRequest, RouteDecision
from gateway.core.routing.policy import CostWeights
from gateway.core.routing.survey import Reachable, Survey, decide, survey_of
from gateway.core.routing.sweep import (
    everything_takes,
    penalty_price,
    rows_better_than,
    sweep_decision,
    sweep_order,
    sweep_takes,
    taken_candidates,
)
from gateway.core.routing.trade_through import furthest_price
from gateway.core.types import ChildSpec, OrdType, TimeInForce

_LIMIT, _IOC = OrdType.LIMIT, TimeInForce.IOC
_PER_BPS = 10**4  # a basis point of a price is 1e-4 of it: 1e4 in the 1e-8 units of a factor
_MICRO = Decimal("0.000001")
_MICRO_UNITS = 10**10  # 0.000001 in the 1e-16 units of a key (1e-8) times a factor (1e-8)
_MICRO_KEY = KEY_SCALE // 10**6  # 0.000001 in key units
_key = itemgetter(0)
_qty = itemgetter(1)


def expected_costs(
    order: PlanRequest,
    market: MarketView,
    venues: Mapping[str, VenueInfo],
    weights: CostWeights,
    stats: VenueLearning | None = None,
) -> dict[str, Decimal]:
    """Usable lit venue -> what the cost strategy expects a share taken there to cost beyond its price."""
    penalties = cost_penalties(order, survey_of(order, market, venues), weights, stats, market)
    return {name: penalty_price(key) for name, key in penalties.items()}


def cost_penalties(
    order: PlanRequest, survey: Survey, weights: CostWeights, stats: VenueLearning | None, market: MarketView
) -> dict[str, int]:
    """Lit venue -> expected cost per share beyond the price, in price key units rounded (half even) to 0.000001:
    taker fee plus toxicity, latency, staleness and miss-rate risks, each in basis points (to 0.0001) of the
    reference price (the NBBO mid, else the venue's top)."""
    mid = survey.nbbo.mid
    mid_key = None if mid is None else whole_key(mid)
    buy = order.side.is_buy
    toxicity_bps, miss_bps = weights.toxicity_bps, weights.miss_bps
    latency_bps, staleness_bps = weights.latency_bps_per_ms / 1000, weights.staleness_bps_per_s / 1e9
    now = market.now_ns()  # one instant for every venue's quote age
    risks_of = None if stats is None else stats.risks
    penalties = {}
    for name, info, book in survey.lit:
        reference = mid_key
        if reference is None:
            top = book.best_ask if buy else book.best_bid
            reference = None if top is None else whole_key(top.price)
        risk_bps = 0.0
        if reference is not None:
            risks = None if risks_of is None else risks_of(name)
            latency_us = None
            if risks is not None:
                toxicity, fill_rate, latency_us = risks
                risk_bps = toxicity_bps * toxicity + miss_bps * (1 - fill_rate)
            risk_bps += latency_bps * (info.latency_us if latency_us is None else latency_us)
            if now is not None and now > book.ts_ns:
                risk_bps += staleness_bps * (now - book.ts_ns)
        penalties[name] = penalty_key(info.taker_key, reference, risk_bps)
    return penalties


def penalty_key(fee: int, reference: int | None, risk_bps: float) -> int:
    """fee + risk_bps (to 0.0001) basis points of reference, rounded half even to 0.000001; all in key units."""
    total = fee * KEY_SCALE  # in 1e-16 units: a key (1e-8) times a factor (1e-8)
    if reference is not None:
        total += reference * round(risk_bps * _PER_BPS)
    units, rest = divmod(total, _MICRO_UNITS)
    if 2 * rest > _MICRO_UNITS or (2 * rest == _MICRO_UNITS and units % 2):
        units += 1
    return units * _MICRO_KEY


def plan_cost(
    order: PlanRequest,
    survey: Survey,
    reachable: list[Reachable],
    placeable: int,
    penalties: Mapping[str, int],
    stats: VenueLearning | None,
    weights: CostWeights,
    preference: Mapping[str, int],
) -> tuple[RouteDecision, RouteDecision | None]:
    """The plan of least expected all-in cost (price, fee and risks) per share, then exploration when due (see
    explore): protected round lots are taken or not jumped, unprotected quotes may be passed; the best-price
    sweep (marginal tier by all-in cost, or by taker preference as `sweep` splits it: preference ranks the venues
    that way) unless that plan fills more or costs less. With it, the plan before exploring if it explored (plan()
    keeps that one if the explored plan would trade through), else None."""
    decision, rows = _cheapest(order, survey, reachable, placeable, penalties, preference)
    if weights.explore_every and stats is not None and decision.children:
        explored = explore(order, survey, reachable, decision, penalties, stats, weights, rows)
        if explored is not decision:
            return explored, decision
    return decision, None


def _cheapest(
    order: PlanRequest,
    survey: Survey,
    reachable: list[Reachable],
    placeable: int,
    penalties: Mapping[str, int],
    preference: Mapping[str, int],
) -> tuple[RouteDecision, list[Row] | None]:
    """The cost plan, and every reachable row in sweep order if it sorted them."""
    everything = everything_takes(reachable, placeable, order.lot)
    if everything is not None:
        # Only the plan taking every reachable round lot fills that much: the sweep's, whatever the costs.
        return sweep_decision(order, survey, reachable, placeable, penalties, everything, "all-in cost"), None
    buy, lot = order.side.is_buy, order.lot
    costs = AllInCosts(reachable, penalties)
    rows = costs.rows
    swept, swept_cost = costs.sweep(placeable, lot)

    def sweep() -> RouteDecision:
        return sweep_decision(order, survey, reachable, placeable, penalties, costs.taken(swept), "all-in cost")

    if lot > 1:  # with a lot of 1 the marginal tier split by all-in cost is the cheaper one
        ranked = costs.ranked_sweep(placeable, lot, [preference[venue[0]] for venue in reachable])
        plain, plain_cost = (swept, swept_cost) if ranked is None else ranked
        if plain != swept and sum(plain) >= sum(swept) and plain_cost < swept_cost:
            # Lots can make the marginal tier split by taker preference the cheaper sweep of the two.
            swept, swept_cost = plain, plain_cost
            by_preference = sorted(reachable, key=lambda venue: preference[venue[0]])
            sweep = partial(sweep_decision, order, survey, by_preference, placeable, None)
            sweep = partial(sweep, *sweep_takes(order, by_preference, placeable, None))
    if all(venue[1].protected for venue in reachable):
        # every quote must be taken in price order: only the marginal tier's split is free
        return sweep(), rows
    takes, cost = costs.cheapest(placeable, lot)
    filled, swept_qty = sum(takes.values()), sum(swept)
    if filled < swept_qty or (filled == swept_qty and cost >= swept_cost):
        return sweep(), rows
    children = [ChildSpec(name, qty, row[3], _LIMIT, _IOC, "take") for name, qty, row in costs.placed(takes)]
    worst = furthest_price(children, buy)
    assert worst is not None, "router bug: a cost child without a limit price"
    reason = (
        f"cost: take {filled} of {placeable} across {len(children)} venue(s) by expected all-in cost per share "
        f"(price, fee, toxicity, latency, staleness and miss risk), up to {worst}: "
        f"{_per_share(cost, filled, buy)} a share against "
        f"{_per_share(swept_cost, swept_qty, buy) if swept_qty else 'nothing'} for the best-price sweep"
    )
    passed = costs.passed(takes, price_key(worst) if buy else -price_key(worst), lot)
    if passed:
        reason += f"; passed unprotected quotes at {', '.join(passed)}"
    if filled < placeable:
        reason += "; that is all the lit liquidity takeable now"
    candidates = partial(_taken_candidates, rows, takes, reachable, buy, penalties)
    return decide(order, survey, "take", children, candidates, reason), rows


def _taken_candidates(
    rows: Sequence[Row], takes: Mapping[str, int], reachable: list[Reachable], buy: bool, penalties: Mapping[str, int]
) -> tuple[Candidate, ...]:
    """taken_candidates for takes[venue] shares from each venue best price first (built only if read)."""
    return taken_candidates(rows, spread(rows, takes), reachable, buy, penalties)


def explore(
    order: PlanRequest,
    survey: Survey,
    reachable: list[Reachable],
    decision: RouteDecision,
    penalties: Mapping[str, int],
    stats: VenueLearning,
    weights: CostWeights,
    rows: list[Row] | None,
) -> RouteDecision:
    """The cost plan with a small share moved to a reachable venue no cost parent used for weights.explore_every
    parents (the one showing the best price, then the one left longest): its toxicity and fill rate only change
    while it gets fills, so without this a venue that cleaned up would never be tried again. The share comes off
    the plan's furthest-priced shares (whether that trades through is plan()'s guard to say). rows: every
    reachable row in sweep order, if already sorted (else sorted only if the candidates are read)."""
    used = {child.venue for child in decision.children}
    due = [
        (rows[0][0], -left_for, i, name)
        for i, (name, _, rows, _, _) in enumerate(reachable)
        if name not in used and (left_for := stats.parents_since(name)) >= weights.explore_every
    ]
    if not due:
        return decision
    _, left_for, index, venue = min(due)  # the best price passed first: what the plan would take were it clean
    left_for = -left_for
    buy, lot = order.side.is_buy, order.lot
    number = {name: i for i, (name, _, _, _, _) in enumerate(reachable)}
    sides = {name: (rows, depths) for name, _, rows, depths, _ in reachable}
    takes = {child.venue: child.qty for child in decision.children}
    reach = {name: _furthest(*sides[name], qty) for name, qty in takes.items()}  # (key, shares there, row)
    placeable = order.qty - order.qty % lot
    short = placeable - sum(takes.values())
    furthest = max(reach[name][0] for name in takes)
    _, _, own, depths, _ = reachable[index]  # the venue's rows, best first
    shown = len(own) if short else bisect_right(own, furthest, key=_key)  # the rows it may take from
    depth = depths[shown - 1] if shown else 0
    qty = min(max(lot, weights.explore_qty - weights.explore_qty % lot), depth - depth % lot, placeable)
    if qty == 0:
        return decision
    remove = qty - min(qty, short)
    while remove > 0:  # furthest-priced shares first; at one price, the venue the sweep reaches there last
        _, _, name = max((reach[name][0], number[name], name) for name in takes if takes[name])
        cut = min(-(-min(remove, reach[name][1]) // lot) * lot, takes[name])
        takes[name] -= cut
        remove -= cut
        if takes[name]:
            reach[name] = _furthest(*sides[name], takes[name])
    if remove < 0 and qty - remove <= depth - depth % lot:
        qty -= remove  # a lot rounded up elsewhere: the explored venue takes the difference
    takes[venue] = qty
    reach[venue] = _furthest(*sides[venue], qty)
    first = sorted((sides[name][0][0][0], number[name], name) for name, took in takes.items() if took)
    children = [ChildSpec(name, takes[name], reach[name][2][3], _LIMIT, _IOC, "take") for _, _, name in first]
    reason = (
        f"{decision.reason}; explored {venue} with {qty} shares: no cost parent used it for {left_for} "
        f"parents (routing.cost.explore_every {weights.explore_every})"
    )
    candidates = partial(_explored_candidates, rows, takes, reachable, buy, penalties)
    return decide(order, survey, "take", children, candidates, reason)


def _furthest(rows: Sequence[Row], depths: Sequence[int], qty: int) -> tuple[PriceKey, int, Row]:
    """Where taking qty (> 0) best price first from a venue's rows ends, found from their running depths, with
    the row's key first to compare takes by how far they reach: (key, shares taken there, row)."""
    i = bisect_left(depths, qty, 0, len(rows))
    if i == len(rows):
        raise AssertionError("router bug: a take beyond the book")
    return rows[i][0], qty - depths[i - 1] if i else qty, rows[i]


def _explored_candidates(
    rows: list[Row] | None,
    takes: Mapping[str, int],
    reachable: list[Reachable],
    buy: bool,
    penalties: Mapping[str, int],
) -> tuple[Candidate, ...]:
    """The candidates of an explored plan, the reachable rows sorted only now if the plan did not sort them."""
    rows = sweep_order(rows_better_than(reachable, None)) if rows is None else rows
    return _taken_candidates(rows, takes, reachable, buy, penalties)


def _per_share(cost: PriceKey, qty: int, buy: bool) -> Decimal:
    """An all-in cost in key units over qty shares as a price per share (a sell's: net proceeds)."""
    return (Decimal(cost) / (qty * KEY_SCALE) * (1 if buy else -1)).quantize(_MICRO)
