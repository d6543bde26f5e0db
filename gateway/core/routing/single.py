"""The `single` strategy and FOK orders: one child on the one venue that fills the most at the best average price."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import partial

from gateway.core.market import BookSnapshot, Level, VenueInfo
from gateway.core.routing.decision import Candidate, PlanRequest, RouteDecision
from gateway.core.routing.survey import Reachable, Survey, best_other_quote, decide, decide_none, is_better
from gateway.core.routing.sweep import rows_better_than, sweep_order
from gateway.core.types import ChildSpec, OrdType, TimeInForce

_LIMIT = OrdType.LIMIT
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK


def plan_single(order: PlanRequest, survey: Survey, reachable: list[Reachable], placeable: int) -> RouteDecision:
    """One IOC child on the venue that alone fills the most, at the best average price, never past a better
    protected quote standing at another venue."""
    buy, lot = order.side.is_buy, order.lot
    best: tuple[int, Decimal, str, Decimal] | None = None  # (qty, -avg or avg cost key, venue, worst price)
    for name, _, rows, _, _ in reachable:
        other = best_other_quote(survey.lit, name, buy)
        qty, cost, worst = 0, Decimal(0), None
        for _, shown, _, price in rows:
            if other is not None and is_better(other[1], price, buy):
                break
            took = min(shown, placeable - qty)
            qty, cost, worst = qty + took, cost + took * price, price
            if qty == placeable:
                break
        qty -= qty % lot
        if qty == 0 or worst is None:
            continue
        key = cost / qty if buy else -cost / qty
        if best is None or qty > best[0] or (qty == best[0] and key < best[1]):
            best = (qty, key, name, worst)
    if best is None:
        return decide_none(order, survey, "no single venue can take a lot without trading through a better quote")
    qty, _, venue, worst = best
    child = ChildSpec(venue, qty, worst, _LIMIT, _IOC, "take")
    candidates = partial(_single_candidates, reachable, venue, worst, buy)
    return decide(
        order,
        survey,
        "take",
        (child,),
        candidates,
        f"single: take {qty} of {placeable} on {venue} alone, the venue that fills the most "
        f"at the best average price, up to {worst}",
    )


def _single_candidates(reachable: Sequence[Reachable], venue: str, worst: Decimal, buy: bool) -> tuple[Candidate, ...]:
    """Every venue's levels within the limit in sweep order, ranked where the single child takes them."""
    candidates = []
    rank = 0
    infos = {name: info for name, info, _, _, _ in reachable}
    for _, qty, name, price in sweep_order(rows_better_than(reachable, None)):
        used = name == venue and not is_better(worst, price, buy)
        if used:
            rank += 1
        info = infos[name]
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if used else None))
    return tuple(candidates)


def plan_fill_or_kill(order: PlanRequest, survey: Survey, reachable: list[Reachable], placeable: int) -> RouteDecision:
    """One FOK child on the single venue that fills it all at the best average price without trading through."""
    buy = order.side.is_buy
    best, blocked = _single_venue(order, survey.lit) if placeable == order.qty else (None, False)
    venue, worst = best or (None, None)
    candidates = partial(_fok_candidates, reachable, venue, worst, buy)
    if venue is None:
        if placeable != order.qty:
            why = f"FOK quantity {order.qty} is not a multiple of the lot {order.lot}"
        else:
            why = f"no single venue can fill {order.qty} FOK " + (
                "without trading through a better quote" if blocked else f"within limit {order.limit}"
            )
        return decide(order, survey, "none", (), candidates, why)
    child = ChildSpec(venue, order.qty, worst, _LIMIT, _FOK, "take")
    return decide(
        order,
        survey,
        "take",
        (child,),
        candidates,
        f"FOK {order.qty} on {venue} alone, the best average price, up to {worst}",
    )


def _fok_candidates(
    reachable: Sequence[Reachable], venue: str | None, worst: Decimal | None, buy: bool
) -> tuple[Candidate, ...]:
    """Every level within the limit in sweep order, ranked where the FOK child takes it."""
    candidates = []
    rank = 0
    infos = {name: info for name, info, _, _, _ in reachable}
    for _, qty, name, price in sweep_order(rows_better_than(reachable, None)):
        used = name == venue and not is_better(worst, price, buy)  # type: ignore[arg-type]
        if used:
            rank += 1
        info = infos[name]
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if used else None))
    return tuple(candidates)


def _single_venue(
    order: PlanRequest, lit: Sequence[tuple[str, VenueInfo, BookSnapshot]]
) -> tuple[tuple[str, Decimal] | None, bool]:
    """The venue that fills all of order alone at the best average price, with its worst price needed; and
    whether some venue could have but was blocked by a better quote elsewhere."""
    buy = order.side.is_buy
    best: tuple[Decimal, str, Decimal] | None = None  # (cost, venue, worst price)
    blocked = False
    for name, _, book in lit:
        fill = _fill_alone(book.asks if buy else book.bids, order.qty, order.limit, buy)
        if fill is None:
            continue
        cost, worst = fill
        other = best_other_quote(lit, name, buy)
        if other is not None and is_better(other[1], worst, buy):
            blocked = True
        elif best is None or is_better(cost, best[0], buy):  # ties keep the preferred venue (listed first)
            best = (cost, name, worst)
    return (None if best is None else (best[1], best[2])), blocked


def _fill_alone(levels: Sequence[Level], qty: int, limit: Decimal | None, buy: bool) -> tuple[Decimal, Decimal] | None:
    """(total cost, worst price) of filling qty on this one book within the limit, or None if it cannot."""
    cost = Decimal(0)
    for level in levels:
        if limit is not None and is_better(limit, level.price, buy):
            return None
        took = min(level.qty, qty)
        cost += took * level.price
        qty -= took
        if qty == 0:
            return cost, level.price
    return None
