"""The figures of `sorgw bench --e2e`: percentiles, medians over rounds, ratios between paths, the printed table."""

from __future__ import annotations

import math
import statistics
import sys

PATHS = ("gateway", "passthrough", "direct")


def percentile(values: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency(samples: list[int]) -> dict:
    return {
        "p50_us": percentile(samples, 0.50) / 1e3,
        "p99_us": percentile(samples, 0.99) / 1e3,
        "p99_9_us": percentile(samples, 0.999) / 1e3,
    }


def median_of(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def ratios(over: dict, under: dict) -> dict:
    """over / under for every figure both have (latencies, burst, CPU, RSS)."""

    def walk(a, b):
        if isinstance(a, dict):
            return {k: walk(a[k], b[k]) for k in a if k in b and k != "fills"}
        return a / b if b else math.inf

    return walk(over, under)


def print_report(result: dict, out=sys.stdout) -> None:
    o = result["options"]
    print(
        f"sorgw bench --e2e: {o['venues']} venues, orders reaching {o['split']}, audit {o['audit']}, "
        f"{o['store']} store, "
        f"logging at {o['log_level']}; "
        f"medians of {o['rounds']} interleaved rounds; round trips NewOrderSingle -> fill report, us",
        file=out,
    )
    paths, ratio = result["paths"], result["gateway_over_passthrough"]
    header = f"  {'':24}" + "".join(f"{name:>13}" for name in PATHS) + f"{'gw/pass':>10}"
    print(header, file=out)

    def row(label: str, get, fmt: str = "{:13.1f}") -> None:
        print(
            f"  {label:24}"
            + "".join(fmt.format(get(paths[n])) if _has(get, paths[n]) else f"{'-':>13}" for n in PATHS)
            + f"{get(ratio):10.2f}",
            file=out,
        )

    for pct, key in (("p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p99_9_us")):
        row(f"one at a time {pct}", lambda f, key=key: f["ping"][key])
    for rate in paths["gateway"]["rates"]:
        for pct, key in (("p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p99_9_us")):
            row(f"{rate}/s offered {pct}", lambda f, key=key, rate=rate: f["rates"][rate][key])
    row("burst orders/s", lambda f: f["burst_per_s"], "{:13.0f}")
    row("CPU ms per order", lambda f: f["cpu_ms_per_order"], "{:13.3f}")
    row("peak RSS MiB", lambda f: f["peak_rss_mib"])
    print(
        "  fills: " + ", ".join(f"{n} {paths[n]['fills']}" for n in PATHS) + f"; logs in {result['work_dir']}", file=out
    )


def _has(get, figures: dict) -> bool:
    try:
        get(figures)
    except KeyError:
        return False
    return True
