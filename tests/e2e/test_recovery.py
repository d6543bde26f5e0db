"""kill -9 the gateway while venues are filling, restart it, and check what the OMS saw: every fill once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml

from gateway import checks, topology
from gateway.audit.records import first_break
from gateway.audit.stores import open_store
from gateway.config import FixConfig
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec

SORGW = [sys.executable, "-m", "gateway.cli"]
# Each venue fills its child after its own delay, so a kill lands between them.
FILL_DELAYS = {"LITA": 50, "LITB": 1500, "LITC": 2500}


def _start(args: list[str], log_path, cwd):
    return subprocess.Popen(SORGW + args, stdout=log_path.open("a"), stderr=subprocess.STDOUT, cwd=cwd)


def _wait_log(path, text: str, timeout: float = 20, after: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count(text) > after:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path.name}:\n{path.read_text() if path.exists() else ''}")


def test_kill_during_a_multi_venue_fill_then_restart_reports_every_fill_exactly_once(tmp_path, prefix):
    fix_file = {"store": "file", "heartbeat_interval": 5, "reconnect_interval": 1}
    gateway_cfg, venues_cfg = topology.build(
        tmp_path, sim_overrides={v: {"fill_latency_ms": d} for v, d in FILL_DELAYS.items()},
        gateway_overrides={"fix": {**fix_file, "store_path": str(tmp_path / "gw-store")},
                           "mqtt": {"url": "mqtt://127.0.0.1:1883", "prefix": prefix}})
    venues_cfg = venues_cfg.model_copy(update={"fix": FixConfig(**fix_file, store_path=tmp_path / "venue-store"),
                                               "mqtt": gateway_cfg.mqtt})
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
    (tmp_path / "venues.yaml").write_text(yaml.safe_dump(venues_cfg.model_dump(mode="json", by_alias=True)))
    gw_log, venue_log = tmp_path / "gateway.log", tmp_path / "venues.log"
    run_gateway = ["run", "--config", "gateway.yaml", "--log-json", "--work-dir", "gw-work"]

    venues = _start(["venue", "--config", "venues.yaml", "--work-dir", "venue-work"], venue_log, tmp_path)
    gateway = _start(run_gateway, gw_log, tmp_path)
    oms = None
    try:
        _wait_log(venue_log, "venues.started")
        for venue in ("LITA", "LITB", "LITC"):
            _wait_log(gw_log, f'"session": "{venue}"')
        up = gateway_cfg.upstream
        oms = OmsClient(SessionSpec("FIX.4.4", "OMS", "SORGW", up.host, up.port),
                        FixConfig(**fix_file, store_path=tmp_path / "oms-store"), tmp_path / "oms")
        oms.start()
        # One parent swept across the three lit venues, urgently: no dark phase first.
        oms.new_order("K1", "AAPL", "1", 1500, price="190.04", urgency="H")
        assert oms.wait(lambda: any(checks.is_fill(m) for m in oms.reports("K1")), 10)

        os.kill(gateway.pid, signal.SIGKILL)  # mid-way: LITB and LITC fill while the gateway is dead
        gateway.wait(10)
        time.sleep(3)
        gateway = _start(run_gateway, gw_log, tmp_path)
        _wait_log(gw_log, "gateway.recovered")

        final = oms.wait_final("K1", 20)
        reports = oms.reports("K1")
        assert final is not None and final[codec.ORD_STATUS] == "2", [m.fields for m in reports]
        assert final[codec.CUM_QTY] == "1500" and final[codec.LEAVES_QTY] == "0"
        assert checks.order_problems([m for m in reports if m.msg_type == "8"]) == []
        fills = checks.fills_of(reports)
        assert sum(q for _, q, _ in fills) == 1500 and {v for v, _, _ in fills} == set(FILL_DELAYS)
        exec_ids = [m[codec.EXEC_ID] for m in oms.received if m.msg_type == "8"]
        assert len(exec_ids) == len(set(exec_ids))
        assert '"open_parents": 1' in gw_log.read_text()
    finally:
        if oms is not None:
            oms.stop()
        for proc in (gateway, venues):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    store = open_store(gateway_cfg.audit.url)
    store.open()
    assert first_break(store.records()) is None
    store.close()
