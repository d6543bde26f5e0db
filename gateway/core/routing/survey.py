"""The survey every strategy starts from: the usable venues, why the others are not, the NBBO, the reachable books."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from operator import attrgetter, itemgetter

from gateway.core.market import BookSnapshot, MarketView, Nbbo, PriceKey, Row, VenueInfo, fold_nbbo, price_key
from gateway.core.routing.decision import Candidate, Exclusion, PlanRequest, RouteDecision
from gateway.core.types import ChildSpec, VenueKind

DISCONNECTED = "disconnected"
REJECTED = "rejected this order"
HALTED = "halted until resumed"
TRIPPED = "tripped its circuit breaker"
UNROUTABLE = frozenset({REJECTED, HALTED, TRIPPED})  # exclusions that leave a venue's quote out of reach

_DARK = VenueKind.DARK
# A venue's far-side rows within the limit, best first: (venue name, venue info, rows, depths, notionals), depths
# and notionals the snapshot's running sums of that side (through rows[i]: depths[i] shares, notionals[i] the sum
# of key times shares). Both may run past the rows a limit leaves.
Reachable = tuple[str, VenueInfo, Sequence[Row], Sequence[int], Sequence[PriceKey]]
_key = itemgetter(0)
_excluded = attrgetter("venue")


@dataclass(slots=True)
class Survey:
    """The venues this order may use now, and why the others may not."""

    lit: list[tuple[str, VenueInfo, BookSnapshot]]  # taker preference: fee, latency, name
    dark: list[tuple[str, VenueInfo]]  # same order
    exclusions: list[Exclusion]
    nbbo: Nbbo
    guarded: list[tuple[str, BookSnapshot]]  # (name, book) of the protected lit venues: what no plan may trade through


def survey_of(order: PlanRequest, market: MarketView, venues: Mapping[str, VenueInfo]) -> Survey:
    lit: list[tuple[str, VenueInfo, BookSnapshot]] = []
    dark: list[tuple[str, VenueInfo]] = []
    exclusions: list[Exclusion] = []
    protected: list[BookSnapshot] = []
    guarded: list[tuple[str, BookSnapshot]] = []
    symbol = order.symbol
    books = market.books(symbol)
    withholding = order.excluded or order.halted or order.tripped
    # Taker preference: fee, latency, then name (names are unique, so the infos are never compared).
    for _, _, name, info in sorted([(info.taker_exact, info.latency_us, name, info) for name, info in venues.items()]):
        if not info.connected:
            exclusions.append(Exclusion(name, DISCONNECTED))
            continue
        is_dark = info.kind is _DARK
        book = None if is_dark else books.get(name)
        if book is not None and info.protected:
            protected.append(book)  # the NBBO counts it even if this order may not use the venue
        withheld = withheld_by(order, name) if withholding else None
        if withheld is not None:
            exclusions.append(Exclusion(name, withheld))
        elif is_dark:
            dark.append((name, info))
        elif book is None:
            exclusions.append(Exclusion(name, f"no quote for {symbol}"))
        else:
            lit.append((name, info, book))
            if info.protected:
                guarded.append((name, book))
    if len(exclusions) > 1:
        exclusions.sort(key=_excluded)  # by name: the venues were walked in preference order
    return Survey(lit, dark, exclusions, fold_nbbo(protected), guarded)


def withheld_by(order: PlanRequest, venue: str) -> str | None:
    """Why this order may not use the venue, if it may not: it rejected the order, or is halted, or tripped."""
    if venue in order.excluded:
        return REJECTED
    if venue in order.halted:
        return HALTED
    if venue in order.tripped:
        return TRIPPED
    return None


def far_side(order: PlanRequest, lit: Sequence[tuple[str, VenueInfo, BookSnapshot]]) -> list[Reachable]:
    """Each lit venue's far-side levels within the limit (venues with none left out), in taker preference order.

    A stable sort of all their levels by price is the sweep order: best price, then taker fee, latency, name.
    """
    buy = order.side.is_buy
    limit = None if order.limit is None else price_key(order.limit) if buy else -price_key(order.limit)
    reachable: list[Reachable] = []
    for name, info, book in lit:
        if buy:
            rows, depths, notionals = book.ask_rows, book.ask_depths, book.ask_notionals
        else:
            rows, depths, notionals = book.bid_rows, book.bid_depths, book.bid_notionals
        if limit is not None and rows and rows[-1][0] > limit:
            rows = rows[: bisect_right(rows, limit, key=_key)]
        if rows:
            reachable.append((name, info, rows, depths, notionals))
    return reachable


def best_other_quote(
    lit: Sequence[tuple[str, VenueInfo, BookSnapshot]], dest: str, buy: bool
) -> tuple[str, Decimal] | None:
    """The best protected far-side quote at a usable lit venue other than `dest`: (venue, price)."""
    best: tuple[str, Decimal] | None = None
    for name, info, book in lit:
        top = book.best_ask if buy else book.best_bid
        if name == dest or not info.protected or top is None:
            continue
        if best is None or is_better(top.price, best[1], buy):
            best = (name, top.price)
    return best


def decide(
    order: PlanRequest,
    survey: Survey,
    phase: str,
    children: Sequence[ChildSpec],
    candidates: tuple[Candidate, ...] | partial,
    reason: str,
) -> RouteDecision:
    """The decision; candidates may be a recipe, built only if read (see _Candidates)."""
    return RouteDecision(
        order.order_id,
        phase,
        tuple(children),
        candidates,  # type: ignore[arg-type]
        tuple(survey.exclusions),
        survey.nbbo,
        reason,
        order.strategy,
        tuple([entry[2] for entry in survey.lit]),
    )


def decide_none(order: PlanRequest, survey: Survey, reason: str) -> RouteDecision:
    return decide(order, survey, "none", (), (), reason)


def is_better(a: Decimal, b: Decimal, buy: bool) -> bool:
    """Is price a strictly better than b for the taker of this side?"""
    return a < b if buy else a > b
