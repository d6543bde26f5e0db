"""Who may connect upstream, over real FIX sockets: Username/Password on Logon, refusals counted and recorded
without the secret."""

from __future__ import annotations

import json
import socket
import time

import pytest

from gateway import topology
from gateway.app import start_gateway
from gateway.audit.stores import open_store
from tests.raw_fix import RawFixClient, frame

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55word"
FILE_PASSWORD = "other-secret-from-a-file"


@pytest.fixture
def guarded(tmp_path, monkeypatch):
    """A gateway (venues left down) whose OMS session needs a password from the environment, and OMS2 one from a
    file."""
    monkeypatch.setenv("SORGW_TEST_OMS_PASSWORD", PASSWORD)
    (tmp_path / "oms2.pw").write_text(FILE_PASSWORD + "\n")
    cfg, _ = topology.build(
        tmp_path,
        gateway_overrides={
            "upstream": {
                "port": topology.free_port(),
                "sessions": [
                    {"target_comp_id": "OMS", "username": "desk1", "password_env": "SORGW_TEST_OMS_PASSWORD"},
                    {"target_comp_id": "OMS2", "username": "desk2", "password_file": str(tmp_path / "oms2.pw")},
                ],
            }
        },
    )
    gateway = start_gateway(cfg, tmp_path / "gateway")
    clients: list[RawFixClient] = []

    def connect(target: str = "OMS") -> RawFixClient:
        client = RawFixClient(cfg.upstream.host, cfg.upstream.port, target, "SORGW")
        clients.append(client)
        return client

    yield gateway, connect
    for client in clients:
        client.close()
    gateway.stop()


def _logon(client: RawFixClient, **credentials: bytes) -> dict[int, bytes]:
    """Send a Logon with the given 553/554; the gateway's answer (Logon or Logout), after which it may close."""
    extra = {553: credentials["username"]} if "username" in credentials else {}
    if "password" in credentials:
        extra[554] = credentials["password"]
    client.send(b"A", {98: b"0", 108: b"30", 141: b"Y", **extra})
    assert client.wait(lambda: any(m.get(35) in (b"A", b"5") for m in client.received), 10), "no answer to the Logon"
    return next(m for m in client.received if m.get(35) in (b"A", b"5"))


def _refused(gateway, session: str, reason: str) -> float:
    return gateway.metrics.registry.get_sample_value(
        "sorgw_upstream_logons_refused_total", {"session": session, "reason": reason}
    )


def _trail(gateway) -> list:
    store = open_store(gateway.cfg.audit.url, gateway.cfg.audit.table)
    store.open()
    try:
        return list(store.records())
    finally:
        store.close()


def test_the_right_username_and_password_log_on_from_the_environment_or_a_file(guarded):
    gateway, connect = guarded
    assert _logon(connect("OMS"), username=b"desk1", password=PASSWORD.encode()).get(35) == b"A"
    assert _logon(connect("OMS2"), username=b"desk2", password=FILE_PASSWORD.encode()).get(35) == b"A"
    deadline = time.monotonic() + 5  # quickfix answers the Logon, then tells the gateway
    while not all(
        gateway.metrics.registry.get_sample_value("sorgw_session_up", {"session": s, "role": "upstream"})
        for s in ("FIX.4.4:SORGW->OMS", "FIX.4.4:SORGW->OMS2")
    ):
        assert time.monotonic() < deadline, "the sessions did not come up"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "credentials, reason, text",
    [
        ({"username": b"desk1", "password": b"s3cret-Pa55worD"}, "wrong_password", b"wrong Username or Password"),
        ({"username": b"desk2", "password": PASSWORD.encode()}, "wrong_username", b"wrong Username or Password"),
        ({"username": b"desk1"}, "missing_credentials", b"Username (553) and Password (554) are required"),
        ({}, "missing_credentials", b"Username (553) and Password (554) are required"),
    ],
)
def test_a_wrong_or_missing_password_is_refused_counted_and_recorded_without_the_secret(
    guarded, credentials, reason, text
):
    gateway, connect = guarded
    client = connect("OMS")
    answer = _logon(client, **credentials)
    assert answer.get(35) == b"5" and text in answer.get(58, b"")
    assert client.wait(lambda: client.closed, 5), "the gateway kept the refused connection open"
    assert _refused(gateway, "FIX.4.4:SORGW->OMS", reason) == 1
    assert (
        gateway.metrics.registry.get_sample_value(
            "sorgw_session_up", {"session": "FIX.4.4:SORGW->OMS", "role": "upstream"}
        )
        == 0
    )
    gateway.audit.commit([])  # what was queued before is on record
    records = _trail(gateway)
    logons = [r for r in records if r.kind == "fix_in" and b"\x0135=A\x01" in r.body]
    assert len(logons) == 1
    if "username" in credentials:
        assert b"\x01553=" + credentials["username"] + b"\x01" in logons[0].body
    if "password" in credentials:
        assert b"\x01554=****\x01" in logons[0].body
    assert all(credentials.get("password", b"\x00") not in r.body and PASSWORD.encode() not in r.body for r in records)
    events = [json.loads(r.body) for r in records if r.kind == "event" and b"logon_refused" in r.body]
    assert [e["reason"] for e in events] == [reason]
    # The right password still logs on afterwards.
    assert _logon(connect("OMS"), username=b"desk1", password=PASSWORD.encode()).get(35) == b"A"


