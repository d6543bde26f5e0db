"""The router's pure core: one parent order and the market in, child orders and the reasons for them out."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from operator import itemgetter

from gateway.analytics.dark_allocation import DarkAllocator
from gateway.analytics.learning import VenueLearning
from gateway.core.cost_plan import all_in_cost, cheapest_takes, spread
from gateway.core.market import KEY_SCALE, BookSnapshot, Level, MarketView, Nbbo, PriceKey, Row, VenueInfo, fold_nbbo, price_key
from gateway.core.types import ChildSpec, OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind

DISCONNECTED = "disconnected"
REJECTED = "rejected this order"

# Enum members as module constants: on 3.11 each `VenueKind.LIT`-style lookup is a descriptor call, and the
# router makes them per venue and per child.
_LIT, _DARK = VenueKind.LIT, VenueKind.DARK
_LIMIT, _MARKET = OrdType.LIMIT, OrdType.MARKET
_DAY, _IOC, _FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
_COST, _DARK_FIRST = Strategy.COST, Strategy.DARK
_LIQUIDITY, _SINGLE = Strategy.LIQUIDITY, Strategy.SINGLE
_BPS = 1e-4
_MICRO = Decimal("0.000001")


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
    dark_again: frozenset[str] = frozenset()  # resting pools that filled all they were sent, time left to rest
    excluded: frozenset[str] = frozenset()  # venues this parent must not use (they rejected it)
    lot: int = 1  # child quantities are multiples of lot, except a directed order
    strategy: Strategy = Strategy.DARK


@dataclass(frozen=True, slots=True)
class CostWeights:
    """The cost strategy's risk terms, in basis points of the price per share, added to price and taker fee."""

    toxicity_bps: float = 5.0  # per unit of toxicity score (0..1)
    latency_bps_per_ms: float = 0.02  # per millisecond of the venue's ack latency (observed, else configured)
    staleness_bps_per_s: float = 1.0  # per second of the venue's quote age
    miss_bps: float = 2.0  # per unit of the venue's miss rate (1 - fill rate)
    explore_every: int = 0  # a usable venue no cost parent used for this many parents gets a share; 0: never
    explore_qty: int = 100  # that share, in shares (rounded down to lots, at least one lot)


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    default_strategy: Strategy = Strategy.DARK  # for orders that name none
    cost: CostWeights = CostWeights()
    dark_timeout_ns: int = 2_000_000_000  # low urgency under `dark`: how long children rest in dark pools
    probe_qty: int = 1000  # medium urgency under `dark`: most shares sent to dark pools as IOC probes
    dark_min_fill: float = 0.05  # low urgency: a pool gets no unit whose estimated fill probability is under this




@dataclass(frozen=True, slots=True)
class Candidate:
    """One lit price level or dark pool the router considered; rank is the order taken (None: not used)."""

    venue: str
    price: Decimal | None
    qty: int
    fee: Decimal
    latency_us: int
    rank: int | None
    score: Decimal | None = None  # lit: estimated all-in cost per share (price, fee, risks); dark: fill estimate


@dataclass(frozen=True, slots=True)
class Exclusion:
    venue: str
    reason: str


class _Candidates:
    """RouteDecision.candidates: a tuple of Candidate, or a recipe (a partial) the router hands over and that
    is built into one on first read; the order path acts on and logs decisions without reading candidates."""

    def __get__(self, decision: RouteDecision | None, owner: type | None = None) -> tuple[Candidate, ...]:
        if decision is None:
            raise AttributeError("candidates")  # no class-level default: the dataclass field stays required
        value = decision.__dict__["_candidates"]
        if type(value) is partial:
            value = decision.__dict__["_candidates"] = value()
        return value

    def __set__(self, decision: RouteDecision, value: tuple[Candidate, ...] | partial) -> None:
        decision.__dict__["_candidates"] = value  # only __init__ gets here: the frozen __setattr__ refuses


@dataclass(frozen=True)  # no slots: the candidates descriptor keeps its value in the instance dict
class RouteDecision:
    order_id: str
    phase: str  # "directed", "dark", "take", "post" or "none"
    children: tuple[ChildSpec, ...]
    candidates: tuple[Candidate, ...] = _Candidates()  # type: ignore[assignment]
    exclusions: tuple[Exclusion, ...]
    nbbo: Nbbo
    reason: str  # one human sentence: why these children (or why none)
    strategy: Strategy | None = None
    books: tuple[BookSnapshot, ...] = ()  # the usable lit books the plan saw


# A far-side level a take could hit is its BookSnapshot Row: (key, displayed qty, venue, price), the keys
# ascending from the best price on both sides.
_Entry = Row
# A venue's far-side rows within the limit, best first: (venue name, venue info, rows).
_Reachable = tuple[str, VenueInfo, Sequence[Row]]
_key = _name = itemgetter(0)
_qty = itemgetter(1)
_venue = itemgetter(2)


