"""The router, plan(): one parent order and the market in, child orders and the reasons for them out."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.analytics.learning import VenueLearning
from gateway.core.market import MarketView, VenueInfo
from gateway.core.routing.cost import cost_penalties, plan_cost
from gateway.core.routing.dark import dark_applies, plan_dark
from gateway.core.routing.decision import PlanRequest, RouteDecision
from gateway.core.routing.directed import plan_directed
from gateway.core.routing.policy import RoutingPolicy
from gateway.core.routing.post import plan_post
from gateway.core.routing.single import plan_fill_or_kill, plan_single
from gateway.core.routing.survey import DISCONNECTED, Survey, decide_none, far_side, survey_of
from gateway.core.routing.sweep import take
from gateway.core.routing.trade_through import find_violations
from gateway.core.types import OrdType, Strategy, TimeInForce

_LIMIT = OrdType.LIMIT
_DAY, _FOK = TimeInForce.DAY, TimeInForce.FOK
_COST, _DARK_FIRST, _SINGLE = Strategy.COST, Strategy.DARK, Strategy.SINGLE


def plan(
    order: PlanRequest,
    market: MarketView,
    venues: Mapping[str, VenueInfo],
    policy: RoutingPolicy,
    stats: VenueLearning | None = None,
) -> RouteDecision:
    """Decide the children for `order`: directed, else dark first (by strategy and urgency), else take by the
    order's strategy, else post, else none."""
    survey = survey_of(order, market, venues)
    fallback = None
    if order.ex_destination is not None:
        decision = plan_directed(order, survey, venues)
    else:
        decision, fallback = _route(order, survey, policy, stats, market)
    violations = find_violations(decision.children, order.side, venues, survey.guarded, order.lot)
    if violations and fallback is not None:  # an exploration that would trade through: the plan as it was
        decision = fallback
        violations = find_violations(decision.children, order.side, venues, survey.guarded, order.lot)
    if violations:
        raise AssertionError(f"router bug, plan for {order.order_id} trades through: {'; '.join(violations)}")
    return decision


def _route(
    order: PlanRequest, survey: Survey, policy: RoutingPolicy, stats: VenueLearning | None, market: MarketView
) -> tuple[RouteDecision, RouteDecision | None]:
    """The decision, and the one to fall back to should it trade through (the plan an exploration changed)."""
    if not survey.lit and not survey.dark:
        everything_down = all(e.reason == DISCONNECTED for e in survey.exclusions)
        return decide_none(order, survey, "no venue connected" if everything_down else "no usable venue"), None
    placeable = order.qty - order.qty % order.lot
    if placeable == 0:
        return decide_none(order, survey, f"{order.qty} is less than one lot of {order.lot}"), None
    strategy = order.strategy
    if strategy is _DARK_FIRST and dark_applies(order, survey.nbbo):
        decision = plan_dark(order, survey, placeable, policy, stats)
        if decision is not None:
            return decision, None
    penalties = None
    if strategy is _COST:
        penalties = cost_penalties(order, survey, policy.cost, stats, market)
        preference = {venue[0]: rank for rank, venue in enumerate(survey.lit)}
        survey.lit.sort(key=lambda venue: penalties[venue[0]])  # stable: ties keep the taker preference
    reachable = far_side(order, survey.lit)
    if not reachable:
        if order.ord_type is _LIMIT and order.tif is _DAY and survey.lit:
            return plan_post(order, survey, placeable), None
        return decide_none(order, survey, _nothing_to_take(order)), None
    if order.tif is _FOK:
        return plan_fill_or_kill(order, survey, reachable, placeable), None
    if strategy is _SINGLE:
        return plan_single(order, survey, reachable, placeable), None
    if penalties is not None:
        return plan_cost(order, survey, reachable, placeable, penalties, stats, policy.cost, preference)
    return take(order, survey, reachable, placeable, penalties), None


def _nothing_to_take(order: PlanRequest) -> str:
    if order.limit is None:
        return f"no lit liquidity for {order.symbol}"
    if order.tif is _DAY:
        return "no lit venue to rest on"
    return f"no lit liquidity within limit {order.limit} and {order.tif.name}"
