"""A venue the gateway cannot reach or log on to is in the gateway's own log (rate-limited, with the reason) and in
sorgw_venue_connect_failures_total: a refused port, a listener that closes at once, one that answers our Logon
with a Logout, and one that never answers; then the venue comes back and the gateway says so."""

from __future__ import annotations

import socket
import threading
import time

import structlog
from structlog.testing import LogCapture

from gateway import topology
from gateway.app import start_gateway
from gateway.bus.inprocess import InProcessBus
from gateway.config import GatewayConfig, validate
from gateway.fix import connect_watch
from gateway.simulator.host import VenueHost
from tests.raw_fix import fields, frame
from tests.tcp_proxy import TcpProxy


class _Listener:
    """A TCP server on a free port that does `answer(connection)` with each connection, then closes it."""

    def __init__(self, answer) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._answer = answer
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with connection:
                try:
                    self._answer(connection)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self._server.close()


def _logout(connection: socket.socket) -> None:
    logon = fields(connection.recv(4096))
    stamp = time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime()).encode()
    body = b"35=5\x0149=%s\x0156=%s\x0134=1\x0152=%s\x0158=session closed until 08:00\x01" % (
        logon[56],
        logon[49],
        stamp,
    )
    connection.sendall(frame("FIX.4.4", body))
    time.sleep(0.2)


def _silent(connection: socket.socket) -> None:
    connection.settimeout(3)
    while connection.recv(4096):
        pass


def _failures(gateway, venue: str) -> float:
    return gateway.metrics.registry.get_sample_value("sorgw_venue_connect_failures_total", {"venue": venue}) or 0


def test_connect_failures_are_logged_with_their_reason_rate_limited_and_counted(tmp_path, monkeypatch):
    # Every level, whatever the suite's logging level (warning): the line for a venue back is info.
    capture = LogCapture()
    monkeypatch.setattr(
        connect_watch,
        "log",
        structlog.wrap_logger(None, processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(0)),
    )
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    venues = VenueHost(venues_cfg, tmp_path / "venues", InProcessBus())
    venues.start()
    # LITA: a port bound but not listening (connections refused; no other socket can take it), later a proxy
    # to the real LITA on that same port.
    refusing = socket.socket()
    refusing.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    refusing.bind(("127.0.0.1", 0))
    proxy = TcpProxy("127.0.0.1", venues_cfg.venues[0].port, "{port}")
    proxy.port = refusing.getsockname()[1]
    closing = _Listener(lambda connection: None)
    logout = _Listener(_logout)
    silent = _Listener(_silent)
    raw = gateway_cfg.model_dump(mode="json", by_alias=True)
    raw["fix"]["connect_failure_log_interval_s"] = 2
    for venue, port in zip(raw["venues"], (proxy.port, closing.port, logout.port, silent.port)):
        venue["port"] = port
    raw["venues"][3]["logon_timeout"] = 1
    gateway = None
    try:
        gateway = start_gateway(validate(raw, GatewayConfig, "test"), tmp_path / "gateway", InProcessBus())
        time.sleep(4.5)  # attempts every second (fix.reconnect_interval); DRKA's each wait 1 s for a Logon
        lita_failures = _failures(gateway, "LITA")
        refusing.close()
        proxy.up()
        deadline = time.monotonic() + 10
        while not gateway.sessions_up.get("venue:LITA") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.sessions_up.get("venue:LITA")
        logs = list(capture.entries)
        warnings = [e for e in logs if e["event"] == "venue.connect_failed"]
        reasons = {e["venue"]: e["reason"] for e in warnings}
        assert reasons["LITA"] == "connection refused or unreachable"
        assert reasons["LITB"] == "connection reset by peer"
        assert reasons["LITC"] == "logout: session closed until 08:00"
        assert reasons["DRKA"] == "logon timeout"
        assert "DRKB" not in reasons
        lita = [e for e in warnings if e["venue"] == "LITA"]
        assert lita[0]["address"] == f"127.0.0.1:{proxy.port}" and lita[0]["failures"] == 1
        # Rate-limited: over 4.5 s of failures a second, the first line and at most two more (one per 2 s), each
        # later one counting the failures since the one before.
        assert lita_failures >= 4 and 2 <= len(lita) <= 3 and lita[1]["failures"] >= 2
        assert sum(e["failures"] for e in lita) <= lita_failures
        for venue in ("LITB", "LITC", "DRKA"):
            assert _failures(gateway, venue) >= 2
        assert _failures(gateway, "DRKB") == 0
        connected = [e for e in logs if e["event"] == "venue.connected"]
        assert [e["venue"] for e in connected] == ["LITA"]
        assert connected[0]["failures"] >= lita_failures and connected[0]["log_level"] == "info"
    finally:
        if gateway is not None:
            gateway.stop()
        refusing.close()
        proxy.close()
        for listener in (closing, logout, silent):
            listener.close()
        venues.stop()
