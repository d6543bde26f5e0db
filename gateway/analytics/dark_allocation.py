"""Adaptive dark-pool allocation from censored fills (Ganchev, Nevmyvaka, Kearns, Wortman Vaughan, CACM 2010)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from heapq import heapify, heappop, heappush
from types import MappingProxyType

Tail = Callable[[int], float]  # k shares -> P(the pool has at least k shares for us)
_NO_MINIMUMS: Mapping[str, int] = MappingProxyType({})


class _PoolEstimate:
    """Kaplan–Meier estimate of one pool's liquidity tail T(k) = P(S >= k), S and k in units.

    An observation is exact (S = filled) when the pool filled less than sent, censored (S >= sent) when it
    filled everything. A censored S >= v is at risk, without an event, at every k < v; an exact S = r is at
    risk at every k <= r and is the event at r. Observations carry weights (see DarkAllocator's half_life):
    `now` is the weight of one observed now, so weight / now is what an observation counts today.
    """

    def __init__(self, max_units: int) -> None:
        self._exact = [0.0] * (max_units + 1)  # [r]: weight of observations with S = r
        self._censored = [0.0] * (max_units + 1)  # [v]: weight of observations with S >= v
        self._max = max_units
        self._top = 0  # the highest k with an observation: past it nobody is at risk
        self._optimistic: tuple[int, float, list[float]] | None = None  # (min_at_risk, now, tail) of the last call

    def observe(self, units: int, exact: bool, weight: float) -> None:
        """S = units when exact, else S >= units; S >= max_units is all that is kept beyond max_units."""
        if exact and units < self._max:
            self._exact[units] += weight
        elif units > 0:
            self._censored[min(units, self._max)] += weight
        self._top = max(self._top, min(units, self._max))
        self._optimistic = None

    def rescale(self, factor: float) -> None:
        self._exact = [w * factor for w in self._exact]
        self._censored = [w * factor for w in self._censored]
        self._optimistic = None

    def tail(self, now: float) -> tuple[float, ...]:
        """T(0), T(1), ... as far as the data defines it (while some observation is at risk)."""
        return tuple(self._estimate(1, now))

    def optimistic(self, min_at_risk: int, now: float) -> list[float]:
        """T(0..max_units), held flat from the first k whose step is estimated from under min_at_risk observations.

        T is non-increasing, so the flat tail never understates it: a pool gets units there until enough of
        its fills (or misses) show what it really holds. A pool never observed, or whose observations have
        faded, is 1 everywhere.
        """
        if self._optimistic is None or self._optimistic[:2] != (min_at_risk, now):
            tail = self._estimate(min_at_risk, now)
            tail.extend([tail[-1]] * (self._max + 1 - len(tail)))
            self._optimistic = (min_at_risk, now, tail)
        return self._optimistic[2]

    def _estimate(self, min_at_risk: int, now: float) -> list[float]:
        """The product-limit estimate T(0), T(1), ... up to the first step with fewer than min_at_risk
        observations (as they count now) at risk."""
        tail = [1.0]
        enough = min_at_risk * now * (1 - 1e-9)  # weights are floats: an exact count must not fall short
        for at_risk, events in self._hazards():
            if at_risk < enough or at_risk <= 0:
                break
            tail.append(tail[-1] * (1 - events / at_risk))
        return tail

    def _hazards(self) -> list[tuple[float, float]]:
        """(weight at risk, weight of events) at k = 0.. up to the last observation (or max_units-1)."""
        hazards = []
        exact_at_or_above = sum(self._exact)
        censored_above = sum(self._censored)
        for k in range(min(self._top + 1, self._max)):
            censored_above -= self._censored[k]
            hazards.append((exact_at_or_above + censored_above, self._exact[k]))
            exact_at_or_above -= self._exact[k]
        return hazards


class DarkAllocator:
    """Splits an order across dark pools to maximise expected fill, learning each pool from its fills.

    Quantities are allocated in units of `unit` shares, at most `max_units` per pool. The next unit goes
    to the pool with the largest optimistic T(allocated + 1). A step of T is trusted once
    ceil(exploration * ln(1 + observations)) observations were at risk there (the paper's cut-off, with
    its confidence tightening as data comes in), so a step that a few unlucky fills made look dry is
    tried again later instead of never.

    With a `half_life` (in observations, of any pool), older observations count less: one that many
    observations old counts half. After a pool's liquidity changes its estimate follows it, and a pool left
    out (so not observed) sees its old observations fade until its tail is optimistic again and it is tried:
    the observations counted stay bounded, and so does the exploration cut-off, so learning never stops.
    None: every observation counts the same forever (best on steady pools).

    With a `change_threshold`, a two-sided CUSUM per pool sums how much more (or less) of each child filled
    than the estimate expected, less `change_slack` per outcome; past the threshold the pools have changed:
    every history then counts `change_keep` of what it did, so all pools (those left out too) are explored
    again, while steady pools keep their whole history.
    """

    def __init__(
        self,
        pools: Sequence[str],
        unit: int = 100,
        max_units: int = 200,
        exploration: float = 1.5,
        half_life: float | None = None,
        change_threshold: float | None = None,
        change_slack: float = 0.1,
        change_keep: float = 0.05,
    ) -> None:
        if unit < 1 or max_units < 1 or exploration <= 0 or (half_life is not None and half_life <= 0):
            raise ValueError("unit, max_units, exploration and half_life must be positive")
        if (change_threshold is not None and change_threshold <= 0) or change_slack < 0 or not 0 <= change_keep < 1:
            raise ValueError("change_threshold must be positive, change_slack non-negative, change_keep in [0, 1)")
        self._change = change_threshold
        self._slack = change_slack
        self._keep = change_keep
        self._drift = {pool: [0.0, 0.0] for pool in pools}  # pool -> CUSUM of fills above and below the estimate
        self.changes = 0  # regime changes detected
        self.unit = unit
        self.max_units = max_units
        self._exploration = exploration
        self._growth = 1.0 if half_life is None else 2 ** (1 / half_life)
        self._now = 1.0  # the weight of an observation made now: it grows by _growth per observation
        self._observations = 0.0  # observations so far, as they count now
        self._pools = {pool: _PoolEstimate(max_units) for pool in pools}

    def allocate(
        self, qty: int, eligible: Sequence[str], min_qty: Mapping[str, int] = _NO_MINIMUMS, min_fill: float = 0.0
    ) -> dict[str, int]:
        """Pool -> shares, in eligible order, pools given nothing left out.

        The shares sum to qty rounded down to units, unless that exceeds max_units per pool, or a pool's next
        unit's optimistic fill estimate is under min_fill (what was learnt about it caps its share), or pools
        must be dropped because their share would be under their minimum (a pool is dropped, the one with the
        smallest share first, and the rest re-allocated).
        """
        min_at_risk = max(1, math.ceil(self._exploration * math.log1p(self._observations)))
        tails = {pool: self._pool(pool).optimistic(min_at_risk, self._now) for pool in eligible}
        return _allocate(
            qty // self.unit,
            list(dict.fromkeys(eligible)),
            lambda pool, n: tails[pool][n + 1],
            self.max_units,
            self.unit,
            min_qty,
            min_fill,
        )

    def observe(self, pool: str, sent: int, filled: int) -> None:
        """What a child of `sent` shares to `pool` filled."""
        if not 0 <= filled <= sent:
            raise ValueError(f"a pool fills between 0 and what was sent, got {filled} of {sent}")
        estimate = self._pool(pool)
        if self._change is not None and sent >= self.unit and self._changed(pool, estimate, sent, filled):
            self._forget()
        estimate.observe(filled // self.unit, filled < sent, self._now)
        self._observations = self._observations / self._growth + 1
        if self._growth > 1:
            self._now *= self._growth
            if self._now > 1e100:  # before the weights overflow; only their ratios to _now matter
                for estimate in self._pools.values():
                    estimate.rescale(1 / self._now)
                self._now = 1.0

    def _changed(self, pool: str, estimate: _PoolEstimate, sent: int, filled: int) -> bool:
        """A two-sided CUSUM of the share filled less the share the estimate expects: has it drifted past the
        threshold (the pool now holds clearly more or less than its history says)?"""
        units = min(sent // self.unit, self.max_units)
        tail = estimate.optimistic(1, self._now)
        expected = sum(tail[1 : units + 1]) / units
        surprise = min(filled, sent) / sent - expected
        drift = self._drift[pool]
        drift[0] = max(0.0, drift[0] + surprise - self._slack)
        drift[1] = max(0.0, drift[1] - surprise - self._slack)
        return max(drift) > self._change  # type: ignore[operator]

    def _forget(self) -> None:
        """A regime change: every pool's history now counts change_keep of what it did, so pools are explored
        again, and the drift statistics start over."""
        self.changes += 1
        for estimate in self._pools.values():
            estimate.rescale(self._keep)
        self._observations *= self._keep
        for drift in self._drift.values():
            drift[0] = drift[1] = 0.0

    def tail(self, pool: str) -> tuple[float, ...]:
        """The Kaplan–Meier estimate of P(pool holds >= k units), k = 0, 1, ..., as far as its data reaches."""
        return self._pool(pool).tail(self._now)

    def _pool(self, pool: str) -> _PoolEstimate:
        estimate = self._pools.get(pool)
        if estimate is None:
            raise ValueError(f"unknown dark pool {pool}")
        return estimate


def oracle_allocation(
    qty: int, tails: Mapping[str, Tail], unit: int = 100, min_qty: Mapping[str, int] = _NO_MINIMUMS
) -> dict[str, int]:
    """The allocation maximising expected fill when each pool's true tail (in shares) is known."""

    def marginal(pool: str, n: int) -> float:
        tail = tails[pool]
        return sum(tail(k) for k in range(n * unit + 1, (n + 1) * unit + 1))

    units = qty // unit
    return _allocate(units, list(tails), marginal, units, unit, min_qty, 0.0)


def expected_fill(allocation: Mapping[str, int], tails: Mapping[str, Tail]) -> float:
    """Expected shares filled: E[min(v, S)] = sum over k = 1..v of P(S >= k), summed over pools."""
    return sum(sum(tails[pool](k) for k in range(1, shares + 1)) for pool, shares in allocation.items())


def _allocate(
    units: int,
    pools: list[str],
    marginal: Callable[[str, int], float],
    cap: int,
    unit: int,
    min_qty: Mapping[str, int],
    floor: float,
) -> dict[str, int]:
    """Greedy allocation, dropping pools whose share falls under their minimum and re-allocating the rest."""
    pools = [pool for pool in pools if min_qty.get(pool, 0) <= units * unit]
    while True:
        given = _greedy(units, pools, marginal, cap, floor)
        short = [pool for pool in pools if 0 < given[pool] * unit < min_qty.get(pool, 0)]
        if not short:
            return {pool: n * unit for pool, n in given.items() if n}
        pools.remove(min(short, key=given.__getitem__))


def _greedy(
    units: int, pools: Sequence[str], marginal: Callable[[str, int], float], cap: int, floor: float
) -> dict[str, int]:
    """Each unit to the pool whose next unit is likeliest to fill; ties to the pool with fewer units, then listed
    first; no unit whose marginal is under floor (with a floor of 0 every unit is given, up to cap a pool).

    Optimal for expected fill because each pool's marginal is non-increasing in what it already has.
    """
    given = dict.fromkeys(pools, 0)
    heap = [(-m, 0, i, pool) for i, pool in enumerate(pools) if (m := marginal(pool, 0)) >= floor]
    heapify(heap)
    for _ in range(units):
        if not heap:
            break
        _, n, i, pool = heappop(heap)
        given[pool] = n = n + 1
        if n < cap and (m := marginal(pool, n)) >= floor:
            heappush(heap, (-m, n, i, pool))
    return given
