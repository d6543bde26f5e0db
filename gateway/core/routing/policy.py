"""The routing policy: the default strategy, the cost strategy's weights, the dark phase's sizes and times."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.types import Strategy


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
