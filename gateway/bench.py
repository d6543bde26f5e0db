"""Micro-benchmarks of the pure core: `sorgw bench --router` times plan() on a deterministic deep market."""

from __future__ import annotations

import gc
import math
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from itertools import accumulate
from time import perf_counter_ns
from typing import Any

from gateway.analytics.learning import VenueLearning
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.routing import CostWeights, PlanRequest, RouteDecision, RoutingPolicy, plan
from gateway.core.types import OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind

SYMBOL = "BENCH"
REFERENCE = Decimal("100.00")
TICK = Decimal("0.01")
TARGET_P99_US = 100.0
EXPLORE_EVERY = 20  # the cost cases' routing.cost.explore_every
# (maker fee, taker fee) per share, cycled over the lit venues; the negative taker fees are inverted venues.
FEES = [
    ("-0.0020", "0.0030"),
    ("-0.0025", "0.0030"),
    ("0.0010", "-0.0015"),
    ("-0.0015", "0.0025"),
    ("-0.0010", "0.0020"),
    ("-0.0022", "0.0028"),
    ("0.0005", "-0.0005"),
    ("0", "0.0009"),
]
DARK_POOLS = [("DRK1", "0.0010", 100), ("DRK2", "0.0005", 1000)]  # name, taker fee, minimum size
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}

Case = tuple[str, PlanRequest]  # (kind, request)


