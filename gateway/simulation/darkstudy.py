"""The dark allocation study: how close the adaptive DarkAllocator gets to the oracle on a scenario's pools.

Each episode splits `qty` shares across the pools; each pool's hidden size is drawn afresh from its
configured distribution (the matching core's own draw) and a pool fills min(sent, hidden). The adaptive
allocator (set up as the routing configuration sets up the gateway's) sees only those censored fills; the
equal split is the baseline; the oracle allocates on the true tails P(hidden >= k), computed exactly from the
distributions. All three meet the same draws. With a regime change the pools' distributions change at
`change_at`, and the oracle with them.
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
from gateway.config import DarkLiquidity, RoutingConfig
from gateway.policy import learning_config
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
    change_at: int | None = None  # the episode the pools changed at
    curve: tuple[tuple[int, float], ...] = ()  # (first episode of a window, adaptive fill / oracle fill in it)

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


def study(scenario: Scenario, seed: int, routing: RoutingConfig = RoutingConfig()) -> DarkStudyResult:
    spec = scenario.dark_study
    assert spec is not None
    pools = {v.name: v for v in scenario.dark_pools}
    min_qty = {name: v.min_qty for name, v in pools.items()}
    before = {name: v.dark for name, v in pools.items()}
    after = {**before, **spec.after}
    oracles = [_oracle(spec.qty, before, spec.unit, min_qty)]
    if spec.change_at is not None:
        oracles.append(_oracle(spec.qty, after, spec.unit, min_qty))
    share = spec.qty // len(pools) // spec.unit * spec.unit
    equal = dict.fromkeys(pools, share)
    learning = learning_config(routing)
    allocator = DarkAllocator(
        list(pools),
        unit=spec.unit,
        max_units=max(1, spec.qty // spec.unit),
        exploration=learning.dark_exploration,
        half_life=learning.dark_half_life,
        change_threshold=learning.dark_change_threshold,
        change_slack=learning.dark_change_slack,
    )
    rng = random.Random(seed)
    totals = {"adaptive": 0, "equal": 0, "oracle": 0}
    adaptive: dict[str, int] = {}
    window = max(1, spec.episodes // 30)
    curve: list[tuple[int, float]] = []
    got = best = 0
    for episode in range(spec.episodes):
        changed = spec.change_at is not None and episode >= spec.change_at
        liquidity = after if changed else before
        oracle = oracles[-1] if changed else oracles[0]
        hidden = {name: hidden_qty(dark, rng) for name, dark in liquidity.items()}
        adaptive = allocator.allocate(spec.qty, list(pools), min_qty)
        for pool, sent in adaptive.items():
            allocator.observe(pool, sent, _filled(sent, hidden[pool], min_qty[pool]))
        filled = {
            name: sum(_filled(sent, hidden[p], min_qty[p]) for p, sent in allocation.items())
            for name, allocation in (("adaptive", adaptive), ("equal", equal), ("oracle", oracle))
        }
        got, best = got + filled["adaptive"], best + filled["oracle"]
        if (episode + 1) % window == 0:
            curve.append((episode + 1 - window, got / best if best else math.nan))
            got = best = 0
        if episode >= spec.episodes - spec.last:
            for name in totals:
                totals[name] += filled[name]
    final = oracles[-1]
    return DarkStudyResult(
        scenario=scenario.name,
        qty=spec.qty,
        episodes=spec.episodes,
        last=spec.last,
        adaptive=totals["adaptive"] / spec.last,
        equal=totals["equal"] / spec.last,
        oracle=totals["oracle"] / spec.last,
        oracle_expected=expected_fill(final, {name: tail(dark) for name, dark in after.items()}),
        oracle_allocation=final,
        adaptive_allocation=adaptive,
        change_at=spec.change_at,
        curve=tuple(curve),
    )


def _oracle(qty: int, liquidity: dict[str, DarkLiquidity], unit: int, min_qty: dict[str, int]) -> dict[str, int]:
    return oracle_allocation(qty, {name: tail(dark) for name, dark in liquidity.items()}, unit, min_qty)


def _filled(sent: int, hidden: int, min_qty: int) -> int:
    """A pool refuses a child under its minimum size; otherwise it fills what it holds, up to what was sent."""
    return min(sent, hidden) if sent >= min_qty else 0