@dataclass(slots=True)
class _Survey:
    """The venues this order may use now, and why the others may not."""

    lit: list[tuple[str, VenueInfo, BookSnapshot]]  # taker preference: fee, latency, name
    dark: list[tuple[str, VenueInfo]]  # same order
    exclusions: list[Exclusion]
    nbbo: Nbbo


def plan(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo], policy: RoutingPolicy,
         stats: VenueLearning | None = None) -> RouteDecision:
    """Decide the children for `order`: directed, else dark first (by strategy and urgency), else take by the
    order's strategy, else post, else none."""
    survey = _survey(order, market, venues)
    if order.ex_destination is not None:
        decision = _directed(order, survey, venues)
    else:
        decision = _route(order, survey, policy, stats, market)
    protected = [(name, book) for name, info, book in survey.lit if info.protected]
    violations = _violations(decision.children, order.side, venues, protected, order.lot)
    if violations:
        raise AssertionError(f"router bug, plan for {order.order_id} trades through: {'; '.join(violations)}")
    return decision


def trade_through_violations(decision: RouteDecision, side: Side, symbol: str, market: MarketView,
                             venues: Mapping[str, VenueInfo], lot: int = 1) -> list[str]:
    """Lit children priced through a better protected quote this decision leaves standing at another venue.

    Routable venues are connected ones the order has not been rejected by; a child never trades through
    its own venue's book (the venue fills it best price first); MARKET children count as the worst price.
    A protected quote is a round lot: a price level at which at least `lot` shares are left standing (odd
    lots are not protected quotes under Reg NMS).
    """
    rejected = {e.venue for e in decision.exclusions if e.reason == REJECTED}
    protected = [(name, book) for name, info in venues.items()
                 if info.kind is _LIT and info.protected and info.connected and name not in rejected
                 and (book := market.book(name, symbol)) is not None]
    return _violations(decision.children, side, venues, protected, lot)


def _violations(children: Sequence[ChildSpec], side: Side, venues: Mapping[str, VenueInfo],
                protected: Sequence[tuple[str, BookSnapshot]], lot: int) -> list[str]:
    """trade_through_violations against these books: the routable protected lit venues' quotes."""
    buy = side.is_buy
    lit = []
    taken: dict[str, list] = {}  # venue -> [qty of its lit children, the furthest price they reach]
    for child in children:
        info = venues.get(child.venue)
        if info is None or info.kind is _LIT:
            lit.append(child)
            _add_taken(taken, child, buy)
    if not lit:
        return []
    furthest = _furthest(lit, buy)
    violations = []
    for name, book in protected:
        levels = book.asks if buy else book.bids
        if not levels:
            continue
        standing = levels[0].price
        if furthest is not None and (standing >= furthest if buy else standing <= furthest):
            continue  # nothing this venue shows is better than any child's price
        if name in taken or levels[0].qty < lot:
            standing = _first_untaken(levels, *taken.get(name, (0, None)), buy, lot)
            if standing is None or (furthest is not None and (standing >= furthest if buy else standing <= furthest)):
                continue
        for child in lit:
            if child.venue != name and (child.price is None or _better(standing, child.price, buy)):
                shown = "MARKET" if child.price is None else child.price
                violations.append(f"{side.name} {child.qty} at {shown} on {child.venue} "
                                  f"leaves {name}'s better {standing} standing")
    return sorted(violations)


def _furthest(children: Sequence[ChildSpec], buy: bool) -> Decimal | None:
    """The furthest price these children reach into the book; None if one is a MARKET order."""
    furthest = None
    for child in children:
        price = child.price
        if price is None:  # not `None in prices`: Decimal == None costs an ABC isinstance check
            return None
        if furthest is None or (price > furthest if buy else price < furthest):
            furthest = price
    return furthest


def _add_taken(taken: dict[str, list], child: ChildSpec, buy: bool) -> None:
    """Add child to its venue's [qty, furthest price] (None once one of them is a MARKET order)."""
    seen = taken.get(child.venue)
    if seen is None:
        taken[child.venue] = [child.qty, child.price]
        return
    seen[0] += child.qty
    price, reach = child.price, seen[1]
    if reach is not None and (price is None or (price > reach if buy else price < reach)):
        seen[1] = price


def _first_untaken(levels: Sequence[Level], qty: int, reach: Decimal | None, buy: bool, lot: int) -> Decimal | None:
    """The best price on this side of a book at which children at this venue, qty in all and reaching as far
    as reach (None: MARKET), leave a round lot (at least lot shares) standing."""
    for level in levels:
        price = level.price
        if reach is not None and (reach < price if buy else reach > price):
            qty = 0  # the children take nothing this far out
        left = level.qty - qty
        if left >= lot:
            return price
        qty = -left if left < 0 else 0
    return None


