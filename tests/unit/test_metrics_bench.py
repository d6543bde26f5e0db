"""The metrics benchmark times real metric updates against bare engine steps (speed itself is not asserted)."""

from __future__ import annotations

import math

import pytest

from gateway.cli import main
from gateway.metrics_bench import metrics_bench


def test_metrics_bench_times_both_and_really_updates_the_metrics():
    report = metrics_bench(steps=100)
    for mode in ("engine step", "with metrics"):
        row = report[mode]
        assert all(math.isfinite(v) and v > 0 for v in row.values())
        assert row["p50"] <= row["p99"]
    assert report["recorded"] == {"parents": 300, "children": 300, "acks": 300}  # 100 timed, 200 warm-up


def test_metrics_bench_refuses_no_steps(capsys):
    with pytest.raises(ValueError):
        metrics_bench(steps=0)
    assert main(["bench", "--metrics", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
