"""Sends to a FIX peer that stopped reading, on a real quickfix acceptor: what blocks, what unblocks it, and
the per-session send queue that cuts such a peer off without losing or reordering a message."""

from __future__ import annotations

import datetime
import re
import socket
import threading
import time

import pytest
import quickfix as fix

from gateway import topology
from gateway.config import FixConfig
from gateway.fix.application import GuardedApplication
from gateway.fix.outbound import Limits, Outbound, blocked_socket, cut
from gateway.fix.sessions import SessionSpec, make_engine, session_id, session_key

pytestmark = pytest.mark.integration


class Acceptor(GuardedApplication):
    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()

    def on_logon(self, session: str) -> None:
        self.logged_on.set()

    def on_logout(self, session: str) -> None:
        self.logged_out.set()


def raw(fields: list[tuple[int, object]]) -> bytes:
    body = "".join(f"{tag}={value}\x01" for tag, value in fields)
    head = f"8=FIX.4.4\x019={len(body)}\x01{body}"
    return f"{head}10={sum(head.encode()) % 256:03d}\x01".encode()


class SilentPeer:
    """A FIX peer on a raw socket with a small receive buffer: it logs on, then reads only when told to."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H:%M:%S")
        self.sock.sendall(
            raw([(35, "A"), (34, 1), (49, "PEER"), (52, now), (56, "GW"), (98, 0), (108, 30), (141, "Y")])
        )

    def read_all(self, timeout: float = 10) -> bytes:
        """Everything the acceptor sent, until it closed the connection."""
        self.sock.settimeout(timeout)
        data = b""
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data


@pytest.fixture
def acceptor(tmp_path):
    port = topology.free_port()
    app = Acceptor()
    spec = SessionSpec("FIX.4.4", "GW", "PEER", "127.0.0.1", port)
    engine = make_engine("acceptor", app, [spec], FixConfig(store="file", store_path=tmp_path / "store"), tmp_path)
    engine.start()
    peer = SilentPeer(port)
    assert app.logged_on.wait(5)
    try:
        yield app, session_key(session_id(spec)), port, peer
    finally:
        peer.sock.close()
        engine.stop()


def report(n: int, text: int = 300) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, "8")
    message.setField(17, f"E{n}")
    message.setField(58, "x" * text)
    return message


def send_until_blocked(app: Acceptor, session: str, port: int) -> tuple[threading.Thread, dict]:
    state: dict = {"sent": 0, "stop": threading.Event()}

    def run() -> None:
        state["tid"] = threading.get_native_id()
        while not state["stop"].is_set():
            app.send(report(state["sent"], 60_000), session)
            state["sent"] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # Blocked for good: in send(2) and no progress for 0.5 s. The kernel grows a socket's send buffer for a
    # while (up to net.ipv4.tcp_wmem's maximum), which can let a blocked send finish.
    deadline = time.monotonic() + 20
    stuck_since, last = None, -1
    while time.monotonic() < deadline:
        if blocked_socket(state.get("tid", 0), port) is None or state["sent"] != last:
            stuck_since, last = time.monotonic(), state["sent"]
        elif time.monotonic() - stuck_since > 0.5:
            break
        time.sleep(0.05)
    return thread, state


def test_a_blocked_send_holds_up_session_disconnect_until_its_socket_is_shut_down(acceptor):
    app, session, port, peer = acceptor
    sender, state = send_until_blocked(app, session, port)
    try:
        fd = blocked_socket(state["tid"], port)
        assert fd is not None
        assert blocked_socket(threading.get_native_id(), port) is None  # this thread sends nothing

        disconnected = threading.Event()
        threading.Thread(target=lambda: (app.disconnect(session), disconnected.set()), daemon=True).start()
        # Session::disconnect needs the session mutex, which Session::sendRaw holds through the blocked send.
        assert not disconnected.wait(1.5)
        state["stop"].set()
        cut(fd)
        sender.join(2)
        assert not sender.is_alive()
        assert disconnected.wait(2) and app.logged_out.wait(2)
    finally:
        # No send may be under way when the acceptor destroys its sessions.
        state["stop"].set()
        if sender.is_alive() and (fd := blocked_socket(state["tid"], port)) is not None:
            cut(fd)
        sender.join(2)


def sequence_numbers(data: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"\x0134=(\d+)\x01", data)]


@pytest.mark.parametrize(
    "limits, reason",
    [
        (Limits(max_queue=10**6, send_timeout_s=0.3), "send_timeout"),
        (Limits(max_queue=200, send_timeout_s=60), "queue"),
    ],
)
def test_a_peer_that_stops_reading_is_cut_off_and_nothing_is_lost_or_reordered(acceptor, limits, reason):
    app, session, port, peer = acceptor
    slow: list[tuple[str, str]] = []
    outbound = Outbound([session], app.send, app.disconnect, port, limits, lambda s, r: slow.append((s, r)))
    count = 1000
    try:
        for n in range(count):
            outbound.put(session, report(n), f"C{n}")
        assert app.logged_out.wait(5), "the silent peer was not cut off"
        deadline = time.monotonic() + 5
        while outbound.depths()[session] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert outbound.depths() == {session: 0}
    finally:
        outbound.close(2)
    assert slow[:1] == [(session, reason)]
    # quickfix stored every message it was given (sequence numbers 2..count+1 after the Logon).
    assert fix.Session.lookupSession(app.sessions[session]).getExpectedSenderNum() == count + 2
    received = sequence_numbers(peer.read_all())
    assert received == list(range(1, len(received) + 1))  # in order, none skipped, up to the cut
    assert 1 < len(received) < count + 1
