"""The best-price sweep (the `sweep` strategy, and the shared machinery the others plan over): whole price tiers
best first, the marginal tier split by venue preference, in lots."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from operator import itemgetter

from gateway.core.market import PriceKey, Row
from gateway.core.routing.decision import Candidate, PlanRequest, RouteDecision
from gateway.core.routing.liquidity import split_pro_rata
from gateway.core.routing.survey import Reachable, Survey, decide
from gateway.core.routing.trade_through import furthest_price, trades_through
from gateway.core.types import ChildSpec, OrdType, Side, Strategy, TimeInForce

_LIMIT, _IOC = OrdType.LIMIT, TimeInForce.IOC
_LIQUIDITY = Strategy.LIQUIDITY
_MICRO = Decimal("0.000001")
# A far-side level a take could hit is its BookSnapshot Row: (key, displayed qty, venue, price), the keys
# ascending from the best price on both sides.
_key = itemgetter(0)
_qty = itemgetter(1)
_venue = itemgetter(2)


def take(
    order: PlanRequest,
    survey: Survey,
    reachable: list[Reachable],
    placeable: int,
    penalties: Mapping[str, int] | None,
) -> RouteDecision:
    """Take up to placeable, whole price tiers best first; the marginal tier goes in venue order (taker
    preference, or all-in cost under `cost`), or pro rata to displayed size under `liquidity`."""
    return sweep_decision(
        order, survey, reachable, placeable, penalties, *sweep_takes(order, reachable, placeable, penalties)
    )


def sweep_takes(
    order: PlanRequest, reachable: list[Reachable], placeable: int, penalties: Mapping[str, int] | None
) -> tuple[dict[str, list], str]:
    """take's venue -> [qty, worst price], in the order first taken, and how its marginal tier was split."""
    lot = order.lot
    pro_rata = order.strategy is _LIQUIDITY
    per_venue = everything_takes(reachable, placeable, lot)
    how = "all-in cost" if penalties is not None else "taker preference"
    if per_venue is None:
        entries = _reach(reachable, placeable, lot)
        takes = _allocate(entries, placeable, lot)
        if pro_rata:
            if lot == 1:
                takes = split_pro_rata(entries, takes)
                how = "pro rata to displayed size"
            else:
                how = "taker preference (pro rata needs a lot of 1)"
        per_venue = venue_totals(entries, takes)
    elif pro_rata:
        how = "pro rata to displayed size" if lot == 1 else "taker preference (pro rata needs a lot of 1)"
    return per_venue, how


def sweep_decision(
    order: PlanRequest,
    survey: Survey,
    reachable: list[Reachable],
    placeable: int,
    penalties: Mapping[str, int] | None,
    per_venue: Mapping[str, list],
    how: str,
) -> RouteDecision:
    """take's decision for the takes sweep_takes found."""
    buy, lot = order.side.is_buy, order.lot
    candidates = partial(_swept_candidates, reachable, placeable, lot, buy, penalties, order.strategy is _LIQUIDITY)
    if not per_venue:
        return decide(order, survey, "none", (), candidates, f"no venue shows a lot of {order.lot} within the limit")
    children = [ChildSpec(name, qty, price, _LIMIT, _IOC, "take") for name, (qty, price) in per_venue.items()]
    total = sum([qty for qty, _ in per_venue.values()])
    worst = furthest_price(children, buy)
    reason = (
        f"{order.strategy.value}: take {total} of {placeable} across {len(children)} venue(s) best price "
        f"first, up to {worst}, the marginal price by {how}"
    )
    if total < placeable:
        reason += "; that is all the lit liquidity takeable now"
    if lot > 1 and _odd_lots_passed(children, order.side, survey):
        reason += (
            f"; odd lots (under {lot} shares) left at better prices are not protected quotes, so the "
            f"no-trade-through rule applies to round lots"
        )
    return decide(order, survey, "take", children, candidates, reason)


def _odd_lots_passed(children: Sequence[ChildSpec], side: Side, survey: Survey) -> bool:
    """Do these children leave shares standing at a better protected price (odd lots, as they are allowed to)?"""
    infos = {name: info for name, info, _ in survey.lit}
    return trades_through(children, side, infos, survey.guarded, 1)


