"""`sorgw bench --soak`: the gateway as its own process under a steady order flow, its resident memory watched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gateway import topology
from gateway.bus.inprocess import InProcessBus
from gateway.config import GatewayConfig
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.simulator.host import VenueHost

TARGET_GROWTH = 0.10  # RSS at the end within 10% of RSS after the warm-up
FINAL = frozenset("248C3")
LIT = ("LITA", "LITB", "LITC")


@dataclass
class SoakResult:
    rate: float
    duration_s: float
    warmup_s: float
    sent: int = 0
    finished: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, orders sent, RSS bytes)

    @property
    def warm_rss(self) -> int:
        return next(rss for t, _, rss in self.samples if t >= self.warmup_s)

    @property
    def end_rss(self) -> int:
        return self.samples[-1][2]

    @property
    def growth(self) -> float:
        return self.end_rss / self.warm_rss - 1

    @property
    def bytes_per_order(self) -> float:
        """RSS growth after the warm-up per order sent after it."""
        warm_sent = next(sent for t, sent, _ in self.samples if t >= self.warmup_s)
        return (self.end_rss - self.warm_rss) / max(self.samples[-1][1] - warm_sent, 1)


class _CountingOms(OmsClient):
    """An OMS that counts final reports instead of keeping every message (it runs as long as the soak)."""

    finished = 0

    def _record(self, message) -> None:
        if (
            message.getHeader().getField(codec.MSG_TYPE) == "8"
            and message.isSetField(codec.ORD_STATUS)
            and message.getField(codec.ORD_STATUS) in FINAL
            and message.getField(codec.EXEC_TYPE) != "I"
        ):
            self.finished += 1


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """The process's resident set now (VmRSS) or at its peak (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for process {pid}")


def run_soak(
    rate: float,
    duration_s: float,
    warmup_s: float,
    work_dir: Path | None = None,
    gateway_overrides: dict | None = None,
    mqtt_url: str | None = None,
    progress=None,
) -> SoakResult:
    """Venue simulators and an OMS here, the gateway (`sorgw run`) as a child process; directed marketable
    orders at `rate` per second, alternating buys and sells across the lit venues, for `duration_s`. With
    `mqtt_url` the venues' books reach the gateway over that broker, as in production (fills are then marked
    to mids); without it the gateway sees no books."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="sorgw-soak-"))
    mqtt = {"mqtt": {"url": mqtt_url, "prefix": f"soak{os.getpid()}"}} if mqtt_url else {}
    gateway_cfg, venues_cfg = topology.build(
        work,
        gateway_overrides={
            "metrics": {"port": topology.free_port()},
            "logging": {"level": "warning"},
            "fix": {"store": "file", "store_path": str(work / "gateway-store"), "heartbeat_interval": 5},
            **mqtt,
            **(gateway_overrides or {}),
        },
    )
    config_path = work / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
    bus = InProcessBus()
    venues = VenueHost(venues_cfg, work / "venues", bus)
    publisher = None
    if mqtt_url:
        from gateway.bus.mqtt import MqttPublisher

        publisher = MqttPublisher(mqtt_url, mqtt["mqtt"]["prefix"])
        publisher.start()
        bus.subscribe(publisher.publish)
    venues.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config_path), "--work-dir", str(work / "gateway")],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "gateway.log", "w"),
    )
    oms = None
    result = SoakResult(rate, duration_s, warmup_s)
    try:
        wait_ready(gateway_cfg, process)
        oms = _oms(gateway_cfg, work)
        start = time.monotonic()
        next_sample = 0.0
        while (elapsed := time.monotonic() - start) < duration_s:
            due = int(elapsed * rate) + 1
            while result.sent < due:
                _send(oms, result.sent)
                result.sent += 1
            if elapsed >= next_sample:
                result.samples.append((elapsed, result.sent, rss_bytes(process.pid)))
                if progress is not None:
                    progress(result)
                next_sample += min(10.0, warmup_s)
            time.sleep(min(0.01, 1 / rate))
        oms.wait(lambda: oms.finished >= result.sent, 30)
        result.finished = oms.finished
        result.samples.append((time.monotonic() - start, result.sent, rss_bytes(process.pid)))
    finally:
        if oms is not None:
            oms.stop()
        process.terminate()
        process.wait(30)
        venues.stop()
        if publisher is not None:
            publisher.stop()
    return result


def wait_ready(cfg: GatewayConfig, process: subprocess.Popen, timeout: float = 30) -> None:
    url = f"http://{cfg.metrics.host}:{cfg.metrics.port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the gateway was not ready within {timeout} s ({url})")


def _oms(cfg: GatewayConfig, work: Path) -> _CountingOms:
    session = cfg.upstream.sessions[0]
    spec = SessionSpec(
        session.begin_string, session.target_comp_id, session.sender_comp_id, cfg.upstream.host, cfg.upstream.port
    )
    oms = _CountingOms(spec, cfg.fix, work / "oms")
    oms.start()
    return oms


def _send(oms: OmsClient, n: int) -> None:
    buy = n % 2 == 0
    oms.new_order(
        f"K{n}",
        "AAPL",
        "1" if buy else "2",
        10,
        price="190.10" if buy else "189.90",
        ex_destination=LIT[(n // 2) % len(LIT)],
    )


def print_report(result: SoakResult, out=sys.stdout) -> bool:
    """The RSS after the warm-up and at the end, their ratio against the target; True when within it."""
    mib = 1024 * 1024
    ok = result.growth <= TARGET_GROWTH
    print(
        f"soak: {result.sent} orders at {result.rate:g}/s over {result.duration_s:g} s, "
        f"{result.finished} answered with a final report",
        file=out,
    )
    print(f"  RSS after {result.warmup_s:g} s   {result.warm_rss / mib:8.1f} MiB", file=out)
    print(f"  RSS at the end     {result.end_rss / mib:8.1f} MiB", file=out)
    print(
        f"  ratio              {result.end_rss / result.warm_rss:8.3f}  (target <= {1 + TARGET_GROWTH:.2f}: "
        f"{'met' if ok else 'MISSED'}); {result.bytes_per_order:.0f} bytes per order after the warm-up",
        file=out,
    )
    return ok


def print_progress(result: SoakResult) -> None:
    t, sent, rss = result.samples[-1]
    print(f"  {t:7.1f} s  {sent:8d} orders  RSS {rss / 1024 / 1024:7.1f} MiB", file=sys.stderr, flush=True)
