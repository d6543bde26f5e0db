"""kill -9 the gateway while venues are filling, restart it, and check what the OMS saw: every fill once."""

from __future__ import annotations

import time

from gateway import checks
from gateway.fix import codec
from tests.e2e.harness import Processes, wait_log

# Each venue fills its child after its own delay, so a kill lands between them.
FILL_DELAYS = {"LITA": 50, "LITB": 1500, "LITC": 2500}


def test_kill_during_a_multi_venue_fill_then_restart_reports_every_fill_exactly_once(tmp_path, prefix):
    procs = Processes(tmp_path, prefix, sim_overrides={v: {"fill_latency_ms": d} for v, d in FILL_DELAYS.items()})
    oms = None
    try:
        oms = procs.start(FILL_DELAYS)
        # One parent swept across the three lit venues, urgently: no dark phase first.
        oms.new_order("K1", "AAPL", "1", 1500, price="190.04", urgency="H")
        assert oms.wait(lambda: any(checks.is_fill(m) for m in oms.reports("K1")), 10)

        procs.kill_gateway()  # mid-way: LITB and LITC fill while the gateway is dead
        time.sleep(3)
        procs.start_gateway()
        wait_log(procs.gateway_log, "gateway.recovered")

        final = oms.wait_final("K1", 20)
        reports = oms.reports("K1")
        assert final is not None and final[codec.ORD_STATUS] == "2", [m.fields for m in reports]
        assert final[codec.CUM_QTY] == "1500" and final[codec.LEAVES_QTY] == "0"
        assert checks.order_problems([m for m in reports if m.msg_type == "8"]) == []
        fills = checks.fills_of(reports)
        assert sum(q for _, q, _ in fills) == 1500 and {v for v, _, _ in fills} == set(FILL_DELAYS)
        exec_ids = [m[codec.EXEC_ID] for m in oms.received if m.msg_type == "8"]
        assert len(exec_ids) == len(set(exec_ids))
        assert '"open_parents": 1' in procs.gateway_log.read_text()
    finally:
        if oms is not None:
            oms.stop()
        procs.stop()
    assert procs.trail_break() is None