@pytest.fixture
def watched(tmp_path):
    """A gateway (venues left down, OMS without a password) that closes connections not logged on within 2 s,
    and keeps at most 3 of them."""
    cfg, _ = topology.build(
        tmp_path,
        gateway_overrides={
            "upstream": {"port": topology.free_port(), "max_pending_connections": 3},
            "fix": {"store": "memory", "store_path": str(tmp_path / "store"), "logon_timeout_s": 2},
        },
    )
    gateway = start_gateway(cfg, tmp_path / "gateway")
    sockets: list[socket.socket] = []

    def connect() -> socket.socket:
        sock = socket.create_connection((cfg.upstream.host, cfg.upstream.port), timeout=10)
        sockets.append(sock)
        return sock

    yield gateway, connect
    for sock in sockets:
        sock.close()
    gateway.stop()


def _closed_after(sock: socket.socket, started: float) -> float:
    """Seconds from `started` until the peer closed the socket (reads until EOF; fails on data or a 10 s wait)."""
    data = sock.recv(1)
    assert data == b"", f"expected the gateway to close the connection, got {data!r}"
    return time.monotonic() - started


def _closed(gateway, reason: str) -> float:
    return gateway.metrics.registry.get_sample_value("sorgw_upstream_connections_closed_total", {"reason": reason})


def test_a_connection_that_sends_nothing_is_closed_after_the_logon_timeout(watched):
    gateway, connect = watched
    started = time.monotonic()
    elapsed = _closed_after(connect(), started)
    assert 1.9 <= elapsed < 3.5
    assert _closed(gateway, "logon_timeout") == 1


def test_a_logon_sent_one_byte_a_second_is_cut_off(watched):
    gateway, connect = watched
    sock = connect()
    logon = frame("FIX.4.4", b"35=A\x0149=OMS\x0156=SORGW\x0134=1\x0152=20260101-00:00:00.000\x0198=0\x01108=30\x01")
    started = time.monotonic()
    sent = 0
    with pytest.raises(OSError):  # the gateway shuts the connection down mid-Logon: a send fails
        for byte in logon:
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(1 if sent < 4 else 0.5)
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    raise ConnectionResetError("closed by the gateway")
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
    assert sent < len(logon) and time.monotonic() - started < 4
    assert _closed(gateway, "logon_timeout") == 1


def test_connections_beyond_the_pending_limit_are_closed_at_once_the_oldest_kept(watched):
    gateway, connect = watched
    oldest = [connect() for _ in range(3)]
    time.sleep(0.5)  # seen by the watch before the newer ones
    started = time.monotonic()
    newer = [connect(), connect()]
    for sock in newer:
        assert _closed_after(sock, started) < 1.9  # well before the 2 s logon timeout
    assert _closed(gateway, "too_many_pending") == 2
    for sock in oldest:  # still open, until their own timeout
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert gateway.metrics.registry.get_sample_value("sorgw_upstream_pending_connections") == 3


def test_a_logged_on_session_is_left_alone_and_a_second_logon_for_it_is_refused_and_closed(watched):
    gateway, _ = watched
    cfg = gateway.cfg
    first = RawFixClient(cfg.upstream.host, cfg.upstream.port, "OMS", "SORGW")
    second = RawFixClient(cfg.upstream.host, cfg.upstream.port, "OMS", "SORGW")
    try:
        first.logon()
        started = time.monotonic()
        second.send(b"A", {98: b"0", 108: b"30"})
        assert second.wait(lambda: second.closed, 10), "the second connection was kept open"
        assert time.monotonic() - started < 6 and not second.received  # closed unanswered: no Logon for it
        time.sleep(2.5)  # past the logon timeout: the logged-on session is not a pending connection
        first.send(b"1", {112: b"STILL-UP"})
        assert first.wait(lambda: any(m.get(112) == b"STILL-UP" for m in first.received), 5)
        assert not first.closed
        assert (
            gateway.metrics.registry.get_sample_value(
                "sorgw_session_up", {"session": "FIX.4.4:SORGW->OMS", "role": "upstream"}
            )
            == 1
        )
    finally:
        first.close()
        second.close()
