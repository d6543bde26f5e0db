"""The trade-through guard: lit children priced through a better protected round lot left standing elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.routing.decision import RouteDecision
from gateway.core.routing.survey import UNROUTABLE, is_better
from gateway.core.types import ChildSpec, Side, VenueKind

_LIT = VenueKind.LIT


def trade_through_violations(
    decision: RouteDecision, side: Side, symbol: str, market: MarketView, venues: Mapping[str, VenueInfo], lot: int = 1
) -> list[str]:
    """Lit children priced through a better protected quote this decision leaves standing at another venue.

    Routable venues are connected ones the order has not been rejected by; a child never trades through
    its own venue's book (the venue fills it best price first); MARKET children count as the worst price.
    A protected quote is a round lot: a price level at which at least `lot` shares are left standing (odd
    lots are not protected quotes under Reg NMS).
    """
    rejected = {e.venue for e in decision.exclusions if e.reason in UNROUTABLE}
    protected = [
        (name, book)
        for name, info in venues.items()
        if info.kind is _LIT
        and info.protected
        and info.connected
        and name not in rejected
        and (book := market.book(name, symbol)) is not None
    ]
    return find_violations(decision.children, side, venues, protected, lot)


def find_violations(
    children: Sequence[ChildSpec],
    side: Side,
    venues: Mapping[str, VenueInfo],
    protected: Sequence[tuple[str, BookSnapshot]],
    lot: int,
) -> list[str]:
    """trade_through_violations against these books: the routable protected lit venues' quotes."""
    return sorted(_violations(children, side, venues, protected, lot))


def trades_through(
    children: Sequence[ChildSpec],
    side: Side,
    venues: Mapping[str, VenueInfo],
    protected: Sequence[tuple[str, BookSnapshot]],
    lot: int,
) -> bool:
    """Would find_violations find any? It stops at the first."""
    return next(_violations(children, side, venues, protected, lot), None) is not None


def _violations(
    children: Sequence[ChildSpec],
    side: Side,
    venues: Mapping[str, VenueInfo],
    protected: Sequence[tuple[str, BookSnapshot]],
    lot: int,
) -> Iterator[str]:
    """find_violations' findings, unsorted, as they are found."""
    buy = side.is_buy
    lit = []
    taken: dict[str, list] = {}  # venue -> [qty of its lit children, the furthest price they reach]
    furthest: Decimal | None = None  # the furthest price of all lit children; None if one is a MARKET order
    market = False
    for child in children:
        venue = child.venue
        info = venues.get(venue)
        if info is not None and info.kind is not _LIT:
            continue
        lit.append(child)
        price = child.price
        if price is None:  # not `None in prices`: Decimal == None costs an ABC isinstance check
            market = True
        elif furthest is None or (price > furthest if buy else price < furthest):
            furthest = price
        seen = taken.get(venue)
        if seen is None:
            taken[venue] = [child.qty, price]
            continue
        seen[0] += child.qty
        reach = seen[1]
        if reach is not None and (price is None or (price > reach if buy else price < reach)):
            seen[1] = price  # None once one of them is a MARKET order
    if not lit:
        return
    if market:
        furthest = None
    for name, book in protected:
        levels = book.asks if buy else book.bids
        if not levels:
            continue
        standing = levels[0].price
        if furthest is not None and (standing >= furthest if buy else standing <= furthest):
            continue  # nothing this venue shows is better than any child's price
        if name in taken or levels[0].qty < lot:
            qty, reach = taken.get(name, (0, None))
            untaken = _first_untaken(levels, qty, reach, buy, lot)
            if untaken is None or (furthest is not None and (untaken >= furthest if buy else untaken <= furthest)):
                continue
            standing = untaken
        for child in lit:
            if child.venue != name and (child.price is None or is_better(standing, child.price, buy)):
                shown = "MARKET" if child.price is None else child.price
                yield f"{side.name} {child.qty} at {shown} on {child.venue} leaves {name}'s better {standing} standing"


def furthest_price(children: Sequence[ChildSpec], buy: bool) -> Decimal | None:
    """The furthest price these children reach into the book; None if one is a MARKET order."""
    furthest = None
    for child in children:
        price = child.price
        if price is None:  # not `None in prices`: Decimal == None costs an ABC isinstance check
            return None
        if furthest is None or (price > furthest if buy else price < furthest):
            furthest = price
    return furthest


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