def _survey(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo]) -> _Survey:
    lit: list[tuple[str, VenueInfo, BookSnapshot]] = []
    dark: list[tuple[str, VenueInfo]] = []
    exclusions: list[Exclusion] = []
    protected: list[BookSnapshot] = []
    symbol, excluded = order.symbol, order.excluded
    for name, info in sorted(venues.items(), key=_name):
        if not info.connected:
            exclusions.append(Exclusion(name, DISCONNECTED))
            continue
        is_dark = info.kind is _DARK
        book = None if is_dark else market.book(name, symbol)
        if book is not None and info.protected:
            protected.append(book)  # the NBBO counts it even if this order may not use the venue
        if name in excluded:
            exclusions.append(Exclusion(name, REJECTED))
        elif is_dark:
            dark.append((name, info))
        elif book is None:
            exclusions.append(Exclusion(name, f"no quote for {symbol}"))
        else:
            lit.append((name, info, book))
    # Stable sorts: names are already in order, so they break the remaining ties.
    lit.sort(key=_taker_preference)
    dark.sort(key=_taker_preference)
    return _Survey(lit, dark, exclusions, fold_nbbo(protected))


def _taker_preference(venue: tuple[str, VenueInfo] | tuple[str, VenueInfo, BookSnapshot]) -> tuple[Decimal, int]:
    return venue[1].taker_fee, venue[1].latency_us


def _decision(order: PlanRequest, survey: _Survey, phase: str, children: Sequence[ChildSpec],
              candidates: tuple[Candidate, ...] | partial, reason: str) -> RouteDecision:
    """The decision; candidates may be a recipe, built only if read (see _Candidates)."""
    return RouteDecision(order.order_id, phase, tuple(children), candidates,  # type: ignore[arg-type]
                         tuple(survey.exclusions), survey.nbbo, reason, order.strategy,
                         tuple([entry[2] for entry in survey.lit]))


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
    if info.kind is _DARK:
        if price is None:
            price = survey.nbbo.ask if buy else survey.nbbo.bid
        ord_type = _MARKET if price is None else _LIMIT
    else:
        better = _best_other_quote(survey.lit, dest, buy)
        if better is not None and (price is None or _better(better[1], price, buy)):
            price, ord_type = better[1], _LIMIT
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


def _route(order: PlanRequest, survey: _Survey, policy: RoutingPolicy, stats: VenueLearning | None,
           market: MarketView) -> RouteDecision:
    if not survey.lit and not survey.dark:
        everything_down = all(e.reason == DISCONNECTED for e in survey.exclusions)
        return _none(order, survey, "no venue connected" if everything_down else "no usable venue")
    placeable = order.qty - order.qty % order.lot
    if placeable == 0:
        return _none(order, survey, f"{order.qty} is less than one lot of {order.lot}")
    strategy = order.strategy
    if strategy is _DARK_FIRST and _dark_applies(order, survey.nbbo):
        decision = _dark(order, survey, placeable, policy, stats)
        if decision is not None:
            return decision
    penalties = None
    if strategy is _COST:
        penalties = _penalties(order, survey, policy.cost, stats, market)
        survey.lit.sort(key=lambda venue: penalties[venue[0]])  # stable: ties keep the taker preference
    reachable = _far_side(order, survey.lit)
    if not reachable:
        if order.ord_type is _LIMIT and order.tif is _DAY and survey.lit:
            return _post(order, survey, placeable)
        return _none(order, survey, _nothing_to_take(order))
    if order.tif is _FOK:
        return _fill_or_kill(order, survey, reachable, placeable)
    if strategy is _SINGLE:
        return _single(order, survey, reachable, placeable)
    if penalties is not None:
        decision = _cost(order, survey, reachable, placeable, penalties)
        if policy.cost.explore_every and stats is not None and decision.children:
            decision = _explore(order, survey, reachable, decision, penalties, stats, policy.cost)
        return decision
    return _take(order, survey, reachable, placeable, penalties)


def expected_costs(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo], weights: CostWeights,
                   stats: VenueLearning | None = None) -> dict[str, Decimal]:
    """Usable lit venue -> what the cost strategy expects a share taken there to cost beyond its price."""
    return _penalties(order, _survey(order, market, venues), weights, stats, market)


