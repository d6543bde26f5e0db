"""A price-time priority limit order book for one symbol, and the live order it matches."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.core.market import Level
from gateway.core.types import Side


@dataclass(slots=True, eq=False)  # identity, not field equality: two equal-looking orders are still two orders
class Order:
    """A live order inside a matching core; the core updates leaves, cum and notional on every fill.

    `owner` None marks the venue's own liquidity, which never gets reports. `price` is the limit;
    None means no limit (a market order, or a dark order pegged to the midpoint without a cap).
    """

    owner: str | None
    cl_ord_id: str
    order_id: str
    side: Side
    qty: int
    price: Decimal | None
    leaves: int = field(init=False)
    cum: int = 0
    notional: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        self.leaves = self.qty

    @property
    def is_buy(self) -> bool:
        return self.side.is_buy

    @property
    def avg_px(self) -> Decimal:
        return self.notional / self.cum if self.cum else Decimal(0)

    def fill(self, qty: int, price: Decimal) -> None:
        if not 0 < qty <= self.leaves:
            raise ValueError(f"cannot fill {qty} of an order with {self.leaves} left")
        self.leaves -= qty
        self.cum += qty
        self.notional += price * qty


@dataclass(frozen=True, slots=True)
class Fill:
    """One match: `maker` is the resting order that was hit (None: hidden liquidity), at `price`."""

    maker: Order | None
    qty: int
    price: Decimal


def within_limit(is_buy: bool, limit: Decimal | None, price: Decimal) -> bool:
    """Can an order of this side and limit trade at `price`?"""
    if limit is None:
        return True
    return price <= limit if is_buy else price >= limit


class _BookSide:
    """One side of a book: a FIFO queue and its total quantity per price, prices kept sorted."""

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self._prices: list[Decimal] = []  # ascending
        self._queues: dict[Decimal, deque[Order]] = {}
        self._totals: dict[Decimal, int] = {}

    def best(self) -> Decimal | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.is_buy else self._prices[0]

    def prices(self) -> Iterator[Decimal]:
        """Prices best first."""
        return reversed(self._prices) if self.is_buy else iter(self._prices)

    def orders_at(self, price: Decimal) -> tuple[Order, ...]:
        return tuple(self._queues.get(price, ()))

    def total_at(self, price: Decimal) -> int:
        return self._totals.get(price, 0)

    def add(self, order: Order) -> None:
        price = order.price
        assert price is not None
        if price not in self._queues:
            bisect.insort(self._prices, price)
            self._queues[price] = deque()
            self._totals[price] = 0
        self._queues[price].append(order)
        self._totals[price] += order.leaves

    def remove(self, order: Order) -> bool:
        price = order.price
        if price is None or price not in self._queues:
            return False
        try:
            self._queues[price].remove(order)
        except ValueError:
            return False
        self._reduce(price, order.leaves)
        return True

    def take(self, taker: Order, price: Decimal) -> Fill:
        """Fill the taker against the first order queued at `price`."""
        maker = self._queues[price][0]
        qty = min(taker.leaves, maker.leaves)
        maker.fill(qty, price)
        taker.fill(qty, price)
        self._reduce(price, qty)
        return Fill(maker, qty, price)

    def _reduce(self, price: Decimal, qty: int) -> None:
        self._totals[price] -= qty
        queue = self._queues[price]
        while queue and queue[0].leaves == 0:
            queue.popleft()
        if not queue:
            del self._queues[price], self._totals[price]
            del self._prices[bisect.bisect_left(self._prices, price)]


class OrderBook:
    """One symbol's lit book: matching at the resting order's price, best price first, then first come."""

    def __init__(self) -> None:
        self._sides = {True: _BookSide(True), False: _BookSide(False)}

    def best_bid(self) -> Decimal | None:
        return self._sides[True].best()

    def best_ask(self) -> Decimal | None:
        return self._sides[False].best()

    def would_cross(self, is_buy: bool, limit: Decimal | None) -> bool:
        """Would an order of this side and limit trade against the book right now?"""
        best = self._sides[not is_buy].best()
        return best is not None and within_limit(is_buy, limit, best)

    def available(self, is_buy: bool, limit: Decimal | None) -> int:
        """How much an order of this side could take within `limit` (None: any price)."""
        contra = self._sides[not is_buy]
        total = 0
        for price in contra.prices():
            if not within_limit(is_buy, limit, price):
                break
            total += contra.total_at(price)
        return total

    def match(self, taker: Order) -> Iterator[Fill]:
        """Fill `taker` against the opposite side while it is marketable.

        Yields each fill right after applying it, so the caller sees both orders as of that fill;
        consume it to the end.
        """
        contra = self._sides[not taker.is_buy]
        while taker.leaves:
            price = contra.best()
            if price is None or not within_limit(taker.is_buy, taker.price, price):
                return
            yield contra.take(taker, price)

    def add(self, order: Order) -> None:
        """Rest a limit order; it must not be marketable (match it first)."""
        if order.price is None or order.leaves <= 0:
            raise ValueError("only a limit order with quantity left can rest")
        if self.would_cross(order.is_buy, order.price):
            raise ValueError(f"resting {order.side.name} at {order.price} would cross the book")
        self._sides[order.is_buy].add(order)

    def remove(self, order: Order) -> bool:
        """Take a resting order out of the book; False if it is not resting here."""
        return self._sides[order.is_buy].remove(order)

    def orders_at(self, is_buy: bool, price: Decimal) -> tuple[Order, ...]:
        """The orders resting at one price, in time priority."""
        return self._sides[is_buy].orders_at(price)

    def levels(self, is_buy: bool, depth: int) -> tuple[Level, ...]:
        """Aggregated quantity per price, best first, at most `depth` prices."""
        side = self._sides[is_buy]
        out: list[Level] = []
        for price in side.prices():
            if len(out) == depth:
                break
            out.append(Level(price, side.total_at(price)))
        return tuple(out)

    def resting(self) -> Iterator[Order]:
        """Every resting order, bids then asks, each side best price first and in time priority."""
        for side in self._sides.values():
            for price in side.prices():
                yield from side.orders_at(price)
