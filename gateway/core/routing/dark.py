"""The `dark` strategy's dark phase: midpoint children resting in or probing dark pools before the lit market."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial

from gateway.analytics.dark_allocation import DarkAllocator
from gateway.analytics.learning import VenueLearning
from gateway.core.market import Nbbo, VenueInfo
from gateway.core.routing.decision import Candidate, Exclusion, PlanRequest, RouteDecision
from gateway.core.routing.policy import RoutingPolicy
from gateway.core.routing.survey import Survey, decide
from gateway.core.types import ChildSpec, OrdType, TimeInForce, Urgency

_LIMIT = OrdType.LIMIT
_DAY, _IOC, _FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK


def dark_applies(order: PlanRequest, nbbo: Nbbo) -> bool:
    if order.urgency is Urgency.HIGH or (order.dark_done and not order.dark_again) or order.tif is _FOK:
        return False
    mid = nbbo.mid
    if mid is None:
        return False
    return order.limit is None or (mid <= order.limit if order.side.is_buy else mid >= order.limit)


def plan_dark(
    order: PlanRequest, survey: Survey, placeable: int, policy: RoutingPolicy, stats: VenueLearning | None
) -> RouteDecision | None:
    """Dark pools first: low urgency rests Day orders at the midpoint, sized by each pool's estimated fill (no
    share past where it falls under policy.dark_min_fill), and offers the rest again to pools that filled all
    they were sent; medium sends IOC probes of at most policy.probe_qty to the likeliest pools. None if no pool
    can take it."""
    resting = order.urgency is Urgency.LOW
    qty = placeable if resting else max(order.lot, min(placeable, policy.probe_qty - policy.probe_qty % order.lot))
    again = order.dark_again if order.dark_done else None
    eligible = []
    for name, info in survey.dark:
        if again is not None and name not in again:
            continue
        if info.min_qty <= qty:
            eligible.append((name, info))
        else:
            survey.exclusions.append(Exclusion(name, f"dark pool minimum {info.min_qty} > {qty}"))
    if not eligible:
        return None
    shares, how = _dark_shares(
        qty, order.lot, eligible, stats.dark if stats else None, policy.dark_min_fill if resting else 0.0
    )
    if not shares:
        return None
    price = order.limit
    if price is None:
        price = survey.nbbo.ask if order.side.is_buy else survey.nbbo.bid
    tif = _DAY if resting else _IOC
    children = [ChildSpec(name, shares[name], price, _LIMIT, tif, "dark") for name, _ in eligible if name in shares]
    children.sort(key=lambda child: -child.qty)  # stable: the largest share first, then venue preference
    candidates = partial(_dark_candidates, eligible, shares, price, stats.dark if stats else None)
    placed = sum(shares.values())
    if again is not None:
        reason = (
            f"dark again at LOW urgency: resting {placed} of {placeable} at the midpoint in "
            f"{len(children)} pool(s) that filled all they were sent, up to {price} until the dark time is "
            f"up, {how}"
        )
    elif resting:
        reason = (
            f"dark first at LOW urgency: resting {placed} of {placeable} at the midpoint in "
            f"{len(children)} pool(s) up to {price} for {policy.dark_timeout_ns // 1_000_000} ms, {how}"
        )
    else:
        reason = (
            f"dark first at MEDIUM urgency: IOC probes for {placed} of {placeable} in "
            f"{len(children)} pool(s) at {price}, {how}"
        )
    return decide(order, survey, "dark", children, candidates, reason)


def _dark_shares(
    qty: int, lot: int, eligible: Sequence[tuple[str, VenueInfo]], allocator: DarkAllocator | None, min_fill: float
) -> tuple[dict[str, int], str]:
    """Pool -> shares for qty, and how they were chosen: by the allocator's estimated marginal fill
    probabilities where it can allocate in lots (no unit under min_fill), else evenly in lots (pools dropped
    for their minimums)."""
    minimums = {name: info.min_qty for name, info in eligible}
    if allocator is not None and allocator.unit % lot == 0 and qty >= allocator.unit:
        shares = allocator.allocate(qty, list(minimums), minimums, min_fill)
        if shares or min_fill:  # with a floor, no share means every pool was learnt to fill too rarely
            how = "sized by estimated fill probability"
            if min_fill and sum(shares.values()) < qty - qty % allocator.unit:
                how += (
                    f", no pool past where a further {allocator.unit} shares would fill under {min_fill:.0%} "
                    "of the time"
                )
            return shares, how
    even = _split(qty, lot, list(minimums.values()))
    dropped = len(eligible) - len(even)
    return (
        {name: share for (name, _), share in zip(eligible, even)},
        "split evenly" + (f", {dropped} pool(s) dropped for their minimum size" if dropped else ""),
    )


def _dark_candidates(
    eligible: Sequence[tuple[str, VenueInfo]],
    shares: Mapping[str, int],
    price: Decimal | None,
    allocator: DarkAllocator | None,
) -> tuple[Candidate, ...]:
    """Every eligible pool with its share, ranked largest share first; score: its estimated fill probability
    for one more allocation unit (None without an allocator)."""
    ranked = sorted((name for name, _ in eligible if name in shares), key=lambda name: -shares[name])
    rank = {name: i + 1 for i, name in enumerate(ranked)}
    return tuple(
        Candidate(
            name,
            price,
            shares.get(name, 0),
            info.taker_fee,
            info.latency_us,
            rank.get(name),
            None if allocator is None else _fill_estimate(allocator, name, shares.get(name, 0)),
        )
        for name, info in eligible
    )


def _fill_estimate(allocator: DarkAllocator, pool: str, shares: int) -> Decimal:
    """The expected share of `shares` this pool fills, E[min(v, S)] / v, from its estimated tail."""
    tail = allocator.tail(pool)
    units = shares // allocator.unit
    if units == 0:
        return Decimal(0)
    expected = sum(tail[min(k, len(tail) - 1)] for k in range(1, units + 1)) / units
    return Decimal(f"{expected:.4f}")


def _split(qty: int, lot: int, min_qtys: Sequence[int]) -> list[int]:
    """Shares of qty (a lot multiple) for the first n pools, n as large as lets every pool meet its minimum."""
    lots = qty // lot
    for n in range(min(len(min_qtys), lots), 1, -1):
        each, extra = divmod(lots, n)
        shares = [(each + (i < extra)) * lot for i in range(n)]
        if all(share >= minimum for share, minimum in zip(shares, min_qtys)):
            return shares
    return [qty]
