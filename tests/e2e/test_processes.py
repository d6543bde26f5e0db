"""`sorgw venue` and `sorgw run` as separate processes: trade over FIX, then stop cleanly on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gateway import checks, topology
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec

SORGW = [sys.executable, "-m", "gateway.cli"]


def _dump(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True)))
    return path


def _wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{log.read_text()}")


@pytest.fixture
def processes(tmp_path, prefix):
    mqtt = {"url": "mqtt://127.0.0.1:1883", "prefix": prefix}
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides={"mqtt": mqtt})
    venues_cfg = venues_cfg.model_copy(update={"mqtt": gateway_cfg.mqtt})
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(args: list[str], name: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            SORGW + args + ["--work-dir", str(tmp_path / name)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        started.append((proc, log))
        return proc, log

    venue_cfg_path = _dump(venues_cfg, tmp_path / "venues.yaml")
    gateway_cfg_path = _dump(gateway_cfg, tmp_path / "gateway.yaml")
    yield gateway_cfg, start, venue_cfg_path, gateway_cfg_path
    for proc, _ in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gateway_and_venues_trade_then_stop_cleanly_on_signals(processes, tmp_path):
    gateway_cfg, start, venue_cfg, gateway_cfg_path = processes
    venues, venues_log = start(["venue", "--config", str(venue_cfg)], "venues")
    _wait_for(venues, venues_log, "venues.started")
    gateway, gateway_log = start(["run", "--config", str(gateway_cfg_path), "--log-json"], "gateway")
    for venue in ("LITA", "LITB", "LITC", "DRKA", "DRKB"):
        _wait_for(gateway, gateway_log, f'"session": "{venue}"')

    up = gateway_cfg.upstream
    oms = OmsClient(SessionSpec("FIX.4.4", "OMS", "SORGW", up.host, up.port), gateway_cfg.fix, tmp_path / "oms")
    oms.start()
    try:
        oms.new_order("P1", "MSFT", "2", 100, price="409.99", ex_destination="LITC")
        final = oms.wait_final("P1", 10)
        assert final is not None and final[codec.ORD_STATUS] == "2", oms.reports("P1")
        assert checks.order_problems(oms.reports("P1")) == []
        # Books cross the process boundary over MQTT, so an unrouted order sweeps several venues.
        oms.new_order("P2", "AAPL", "1", 1500, price="190.04", urgency="H")
        final = oms.wait_final("P2", 10)
        assert final is not None and final[codec.ORD_STATUS] == "2", oms.reports("P2")
        assert checks.order_problems(oms.reports("P2")) == []
        assert len({venue for venue, _, _ in checks.fills_of(oms.reports("P2"))}) >= 2
    finally:
        oms.stop()

    gateway.send_signal(signal.SIGTERM)
    assert gateway.wait(20) == 0
    venues.send_signal(signal.SIGINT)
    assert venues.wait(20) == 0
    gateway_text = gateway_log.read_text()
    assert '"event": "gateway.stopping"' in gateway_text and '"signal": "SIGTERM"' in gateway_text
    assert '"event": "gateway.stopped"' in gateway_text and "Traceback" not in gateway_text
    venues_text = venues_log.read_text()
    assert "venues.stopped" in venues_text and "Traceback" not in venues_text


def test_bad_config_exits_non_zero_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (Path(__file__).parents[2] / "config" / "gateway.yaml").read_text().replace("port: 9876", "port: not-a-port")
        + "\nno_such_setting: 1\n"
    )
    result = subprocess.run(SORGW + ["run", "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "upstream.port" in result.stderr and "no_such_setting: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_start_up_error(tmp_path):
    gateway_cfg, _ = topology.build(tmp_path)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", gateway_cfg.upstream.port))
        s.listen()
        path = _dump(gateway_cfg, tmp_path / "gateway.yaml")
        result = subprocess.run(
            SORGW + ["run", "--config", str(path), "--work-dir", str(tmp_path / "w")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "sorgw run:" in result.stderr and str(gateway_cfg.upstream.port) in result.stderr
    assert "Traceback" not in result.stderr
