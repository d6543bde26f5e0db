"""Markouts: how the mid moved after each of our fills, per venue and horizon (adverse selection), and the
impact-free mid that TCA and the simulation mark to, so the router's own impact is not counted as a gain."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from gateway.core.types import Side

_BPS = Decimal(10_000)
_ts = attrgetter("ts_ns")


Touch = tuple[Decimal | None, Decimal | None]  # one lit venue's best (bid, ask); None: that side is empty


def touch_without(levels: Iterable[tuple[Decimal, int]], ours: Mapping[Decimal, int]) -> Decimal | None:
    """The best price of one side of a book (levels best first, as (price, qty)) once our own resting quantity
    at each price (`ours`) is taken out: a level that was only ours is no level."""
    for price, qty in levels:
        if qty > ours.get(price, 0):
            return price
    return None


@dataclass(frozen=True, slots=True)
class OwnTake:
    """One of our fills that took liquidity from a lit book: on `venue`, buying (+1) or selling (-1) at `price`."""

    venue: str
    sign: int
    price: Decimal


def impact_free_mid(touches: Mapping[str, Touch], takes: Iterable[OwnTake]) -> Decimal | None:
    """The NBBO mid over `touches` with the levels our own takes consumed put back. The gateway records the
    touches without our own resting orders (touch_without), so neither kind of our impact is counted.

    A buy that took a venue's offer at p left that offer gone, so the venue's ask reads min(ask, p) (a sell:
    its bid reads max(bid, p)); a level the venue has since replenished or moved through changes nothing,
    and a level that would now cross the venue's other side is not put back (the market moved past it). So
    a mark taken after our takes sees the market as if they had not happened, on the books they touched,
    and still sees every move the venues made themselves (a toxic venue's re-quote, news on other venues).
    None when a side is empty on every venue.
    """
    adjusted = dict(touches)
    for take in takes:
        if take.venue not in adjusted:
            continue
        bid, ask = adjusted[take.venue]
        if take.sign > 0 and (bid is None or take.price > bid):
            adjusted[take.venue] = (bid, take.price if ask is None else min(ask, take.price))
        elif take.sign < 0 and (ask is None or take.price < ask):
            adjusted[take.venue] = (take.price if bid is None else max(bid, take.price), ask)
    bids = [b for b, _ in adjusted.values() if b is not None]
    asks = [a for _, a in adjusted.values() if a is not None]
    return (max(bids) + min(asks)) / 2 if bids and asks else None


@dataclass(frozen=True, slots=True)
class Markout:
    """One fill marked to the first mid at or after fill time + horizon; negative: the price moved against us."""

    symbol: str
    venue: str
    horizon_ns: int
    fill_ts_ns: int
    qty: int
    price: Decimal
    mid: Decimal
    per_share: Decimal
    bps: float


@dataclass(frozen=True, slots=True)
class MarkoutStats:
    """The markouts of one (venue, horizon): how many fills, their quantity, and qty-weighted means."""

    count: int
    qty: int
    mean_per_share: Decimal
    mean_bps: float


@dataclass(frozen=True, slots=True)
class _Fill:
    venue: str
    sign: int  # +1 buy, -1 sell: a rising mid is good for a buy
    qty: int
    price: Decimal
    ts_ns: int


class _Sums:
    __slots__ = ("bps", "count", "qty", "value")

    def __init__(self) -> None:
        self.count = self.qty = 0
        self.value = Decimal(0)  # sum of qty * per-share markout
        self.bps = 0.0  # sum of qty * bps

    def add(self, markout: Markout) -> None:
        self.count += 1
        self.qty += markout.qty
        self.value += markout.qty * markout.per_share
        self.bps += markout.qty * markout.bps

    def stats(self) -> MarkoutStats:
        return MarkoutStats(self.count, self.qty, self.value / self.qty, self.bps / self.qty)


class MarkoutTracker:
    """Marks every fill to the mid at each horizon and aggregates per (venue, horizon).

    A fill waits, per horizon, in a queue of its symbol ordered by fill time, and leaves it when the first
    mid at or after fill time + horizon arrives; once its longest horizon has resolved nothing refers to it.
    A queue holds at most `max_pending` fills, so a symbol whose mids stop cannot grow without bound: the
    oldest waiting fill is dropped (counted in `dropped`). A fill reported after mids later than its
    horizon were already seen resolves at the next mid, the earliest still available.
    """

    def __init__(self, horizons_ns: Sequence[int], max_pending: int = 100_000) -> None:
        if not horizons_ns or min(horizons_ns) < 0:
            raise ValueError("horizons must be a non-empty set of non-negative nanosecond offsets")
        if max_pending < 1:
            raise ValueError("max_pending must be positive")
        self.horizons_ns: tuple[int, ...] = tuple(sorted(set(horizons_ns)))
        self.dropped = 0
        self._max_pending = max_pending
        self._pending: dict[str, dict[int, deque[_Fill]]] = {}
        self._sums: dict[tuple[str, int], _Sums] = {}

    def on_fill(
        self,
        symbol: str,
        venue: str,
        side: Side,
        qty: int,
        price: Decimal,
        ts_ns: int,
        mid_at_fill: Decimal | None = None,
    ) -> list[Markout]:
        """Register a fill; `mid_at_fill`, the mid at ts_ns, resolves horizon 0 at once. Returns what resolved."""
        if qty <= 0 or price <= 0:
            raise ValueError(f"a fill needs a positive qty and price, got {qty} @ {price}")
        fill = _Fill(venue, 1 if side.is_buy else -1, qty, price, ts_ns)
        queues = self._pending.get(symbol)
        if queues is None:
            queues = self._pending[symbol] = {h: deque() for h in self.horizons_ns}
        resolved = []
        for horizon, queue in queues.items():
            if horizon == 0 and mid_at_fill is not None:
                resolved.append(self._resolve(symbol, fill, 0, mid_at_fill))
            else:
                self._enqueue(queue, fill)
        return resolved

    def on_mid(self, symbol: str, ts_ns: int, mid: Decimal) -> list[Markout]:
        """Advance `symbol` to ts_ns: mark every fill whose horizon has elapsed to this mid. Returns them."""
        queues = self._pending.get(symbol)
        if queues is None:
            return []
        resolved = []
        for horizon, queue in queues.items():
            due = ts_ns - horizon
            while queue and queue[0].ts_ns <= due:
                resolved.append(self._resolve(symbol, queue.popleft(), horizon, mid))
        return resolved

    def stats(self, venue: str, horizon_ns: int) -> MarkoutStats | None:
        sums = self._sums.get((venue, horizon_ns))
        return None if sums is None else sums.stats()

    def summary(self) -> dict[tuple[str, int], MarkoutStats]:
        return {key: sums.stats() for key, sums in self._sums.items()}

    def next_due_ns(self) -> int | None:
        """When the earliest waiting fill's horizon has elapsed (a mid from then on marks it); None: none waits."""
        return min(
            (
                queue[0].ts_ns + horizon
                for queues in self._pending.values()
                for horizon, queue in queues.items()
                if queue
            ),
            default=None,
        )

    @property
    def pending(self) -> int:
        """(fill, horizon) pairs still waiting for a mid."""
        return sum(len(q) for queues in self._pending.values() for q in queues.values())

    def _enqueue(self, queue: deque[_Fill], fill: _Fill) -> None:
        if len(queue) >= self._max_pending:
            queue.popleft()
            self.dropped += 1
        if not queue or queue[-1].ts_ns <= fill.ts_ns:
            queue.append(fill)
        else:
            queue.insert(bisect_right(queue, fill.ts_ns, key=_ts), fill)

    def _resolve(self, symbol: str, fill: _Fill, horizon: int, mid: Decimal) -> Markout:
        per_share = (mid - fill.price) * fill.sign
        markout = Markout(
            symbol,
            fill.venue,
            horizon,
            fill.ts_ns,
            fill.qty,
            fill.price,
            mid,
            per_share,
            float(per_share / fill.price * _BPS),
        )
        sums = self._sums.get((fill.venue, horizon))
        if sums is None:
            sums = self._sums[(fill.venue, horizon)] = _Sums()
        sums.add(markout)
        return markout