def _cost(order: PlanRequest, survey: _Survey, reachable: list[_Reachable], placeable: int,
          penalties: Mapping[str, Decimal]) -> RouteDecision:
    """The plan of least expected all-in cost (price, fee and risks) per share: protected round lots are taken
    or not jumped, unprotected quotes may be passed; the best-price sweep (marginal price by all-in cost) unless
    that plan fills more or costs less."""
    sweep = _take(order, survey, reachable, placeable, penalties)
    protected = {name for name, info, _ in reachable if info.protected}
    if len(protected) == len(reachable):
        return sweep  # every quote must be taken in price order: only the marginal price is free, by all-in cost
    buy, lot = order.side.is_buy, order.lot
    rows = _sweep_order(_entries(reachable, None))
    extra = {name: price_key(penalty) for name, penalty in penalties.items()}
    takes = cheapest_takes(rows, placeable, lot, extra, protected)
    swept = {child.venue: child.qty for child in sweep.children}
    filled, swept_qty = sum(takes.values()), sum(swept.values())
    cost, swept_cost = all_in_cost(rows, takes, extra), all_in_cost(rows, swept, extra)
    if filled < swept_qty or (filled == swept_qty and cost >= swept_cost):
        return sweep
    per_row = spread(rows, takes)
    children = [ChildSpec(name, qty, price, _LIMIT, _IOC, "take") for name, (qty, price) in _per_venue(rows, per_row).items()]
    worst = _furthest(children, buy)
    reason = (f"cost: take {filled} of {placeable} across {len(children)} venue(s) by expected all-in cost per share "
              f"(price, fee, toxicity, latency, staleness and miss risk), up to {worst}: "
              f"{_per_share(cost, filled, buy)} a share against "
              f"{_per_share(swept_cost, swept_qty, buy) if swept_qty else 'nothing'} for the best-price sweep")
    passed = _passed(rows, per_row, price_key(worst) if buy else -price_key(worst), lot)
    if passed:
        reason += f"; passed unprotected quotes at {', '.join(passed)}"
    if filled < placeable:
        reason += "; that is all the lit liquidity takeable now"
    candidates = partial(_taken_candidates, rows, per_row, reachable, buy, penalties)
    return _decision(order, survey, "take", children, candidates, reason)


