"""The router's pure core: plan() over the shared survey, sweep and trade-through guard, one module per strategy
(sweep, liquidity, cost, dark, single; directed and posting beside them), and the venue rules that make a plan
sendable. Its public names are here."""

from __future__ import annotations

from gateway.core.routing.cost import expected_costs
from gateway.core.routing.decision import Candidate, Exclusion, PlanRequest, RouteDecision
from gateway.core.routing.policy import CostWeights, RoutingPolicy
from gateway.core.routing.router import plan
from gateway.core.routing.survey import DISCONNECTED, REJECTED
from gateway.core.routing.trade_through import trade_through_violations

__all__ = [
    "DISCONNECTED",
    "REJECTED",
    "Candidate",
    "CostWeights",
    "Exclusion",
    "PlanRequest",
    "RouteDecision",
    "RoutingPolicy",
    "expected_costs",
    "plan",
    "trade_through_violations",
]
