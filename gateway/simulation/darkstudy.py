"""The dark allocation study: how close the adaptive DarkAllocator gets to the oracle on a scenario's pools.

Each episode splits `qty` shares across the pools; each pool's hidden size is drawn afresh from its
configured distribution (the matching core's own draw) and a pool fills min(sent, hidden). The adaptive
allocator sees only those censored fills; the equal split is the baseline; the oracle allocates once on the
true tails P(hidden >= k), computed exactly from the distributions. All three meet the same draws.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from gateway.analytics.dark_allocation import (
    DarkAllocator,
    Tail,
    expected_fill,
    oracle_allocation,
)
from gateway.config import DarkLiquidity
from gateway.simulation.scenarios import Scenario
from gateway.simulator.venue import hidden_qty


@dataclass(frozen=True, slots=True)
class DarkStudyResult:
    scenario: str
    qty: int
    episodes: int
    last: int
    adaptive: float  # mean shares filled per episode over the last `last` episodes
    equal: float
    oracle: float
    oracle_expected: float  # the oracle allocation's expected fill, from the true tails
    oracle_allocation: dict[str, int]
    adaptive_allocation: dict[str, int]  # the allocator's split in the final episode

    @property
    def ratio(self) -> float:
        return self.adaptive / self.oracle if self.oracle else math.nan


def tail(dark: DarkLiquidity) -> Tail:
    """P(hidden >= k) for k >= 1 shares, exactly as hidden_qty() draws it (it rounds to whole shares)."""
    p, mean = dark.fill_probability, dark.mean_qty
    if dark.distribution == "exponential":
        return lambda k: p * math.exp(-(k - 0.5) / mean) if mean else 0.0
    if dark.distribution == "uniform":
        return lambda k: p * min(1.0, max(0.0, 1 - (k - 0.5) / (2 * mean))) if mean else 0.0
    if dark.stdev_qty == 0:
        return lambda k: p if round(mean) >= k else 0.0
    return lambda k: p * 0.5 * math.erfc((k - 0.5 - mean) / (dark.stdev_qty * math.sqrt(2)))


def study(scenario: Scenario, seed: int) -> DarkStudyResult:
    spec = scenario.dark_study
    assert spec is not None
    pools = {v.name: v for v in scenario.dark_pools}
    min_qty = {name: v.min_qty for name, v in pools.items()}
    tails = {name: tail(v.dark) for name, v in pools.items()}
    oracle = oracle_allocation(spec.qty, tails, spec.unit, min_qty)
    share = spec.qty // len(pools) // spec.unit * spec.unit
    equal = dict.fromkeys(pools, share)
    allocator = DarkAllocator(list(pools), unit=spec.unit, max_units=max(1, spec.qty // spec.unit))
    rng = random.Random(seed)
    totals = {"adaptive": 0, "equal": 0, "oracle": 0}
    adaptive: dict[str, int] = {}
    for episode in range(spec.episodes):
        hidden = {name: hidden_qty(v.dark, rng) for name, v in pools.items()}
        adaptive = allocator.allocate(spec.qty, list(pools), min_qty)
        for pool, sent in adaptive.items():
            allocator.observe(pool, sent, _filled(sent, hidden[pool], min_qty[pool]))
        if episode >= spec.episodes - spec.last:
            for name, allocation in (("adaptive", adaptive), ("equal", equal), ("oracle", oracle)):
                totals[name] += sum(_filled(sent, hidden[p], min_qty[p]) for p, sent in allocation.items())
    return DarkStudyResult(
        scenario=scenario.name, qty=spec.qty, episodes=spec.episodes, last=spec.last,
        adaptive=totals["adaptive"] / spec.last, equal=totals["equal"] / spec.last,
        oracle=totals["oracle"] / spec.last, oracle_expected=expected_fill(oracle, tails),
        oracle_allocation=oracle, adaptive_allocation=adaptive,
    )


def _filled(sent: int, hidden: int, min_qty: int) -> int:
    """A pool refuses a child under its minimum size; otherwise it fills what it holds, up to what was sent."""
    return min(sent, hidden) if sent >= min_qty else 0
