"""What metrics cost an order: engine steps timed bare and with the gateway's metric updates, in the same run."""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

from prometheus_client import CollectorRegistry

from gateway.audit.bench import SESSION, bench_engine
from gateway.core.types import NewOrder, OrdType, Side, TimeInForce, Urgency
from gateway.metrics import Metrics
from gateway.observer import Arrival, Observer

# The FIX messages one such order moves: the NewOrderSingle in, the ack out, the child out and its ack in.
MESSAGES = (
    ("upstream", SESSION, "in", "D"),
    ("upstream", SESSION, "out", "8"),
    ("venue", "LITA", "out", "D"),
    ("venue", "LITA", "in", "8"),
)


def metrics_bench(steps: int = 5000) -> dict[str, dict[str, float]]:
    """Per-order microseconds of an engine step alone and with every metric update the gateway makes for it
    (message counts, parents received, the ack latency, the child sent), the two interleaved so drift hits both."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    bare_engine, observed_engine = bench_engine(), bench_engine()
    metrics = Metrics()
    observer = Observer(metrics, ())
    bare: list[float] = []
    observed: list[float] = []
    for i in range(steps + 200):  # the first 200 warm up
        order = NewOrder(
            SESSION,
            f"B{i}",
            "AAPL",
            Side.BUY,
            100,
            OrdType.LIMIT,
            Decimal("99.00"),
            TimeInForce.DAY,
            urgency=Urgency.HIGH,
        )
        started = time.perf_counter_ns()
        bare_engine.on_new_order(order)
        took_bare = time.perf_counter_ns() - started
        started = time.perf_counter_ns()
        arrival = Arrival(started, "order")
        observer.parent_received(SESSION)
        out = observed_engine.on_new_order(order)
        for command in out.commands:
            observer.carried_out(command, arrival)
        for message in MESSAGES:
            observer.message(*message)
        took_observed = time.perf_counter_ns() - started
        if i >= 200:
            bare.append(took_bare / 1000)
            observed.append(took_observed / 1000)
    report = {
        name: {"p50": _median(values), "p99": _p99(values), "mean": statistics.fmean(values)}
        for name, values in (("engine step", bare), ("with metrics", observed))
    }
    report["cost"] = {name: report["with metrics"][name] - report["engine step"][name] for name in ("p50", "p99")}
    registry = metrics.registry  # what the measured updates counted, warm-up included
    report["recorded"] = {
        "parents": _sample(registry, "sorgw_parent_orders_received_total", {"session": SESSION}),
        "children": _sample(registry, "sorgw_child_orders_sent_total", {"venue": "LITA"}),
        "acks": _sample(registry, "sorgw_parent_ack_seconds_count"),
    }
    return report


def _sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    value = registry.get_sample_value(name, labels)
    if value is None:
        raise LookupError(f"the registry has no sample {name} {labels or ''}")
    return value


def print_report(report: dict[str, dict[str, float]]) -> None:
    base = report["engine step"]["p50"]
    print("metric updates per order (new order: ack and one child, 4 FIX messages), microseconds")
    print(f"{'':<16}{'p50':>10}{'p99':>10}{'mean':>10}{'p50 / bare':>14}")
    for name in ("engine step", "with metrics"):
        row = report[name]
        print(f"{name:<16}{row['p50']:>10.1f}{row['p99']:>10.1f}{row['mean']:>10.1f}{row['p50'] / base:>13.2f}x")
    print(f"metrics add {report['cost']['p50']:.1f} us per order at p50, {report['cost']['p99']:.1f} us at p99")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
