"""The router's pure core: one parent order and the market in, child orders and the reasons for them out."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from operator import itemgetter

from gateway.core.market import BookSnapshot, Level, MarketView, Nbbo, VenueInfo
from gateway.core.types import ChildSpec, OrdType, Side, TimeInForce, Urgency, VenueKind

DISCONNECTED = "disconnected"
REJECTED = "rejected this order"


@dataclass(frozen=True, slots=True)
class PlanRequest:
    order_id: str
    symbol: str
    side: Side
    qty: int  # quantity to place now (the parent's unplaced remainder), > 0
    ord_type: OrdType
    limit: Decimal | None  # None for MARKET
    tif: TimeInForce
    urgency: Urgency
    ex_destination: str | None = None
    dark_done: bool = False  # the dark phase was already tried for this parent
    excluded: frozenset[str] = frozenset()  # venues this parent must not use (they rejected it)
    lot: int = 1  # child quantities are multiples of lot, except a directed order


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    dark_first: frozenset[Urgency] = frozenset({Urgency.LOW, Urgency.MEDIUM})  # urgencies that try dark first


@dataclass(frozen=True, slots=True)
class Candidate:
    """One lit price level or dark pool the router considered; rank is the order taken (None: not used)."""

    venue: str
    price: Decimal | None
    qty: int
    fee: Decimal
    latency_us: int
    rank: int | None


@dataclass(frozen=True, slots=True)
class Exclusion:
    venue: str
    reason: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    order_id: str
    phase: str  # "directed", "dark", "take", "post" or "none"
    children: tuple[ChildSpec, ...]
    candidates: tuple[Candidate, ...]
    exclusions: tuple[Exclusion, ...]
    nbbo: Nbbo
    reason: str  # one human sentence: why these children (or why none)


# A far-side level a take could hit: (price, displayed qty, venue name, venue info).
_Entry = tuple[Decimal, int, str, VenueInfo]
_price = itemgetter(0)


@dataclass(slots=True)
class _Survey:
    """The venues this order may use now, and why the others may not."""

    lit: list[tuple[str, VenueInfo, BookSnapshot]]  # taker preference: fee, latency, name
    dark: list[tuple[str, VenueInfo]]  # same order
    exclusions: list[Exclusion]
    nbbo: Nbbo


def plan(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo],
         policy: RoutingPolicy) -> RouteDecision:
    """Decide the children for `order`: directed, else dark first, else take, else post, else none."""
    survey = _survey(order, market, venues)
    if order.ex_destination is not None:
        decision = _directed(order, survey, venues)
    else:
        decision = _route(order, survey, policy)
    violations = trade_through_violations(decision, order.side, order.symbol, market, venues)
    if violations:
        raise AssertionError(f"router bug, plan for {order.order_id} trades through: {'; '.join(violations)}")
    return decision


def trade_through_violations(decision: RouteDecision, side: Side, symbol: str, market: MarketView,
                             venues: Mapping[str, VenueInfo]) -> list[str]:
    """Lit children priced through a better protected quote this decision leaves standing at another venue.

    Routable venues are connected ones the order has not been rejected by; a child never trades through
    its own venue's book (the venue fills it best price first); MARKET children count as the worst price.
    """
    buy = side.is_buy
    lit = [c for c in decision.children if c.venue not in venues or venues[c.venue].kind is VenueKind.LIT]
    if not lit:
        return []
    furthest = _furthest(lit, buy)
    by_venue: dict[str, list[ChildSpec]] = {}
    for child in lit:
        by_venue.setdefault(child.venue, []).append(child)
    rejected = {e.venue for e in decision.exclusions if e.reason == REJECTED}
    violations = []
    for name, info in venues.items():
        if info.kind is not VenueKind.LIT or not info.protected or not info.connected or name in rejected:
            continue
        book = market.book(name, symbol)
        levels = () if book is None else book.asks if buy else book.bids
        if not levels or (furthest is not None and not _better(levels[0].price, furthest, buy)):
            continue  # nothing this venue shows is better than any child's price
        standing = _first_untaken(levels, by_venue.get(name, ()), buy)
        if standing is None or (furthest is not None and not _better(standing, furthest, buy)):
            continue
        for child in lit:
            if child.venue != name and (child.price is None or _better(standing, child.price, buy)):
                shown = "MARKET" if child.price is None else child.price
                violations.append(f"{side.name} {child.qty} at {shown} on {child.venue} "
                                  f"leaves {name}'s better {standing} standing")
    return sorted(violations)


def _furthest(children: Sequence[ChildSpec], buy: bool) -> Decimal | None:
    """The furthest price these children reach into the book; None if one is a MARKET order."""
    prices = [c.price for c in children]
    if None in prices:
        return None
    return max(prices) if buy else min(prices)


def _first_untaken(levels: Sequence[Level], children: Sequence[ChildSpec], buy: bool) -> Decimal | None:
    """The best price on this side of a book that `children` (all at this venue) do not take entirely."""
    if not children:
        return levels[0].price if levels else None
    qty = sum(c.qty for c in children)
    reach = _furthest(children, buy)
    for level in levels:
        if level.qty > qty or (reach is not None and _better(reach, level.price, buy)):
            return level.price
        qty -= level.qty
    return None


def _survey(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo]) -> _Survey:
    lit: list[tuple[str, VenueInfo, BookSnapshot]] = []
    dark: list[tuple[str, VenueInfo]] = []
    exclusions: list[Exclusion] = []
    for name in sorted(venues):
        info = venues[name]
        if not info.connected:
            exclusions.append(Exclusion(name, DISCONNECTED))
        elif name in order.excluded:
            exclusions.append(Exclusion(name, REJECTED))
        elif info.kind is VenueKind.DARK:
            dark.append((name, info))
        else:
            book = market.book(name, order.symbol)
            if book is None:
                exclusions.append(Exclusion(name, f"no quote for {order.symbol}"))
            else:
                lit.append((name, info, book))
    # Stable sorts: names are already in order, so they break the remaining ties.
    lit.sort(key=lambda v: (v[1].taker_fee, v[1].latency_us))
    dark.sort(key=lambda v: (v[1].taker_fee, v[1].latency_us))
    return _Survey(lit, dark, exclusions, market.nbbo(order.symbol, venues))


def _decision(order: PlanRequest, survey: _Survey, phase: str, children: Sequence[ChildSpec],
              candidates: Sequence[Candidate], reason: str) -> RouteDecision:
    return RouteDecision(order.order_id, phase, tuple(children), tuple(candidates), tuple(survey.exclusions),
                         survey.nbbo, reason)


def _none(order: PlanRequest, survey: _Survey, reason: str) -> RouteDecision:
    return _decision(order, survey, "none", (), (), reason)


def _better(a: Decimal, b: Decimal, buy: bool) -> bool:
    """Is price a strictly better than b for the taker of this side?"""
    return a < b if buy else a > b


# --- directed ----------------------------------------------------------------------------------------


def _directed(order: PlanRequest, survey: _Survey, venues: Mapping[str, VenueInfo]) -> RouteDecision:
    dest = order.ex_destination
    assert dest is not None
    info = venues.get(dest)
    if info is None:
        return _none(order, survey, f"ExDestination {dest} is not a known venue")
    if not info.connected:
        return _none(order, survey, f"ExDestination {dest} is disconnected")
    if dest in order.excluded:
        return _none(order, survey, f"ExDestination {dest} rejected this order")
    buy = order.side.is_buy
    price, ord_type = order.limit, order.ord_type
    reason = f"directed to {dest} by ExDestination"
    if info.kind is VenueKind.DARK:
        if price is None:
            price = survey.nbbo.ask if buy else survey.nbbo.bid
        ord_type = OrdType.MARKET if price is None else OrdType.LIMIT
    else:
        better = _best_other_quote(survey.lit, dest, buy)
        if better is not None and (price is None or _better(better[1], price, buy)):
            price, ord_type = better[1], OrdType.LIMIT
            reason += f", capped at {price} so it cannot trade through {better[0]}"
    child = ChildSpec(dest, order.qty, price, ord_type, order.tif, "directed")
    return _decision(order, survey, "directed", (child,), (), reason)


def _best_other_quote(lit: Sequence[tuple[str, VenueInfo, BookSnapshot]], dest: str,
                      buy: bool) -> tuple[str, Decimal] | None:
    """The best protected far-side quote at a usable lit venue other than `dest`: (venue, price)."""
    best: tuple[str, Decimal] | None = None
    for name, info, book in lit:
        top = book.best_ask if buy else book.best_bid
        if name == dest or not info.protected or top is None:
            continue
        if best is None or _better(top.price, best[1], buy):
            best = (name, top.price)
    return best


# --- dark, take, post --------------------------------------------------------------------------------


def _route(order: PlanRequest, survey: _Survey, policy: RoutingPolicy) -> RouteDecision:
    if not survey.lit and not survey.dark:
        everything_down = all(e.reason == DISCONNECTED for e in survey.exclusions)
        return _none(order, survey, "no venue connected" if everything_down else "no usable venue")
    placeable = order.qty - order.qty % order.lot
    if placeable == 0:
        return _none(order, survey, f"{order.qty} is less than one lot of {order.lot}")
    if _dark_applies(order, survey.nbbo, policy):
        decision = _dark(order, survey, placeable)
        if decision is not None:
            return decision
    entries = _far_side(order, survey.lit)
    if not entries:
        if order.ord_type is OrdType.LIMIT and order.tif is TimeInForce.DAY and survey.lit:
            return _post(order, survey, placeable)
        return _none(order, survey, _nothing_to_take(order))
    if order.tif is TimeInForce.FOK:
        return _fill_or_kill(order, survey, entries, placeable)
    return _take(order, survey, entries, placeable)


def _nothing_to_take(order: PlanRequest) -> str:
    if order.limit is None:
        return f"no lit liquidity for {order.symbol}"
    if order.tif is TimeInForce.DAY:
        return "no lit venue to rest on"
    return f"no lit liquidity within limit {order.limit} and {order.tif.name}"


def _dark_applies(order: PlanRequest, nbbo: Nbbo, policy: RoutingPolicy) -> bool:
    if order.urgency not in policy.dark_first or order.dark_done or order.tif is TimeInForce.FOK:
        return False
    mid = nbbo.mid
    if mid is None:
        return False
    return order.limit is None or (mid <= order.limit if order.side.is_buy else mid >= order.limit)


def _dark(order: PlanRequest, survey: _Survey, placeable: int) -> RouteDecision | None:
    """IOC children across the dark pools that can take this size; None (with exclusions noted) if none can."""
    eligible = []
    for name, info in survey.dark:
        if info.min_qty <= placeable:
            eligible.append((name, info))
        else:
            survey.exclusions.append(Exclusion(name, f"dark pool minimum {info.min_qty} > {placeable}"))
    if not eligible:
        return None
    shares = _split(placeable, order.lot, [info.min_qty for _, info in eligible])
    price = order.limit
    if price is None:
        price = survey.nbbo.ask if order.side.is_buy else survey.nbbo.bid
    children = [ChildSpec(name, qty, price, OrdType.LIMIT, TimeInForce.IOC, "dark")
                for (name, _), qty in zip(eligible, shares)]
    candidates = [Candidate(name, price, shares[i] if i < len(shares) else 0, info.taker_fee, info.latency_us,
                            i + 1 if i < len(shares) else None)
                  for i, (name, info) in enumerate(eligible)]
    dropped = len(eligible) - len(shares)
    reason = (f"dark first at {order.urgency.name} urgency: {placeable} split across {len(shares)} "
              f"pool(s) at {price}" + (f", {dropped} pool(s) dropped for their minimum size" if dropped else ""))
    return _decision(order, survey, "dark", children, candidates, reason)


def _split(qty: int, lot: int, min_qtys: Sequence[int]) -> list[int]:
    """Shares of qty (a lot multiple) for the first n pools, n as large as lets every pool meet its minimum."""
    lots = qty // lot
    for n in range(min(len(min_qtys), lots), 1, -1):
        each, extra = divmod(lots, n)
        shares = [(each + (i < extra)) * lot for i in range(n)]
        if all(share >= minimum for share, minimum in zip(shares, min_qtys)):
            return shares
    return [qty]


def _far_side(order: PlanRequest, lit: Sequence[tuple[str, VenueInfo, BookSnapshot]]) -> list[_Entry]:
    """Every far-side level within the limit: best price first, then lower taker fee, latency, name."""
    buy = order.side.is_buy
    limit = order.limit
    entries: list[_Entry] = []
    for name, info, book in lit:
        for level in book.asks if buy else book.bids:
            if limit is not None and (level.price > limit if buy else level.price < limit):
                break
            entries.append((level.price, level.qty, name, info))
    entries.sort(key=_price, reverse=not buy)  # stable, even reversed: venue preference breaks price ties
    return entries


def _take(order: PlanRequest, survey: _Survey, entries: list[_Entry], placeable: int) -> RouteDecision:
    takes = _allocate(entries, placeable, order.lot)
    per_venue: dict[str, list] = {}  # venue -> [qty, worst price], in the order first taken
    candidates = []
    rank = 0
    worst = None
    for (price, qty, name, info), took in zip(entries, takes):
        if took:
            rank += 1
            worst = price
            child = per_venue.get(name)
            if child is None:
                per_venue[name] = [took, price]
            else:
                child[0] += took
                child[1] = price
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if took else None))
    if not per_venue:
        return _decision(order, survey, "none", (), candidates,
                         f"no lot of {order.lot} can be taken without leaving a better odd lot standing")
    children = [ChildSpec(name, qty, price, OrdType.LIMIT, TimeInForce.IOC, "take")
                for name, (qty, price) in per_venue.items()]
    total = sum(c.qty for c in children)
    reason = f"take {total} of {placeable} across {len(children)} venue(s) best price first, up to {worst}"
    if total < placeable:
        reason += "; that is all the lit liquidity takeable now"
    return _decision(order, survey, "take", children, candidates, reason)


def _allocate(entries: Sequence[_Entry], qty: int, lot: int) -> list[int]:
    """How much to take from each entry (same order; the list stops after the last entry considered).

    Whole price tiers are taken best first; the marginal tier is shared in venue preference order. Each
    venue's total is a lot multiple, and no venue is left with an untaken level strictly better than the
    marginal price (that would be a trade-through), so a venue whose depth so far is not a lot multiple
    must round up inside the marginal tier; a tier where one cannot is not a valid marginal tier.
    """
    if lot == 1:
        return _greedy(entries, qty)
    depth: dict[str, int] = {}  # per venue: displayed qty in the tiers before the current one
    ragged: set[str] = set()  # venues whose depth is not a lot multiple
    base = 0  # sum of depth rounded up to lots: what taking all earlier tiers whole costs
    chosen = (0, 0)
    start, n = 0, len(entries)
    while start < n and base <= qty:
        end = start + 1
        while end < n and entries[end][0] == entries[start][0]:
            end += 1
        if not ragged or _rounds_up(entries, start, end, depth, ragged, lot):
            chosen = (start, end)
        for _, level_qty, name, _ in islice(entries, start, end):
            before = depth.get(name, 0)
            depth[name] = after = before + level_qty
            base += _ceil(after, lot) - _ceil(before, lot)
            if after % lot:
                ragged.add(name)
            else:
                ragged.discard(name)
        start = end
    return _fill(entries, chosen, qty, lot, start)


def _greedy(entries: Sequence[_Entry], qty: int) -> list[int]:
    """The lot-1 case of _allocate: take levels in order until qty is done; consider the rest of that price."""
    takes = []
    left = qty
    marginal = None
    for price, level_qty, _, _ in entries:
        if left == 0 and price != marginal:
            break
        took = min(level_qty, left)
        if took:
            marginal = price
            left -= took
        takes.append(took)
    return takes


def _ceil(qty: int, lot: int) -> int:
    return -(-qty // lot) * lot


def _rounds_up(entries: Sequence[_Entry], start: int, end: int, depth: dict[str, int], ragged: set[str],
               lot: int) -> bool:
    """Can every ragged venue reach its next lot multiple within the tier entries[start:end]?"""
    short = {name: _ceil(depth[name], lot) - depth[name] for name in ragged}
    for _, level_qty, name, _ in islice(entries, start, end):
        if name in short:
            short[name] -= level_qty
    return all(missing <= 0 for missing in short.values())


def _fill(entries: Sequence[_Entry], chosen: tuple[int, int], qty: int, lot: int, considered: int) -> list[int]:
    start, end = chosen
    want: dict[str, int] = {}  # per venue: total to take
    for _, level_qty, name, _ in islice(entries, start):
        want[name] = want.get(name, 0) + level_qty
    reach = dict(want)  # per venue: displayed depth through the current entry of the marginal tier
    for name, shown in want.items():
        want[name] = _ceil(shown, lot)
    left = qty - sum(want.values())
    for _, level_qty, name, _ in islice(entries, start, end):
        reach[name] = shown = reach.get(name, 0) + level_qty
        have = want.get(name, 0)
        add = min(shown - shown % lot - have, left - left % lot)
        if add > 0:
            want[name] = have + add
            left -= add
    takes = []
    for _, level_qty, name, _ in islice(entries, considered):
        took = min(level_qty, want.get(name, 0))
        if took:
            want[name] -= took
        takes.append(took)
    return takes


def _fill_or_kill(order: PlanRequest, survey: _Survey, entries: list[_Entry], placeable: int) -> RouteDecision:
    """One FOK child on the single venue that fills it all at the best average price without trading through."""
    buy = order.side.is_buy
    best, blocked = _single_venue(order, survey.lit) if placeable == order.qty else (None, False)
    venue, worst = best or (None, None)
    candidates = []
    rank = 0
    for price, qty, name, info in entries:
        used = name == venue and not _better(worst, price, buy)
        if used:
            rank += 1
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if used else None))
    if venue is None:
        if placeable != order.qty:
            why = f"FOK quantity {order.qty} is not a multiple of the lot {order.lot}"
        else:
            why = f"no single venue can fill {order.qty} FOK " + (
                "without trading through a better quote" if blocked else f"within limit {order.limit}")
        return _decision(order, survey, "none", (), candidates, why)
    child = ChildSpec(venue, order.qty, worst, OrdType.LIMIT, TimeInForce.FOK, "take")
    return _decision(order, survey, "take", (child,), candidates,
                     f"FOK {order.qty} on {venue} alone, the best average price, up to {worst}")


def _single_venue(order: PlanRequest, lit: Sequence[tuple[str, VenueInfo, BookSnapshot]]
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
        other = _best_other_quote(lit, name, buy)
        if other is not None and _better(other[1], worst, buy):
            blocked = True
        elif best is None or _better(cost, best[0], buy):  # ties keep the preferred venue (listed first)
            best = (cost, name, worst)
    return (None if best is None else (best[1], best[2])), blocked


def _fill_alone(levels: Sequence[Level], qty: int, limit: Decimal | None,
                buy: bool) -> tuple[Decimal, Decimal] | None:
    """(total cost, worst price) of filling qty on this one book within the limit, or None if it cannot."""
    cost = Decimal(0)
    for level in levels:
        if limit is not None and _better(limit, level.price, buy):
            return None
        took = min(level.qty, qty)
        cost += took * level.price
        qty -= took
        if qty == 0:
            return cost, level.price
    return None


def _post(order: PlanRequest, survey: _Survey, placeable: int) -> RouteDecision:
    """Rest the order at its limit on the lit venue paying the lowest maker fee (the best rebate)."""
    ranked = sorted(survey.lit, key=lambda v: (v[1].maker_fee, v[1].latency_us, v[0]))
    venue, info, _ = ranked[0]
    candidates = [Candidate(name, order.limit, placeable if i == 0 else 0, v.maker_fee, v.latency_us,
                            1 if i == 0 else None) for i, (name, v, _) in enumerate(ranked)]
    child = ChildSpec(venue, placeable, order.limit, OrdType.LIMIT, TimeInForce.DAY, "post")
    return _decision(order, survey, "post", (child,), candidates,
                     f"nothing takeable within limit {order.limit}; resting {placeable} on {venue}, "
                     f"lowest maker fee {info.maker_fee}")
