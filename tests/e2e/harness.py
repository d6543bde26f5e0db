"""Venue simulators and the gateway as separate processes with persistent FIX stores, and an OMS to drive them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gateway import topology
from gateway.audit.records import Record, first_break
from gateway.audit.stores import open_store
from gateway.config import FixConfig, GatewayConfig
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec

SORGW = [sys.executable, "-m", "gateway.cli"]
FIX_FILE = {"store": "file", "heartbeat_interval": 5, "reconnect_interval": 1}


def wait_log(path: Path, text: str, timeout: float = 20, after: int = 0) -> None:
    """Wait until `text` appears in the log more than `after` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(errors="replace").count(text) > after:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path.name}:\n{path.read_text() if path.exists() else ''}")


class Processes:
    """`sorgw venue` and `sorgw run` in tmp_path, sharing books over Mosquitto; every store is a file store."""

    def __init__(
        self,
        tmp_path: Path,
        prefix: str,
        sim_overrides: dict | None = None,
        gateway_overrides: dict | None = None,
        venue_fix: dict | None = None,
    ) -> None:
        self.dir = tmp_path
        mqtt = {"url": "mqtt://127.0.0.1:1883", "prefix": prefix}
        gateway_cfg, venues_cfg = topology.build(
            tmp_path,
            sim_overrides=sim_overrides,
            gateway_overrides={
                "fix": {**FIX_FILE, "store_path": str(tmp_path / "gw-store")},
                "mqtt": mqtt,
                **(gateway_overrides or {}),
            },
        )
        venues_cfg = venues_cfg.model_copy(
            update={
                "fix": FixConfig(**{**FIX_FILE, "store_path": tmp_path / "venue-store", **(venue_fix or {})}),
                "mqtt": gateway_cfg.mqtt,
            }
        )
        self.gateway_cfg: GatewayConfig = gateway_cfg
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
        (tmp_path / "venues.yaml").write_text(yaml.safe_dump(venues_cfg.model_dump(mode="json", by_alias=True)))
        self.gateway_log, self.venue_log = tmp_path / "gateway.log", tmp_path / "venues.log"
        self.gateway: subprocess.Popen | None = None
        self.venues: subprocess.Popen | None = None

    def _spawn(self, args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            SORGW + args,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env={**os.environ, **(env or {})},
        )

    def start_venues(self) -> None:
        self.venues = self._spawn(["venue", "--config", "venues.yaml", "--work-dir", "venue-work"], self.venue_log)
        wait_log(self.venue_log, "venues.started")

    def start_gateway(self, crash_at: str | None = None, wait: bool = True) -> None:
        """Start `sorgw run`; with `crash_at`, it kills itself at that crash point (gateway/faults.py)."""
        env = {"SORGW_CRASH_AT": crash_at} if crash_at else {"SORGW_CRASH_AT": ""}
        started = self.gateway_log.read_text().count('"gateway.started"') if self.gateway_log.exists() else 0
        self.gateway = self._spawn(
            ["run", "--config", "gateway.yaml", "--log-json", "--work-dir", "gw-work"], self.gateway_log, env
        )
        if wait:
            wait_log(self.gateway_log, '"gateway.started"', after=started)

    def start(self, venues, crash_at: str | None = None) -> OmsClient:
        """Venues, then the gateway (logged on to `venues`), then an OMS logged on to it."""
        self.start_venues()
        self.start_gateway(crash_at)
        for venue in venues:
            wait_log(self.gateway_log, f'"session": "{venue}"')
        return self.oms()

    def kill_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGKILL)
        if self.gateway is not None:
            self.gateway.wait(10)

    def wait_gateway_exit(self, timeout: float) -> int:
        assert self.gateway is not None
        return self.gateway.wait(timeout)

    def oms(self, name: str = "oms") -> OmsClient:
        up = self.gateway_cfg.upstream
        client = OmsClient(
            SessionSpec("FIX.4.4", "OMS", "SORGW", up.host, up.port),
            FixConfig(**FIX_FILE, store_path=self.dir / f"{name}-store"),
            self.dir / name,
        )
        client.start(timeout=20)
        return client

    def trail(self) -> list[Record]:
        """Every record of the gateway's audit trail, in seq order."""
        store = open_store(self.gateway_cfg.audit.url, self.gateway_cfg.audit.table)
        store.open()
        try:
            return list(store.records())
        finally:
            store.close()

    def trail_break(self) -> str | None:
        """The audit chain's first break, or None when it verifies."""
        return first_break(self.trail())

    def stop(self) -> None:
        for proc in (self.gateway, self.venues):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
