"""Wiring: start the gateway or the venue simulators from config, and stop them cleanly on a signal."""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import structlog

from gateway.bus.inprocess import InProcessBus
from gateway.config import GatewayConfig, VenuesConfig
from gateway.core.market import MarketView
from gateway.service import Gateway

log = structlog.get_logger("gateway.app")


def wait_for_signal() -> int:
    """Block until SIGINT or SIGTERM; return the signal number.

    Installed after quickfix is imported, because importing it resets SIGINT to the default.
    """
    received = threading.Event()
    which: list[int] = []

    def handler(signum, _frame):
        which.append(signum)
        received.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not received.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return which[0]


def start_gateway(cfg: GatewayConfig, work_dir: Path, bus: InProcessBus | None = None) -> Gateway:
    market = MarketView()
    if bus is not None:
        bus.subscribe(market.update)
    gateway = Gateway(cfg, market, work_dir)
    gateway.start()
    return gateway


def _serve(start, stop, name: str) -> int:
    """Start, block until SIGINT/SIGTERM, then stop (FIX logouts, engines stopped)."""
    start()
    try:
        signum = wait_for_signal()
        log.info(f"{name}.stopping", signal=signal.Signals(signum).name)
    finally:
        stop()
    return 0


def run_gateway(cfg: GatewayConfig, work_dir: Path) -> int:
    market = MarketView()
    gateway = Gateway(cfg, market, work_dir)
    log.warning("market_data.none", detail="no market-data bus in this process: directed orders (ExDestination) "
                "are routed; others wait for venue books or expire")
    return _serve(gateway.start, gateway.stop, "gateway")


def run_venues(cfg: VenuesConfig, work_dir: Path) -> int:
    from gateway.simulator.host import VenueHost

    host = VenueHost(cfg, work_dir, InProcessBus())
    return _serve(host.start, host.stop, "venues")
