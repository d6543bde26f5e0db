"""`sorgw bench --e2e` as a user runs it: a tiny run reports every figure for all three paths, a failed start is
an error naming the process."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import subprocess
import sys

import asyncpg
import pytest

from gateway.e2e.bench import PATHS, BenchError, Options, run
from gateway.e2e.report import print_report
from tests.mqtt_broker import retained_topics

SORGW = [sys.executable, "-m", "gateway.cli"]
# Two rounds: each path's venue outlives a round, so the second round's orders must be new to it.
TINY = ["bench", "--e2e", "--orders", "30", "--rounds", "2", "--rate", "200", "--duration", "0.5", "--venues", "2"]
PER_PATH = 2 * (30 + 100 + 30)  # rounds x (one at a time, 200/s for 0.5 s, the burst)


def _run(tmp_path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SORGW, *TINY, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )


def _leaves(figures, prefix=""):
    if isinstance(figures, dict):
        for key, value in figures.items():
            yield from _leaves(value, f"{prefix}.{key}")
    else:
        yield prefix, figures


def test_tiny_run_reports_every_figure_for_all_three_paths(tmp_path):
    done = _run(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    paths = result["paths"]
    assert set(paths) == set(PATHS)
    for name in PATHS:
        figures = paths[name]
        assert figures["fills"] == PER_PATH, (name, figures["fills"])
        assert set(figures["ping"]) == {"p50_us", "p99_us", "p99_9_us"}
        assert set(figures["rates"]) == {"200"}
        assert figures["ping"]["p50_us"] <= figures["ping"]["p99_us"] <= figures["ping"]["p99_9_us"]
    for name in ("gateway", "passthrough"):
        assert {"cpu_ms_per_order", "peak_rss_mib"} <= set(paths[name])
    assert "cpu_ms_per_order" not in paths["direct"]  # no process of ours between the OMS and the venue
    for section in ("paths", "gateway_over_passthrough", "passthrough_over_direct"):
        leaves = list(_leaves(result[section]))
        assert leaves
        for key, value in leaves:
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (section, key, value)
    assert set(result["gateway_over_passthrough"]) == {
        "ping",
        "rates",
        "burst_per_s",
        "cpu_ms_per_order",
        "peak_rss_mib",
    }
    # The gateway really audited the orders it routed (its SQLite trail is in the bench's work directory).
    assert (tmp_path / os.path.basename(result["work_dir"]) / "gateway" / "audit.db").stat().st_size > 0
    # The same figures as the terminal table (the default output), without a second run.
    table = io.StringIO()
    print_report(result, table)
    assert "gw/pass" in table.getvalue() and "200/s offered p99" in table.getvalue()
    assert "burst orders/s" in table.getvalue()
    assert f"fills: gateway {PER_PATH}, passthrough {PER_PATH}, direct {PER_PATH}" in table.getvalue()


def test_a_gateway_that_cannot_start_is_an_error_naming_it(tmp_path):
    # Nothing listens on port 1: the gateway cannot open its audit store and exits.
    done = _run(tmp_path, "--audit", "postgresql://postgres@127.0.0.1:1/test", timeout=120)
    assert done.returncode == 1
    assert "sorgw bench --e2e: the gateway did not start" in done.stderr
    assert done.stdout == ""
    assert _running_under(tmp_path) == []  # the venue simulators it had started are stopped


def _running_under(directory) -> list[str]:
    """Command lines of live processes that name a path under `directory`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(cmdline)
    return found


def test_split_orders_sweep_exactly_that_many_venues_on_every_path(tmp_path, broker):
    done = _run(tmp_path, "--json", "--split", "3", "--venues", "4", "--mqtt", broker, "--log-level", "debug")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["options"]["split"] == 3
    assert all(result["paths"][name]["fills"] == PER_PATH for name in PATHS)
    # The gateway routed every parent across the three venues at the best price, never to the fourth (each child
    # sent is a line at debug).
    log = (tmp_path / os.path.basename(result["work_dir"]) / "gateway" / "gateway.log").read_text()
    sent = [line for line in log.splitlines() if "venue.child_sent" in line]
    venues = {venue: sum(f"venue={venue}" in line for line in sent) for venue in ("LITA", "LITB", "LITC", "LITD")}
    assert venues["LITD"] == 0 and min(venues["LITA"], venues["LITB"], venues["LITC"]) > 0, venues
    assert len(sent) == 3 * (PER_PATH + 2 * 20)  # and the warm-up orders
    assert asyncio.run(retained_topics(result["options"]["mqtt_prefix"])) == set()  # no books left on the broker


def test_audit_on_postgresql_and_the_table_is_dropped_after(tmp_path, postgres_url):
    done = _run(tmp_path, "--json", "--audit", postgres_url, "--rounds", "1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["options"]["audit"] == postgres_url
    assert all(result["paths"][name]["fills"] == PER_PATH // 2 for name in PATHS)
    assert not (tmp_path / os.path.basename(result["work_dir"]) / "gateway" / "audit.db").exists()

    async def tables() -> list[str]:
        conn = await asyncpg.connect(postgres_url, timeout=3)
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables")]
        finally:
            await conn.close()

    assert result["options"]["audit_table"] not in asyncio.run(tables())


def test_fills_that_do_not_come_in_time_are_an_error_naming_the_round_and_path(tmp_path):
    opts = Options(venues=1, orders=5, rounds=1, rates=(100.0,), duration=0.1, phase_timeout=0.0001)
    with pytest.raises(BenchError) as failed:
        run(opts, tmp_path / "run")
    assert "round 1 on the gateway path failed" in str(failed.value)
    assert "orders not filled within" in str(failed.value)
    assert _running_under(tmp_path) == []
