"""The arithmetic of `sorgw bench --e2e`: nearest-rank percentiles, ratios, CPU time read from /proc."""

from __future__ import annotations

import math
import os
import time

from gateway.e2e.bench import cpu_seconds
from gateway.e2e.report import percentile, ratios


def test_percentile_is_nearest_rank():
    values = list(range(1, 1001))  # 1..1000
    assert percentile(values, 0.5) == 500
    assert percentile(values, 0.99) == 990
    assert percentile(values, 0.999) == 999
    assert percentile([7], 0.999) == 7
    assert percentile([3, 1, 2], 0.5) == 2  # sorted first


def test_ratios_cover_every_shared_figure_but_counts():
    over = {"fills": 10, "ping": {"p50_us": 30.0}, "burst_per_s": 100.0, "cpu_ms_per_order": 2.0}
    under = {"fills": 10, "ping": {"p50_us": 10.0}, "burst_per_s": 400.0}
    assert ratios(over, under) == {"ping": {"p50_us": 3.0}, "burst_per_s": 0.25}
    assert ratios({"x": 1.0}, {"x": 0.0}) == {"x": math.inf}


def test_cpu_seconds_counts_this_process_burning_cpu():
    before = cpu_seconds(os.getpid())
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.15


def test_bench_options_that_cannot_mean_anything_are_refused(capsys):
    from gateway.cli import main

    assert main(["bench", "--audit", "sqlite"]) == 2  # a store, but no --e2e to use it
    assert main(["bench", "--e2e", "--audit", "mysql://x"]) == 2
    assert main(["bench", "--e2e", "--split", "4"]) == 2  # 3 venues by default
    assert main(["bench", "--e2e", "--rate", "0"]) == 2
    assert main(["bench", "--e2e", "--rounds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--audit STORE goes with --e2e" in err and "--split must be at most --venues" in err