def router_bench(venues: int = 8, levels: int = 10, iterations: int = 20000, seed: int = 7) -> dict[str, Any]:
    """Time plan() per call over a fixed mix of requests on `venues` lit books of `levels` levels per side
    plus two dark pools, interleaved with a trivial baseline (the NBBO of the same market).

    Returns the sizes, plan percentiles in microseconds ("p50_us" ... "max_us", "mean_us"), "calls_per_s",
    the baseline's "baseline_p50_us" and "baseline_p99_us", "ratio_p50" and "ratio_p99" (plan / baseline),
    "target_met" (p99 < 100 us), "phases" (decisions per phase), "decisions" (plans that returned a
    RouteDecision) and "by_kind" (p50_us, p99_us and calls per request kind).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, not {iterations}")
    market, where, cases = bench_market(venues, levels, seed)
    policy = RoutingPolicy(cost=CostWeights(explore_every=EXPLORE_EVERY))
    learning = bench_learning(where)
    for _, request in cases * 20:  # warm-up: caches, branch paths, allocator pools
        plan(request, market, where, policy, learning)
    samples: list[int] = []
    baseline: list[int] = []
    kinds: dict[str, list[int]] = {}
    phases: Counter[str] = Counter()
    decisions = 0
    gc.collect()  # start the timed calls with no garbage left over from building the market
    for i in range(iterations):
        kind, request = cases[i % len(cases)]
        start = perf_counter_ns()
        decision = plan(request, market, where, policy, learning)
        took = perf_counter_ns() - start
        samples.append(took)
        kinds.setdefault(kind, []).append(took)
        decisions += isinstance(decision, RouteDecision)
        phases[decision.phase] += 1
        baseline.append(_timed(market.nbbo, SYMBOL, where))
    return _result(venues, levels, iterations, samples, baseline, kinds, phases, decisions)


def bench_market(
    venues: int = 8, levels: int = 10, seed: int = 7
) -> tuple[MarketView, dict[str, VenueInfo], list[Case]]:
    """The deterministic market, venue infos and request mix router_bench times."""
    if venues < 1 or levels < 1:
        raise ValueError(f"need at least 1 lit venue and 1 level per side, not {venues} x {levels}")
    rng = random.Random(seed)
    where = _venue_infos(venues, rng)
    market = _market(where, levels, rng)
    return market, where, _cases(market, where)


def bench_learning(where: dict[str, VenueInfo]) -> VenueLearning:
    """What the router reads about the venues: 30 marked fills a lit venue (LIT2's followed by a 3 bp adverse
    move), dark outcomes, and EXPLORE_EVERY cost parents that used every lit venue but LIT2, so every cost plan
    also explores LIT2 (the dearest path)."""
    lit = [name for name, info in where.items() if info.kind is VenueKind.LIT]
    dark = [name for name, info in where.items() if info.kind is VenueKind.DARK]
    learning = VenueLearning(lit, dark)
    for name in lit:
        for i in range(30):
            learning.child_sent(name, 100, i)
            learning.child_filled(SYMBOL, name, Side.BUY, 100, REFERENCE, i, REFERENCE)
            learning.child_done(name, 100, 100 if i % 3 else 50, True)
        learning.mid(SYMBOL, 10_000_000_000, REFERENCE - (Decimal("0.03") if name == "LIT2" else 0))
    for i in range(50):
        for pool in dark:
            learning.child_done(pool, 1000, 300 + 100 * (i % 5), True)
    for _ in range(EXPLORE_EVERY):
        learning.routed([name for name in lit if name != "LIT2"], new_parent=True)
    return learning


def main_router(args: Any) -> int:
    """Run router_bench and print its report; returns 0 whatever the numbers (a benchmark, not a test).

    `args` is what `sorgw bench --router [--venues N] [--levels N] [--iterations N]` parses: int attributes
    `venues` (lit venues, default 8), `levels` (price levels per side, default 10) and `iterations` (timed
    calls, default 20000), and optionally `seed` (another deterministic market, default 7). Sizes below 1
    raise ValueError.
    """
    result = router_bench(args.venues, args.levels, args.iterations, getattr(args, "seed", 7))
    print(_report(result))
    return 0


def _timed(fn: Callable[..., object], *args: object) -> int:
    start = perf_counter_ns()
    fn(*args)
    return perf_counter_ns() - start


# --- the market ----------------------------------------------------------------------------------------


def _venue_infos(venues: int, rng: random.Random) -> dict[str, VenueInfo]:
    where = {}
    for i in range(venues):
        maker, taker = FEES[i % len(FEES)]
        name = f"LIT{i + 1}"
        where[name] = VenueInfo(
            name, VenueKind.LIT, Decimal(maker), Decimal(taker), rng.randint(100, 900), True, protected=i % 4 != 1
        )  # unprotected quotes the cost strategy may pass
    for name, taker, min_qty in DARK_POOLS:
        where[name] = VenueInfo(
            name, VenueKind.DARK, Decimal(0), Decimal(taker), rng.randint(300, 900), True, min_qty=min_qty
        )
    return where


def _market(where: dict[str, VenueInfo], levels: int, rng: random.Random) -> MarketView:
    """Each lit book starts 1-3 ticks from the reference and steps 1-2 ticks per level, so venues overlap."""
    market = MarketView()
    for name, info in where.items():
        if info.kind is VenueKind.LIT:
            bids = _side(levels, -1, rng)
            asks = _side(levels, 1, rng)
            market.update(BookSnapshot(name, SYMBOL, bids, asks, 1, 0))
    return market


def _side(levels: int, direction: int, rng: random.Random) -> tuple[Level, ...]:
    ticks = rng.randint(1, 3)
    side = []
    for _ in range(levels):
        side.append(Level(REFERENCE + direction * ticks * TICK, rng.randint(50, 900)))
        ticks += rng.choice((1, 1, 2))
    return tuple(side)


# --- the requests --------------------------------------------------------------------------------------


def _cases(market: MarketView, where: dict[str, VenueInfo]) -> list[Case]:
    """Sweeps from one level to all of them (limit and market, lot 1 and 100, and by the cost strategy), FOK,
    dark-first, post, directed."""
    cases: list[Case] = []
    nbbo = market.nbbo(SYMBOL, where)
    lit = [name for name, info in where.items() if info.kind is VenueKind.LIT]
    for side in (Side.BUY, Side.SELL):
        levels = sorted(
            (lv for name in lit for lv in _far(market.book(name, SYMBOL), side)),
            key=lambda lv: lv.price,
            reverse=not side.is_buy,
        )
        depth = list(accumulate(lv.qty for lv in levels))
        n = len(levels)
        for k in sorted({k for k in (1, 2, 5, 10, n // 4, n // 2, n) if 1 <= k <= n}):
            qty, price = depth[k - 1], levels[k - 1].price
            cases.append(("sweep", _request(side, qty, price)))
            cases.append(("market", _request(side, qty, None)))
            cases.append(("lots", _request(side, qty, price, lot=100)))
            cases.append(("cost", _request(side, qty, price, strategy=Strategy.COST)))
            cases.append(("cost-lots", _request(side, qty, price, lot=100, strategy=Strategy.COST)))
        far = levels[-1].price
        cases.append(("sweep", _request(side, 2000, far)))
        cases.append(("fok", _request(side, levels[0].qty, levels[min(2, n - 1)].price, tif=TimeInForce.FOK)))
        for qty, urgency in ((500, Urgency.MEDIUM), (2000, Urgency.LOW), (1500, Urgency.MEDIUM)):
            cases.append(("dark", _request(side, qty, far, urgency=urgency)))
        cases.append(("dark", _request(side, 2000, None, urgency=Urgency.MEDIUM)))
        near = nbbo.bid if side.is_buy else nbbo.ask
        cases.append(("post", _request(side, 1000, near, tif=TimeInForce.DAY)))
        cases.append(("post", _request(side, 300, near, tif=TimeInForce.DAY, urgency=Urgency.MEDIUM)))
        cases.append(("directed", _request(side, 800, far, ex_destination=lit[-1])))
        cases.append(("directed", _request(side, 800, None, ex_destination=DARK_POOLS[0][0])))
    return cases


def _far(book: BookSnapshot | None, side: Side) -> tuple[Level, ...]:
    if book is None:
        return ()
    return book.asks if side.is_buy else book.bids


def _request(
    side: Side,
    qty: int,
    limit: Decimal | None,
    tif: TimeInForce = TimeInForce.IOC,
    urgency: Urgency = Urgency.HIGH,
    **kw: Any,
) -> PlanRequest:
    ord_type = OrdType.MARKET if limit is None else OrdType.LIMIT
    return PlanRequest("BENCH-1", SYMBOL, side, qty, ord_type, limit, tif, urgency, **kw)


# --- the numbers ---------------------------------------------------------------------------------------


def _percentile(ordered: list[int], pct: float) -> float:
    """Nearest-rank percentile of sorted nanoseconds, in microseconds."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1] / 1000


