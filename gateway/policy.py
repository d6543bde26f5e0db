"""The engine's routing policy and learning settings, built from the `routing` section of the configuration."""
from __future__ import annotations

from gateway.analytics.learning import LearningConfig
from gateway.analytics.venue_stats import VenueStatsConfig
from gateway.config import RoutingConfig
from gateway.core.router import CostWeights, RoutingPolicy

_MS = 1_000_000


def routing_policy(routing: RoutingConfig) -> RoutingPolicy:
    cost = routing.cost
    return RoutingPolicy(routing.default_strategy,
                         CostWeights(cost.toxicity_bps, cost.latency_bps_per_ms, cost.staleness_bps_per_s, cost.miss_bps),
                         routing.dark_timeout_ms * _MS, routing.probe_qty)


def learning_config(routing: RoutingConfig) -> LearningConfig:
    return LearningConfig(tuple(ms * _MS for ms in routing.markout_horizons_ms),
                          VenueStatsConfig(toxicity_horizon_ns=routing.toxicity_horizon_ms * _MS),
                          dark_half_life=routing.dark_half_life)
