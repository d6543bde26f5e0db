"""The short soak: the gateway as its own process keeps its memory flat while finished orders pile up."""

from __future__ import annotations

import pytest

from gateway.soak import print_report, run_soak

pytestmark = pytest.mark.integration

# What an order may still cost after the warm-up: quickfix's file store keeps an offset per message sent,
# and the venue session keeps the newest 10,000 children it sent (for rejects naming a sequence number).
# Before finished orders left the engine, each one kept about 3.3 KB (1.1 KB after, on this machine).
BYTES_PER_ORDER = 2_000


def test_rss_does_not_grow_with_the_number_of_finished_orders(tmp_path, capsys):
    result = run_soak(
        rate=150,
        duration_s=24,
        warmup_s=8,
        work_dir=tmp_path,
        gateway_overrides={"routing": {"retain_finished_ms": 1000, "final_states_kept": 1000}},
    )
    with capsys.disabled():
        print_report(result)
    assert result.finished == result.sent, "some orders were never answered with a final report"
    assert result.bytes_per_order < BYTES_PER_ORDER, (
        f"RSS grew {result.bytes_per_order:.0f} bytes per finished order after the warm-up"
    )
