"""The engine's routing policy and learning settings, built from the `routing` section of the configuration."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.analytics.learning import LearningConfig
from gateway.analytics.venue_stats import VenueStatsConfig
from gateway.config import RiskConfig, RiskLimitsConfig, RoutingConfig, SymbolConfig, UpstreamSession
from gateway.core.breaker import BreakerPolicy
from gateway.core.risk import Limits, RiskLimits
from gateway.core.routing import CostWeights, RoutingPolicy

_MS = 1_000_000


def routing_policy(routing: RoutingConfig) -> RoutingPolicy:
    cost = routing.cost
    return RoutingPolicy(
        routing.default_strategy,
        CostWeights(
            cost.toxicity_bps,
            cost.latency_bps_per_ms,
            cost.staleness_bps_per_s,
            cost.miss_bps,
            cost.explore_every,
            cost.explore_qty,
        ),
        routing.dark_timeout_ms * _MS,
        routing.probe_qty,
        routing.dark_min_fill,
    )


def breaker_policy(routing: RoutingConfig) -> BreakerPolicy:
    breaker = routing.breaker
    return BreakerPolicy(
        breaker.enabled,
        breaker.failures,
        max(1, round(breaker.window_s * 1e9)),
        max(1, round(breaker.cooldown_s * 1e9)),
    )


def learning_config(routing: RoutingConfig) -> LearningConfig:
    return LearningConfig(
        tuple(ms * _MS for ms in routing.markout_horizons_ms),
        VenueStatsConfig(
            toxicity_horizon_ns=routing.toxicity_horizon_ms * _MS, toxicity_half_life=routing.toxicity_half_life
        ),
        dark_half_life=routing.dark_half_life,
        dark_change_threshold=routing.dark_change_threshold,
        dark_change_slack=routing.dark_change_slack,
    )


def risk_limits(risk: RiskConfig, symbols: Iterable[SymbolConfig], sessions: Iterable[UpstreamSession]) -> RiskLimits:
    """The engine's pre-trade limits; per-session limits are keyed by the session as the engine names it."""
    keys = {s.target_comp_id: f"{s.begin_string}:{s.sender_comp_id}->{s.target_comp_id}" for s in sessions}
    return RiskLimits(
        _limits(risk.defaults),
        {keys[oms]: _limits(limits) for oms, limits in risk.sessions.items()},
        {symbol: _limits(limits) for symbol, limits in risk.symbols.items()},
        frozenset(risk.restricted_symbols),
        {s.symbol: s.reference_price for s in symbols},
    )


def recorded_risk_limits(config: dict) -> RiskLimits:
    """The limits a run had, from the configuration it recorded at its start (none before risk limits existed)."""
    return risk_limits(
        RiskConfig.model_validate(config.get("risk") or {}),
        [SymbolConfig.model_validate(s) for s in config.get("symbols", ())],
        [UpstreamSession.model_validate(s) for s in config.get("upstream", {}).get("sessions", ())],
    )


def _limits(config: RiskLimitsConfig) -> Limits:
    return Limits(**config.model_dump())
