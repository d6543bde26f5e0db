"""Connections to the upstream acceptor that have not logged on: closed after fix.logon_timeout_s, and at once
beyond upstream.max_pending_connections. quickfix 1.16's acceptor keeps a connection that sends nothing, or a
Logon that never ends, open forever, and exposes no socket: they are found in /proc/self/fd."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

log = structlog.get_logger("gateway.fix")

TCP_INFO_SIZE = 232
DATA_SEGS_OUT = 156  # offset of tcpi_data_segs_out in struct tcp_info (Linux 4.6 and later)
TCP_LISTEN = 10  # tcpi_state


@dataclass(frozen=True, slots=True)
class Connection:
    inode: int
    fd: int
    peer: str


def unanswered(port: int) -> Iterator[Connection]:
    """This process's TCP connections accepted on `port` that have not sent one byte of data.

    The acceptor's first bytes on a connection are its Logon answer (or a Logout refusing it): a connection
    it has sent nothing on is one that has not logged on.
    """
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if not target.startswith("socket:["):
            continue
        inode = int(target[8:-1])
        try:
            with _socket(int(name), inode) as sock:
                if (
                    sock.type != socket.SOCK_STREAM
                    or sock.family not in (socket.AF_INET, socket.AF_INET6)
                    or sock.getsockname()[1] != port
                ):
                    continue
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
                if info[0] == TCP_LISTEN or struct.unpack_from("I", info, DATA_SEGS_OUT)[0]:
                    continue
                host, peer_port = sock.getpeername()[:2]
        except OSError:
            continue  # closed or reused meanwhile, or not connected
        yield Connection(inode, int(name), f"{host}:{peer_port}")


def _socket(fd: int, inode: int) -> socket.socket:
    """A socket on a duplicate of fd, if fd still is the socket `inode` (OSError otherwise)."""
    dup = os.dup(fd)
    if os.fstat(dup).st_ino != inode:
        os.close(dup)
        raise OSError(f"fd {fd} was reused")
    return socket.socket(fileno=dup)


def close(connection: Connection) -> None:
    """shutdown(2) the connection: quickfix's thread for it reads the end and closes it."""
    try:
        with _socket(connection.fd, connection.inode) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


class PendingWatch:
    """A thread that closes connections on the port not logged on within timeout_s, or beyond max_pending."""

    def __init__(
        self,
        port: int,
        timeout_s: float,
        max_pending: int,
        on_close: Callable[[str, str, float], None],
        on_count: Callable[[int], None],
    ) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._on_close = on_close  # (peer, reason, seconds since first seen)
        self._on_count = on_count  # connections pending after a check
        self._seen: dict[int, float] = {}  # inode -> monotonic time first seen
        self._closed: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sorgw-pending-watch", daemon=True)
        self.interval = min(timeout_s / 4, 0.5)  # a scan of 200 fds takes about 5 ms

    def start(self) -> None:
        with socket.socket() as probe:
            size = len(probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE))
        if size < DATA_SEGS_OUT + 4:
            log.error(
                "upstream.pending_watch_unavailable",
                tcp_info_bytes=size,
                detail="the kernel's TCP_INFO has no tcpi_data_segs_out (Linux 4.6 or later): connections "
                "that do not log on are not closed",
            )
            return
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.check(time.monotonic())
            except Exception:
                log.exception("upstream.pending_watch_failed")

    def check(self, now: float) -> None:
        found = {c.inode: c for c in unanswered(self.port)}
        self._seen = {inode: self._seen.get(inode, now) for inode in found}
        self._closed &= found.keys()
        kept = 0
        for connection in sorted(
            (c for c in found.values() if c.inode not in self._closed), key=lambda c: self._seen[c.inode]
        ):
            age = now - self._seen[connection.inode]
            if age >= self.timeout_s:
                reason = "logon_timeout"
            elif kept >= self.max_pending:
                reason = "too_many_pending"  # the oldest are kept: they time out first
            else:
                kept += 1
                continue
            self._on_close(connection.peer, reason, age)  # on record before the peer sees the end
            close(connection)
            self._closed.add(connection.inode)
        self._on_count(len(found) - len(self._closed))
