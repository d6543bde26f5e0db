"""A FIX 4.4 initiator on a plain socket, for tests that must put exact bytes (invalid UTF-8, SOH-free `|`) on the
wire."""

from __future__ import annotations

import re
import socket
import threading
import time

from gateway.fix.client import OmsClient

SOH = b"\x01"
_FRAME = re.compile(rb"8=[^\x01]*\x019=(\d+)\x01")


def frame(begin_string: str, body: bytes) -> bytes:
    """BeginString, BodyLength and CheckSum around `body` (tag=value fields, each ending in SOH)."""
    head = f"8={begin_string}\x019={len(body)}\x01".encode() + body
    return head + b"10=%03d\x01" % (sum(head) % 256)


def fields(raw: bytes) -> dict[int, bytes]:
    """tag -> value (the first of a repeated tag) of one framed message."""
    out: dict[int, bytes] = {}
    for part in raw.split(SOH):
        tag, sep, value = part.partition(b"=")
        if sep and tag.isdigit():
            out.setdefault(int(tag), value)
    return out


class RawFixClient:
    """Logs on, answers TestRequests, and records every message it reads as (raw bytes, fields)."""

    def __init__(
        self, host: str, port: int, sender: str, target: str, heartbeat: int = 30, begin_string: str = "FIX.4.4"
    ) -> None:
        self.begin_string, self.sender, self.target, self.heartbeat = begin_string, sender, target, heartbeat
        self._sock = socket.create_connection((host, port), timeout=5)
        self._seq = 0
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self.received: list[dict[int, bytes]] = []
        self.closed = False
        self._reader = threading.Thread(target=self._read, name="raw-fix-reader", daemon=True)
        self._reader.start()

    def logon(self, timeout: float = 10) -> None:
        self.send(b"A", {98: b"0", 108: str(self.heartbeat).encode(), 141: b"Y"})
        if not self.wait(lambda: any(m.get(35) == b"A" for m in self.received), timeout):
            raise TimeoutError("no Logon answer")

    def send(self, msg_type: bytes, body_fields: dict[int, bytes], raw_tail: bytes = b"") -> int:
        """Send a message: standard header, then body_fields in order, then raw_tail (already SOH-terminated).
        Returns its MsgSeqNum (what a session reject's RefSeqNum names)."""
        with self._send_lock:
            self._seq += 1
            stamp = time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime()).encode()
            body = (
                b"35="
                + msg_type
                + SOH
                + b"".join(
                    b"%d=%s\x01" % (tag, value)
                    for tag, value in (
                        (49, self.sender.encode()),
                        (56, self.target.encode()),
                        (34, str(self._seq).encode()),
                        (52, stamp),
                    )
                )
                + b"".join(b"%d=%s\x01" % (tag, value) for tag, value in body_fields.items())
                + raw_tail
            )
            self._sock.sendall(frame(self.begin_string, body))
            return self._seq

    def new_order(
        self, cl_ord_id: bytes, qty: bytes = b"100", price: bytes = b"190.03", extra: dict[int, bytes] | None = None
    ) -> None:
        stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()).encode()
        self.send(
            b"D",
            {
                11: cl_ord_id,
                55: b"AAPL",
                54: b"1",
                38: qty,
                40: b"2",
                44: price,
                59: b"0",
                9701: b"H",
                60: stamp,
                **(extra or {}),
            },
        )

    wait = OmsClient.wait  # wait(predicate, timeout): the same condition wait as the scripted OMS

    def answers(self, cl_ord_id: bytes) -> list[dict[int, bytes]]:
        """Application answers naming cl_ord_id: reports (8), cancel rejects (9), business rejects (j)."""
        with self._cond:
            return [
                m
                for m in self.received
                if m.get(35) in (b"8", b"9") and m.get(11) == cl_ord_id or m.get(35) == b"j" and m.get(379) == cl_ord_id
            ]

    def session_rejects(self) -> list[dict[int, bytes]]:
        with self._cond:
            return [m for m in self.received if m.get(35) == b"3"]

    def close(self) -> None:
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(5)

    def _read(self) -> None:
        buffer = b""
        while not self.closed:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:  # an OSError too: checked first
                continue
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while (match := _FRAME.match(buffer)) is not None:
                end = match.end() + int(match.group(1)) + 7  # the body, then 10=NNN<SOH>
                if len(buffer) < end:
                    break
                message = fields(buffer[:end])
                buffer = buffer[end:]
                if message.get(35) == b"1":
                    self.send(b"0", {112: message.get(112, b"")})
                with self._cond:
                    self.received.append(message)
                    self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()
