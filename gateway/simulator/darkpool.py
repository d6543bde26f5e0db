"""A midpoint-crossing dark pool for one symbol: hidden contra size per side plus resting client orders."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from gateway.simulator.orderbook import Fill, Order, within_limit


class DarkPool:
    """Nothing is displayed. Orders cross only at the midpoint they are given, within their limits:
    first against resting orders of the other side (time priority), then against hidden size."""

    def __init__(self) -> None:
        self.hidden: dict[bool, int] = {True: 0, False: 0}  # is_buy -> hidden quantity on that side
        self._resting: list[Order] = []  # time priority

    def available(self, taker: Order, mid: Decimal | None) -> int:
        """How much `taker` could cross right now at `mid`."""
        if mid is None or not within_limit(taker.is_buy, taker.price, mid):
            return 0
        return sum(o.leaves for o in self._contra(taker, mid)) + self.hidden[not taker.is_buy]

    def cross(self, taker: Order, mid: Decimal | None) -> Iterator[Fill]:
        """Fill `taker` at `mid` as far as it can go now, consuming makers and hidden size.

        Yields each fill right after applying it, so the caller sees the orders as of that fill;
        consume it to the end.
        """
        if mid is None or not within_limit(taker.is_buy, taker.price, mid):
            return
        for maker in self._contra(taker, mid):
            if not taker.leaves:
                break
            qty = min(taker.leaves, maker.leaves)
            maker.fill(qty, mid)
            taker.fill(qty, mid)
            yield Fill(maker, qty, mid)
        self._resting = [o for o in self._resting if o.leaves]
        hidden = min(taker.leaves, self.hidden[not taker.is_buy])
        if hidden:
            taker.fill(hidden, mid)
            self.hidden[not taker.is_buy] -= hidden
            yield Fill(None, hidden, mid)

    def sweep(self, mid: Decimal | None) -> Iterator[tuple[Order, Fill]]:
        """Cross resting orders, oldest first, against each other and the hidden size: (order, fill)
        pairs, each yielded right after it is applied."""
        for order in list(self._resting):
            if order.leaves:
                for fill in self.cross(order, mid):
                    yield order, fill
        self._resting = [o for o in self._resting if o.leaves]

    def rest(self, order: Order) -> None:
        if order.leaves <= 0:
            raise ValueError("only an order with quantity left can rest")
        self._resting.append(order)

    def remove(self, order: Order) -> bool:
        """Take a resting order out of the pool; False if it is not resting here."""
        try:
            self._resting.remove(order)
        except ValueError:
            return False
        return True

    def resting(self) -> tuple[Order, ...]:
        return tuple(self._resting)

    def _contra(self, taker: Order, mid: Decimal) -> list[Order]:
        return [
            o for o in self._resting if o.is_buy != taker.is_buy and o.leaves and within_limit(o.is_buy, o.price, mid)
        ]
