"""A whole local stack in one process: venue simulators, the gateway and an OMS, over FIX on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from gateway.app import start_gateway
from gateway.bus.inprocess import InProcessBus
from gateway.config import GatewayConfig, VenuesConfig
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.service import Gateway
from gateway.simulator.host import VenueHost


class Stack:
    """Start with `with Stack(...) as stack:`; everything is logged out and stopped on exit."""

    def __init__(self, gateway_cfg: GatewayConfig, venues_cfg: VenuesConfig, work_dir: Path) -> None:
        self.gateway_cfg = gateway_cfg
        self.venues_cfg = venues_cfg
        self.work_dir = work_dir
        self.bus = InProcessBus()
        self.venues = VenueHost(venues_cfg, work_dir / "venues", self.bus)
        self.gateway: Gateway | None = None
        self.oms: OmsClient | None = None

    def __enter__(self) -> "Stack":
        try:
            self.venues.start()
            self.gateway = start_gateway(self.gateway_cfg, self.work_dir / "gateway", self.bus)
            if not self.gateway.wait_for_venues(15):
                down = [n for n, v in self.gateway.engine.venues.items() if not v.connected]
                raise TimeoutError(f"venue sessions did not log on: {down}")
            self.oms = self.connect_oms()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def connect_oms(self, index: int = 0) -> OmsClient:
        upstream = self.gateway_cfg.upstream
        session = upstream.sessions[index]
        spec = SessionSpec(
            session.begin_string, session.target_comp_id, session.sender_comp_id, upstream.host, upstream.port
        )
        client = OmsClient(spec, self.gateway_cfg.fix, self.work_dir / f"oms{index}")
        client.start()
        return client

    def __exit__(self, *exc) -> None:
        # The OMS logs out first; its engine finishes stopping while the gateway and the venues stop.
        oms_stopped = self.oms.begin_stop() if self.oms is not None else None
        try:
            if self.gateway is not None:
                self.gateway.stop()
            self.venues.stop()
        finally:
            if oms_stopped is not None:
                oms_stopped()