def _result(
    venues: int,
    levels: int,
    iterations: int,
    samples: list[int],
    baseline: list[int],
    kinds: dict[str, list[int]],
    phases: Counter[str],
    decisions: int,
) -> dict[str, Any]:
    ordered = sorted(samples)
    base = sorted(baseline)
    result: dict[str, Any] = {"venues": venues, "levels": levels, "iterations": iterations}
    for name, pct in PERCENTILES.items():
        result[f"{name}_us"] = _percentile(ordered, pct)
    result["max_us"] = ordered[-1] / 1000
    result["mean_us"] = sum(ordered) / len(ordered) / 1000
    result["calls_per_s"] = 1e9 * len(ordered) / sum(ordered)
    result["baseline_p50_us"] = _percentile(base, 50)
    result["baseline_p99_us"] = _percentile(base, 99)
    result["ratio_p50"] = result["p50_us"] / result["baseline_p50_us"]
    result["ratio_p99"] = result["p99_us"] / result["baseline_p99_us"]
    result["target_met"] = result["p99_us"] < TARGET_P99_US
    result["phases"] = dict(phases)
    result["decisions"] = decisions
    result["by_kind"] = {kind: _kind(ns) for kind, ns in kinds.items()}
    return result


def _kind(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_us": _percentile(ordered, 50), "p99_us": _percentile(ordered, 99), "calls": len(ordered)}


def _report(r: dict[str, Any]) -> str:
    lines = [
        f"router plan(): {r['venues']} lit venues x {r['levels']} levels per side + {len(DARK_POOLS)} dark pools, "
        f"{r['iterations']} calls",
        "  " + "  ".join(f"{name} {r[f'{name}_us']:.1f}" for name in [*PERCENTILES, "max"]) + "  (us)",
        f"  mean {r['mean_us']:.1f} us, {r['calls_per_s']:,.0f} calls/s",
        f"  baseline MarketView.nbbo(): p50 {r['baseline_p50_us']:.2f} us, p99 {r['baseline_p99_us']:.2f} us; "
        f"plan/baseline p50 {r['ratio_p50']:.1f}x, p99 {r['ratio_p99']:.1f}x",
        "  by kind: "
        + ", ".join(f"{kind} p50 {k['p50_us']:.1f} / p99 {k['p99_us']:.1f}" for kind, k in r["by_kind"].items()),
        "  phases: " + ", ".join(f"{phase} {n}" for phase, n in sorted(r["phases"].items())),
        f"  p99 < {TARGET_P99_US:.0f} us (the target at 8 venues x 10 levels): "
        f"{'met' if r['target_met'] else 'NOT met'} (p99 {r['p99_us']:.1f} us; absolute times vary about ±50% "
        f"between runs, compare the ratios)",
    ]
    return "\n".join(lines)
