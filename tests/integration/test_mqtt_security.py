"""The market-data bus's access control: only configured venues and symbols become books (against the real
Mosquitto), and mqtts:// with a username and password against a private Mosquitto with TLS and a password file."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import topology
from gateway.app import start_gateway
from gateway.bus.mqtt import Credentials, MqttPublisher, MqttSubscriber
from tests.integration.test_mqtt_bus import Collector, snap, wait_until
from tests.mqtt_broker import broker, prefix  # noqa: F401 - fixtures
from tests.tls import issue, listening, make_ca
from tests.unavailable import unavailable

pytestmark = pytest.mark.integration


def test_books_of_unknown_venues_or_symbols_are_dropped_and_counted(tmp_path, broker, prefix):  # noqa: F811
    cfg, _ = topology.build(tmp_path)
    gateway = start_gateway(cfg, tmp_path / "gateway")
    feed = MqttSubscriber(broker, gateway.on_snapshot, prefix)
    publisher = MqttPublisher(broker, prefix)
    try:
        feed.start()
        publisher.start()
        wait_until(lambda: feed.connected and publisher.connected, "both connected")
        for book in (snap("EVIL", "AAPL", 1), snap("LITA", "ZZZZ", 1), snap("LITA", "AAPL", 1)):
            publisher.publish(book)
        wait_until(lambda: feed.received == 3, "three books delivered")
        registry = gateway.metrics.registry
        assert gateway.market.age_ns("LITA", "AAPL") is not None
        assert gateway.market.age_ns("EVIL", "AAPL") is None and gateway.market.age_ns("LITA", "ZZZZ") is None
        for reason in ("unknown_venue", "unknown_symbol"):
            assert registry.get_sample_value("sorgw_market_data_dropped_total", {"reason": reason}) == 1
        assert registry.get_sample_value("sorgw_market_data_snapshots_total", {"venue": "LITA"}) == 1
        assert registry.get_sample_value("sorgw_market_data_snapshots_total", {"venue": "EVIL"}) is None
    finally:
        publisher.stop()
        feed.stop()
        gateway.stop()


@pytest.fixture
def tls_broker(tmp_path) -> Iterator[tuple[int, Path]]:
    """A Mosquitto of this test's own on a free port: TLS only (a self-signed CA), user `md` with password `pw1`."""
    if shutil.which("mosquitto") is None:
        unavailable("mosquitto is needed for the mqtts test")
    d = tmp_path / "broker"
    make_ca(d)
    issue(d, "server")
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(d / "passwd"), "md", "pw1"], check=True, capture_output=True)
    port = topology.free_port()
    (d / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to a user that cannot read tmp_path
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'passwd'}\npersistence false\n"
        f"cafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 5
        while not listening(port):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "mosquitto did not listen"
            time.sleep(0.05)
        yield port, d / "ca.crt"
    finally:
        process.terminate()
        process.wait(5)


def test_mqtts_with_a_password_carries_books_and_wrong_credentials_or_plain_text_do_not(tls_broker):
    port, ca = tls_broker
    got = Collector()
    good = Credentials("md", "pw1", str(ca))
    clients = [
        MqttSubscriber(f"mqtts://localhost:{port}", got, "p", credentials=good),
        MqttPublisher(f"mqtts://localhost:{port}", "p", good),
    ]
    refused = [
        MqttSubscriber(f"mqtts://localhost:{port}", got, "p", credentials=Credentials("md", "wrong", str(ca))),
        MqttSubscriber(f"mqtts://localhost:{port}", got, "p", credentials=Credentials(ca_file=str(ca))),
        # the CA is unknown
        MqttSubscriber(f"mqtts://localhost:{port}", got, "p", credentials=Credentials("md", "pw1")),
        MqttSubscriber(f"mqtt://localhost:{port}", got, "p", credentials=Credentials("md", "pw1")),
    ]  # no TLS
    try:
        for client in clients + refused:
            client.start()
        wait_until(lambda: all(c.connected for c in clients), "the mqtts clients connected")
        clients[1].publish(snap("LITA", "AAPL", 7))
        wait_until(lambda: got.latest("LITA", "AAPL") is not None, "a book over mqtts")
        time.sleep(1)  # the refused ones have had several attempts
        assert not any(c.connected for c in refused) and [s.seq for s in got.snapshots] == [7]
    finally:
        for client in clients + refused:
            client.stop()
