"""The router benchmark runs its whole request mix through plan() and reports sane numbers (never timed here)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from gateway.bench import EXPLORE_EVERY, bench_learning, bench_market, main_router, router_bench
from gateway.core.routing import CostWeights, RouteDecision, RoutingPolicy, plan

TIMES = ("p50_us", "p90_us", "p99_us", "p99_9_us", "max_us")


@pytest.fixture(scope="module")
def result() -> dict:
    return router_bench(iterations=300)


def test_percentiles_are_finite_positive_and_in_order(result):
    times = [result[name] for name in TIMES]
    assert all(math.isfinite(t) and t > 0 for t in times)
    assert times == sorted(times)
    assert result["baseline_p50_us"] > 0 and result["calls_per_s"] > 0
    assert result["ratio_p50"] == pytest.approx(result["p50_us"] / result["baseline_p50_us"])
    kinds = {"sweep", "market", "lots", "cost", "cost-lots", "fok", "dark", "post", "directed"}
    assert kinds == result["by_kind"].keys()


def test_every_plan_it_ran_returned_a_decision(result):
    assert result["decisions"] == result["iterations"] == sum(result["phases"].values()) == 300
    assert {"dark", "take", "post", "directed"} <= result["phases"].keys()


def test_the_mix_sweeps_from_one_level_to_every_level():
    market, where, cases = bench_market(venues=8, levels=10)
    levels_taken = []
    for kind, request in cases:
        decision = plan(request, market, where, RoutingPolicy())
        assert isinstance(decision, RouteDecision)
        assert decision.nbbo == market.nbbo(request.symbol, where)  # the router folds the NBBO itself
        if kind == "market":
            levels_taken.append(sum(c.rank is not None for c in decision.candidates))
    assert (min(levels_taken), max(levels_taken)) == (1, 8 * 10)


def test_main_router_prints_the_report_and_returns_0(capsys):
    assert main_router(SimpleNamespace(venues=3, levels=4, iterations=50)) == 0
    out = capsys.readouterr().out
    assert "3 lit venues x 4 levels" in out and "p99" in out and "calls/s" in out


@pytest.mark.parametrize("sizes", [{"venues": 0}, {"levels": 0}, {"iterations": 0}])
def test_sizes_below_one_are_refused(sizes):
    with pytest.raises(ValueError):
        router_bench(**sizes)


def test_the_cost_cases_pass_the_toxic_unprotected_venue_and_explore_it():
    market, where, cases = bench_market(venues=8, levels=10)
    learning = bench_learning(where)
    policy = RoutingPolicy(cost=CostWeights(explore_every=EXPLORE_EVERY))
    reasons = [plan(request, market, where, policy, learning).reason for kind, request in cases if kind == "cost"]
    assert any("passed unprotected quotes at" in reason and "LIT2" in reason for reason in reasons)
    assert any("explored LIT2" in reason for reason in reasons)
