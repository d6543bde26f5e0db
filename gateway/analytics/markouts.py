"""Markouts: how the mid moved after each of our fills, per venue and horizon (adverse selection)."""
from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from gateway.core.types import Side

_BPS = Decimal(10_000)
_ts = attrgetter("ts_ns")


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

    def on_fill(self, symbol: str, venue: str, side: Side, qty: int, price: Decimal, ts_ns: int,
                mid_at_fill: Decimal | None = None) -> list[Markout]:
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
        markout = Markout(symbol, fill.venue, horizon, fill.ts_ns, fill.qty, fill.price, mid, per_share,
                          float(per_share / fill.price * _BPS))
        sums = self._sums.get((fill.venue, horizon))
        if sums is None:
            sums = self._sums[(fill.venue, horizon)] = _Sums()
        sums.add(markout)
        return markout
