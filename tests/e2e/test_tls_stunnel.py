"""TLS for the FIX sessions through stunnel sidecars (quickfix has no SSL): an OMS and a venue behind TLS with
certificates from a CA of the test's own, and plain-text or certificate-less clients refused."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from gateway import topology
from gateway.app import start_gateway
from gateway.bus.inprocess import InProcessBus
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.simulator.host import VenueHost
from tests.raw_fix import RawFixClient
from tests.tls import issue, listening, make_ca, stunnel_sections
from tests.unavailable import unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def stunnel_config(d: Path, services: dict[str, dict[str, str]]) -> str:
    """One stunnel in the foreground: every [service] with its options."""
    lines = ["foreground = yes", "pid =", f"output = {d / 'stunnel.log'}", "debug = 5"]
    for name, options in services.items():
        lines += [f"[{name}]", *(f"{key} = {value}" for key, value in options.items())]
    return "\n".join(lines) + "\n"


def test_an_oms_and_a_venue_behind_tls_trade_and_plain_text_is_refused(tmp_path):
    if shutil.which("stunnel") is None:
        unavailable("stunnel (Debian: stunnel4) is needed for the TLS test")
    d = tmp_path / "tls"
    ca = make_ca(d)
    server_crt, server_key = issue(d, "server")
    client_crt, client_key = issue(d, "client", common_name="oms")
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    venue = next(v for v in gateway_cfg.venues if v.name == "LITA")
    gw_tls, oms_local, venue_tls, venue_local = topology.free_ports(4)
    # Servers as the compose sidecar's shipped config has them (a client certificate from the CA required);
    # clients check the server's certificate and host name.
    shipped = stunnel_sections((ROOT / "config/stunnel/gateway.conf").read_text())["oms"]
    server = {**shipped, "cert": str(server_crt), "key": str(server_key), "CAfile": str(ca)}
    client = {
        "client": "yes",
        "cert": str(client_crt),
        "key": str(client_key),
        "CAfile": str(ca),
        "verifyChain": "yes",
        "checkHost": "localhost",
    }
    (d / "stunnel.conf").write_text(
        stunnel_config(
            d,
            {
                "gateway-upstream": {
                    **server,
                    "accept": f"127.0.0.1:{gw_tls}",
                    "connect": f"127.0.0.1:{gateway_cfg.upstream.port}",
                },
                "oms-out": {"accept": f"127.0.0.1:{oms_local}", "connect": f"127.0.0.1:{gw_tls}", **client},
                "venue-lita": {**server, "accept": f"127.0.0.1:{venue_tls}", "connect": f"127.0.0.1:{venue.port}"},
                "gateway-to-lita": {
                    "accept": f"127.0.0.1:{venue_local}",
                    "connect": f"127.0.0.1:{venue_tls}",
                    **client,
                },
            },
        )
    )
    gateway_cfg = gateway_cfg.model_copy(
        update={
            "venues": tuple(
                v.model_copy(update={"port": venue_local}) if v.name == "LITA" else v for v in gateway_cfg.venues
            )
        }
    )
    stunnel = subprocess.Popen(
        ["stunnel", str(d / "stunnel.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    venues = VenueHost(venues_cfg, tmp_path / "venues", InProcessBus())
    gateway = oms = None
    try:
        deadline = time.monotonic() + 5
        while not all(listening(p) for p in (gw_tls, oms_local, venue_tls, venue_local)):
            assert stunnel.poll() is None and time.monotonic() < deadline, (d / "stunnel.log").read_text()
            time.sleep(0.05)
        venues.start()
        gateway = start_gateway(gateway_cfg, tmp_path / "gateway")
        assert gateway.wait_for_venues(15), "the venue sessions (LITA through TLS) did not log on"
        session = gateway_cfg.upstream.sessions[0]
        oms = OmsClient(
            SessionSpec(session.begin_string, session.target_comp_id, session.sender_comp_id, "127.0.0.1", oms_local),
            gateway_cfg.fix,
            tmp_path / "oms",
        )
        oms.start()
        oms.new_order("TLS1", "AAPL", "1", 100, price="190.05", ex_destination="LITA", urgency="H")
        final = oms.wait_final("TLS1")
        assert final is not None and final[codec.ORD_STATUS] == "2" and final[codec.LAST_MKT] == "LITA"

        plain = RawFixClient("127.0.0.1", gw_tls, session.target_comp_id, session.sender_comp_id)
        plain.send(b"A", {98: b"0", 108: b"30"})
        assert plain.wait(lambda: plain.closed, 5) and not plain.received, "a plain-text Logon was answered"
        plain.close()

        no_cert = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection(("127.0.0.1", gw_tls), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with no_cert.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"8=FIX.4.4\x01")  # TLS 1.3: the refusal of the client certificate comes after
                    assert tls.recv(1) == b""
                    raise ConnectionError("closed without an answer")
        assert (
            gateway.metrics.registry.get_sample_value(
                "sorgw_session_up", {"session": "FIX.4.4:SORGW->OMS", "role": "upstream"}
            )
            == 1
        )  # still trading
    finally:
        if oms is not None:
            oms.stop()
        if gateway is not None:
            gateway.stop()
        venues.stop()
        stunnel.terminate()
        stunnel.wait(5)
