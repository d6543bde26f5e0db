"""The audit benchmark runs real commits and reports sane figures (speed itself is not asserted)."""

from __future__ import annotations

import math

from gateway.audit.bench import audit_bench
from gateway.cli import main


def test_audit_bench_reports_each_mode():
    report = audit_bench(steps=60, concurrent=2)
    for mode in ("no audit", "audit, one writer", "audit, keyed (HMAC)", "audit, 2 threads"):
        row = report[mode]
        assert all(math.isfinite(v) and v > 0 for v in row.values())
        assert row["p50"] <= row["p99"]
    assert report["group commit"]["steps_per_commit"] >= 1
    assert 0 < report["hashing"]["sha256_us"] and 0 < report["hashing"]["hmac_us"]


def test_bench_rejects_a_non_positive_count(capsys):
    assert main(["bench", "--iterations", "0"]) == 2
    assert "--iterations must be at least 1" in capsys.readouterr().err