def _explore(order: PlanRequest, survey: _Survey, reachable: list[_Reachable], decision: RouteDecision,
             penalties: Mapping[str, Decimal], stats: VenueLearning, weights: CostWeights) -> RouteDecision:
    """The cost plan with a small share moved to a reachable venue no cost parent used for weights.explore_every
    parents (the one showing the best price, then the one left longest): its toxicity and fill rate only change while it gets fills, so
    without this a venue that cleaned up would never be tried again. The share comes off the plan's
    furthest-priced shares; a plan that would then trade through is kept as it was."""
    used = {child.venue for child in decision.children}
    due = [(rows[0][0], -left_for, i, name) for i, (name, _, rows) in enumerate(reachable)
           if name not in used and (left_for := stats.parents_since(name)) >= weights.explore_every]
    if not due:
        return decision
    _, left_for, _, venue = min(due)  # the best price passed first: what the plan would take were it clean
    left_for = -left_for
    buy, lot = order.side.is_buy, order.lot
    rows = _sweep_order(_entries(reachable, None))
    takes = {child.venue: child.qty for child in decision.children}
    per_row = spread(rows, takes)
    placeable = order.qty - order.qty % lot
    short = placeable - sum(takes.values())
    furthest = max(i for i, took in enumerate(per_row) if took)
    reach = rows[furthest][0]
    depth = sum(shown for key, shown, name, _ in rows if name == venue and (short or key <= reach))
    qty = min(max(lot, weights.explore_qty - weights.explore_qty % lot), depth - depth % lot, placeable)
    if qty == 0:
        return decision
    remove = qty - min(qty, short)
    for i in range(len(rows) - 1, -1, -1):  # furthest-priced shares first
        if remove <= 0:
            break
        took = per_row[i]
        if not took:
            continue
        name = rows[i][2]
        cut = min(-(-min(remove, took) // lot) * lot, takes[name])
        takes[name] -= cut
        remove -= cut
        per_row = spread(rows, takes)
    if remove < 0 and qty - remove <= depth - depth % lot:
        qty -= remove  # a lot rounded up elsewhere: the explored venue takes the difference
    takes[venue] = qty
    per_row = spread(rows, takes)
    children = [ChildSpec(name, n, price, _LIMIT, _IOC, "take") for name, (n, price) in _per_venue(rows, per_row).items()]
    protected = [(name, book) for name, info, book in survey.lit if info.protected]
    if _violations(children, order.side, {name: info for name, info, _ in survey.lit}, protected, lot):
        return decision
    reason = (f"{decision.reason}; explored {venue} with {qty} shares: no cost parent used it for {left_for} "
              f"parents (routing.cost.explore_every {weights.explore_every})")
    candidates = partial(_taken_candidates, rows, per_row, reachable, buy, penalties)
    return _decision(order, survey, "take", children, candidates, reason)


def _per_share(cost: PriceKey, qty: int, buy: bool) -> Decimal:
    """An all-in cost in key units over qty shares as a price per share (a sell's: net proceeds)."""
    return (Decimal(cost) / (qty * KEY_SCALE) * (1 if buy else -1)).quantize(_MICRO)


def _passed(rows: Sequence[_Entry], per_row: Sequence[int], worst: PriceKey, lot: int) -> list[str]:
    """Venues left with a round lot at a price better than worst (only unprotected ones can be)."""
    return sorted({venue for (key, shown, venue, _), took in zip(rows, per_row) if key < worst and shown - took >= lot})


def _nothing_to_take(order: PlanRequest) -> str:
    if order.limit is None:
        return f"no lit liquidity for {order.symbol}"
    if order.tif is _DAY:
        return "no lit venue to rest on"
    return f"no lit liquidity within limit {order.limit} and {order.tif.name}"


def _dark_applies(order: PlanRequest, nbbo: Nbbo) -> bool:
    if order.urgency is Urgency.HIGH or (order.dark_done and not order.dark_again) or order.tif is _FOK:
        return False
    mid = nbbo.mid
    if mid is None:
        return False
    return order.limit is None or (mid <= order.limit if order.side.is_buy else mid >= order.limit)


def _dark(order: PlanRequest, survey: _Survey, placeable: int, policy: RoutingPolicy,
          stats: VenueLearning | None) -> RouteDecision | None:
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
    shares, how = _dark_shares(qty, order.lot, eligible, stats.dark if stats else None,
                               policy.dark_min_fill if resting else 0.0)
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
        reason = (f"dark again at LOW urgency: resting {placed} of {placeable} at the midpoint in "
                  f"{len(children)} pool(s) that filled all they were sent, up to {price} until the dark time is "
                  f"up, {how}")
    elif resting:
        reason = (f"dark first at LOW urgency: resting {placed} of {placeable} at the midpoint in "
                  f"{len(children)} pool(s) up to {price} for {policy.dark_timeout_ns // 1_000_000} ms, {how}")
    else:
        reason = (f"dark first at MEDIUM urgency: IOC probes for {placed} of {placeable} in "
                  f"{len(children)} pool(s) at {price}, {how}")
    return _decision(order, survey, "dark", children, candidates, reason)


def _dark_shares(qty: int, lot: int, eligible: Sequence[tuple[str, VenueInfo]],
                 allocator: DarkAllocator | None, min_fill: float) -> tuple[dict[str, int], str]:
    """Pool -> shares for qty, and how they were chosen: by the allocator's estimated marginal fill
    probabilities where it can allocate in lots (no unit under min_fill), else evenly in lots (pools dropped
    for their minimums)."""
    minimums = {name: info.min_qty for name, info in eligible}
    if allocator is not None and allocator.unit % lot == 0 and qty >= allocator.unit:
        shares = allocator.allocate(qty, list(minimums), minimums, min_fill)
        if shares or min_fill:  # with a floor, no share means every pool was learnt to fill too rarely
            how = "sized by estimated fill probability"
            if min_fill and sum(shares.values()) < qty - qty % allocator.unit:
                how += f", no pool past where a further {allocator.unit} shares would fill under {min_fill:.0%} of the time"
            return shares, how
    even = _split(qty, lot, list(minimums.values()))
    dropped = len(eligible) - len(even)
    return ({name: share for (name, _), share in zip(eligible, even)},
            "split evenly" + (f", {dropped} pool(s) dropped for their minimum size" if dropped else ""))


def _dark_candidates(eligible: Sequence[tuple[str, VenueInfo]], shares: Mapping[str, int], price: Decimal | None,
                     allocator: DarkAllocator | None) -> tuple[Candidate, ...]:
    """Every eligible pool with its share, ranked largest share first; score: its estimated fill probability
    for one more allocation unit (None without an allocator)."""
    ranked = sorted((name for name, _ in eligible if name in shares), key=lambda name: -shares[name])
    rank = {name: i + 1 for i, name in enumerate(ranked)}
    return tuple(Candidate(name, price, shares.get(name, 0), info.taker_fee, info.latency_us, rank.get(name),
                           None if allocator is None else _fill_estimate(allocator, name, shares.get(name, 0)))
                 for name, info in eligible)


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


def _far_side(order: PlanRequest, lit: Sequence[tuple[str, VenueInfo, BookSnapshot]]) -> list[_Reachable]:
    """Each lit venue's far-side levels within the limit (venues with none left out), in taker preference order.

    A stable sort of all their levels by price is the sweep order: best price, then taker fee, latency, name.
    """
    buy = order.side.is_buy
    limit = None if order.limit is None else price_key(order.limit) if buy else -price_key(order.limit)
    reachable = []
    for name, info, book in lit:
        rows = book.ask_rows if buy else book.bid_rows
        if limit is not None and rows and rows[-1][0] > limit:
            rows = rows[:bisect_right(rows, limit, key=_key)]
        if rows:
            reachable.append((name, info, rows))
    return reachable


def _reach(reachable: Sequence[_Reachable], qty: int, lot: int = 1) -> list[_Entry]:
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
        entries = _entries(reachable, frontier)
        shown = sum(map(_qty, entries))
        if frontier is None or shown > enough:
            return _sweep_order(entries)
        depth *= enough // max(shown, 1) + 1  # at least doubles: shown <= enough here


def _frontier(reachable: Sequence[_Reachable], depth: int) -> PriceKey | None:
    """The key of the best price below the first `depth` levels of any book; None if no book is deeper.

    Books are best first, so every level strictly better than it lies within those first levels.
    """
    frontier = None
    for _, _, rows in reachable:
        if len(rows) > depth:
            key = rows[depth][0]
            if frontier is None or key < frontier:
                frontier = key
    return frontier


def _entries(reachable: Sequence[_Reachable], frontier: PriceKey | None) -> list[_Entry]:
    """Every level strictly better than frontier (all of them if None), venue by venue."""
    entries: list[_Entry] = []
    for _, _, rows in reachable:
        entries += rows if frontier is None else rows[:bisect_left(rows, frontier, key=_key)]
    return entries


def _sweep_order(entries: list[_Entry]) -> list[_Entry]:
    entries.sort(key=_key)  # stable: venue preference breaks price ties
    return entries


def _take(order: PlanRequest, survey: _Survey, reachable: list[_Reachable], placeable: int,
          penalties: Mapping[str, Decimal] | None) -> RouteDecision:
    """Take up to placeable, whole price tiers best first; the marginal tier goes in venue order (taker
    preference, or all-in cost under `cost`), or pro rata to displayed size under `liquidity`."""
    buy, lot = order.side.is_buy, order.lot
    pro_rata = order.strategy is _LIQUIDITY
    per_venue = _everything(reachable, placeable) if lot == 1 else None
    how = "all-in cost" if penalties is not None else "taker preference"
    if per_venue is None:
        entries = _reach(reachable, placeable, lot)
        takes = _allocate(entries, placeable, lot)
        if pro_rata:
            if lot == 1:
                takes = _pro_rata(entries, takes)
                how = "pro rata to displayed size"
            else:
                how = "taker preference (pro rata needs a lot of 1)"
        per_venue = _per_venue(entries, takes)
    elif pro_rata:
        how = "pro rata to displayed size"
    candidates = partial(_swept_candidates, reachable, placeable, lot, buy, penalties, pro_rata)
    if not per_venue:
        return _decision(order, survey, "none", (), candidates, f"no venue shows a lot of {order.lot} within the limit")
    children = [ChildSpec(name, qty, price, _LIMIT, _IOC, "take")
                for name, (qty, price) in per_venue.items()]
    total = sum(c.qty for c in children)
    worst = _furthest(children, buy)
    reason = (f"{order.strategy.value}: take {total} of {placeable} across {len(children)} venue(s) best price "
              f"first, up to {worst}, the marginal price by {how}")
    if total < placeable:
        reason += "; that is all the lit liquidity takeable now"
    if lot > 1 and _odd_lots_passed(children, order.side, survey):
        reason += (f"; odd lots (under {lot} shares) left at better prices are not protected quotes, so the "
                   f"no-trade-through rule applies to round lots")
    return _decision(order, survey, "take", children, candidates, reason)


def _odd_lots_passed(children: Sequence[ChildSpec], side: Side, survey: _Survey) -> bool:
    """Do these children leave shares standing at a better protected price (odd lots, as they are allowed to)?"""
    infos = {name: info for name, info, _ in survey.lit}
    protected = [(name, book) for name, info, book in survey.lit if info.protected]
    return bool(_violations(children, side, infos, protected, 1))


def _pro_rata(entries: Sequence[_Entry], takes: list[int]) -> list[int]:
    """Re-split the marginal price tier of a lot-1 sweep in proportion to the size each level shows
    (largest remainders first); every better tier stays taken whole."""
    if not takes:
        return takes
    marginal = entries[len(takes) - 1][0]
    tier = [i for i in range(len(takes)) if entries[i][0] == marginal]
    total = sum(takes[i] for i in tier)
    shown = sum(entries[i][1] for i in tier)
    exact = [(total * entries[i][1], i) for i in tier]
    split = {i: q // shown for q, i in exact}
    left = total - sum(split.values())
    for _, i in sorted(exact, key=lambda e: (-(e[0] % shown), e[1]))[:left]:
        split[i] += 1
    takes = list(takes)
    for i in tier:
        takes[i] = split[i]
    return takes


def _per_venue(entries: Sequence[_Entry], takes: Sequence[int]) -> dict[str, list]:
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


def _everything(reachable: Sequence[_Reachable], qty: int) -> dict[str, list] | None:
    """_per_venue for a lot-1 sweep of qty that takes every level it can reach, found book by book with no
    sort; None if the levels show more than qty (then the sweep stops somewhere inside them)."""
    firsts: list[tuple[PriceKey, str, list]] = []  # (key of the best price shown, venue, [qty, worst price])
    shown = 0
    for name, _, rows in reachable:
        total = sum(map(_qty, rows))
        if total:
            shown += total
            if shown > qty:
                return None
            first = rows[0] if rows[0][1] else next(row for row in rows if row[1])
            last = rows[-1] if rows[-1][1] else next(row for row in reversed(rows) if row[1])
            firsts.append((first[0], name, [total, last[3]]))
    firsts.sort(key=_key)  # stable: the order the sweep first reaches each venue
    return {name: child for _, name, child in firsts}


def _swept_candidates(reachable: Sequence[_Reachable], qty: int, lot: int, buy: bool,
                      penalties: Mapping[str, Decimal] | None, pro_rata: bool) -> tuple[Candidate, ...]:
    """The levels the sweep considered, in sweep order, ranked in the order taken."""
    entries = _reach(reachable, qty, lot)
    takes = _allocate(entries, qty, lot)
    if pro_rata and lot == 1:
        takes = _pro_rata(entries, takes)
    return _taken_candidates(entries, takes, reachable, buy, penalties)


def _taken_candidates(entries: Sequence[_Entry], takes: Sequence[int], reachable: Sequence[_Reachable], buy: bool,
                      penalties: Mapping[str, Decimal] | None = None) -> tuple[Candidate, ...]:
    """The entries a sweep considered (takes is as long as that), ranked in the order taken; scored with
    their all-in price per share (price plus costs for a buy, less them for a sell) where penalties are known."""
    infos = {name: info for name, info, _ in reachable}
    candidates = []
    rank = 0
    for (_, qty, name, price), took in zip(entries, takes):
        if took:
            rank += 1
        info = infos[name]
        score = None if penalties is None else price + penalties[name] if buy else price - penalties[name]
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if took else None,
                                    score))
    return tuple(candidates)


def _penalties(order: PlanRequest, survey: _Survey, weights: CostWeights, stats: VenueLearning | None,
               market: MarketView) -> dict[str, Decimal]:
    """Lit venue -> expected cost per share beyond the price: taker fee plus toxicity, latency, staleness and
    miss-rate risks, each in basis points of the reference price (the NBBO mid, else the venue's top)."""
    mid = survey.nbbo.mid
    buy = order.side.is_buy
    penalties = {}
    for name, info, book in survey.lit:
        top = book.best_ask if buy else book.best_bid
        reference = mid if mid is not None else top.price if top is not None else None
        score = stats.score(name) if stats is not None else None
        risk_bps = 0.0
        if score is not None:
            risk_bps += weights.toxicity_bps * score.toxicity + weights.miss_bps * (1 - score.fill_rate)
        latency_us = score.latency_us if score is not None and score.latency_us is not None else info.latency_us
        risk_bps += weights.latency_bps_per_ms * latency_us / 1000
        age_ns = market.age_ns(name, order.symbol)
        if age_ns:
            risk_bps += weights.staleness_bps_per_s * max(age_ns, 0) / 1e9
        risk = Decimal(0) if reference is None else reference * Decimal(f"{risk_bps * _BPS:.8f}")
        penalties[name] = (info.taker_fee + risk).quantize(_MICRO)
    return penalties


def _allocate(entries: Sequence[_Entry], qty: int, lot: int) -> list[int]:
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
    return _fill(entries, ids, venues, (start, considered), qty, lot)


def _greedy(entries: Sequence[_Entry], qty: int) -> list[int]:
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


def _fill(entries: Sequence[_Entry], ids: Sequence[int], venues: int, marginal: tuple[int, int], qty: int,
          lot: int) -> list[int]:
    """The takes with entries[start:end] (marginal) as the marginal tier."""
    start, end = marginal
    shown = [0] * venues  # per venue: displayed depth before the marginal tier
    for i in range(start):
        shown[ids[i]] += entries[i][1]
    reach = list(shown)  # per venue: displayed depth through the marginal tier
    for i in range(start, end):
        reach[ids[i]] += entries[i][1]
    want = [depth - depth % lot for depth in shown]  # per venue: total to take
    left = qty - sum(want)
    left -= left % lot
    for i in range(start, end):  # round up first: a venue's odd lot at a better price is cheaper than this tier
        venue = ids[i]
        have = want[venue]
        if left and have < shown[venue] and reach[venue] - reach[venue] % lot > have:
            want[venue] = have + lot
            left -= lot
    for i in range(start, end):
        venue = ids[i]
        have = want[venue]
        add = min(reach[venue] - reach[venue] % lot - have, left)
        if add > 0:
            want[venue] = have + add
            left -= add
    takes = []
    for i in range(end):  # every venue's total lies within its levels up to the marginal tier
        venue = ids[i]
        took = want[venue]
        if took:
            level_qty = entries[i][1]
            if level_qty < took:
                took = level_qty
            want[venue] -= took
        takes.append(took)
    return takes


def _single(order: PlanRequest, survey: _Survey, reachable: list[_Reachable], placeable: int) -> RouteDecision:
    """One IOC child on the venue that alone fills the most, at the best average price, never past a better
    protected quote standing at another venue."""
    buy, lot = order.side.is_buy, order.lot
    best: tuple[int, Decimal, str, Decimal] | None = None  # (qty, -avg or avg cost key, venue, worst price)
    for name, _, rows in reachable:
        other = _best_other_quote(survey.lit, name, buy)
        qty, cost, worst = 0, Decimal(0), None
        for _, shown, _, price in rows:
            if other is not None and _better(other[1], price, buy):
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
        return _none(order, survey, "no single venue can take a lot without trading through a better quote")
    qty, _, venue, worst = best
    child = ChildSpec(venue, qty, worst, _LIMIT, _IOC, "take")
    candidates = partial(_single_candidates, reachable, venue, worst, buy)
    return _decision(order, survey, "take", (child,), candidates,
                     f"single: take {qty} of {placeable} on {venue} alone, the venue that fills the most "
                     f"at the best average price, up to {worst}")


def _single_candidates(reachable: Sequence[_Reachable], venue: str, worst: Decimal,
                       buy: bool) -> tuple[Candidate, ...]:
    """Every venue's levels within the limit in sweep order, ranked where the single child takes them."""
    candidates = []
    rank = 0
    infos = {name: info for name, info, _ in reachable}
    for _, qty, name, price in _sweep_order(_entries(reachable, None)):
        used = name == venue and not _better(worst, price, buy)
        if used:
            rank += 1
        info = infos[name]
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if used else None))
    return tuple(candidates)


