"""Posting: nothing takeable within the limit, so the order rests on the lit venue with the best maker fee."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import partial

from gateway.core.market import BookSnapshot, VenueInfo
from gateway.core.routing.decision import Candidate, PlanRequest, RouteDecision
from gateway.core.routing.survey import Survey, decide
from gateway.core.types import ChildSpec, OrdType, TimeInForce

_LIMIT, _DAY = OrdType.LIMIT, TimeInForce.DAY


def plan_post(order: PlanRequest, survey: Survey, placeable: int) -> RouteDecision:
    """Rest the order at its limit on the lit venue paying the lowest maker fee (the best rebate)."""
    ranked = sorted(survey.lit, key=_maker_preference)
    venue, info, _ = ranked[0]
    candidates = partial(_post_candidates, ranked, order.limit, placeable)
    child = ChildSpec(venue, placeable, order.limit, _LIMIT, _DAY, "post")
    return decide(
        order,
        survey,
        "post",
        (child,),
        candidates,
        f"nothing takeable within limit {order.limit}; resting {placeable} on {venue}, "
        f"lowest maker fee {info.maker_fee}",
    )


def _maker_preference(venue: tuple[str, VenueInfo, BookSnapshot]) -> tuple[Decimal, int, str]:
    return venue[1].maker_fee, venue[1].latency_us, venue[0]


def _post_candidates(
    ranked: Sequence[tuple[str, VenueInfo, BookSnapshot]], limit: Decimal | None, placeable: int
) -> tuple[Candidate, ...]:
    return tuple(
        Candidate(name, limit, placeable if i == 0 else 0, info.maker_fee, info.latency_us, 1 if i == 0 else None)
        for i, (name, info, _) in enumerate(ranked)
    )