def _reach(reachable: Sequence[Reachable], qty: int, lot: int = 1) -> list[Row]:
    """The levels a sweep of qty in lots can consider, in sweep order: all of them, or a complete price prefix
    (every level strictly better than some price) whose depth, each venue's rounded down to lots, exceeds qty
    (it does once it shows more than qty plus an odd lot per venue).

    A sweep stops within the first price tier that gets it past qty, so it never looks beyond such a
    prefix; small orders on deep books then sort a few levels, not all of them. The prefix is searched
    for in each book's first `depth` levels, `depth` growing with how far short the books fell so far.
    """
    depth = 1
    enough = qty + (lot - 1) * len(reachable)
    while True:
        frontier = _frontier(reachable, depth)
        entries = rows_better_than(reachable, frontier)
        shown = sum(map(_qty, entries))
        if frontier is None or shown > enough:
            return sweep_order(entries)
        depth *= enough // max(shown, 1) + 1  # at least doubles: shown <= enough here


def _frontier(reachable: Sequence[Reachable], depth: int) -> PriceKey | None:
    """The key of the best price below the first `depth` levels of any book; None if no book is deeper.

    Books are best first, so every level strictly better than it lies within those first levels.
    """
    frontier = None
    for _, _, rows, _, _ in reachable:
        if len(rows) > depth:
            key = rows[depth][0]
            if frontier is None or key < frontier:
                frontier = key
    return frontier


def rows_better_than(reachable: Sequence[Reachable], frontier: PriceKey | None) -> list[Row]:
    """Every level strictly better than frontier (all of them if None), venue by venue."""
    entries: list[Row] = []
    for _, _, rows, _, _ in reachable:
        entries += rows if frontier is None else rows[: bisect_left(rows, frontier, key=_key)]
    return entries


def sweep_order(entries: list[Row]) -> list[Row]:
    entries.sort(key=_key)  # stable: venue preference breaks price ties
    return entries


def _allocate(entries: Sequence[Row], qty: int, lot: int) -> list[int]:
    """How much to take from each entry (same order; the list stops after the last entry considered).

    Whole price tiers are taken best first, each venue's depth rounded down to a lot multiple; the marginal
    tier is the first whose better tiers, so taken, fit in qty but which does not fit whole itself. Inside it a
    venue first rounds up to a lot where it can (taking its odd lot at a better price), then the rest goes in
    venue preference order. An odd lot left standing at a better price is not a protected quote (see
    trade_through_violations), so it never stops the sweep.
    """
    if lot == 1:
        return _greedy(entries, qty)
    venue_of = {name: i for i, name in enumerate(dict.fromkeys(map(_venue, entries)))}
    ids = list(map(venue_of.__getitem__, map(_venue, entries)))  # venue numbers: lists, not dicts
    keys, qtys = list(map(_key, entries)), list(map(_qty, entries))
    venues = len(venue_of)
    depth = [0] * venues  # per venue: displayed qty in the tiers walked so far
    floors = 0  # the sum of those depths, each rounded down to a lot multiple
    start = 0
    tier = None
    n = considered = len(entries)
    for i in range(n):
        key = keys[i]
        if key != tier:
            if floors > qty:  # taking every tier so far whole, in lots, is more than qty
                considered = i
                break
            start, tier = i, key
        venue = ids[i]
        was = depth[venue]
        depth[venue] = after = was + qtys[i]
        floors += after - after % lot - (was - was % lot)
    return _fill(qtys, ids, venues, (start, considered), qty, lot)


def _greedy(entries: Sequence[Row], qty: int) -> list[int]:
    """The lot-1 case of _allocate: take levels in order until qty is done; consider the rest of that price."""
    takes: list[int] = []
    left = qty
    marginal = None
    for key, level_qty, _, _ in entries:
        if left == 0 and key != marginal:
            break
        took = level_qty if level_qty < left else left
        if took:
            marginal = key
            left -= took
        takes.append(took)
    return takes


def _fill(
    qtys: Sequence[int], ids: Sequence[int], venues: int, marginal: tuple[int, int], qty: int, lot: int
) -> list[int]:
    """The takes from entries showing qtys (their venue numbers ids) with entries[start:end] (marginal) as the
    marginal tier."""
    start, end = marginal
    shown = [0] * venues  # per venue: displayed depth before the marginal tier
    for venue, level_qty in zip(ids, qtys[:start]):
        shown[venue] += level_qty
    reach = list(shown)  # per venue: displayed depth through the marginal tier
    for i in range(start, end):
        reach[ids[i]] += qtys[i]
    want = venue_totals_through(shown, reach, range(start, end), ids, qty, lot)
    takes: list[int] = []
    append = takes.append
    for venue, level_qty in zip(ids, qtys[:end]):  # every venue's total lies within its levels up to the marginal tier
        took = want[venue]
        if took:
            if level_qty < took:
                took = level_qty
            want[venue] -= took
        append(took)
    return takes


