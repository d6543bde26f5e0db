"""Wiring: start the gateway or the venue simulators from config, and stop them cleanly on a signal."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import structlog

from gateway.bus.inprocess import InProcessBus
from gateway.config import GatewayConfig, MqttConfig, VenuesConfig
from gateway.core.clock import WallClock
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


def market_view(cfg: GatewayConfig) -> MarketView:
    """Books older than routing.max_quote_age_ms (by the venue's own timestamp) count as stale."""
    return MarketView(WallClock(), cfg.routing.max_quote_age_ms * 1_000_000)


def start_gateway(cfg: GatewayConfig, work_dir: Path, bus: InProcessBus | None = None) -> Gateway:
    gateway = Gateway(cfg, market_view(cfg), work_dir)
    if bus is not None:
        bus.subscribe(gateway.on_snapshot)
        bus.subscribe_trades(gateway.on_trade)
        gateway.metrics.market_data_connected.set(1)  # in-process: connected as long as the process runs
    gateway.start()
    return gateway


def _serve(name: str, *services) -> int:
    """Start services in order, block until SIGINT/SIGTERM, then stop them in reverse order
    (FIX logouts, engines stopped, buses disconnected)."""
    started = []
    try:
        for service in services:
            service.start()
            started.append(service)
        signum = wait_for_signal()
        log.info(f"{name}.stopping", signal=signal.Signals(signum).name)
    finally:
        for service in reversed(started):
            service.stop()
    return 0


def bus_credentials(mqtt: MqttConfig):
    """The broker login and CA of the mqtt section (the password from the environment)."""
    from gateway.bus.mqtt import Credentials

    return Credentials(mqtt.username, mqtt.password(os.environ), str(mqtt.ca_file) if mqtt.ca_file else None)


def run_gateway(cfg: GatewayConfig, work_dir: Path) -> int:
    gateway = Gateway(cfg, market_view(cfg), work_dir)
    if cfg.mqtt.url is None:
        log.warning(
            "market_data.none",
            detail="no mqtt.url: no venue books reach this process; directed orders "
            "(ExDestination) are routed, others wait for books or expire",
        )
        return _serve("gateway", gateway)
    from gateway.bus.mqtt import MqttSubscriber

    def market_status(up: bool) -> None:
        gateway.metrics.market_data_connected.set(1 if up else 0)
        (log.info if up else log.error)("market_data.connected" if up else "market_data.disconnected", url=cfg.mqtt.url)

    feed = MqttSubscriber(
        cfg.mqtt.url,
        gateway.on_snapshot,
        cfg.mqtt.prefix,
        on_status=market_status,
        credentials=bus_credentials(cfg.mqtt),
        on_trade=gateway.on_trade,
    )
    gateway.metrics.malformed_payloads = lambda: feed.malformed
    return _serve("gateway", feed, gateway)


def run_venues(cfg: VenuesConfig, work_dir: Path) -> int:
    from gateway.simulator.host import VenueHost

    bus = InProcessBus()
    host = VenueHost(cfg, work_dir, bus)
    if cfg.mqtt.url is None:
        return _serve("venues", host)
    from gateway.bus.mqtt import MqttPublisher

    publisher = MqttPublisher(cfg.mqtt.url, cfg.mqtt.prefix, bus_credentials(cfg.mqtt))
    bus.subscribe(publisher.publish)
    bus.subscribe_trades(publisher.publish_trade)
    return _serve("venues", publisher, host)
