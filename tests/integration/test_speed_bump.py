"""A venue's speed bump delays the orders it receives over FIX; other venues stay fast."""

from __future__ import annotations

import time

import pytest

from gateway import topology
from gateway.fix import codec
from gateway.stack import Stack

pytestmark = pytest.mark.integration

BUMP_S = 0.35


def directed_fill_seconds(stack: Stack, cl_ord_id: str, venue: str) -> float:
    start = time.monotonic()
    stack.oms.new_order(cl_ord_id, "AAPL", "1", 100, price="190.01", tif="3", ex_destination=venue, urgency="H")
    final = stack.oms.wait_final(cl_ord_id)
    elapsed = time.monotonic() - start
    assert final is not None and final[codec.ORD_STATUS] == "2" and final[codec.LAST_MKT] == venue
    return elapsed


def test_a_speed_bumped_venue_fills_only_after_the_bump(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path, sim_overrides={"LITA": {"speed_bump_us": int(BUMP_S * 1e6)}})
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        assert directed_fill_seconds(stack, "FAST", "LITB") < BUMP_S
        assert directed_fill_seconds(stack, "SLOW", "LITA") >= BUMP_S