def venue_totals_through(
    before: Sequence[int], reach: Sequence[int], tier: Iterable[int], ids: Sequence[int], qty: int, lot: int
) -> list[int]:
    """Per venue, what a sweep of qty takes when the rows numbered tier (in the order to fill them) are its
    marginal tier: every venue's depth before it (before) rounded down to lots, then in the tier first a lot
    for each venue rounding up an odd lot shown at a better price, then each venue's depth through it (reach)
    rounded down, in tier order, while qty lasts."""
    want = [depth - depth % lot for depth in before]
    left = qty - sum(want)
    left -= left % lot
    if lot > 1:
        for i in tier:  # round up first: a venue's odd lot at a better price is cheaper than this tier
            venue = ids[i]
            have = want[venue]
            if left and have < before[venue] and reach[venue] - reach[venue] % lot > have:
                want[venue] = have + lot
                left -= lot
    for i in tier:
        venue = ids[i]
        have = want[venue]
        add = min(reach[venue] - reach[venue] % lot - have, left)
        if add > 0:
            want[venue] = have + add
            left -= add
    return want


def everything_takes(reachable: Sequence[Reachable], qty: int, lot: int) -> dict[str, list] | None:
    """venue_totals for a sweep of qty that takes every round lot it can reach (each venue's depth rounded down
    to a lot multiple), found book by book with no sort; None if those show more than qty (then the sweep stops
    somewhere inside them)."""
    taken = 0
    for _, _, rows, depths, _ in reachable:
        depth = depths[len(rows) - 1]
        taken += depth - depth % lot
        if taken > qty:
            return None
    firsts: list[tuple[PriceKey, str, list]] = []  # (key of the best price shown, venue, [qty, worst price])
    for name, _, rows, depths, _ in reachable:
        depth = depths[len(rows) - 1]
        total = depth - depth % lot
        if total:  # a snapshot's rows all show shares: the first is the best price taken
            last = rows[-1] if total == depth else rows[bisect_left(depths, total, 0, len(rows))]
            firsts.append((rows[0][0], name, [total, last[3]]))
    firsts.sort(key=_key)  # stable: the order the sweep first reaches each venue
    return {name: child for _, name, child in firsts}


def penalty_price(key: int) -> Decimal:
    """A cost penalty in price key units (a multiple of 0.000001) as a price, to 0.000001."""
    return Decimal(key).scaleb(-8).quantize(_MICRO)


def venue_totals(entries: Sequence[Row], takes: Sequence[int]) -> dict[str, list]:
    """Venue -> [qty, worst price] of what the takes (entries in sweep order) take, in the order first taken."""
    per_venue: dict[str, list] = {}
    for (_, _, name, price), took in zip(entries, takes):
        if took:
            child = per_venue.get(name)
            if child is None:
                per_venue[name] = [took, price]
            else:
                child[0] += took
                child[1] = price
    return per_venue


def _swept_candidates(
    reachable: Sequence[Reachable],
    qty: int,
    lot: int,
    buy: bool,
    penalties: Mapping[str, int] | None,
    pro_rata: bool,
) -> tuple[Candidate, ...]:
    """The levels the sweep considered, in sweep order, ranked in the order taken."""
    entries = _reach(reachable, qty, lot)
    takes = _allocate(entries, qty, lot)
    if pro_rata and lot == 1:
        takes = split_pro_rata(entries, takes)
    return taken_candidates(entries, takes, reachable, buy, penalties)


def taken_candidates(
    entries: Sequence[Row],
    takes: Sequence[int],
    reachable: Sequence[Reachable],
    buy: bool,
    penalties: Mapping[str, int] | None = None,
) -> tuple[Candidate, ...]:
    """The entries a sweep considered (takes is as long as that), ranked in the order taken; scored with
    their all-in price per share (price plus costs for a buy, less them for a sell) where penalties are known."""
    infos = {name: info for name, info, _, _, _ in reachable}
    candidates = []
    rank = 0
    for (_, qty, name, price), took in zip(entries, takes):
        if took:
            rank += 1
        info = infos[name]
        score = None if penalties is None else price + penalty_price(penalties[name]) * (1 if buy else -1)
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if took else None, score))
    return tuple(candidates)