def _fill_or_kill(order: PlanRequest, survey: _Survey, reachable: list[_Reachable],
                  placeable: int) -> RouteDecision:
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
                "without trading through a better quote" if blocked else f"within limit {order.limit}")
        return _decision(order, survey, "none", (), candidates, why)
    child = ChildSpec(venue, order.qty, worst, _LIMIT, _FOK, "take")
    return _decision(order, survey, "take", (child,), candidates,
                     f"FOK {order.qty} on {venue} alone, the best average price, up to {worst}")


def _fok_candidates(reachable: Sequence[_Reachable], venue: str | None, worst: Decimal | None,
                    buy: bool) -> tuple[Candidate, ...]:
    """Every level within the limit in sweep order, ranked where the FOK child takes it."""
    candidates = []
    rank = 0
    infos = {name: info for name, info, _ in reachable}
    for _, qty, name, price in _sweep_order(_entries(reachable, None)):
        used = name == venue and not _better(worst, price, buy)  # type: ignore[arg-type]
        if used:
            rank += 1
        info = infos[name]
        candidates.append(Candidate(name, price, qty, info.taker_fee, info.latency_us, rank if used else None))
    return tuple(candidates)


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
    ranked = sorted(survey.lit, key=_maker_preference)
    venue, info, _ = ranked[0]
    candidates = partial(_post_candidates, ranked, order.limit, placeable)
    child = ChildSpec(venue, placeable, order.limit, _LIMIT, _DAY, "post")
    return _decision(order, survey, "post", (child,), candidates,
                     f"nothing takeable within limit {order.limit}; resting {placeable} on {venue}, "
                     f"lowest maker fee {info.maker_fee}")


def _maker_preference(venue: tuple[str, VenueInfo, BookSnapshot]) -> tuple[Decimal, int, str]:
    return venue[1].maker_fee, venue[1].latency_us, venue[0]


def _post_candidates(ranked: Sequence[tuple[str, VenueInfo, BookSnapshot]], limit: Decimal | None,
                     placeable: int) -> tuple[Candidate, ...]:
    return tuple(Candidate(name, limit, placeable if i == 0 else 0, info.maker_fee, info.latency_us,
                           1 if i == 0 else None) for i, (name, info, _) in enumerate(ranked))
