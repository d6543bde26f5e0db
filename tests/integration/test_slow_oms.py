"""An OMS that sends a burst and stops reading stalls only itself: a second OMS keeps trading, and the first,
cut off as a slow consumer, gets every report exactly once by resend after it reads again and logs back on."""

from __future__ import annotations

import threading
import time

import pytest

from gateway import checks, topology
from gateway.config import FixConfig
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.stack import Stack

pytestmark = pytest.mark.integration

BURST = 2000
ROUND_TRIP_BOUND_S = 2.0


class StallingOms(OmsClient):
    """An OMS whose callback blocks while `reading` is clear: quickfix stops reading its socket meanwhile."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.reading = threading.Event()
        self.reading.set()

    def on_app(self, message, session: str) -> None:
        self.reading.wait()
        super().on_app(message, session)


def ended(oms: OmsClient) -> set[str]:
    """ClOrdIDs with a report that ends the order (one pass: the client calls this with its lock held)."""
    return {
        m[codec.CL_ORD_ID]
        for m in oms.received
        if m.msg_type == "8" and m.get(codec.ORD_STATUS) in ("2", "4", "8", "C", "3")
    }


def run(tmp_path, stall_s: float) -> None:
    fix_file = {"store": "file", "heartbeat_interval": 5, "reconnect_interval": 1}
    upstream = {
        "port": topology.free_port(),
        "send_timeout_ms": 1000,
        "sessions": [{"target_comp_id": "OMS"}, {"target_comp_id": "OMS1"}, {"target_comp_id": "OMS2"}],
    }
    gateway_cfg, venues_cfg = topology.build(
        tmp_path,
        gateway_overrides={"upstream": upstream, "fix": {**fix_file, "store_path": str(tmp_path / "gw-store")}},
    )
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        up = gateway_cfg.upstream
        slow = StallingOms(
            SessionSpec("FIX.4.4", "OMS1", "SORGW", up.host, up.port),
            FixConfig(**fix_file, store_path=tmp_path / "oms1-store"),
            tmp_path / "oms1",
        )
        slow.start()
        quick = OmsClient(
            SessionSpec("FIX.4.4", "OMS2", "SORGW", up.host, up.port),
            FixConfig(**fix_file, store_path=tmp_path / "oms2-store"),
            tmp_path / "oms2",
        )
        quick.start()
        try:
            burst = [f"B{n}" for n in range(BURST)]
            slow.reading.clear()
            for cl_ord_id in burst:
                slow.new_order(cl_ord_id, "AAPL", "1", 1, price="190.04", tif="3", ex_destination="LITA", urgency="H")

            round_trips = []
            stall_end = time.monotonic() + stall_s
            n = 0
            while time.monotonic() < stall_end:
                start = time.monotonic()
                quick.new_order(f"Q{n}", "MSFT", "1", 1, price="410.10", tif="3", ex_destination="LITB", urgency="H")
                final = quick.wait_final(f"Q{n}", stall_s + 10)
                round_trips.append(time.monotonic() - start)
                assert final is not None, f"OMS2 stalled: its order Q{n} got no final report in {stall_s + 10} s"
                n += 1
            stalled_for = time.monotonic() - (stall_end - stall_s)
            slow.reading.set()
            assert max(round_trips) < ROUND_TRIP_BOUND_S, (
                f"OMS2 stalled: slowest of {len(round_trips)} round trips {max(round_trips):.2f} s "
                f"while OMS1 did not read for {stalled_for:.1f} s"
            )
            assert len(round_trips) >= stall_s  # it kept trading all along

            assert slow.wait(lambda: len(ended(slow)) == BURST, 60), (
                f"{BURST - len(ended(slow))} of OMS1's orders have no final report"
            )
            reports = slow.reports()
            exec_ids = [m[codec.EXEC_ID] for m in reports if m.msg_type == "8"]
            assert len(exec_ids) == len(set(exec_ids)) == 2 * BURST  # a New and a fill or expiry each, once
            by_order: dict[str, list] = {}
            for m in reports:
                by_order.setdefault(m[codec.CL_ORD_ID], []).append(m)
            assert sorted(by_order) == sorted(burst)
            for cl_ord_id, stream in by_order.items():
                assert checks.order_problems(stream) == [], cl_ord_id
                assert [m[codec.EXEC_TYPE] for m in stream][0] == "0"
            assert any(m.get(43) == "Y" for m in reports), "OMS1 got nothing by resend: it was never cut off"
            cut_offs = stack.gateway.metrics.registry.get_sample_value(
                "sorgw_upstream_slow_consumer_disconnects_total",
                {"session": "FIX.4.4:SORGW->OMS1", "reason": "send_timeout"},
            )
            assert cut_offs and cut_offs >= 1
        finally:
            slow.reading.set()
            quick.stop()
            slow.stop()


def test_an_oms_that_stops_reading_for_30s_stalls_only_itself(tmp_path):
    run(tmp_path, stall_s=30)
