"""Directed orders: ExDestination names the venue, capped so they cannot trade through a better quote elsewhere."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.market import VenueInfo
from gateway.core.routing.decision import PlanRequest, RouteDecision
from gateway.core.routing.survey import Survey, best_other_quote, decide, decide_none, is_better, withheld_by
from gateway.core.types import ChildSpec, OrdType, VenueKind

_DARK = VenueKind.DARK
_LIMIT, _MARKET = OrdType.LIMIT, OrdType.MARKET


def plan_directed(order: PlanRequest, survey: Survey, venues: Mapping[str, VenueInfo]) -> RouteDecision:
    dest = order.ex_destination
    assert dest is not None
    info = venues.get(dest)
    if info is None:
        return decide_none(order, survey, f"ExDestination {dest} is not a known venue")
    if not info.connected:
        return decide_none(order, survey, f"ExDestination {dest} is disconnected")
    withheld = withheld_by(order, dest)
    if withheld is not None:
        return decide_none(order, survey, f"ExDestination {dest} {withheld}")
    buy = order.side.is_buy
    price, ord_type = order.limit, order.ord_type
    reason = f"directed to {dest} by ExDestination"
    if info.kind is _DARK:
        if price is None:
            price = survey.nbbo.ask if buy else survey.nbbo.bid
        ord_type = _MARKET if price is None else _LIMIT
    else:
        better = best_other_quote(survey.lit, dest, buy)
        if better is not None and (price is None or is_better(better[1], price, buy)):
            price, ord_type = better[1], _LIMIT
            reason += f", capped at {price} so it cannot trade through {better[0]}"
    child = ChildSpec(dest, order.qty, price, ord_type, order.tif, "directed")
    return decide(order, survey, "directed", (child,), (), reason)
