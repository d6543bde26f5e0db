"""Per-OMS-session send queues: reports leave the engine lock at once and reach each OMS in order on that
session's own sender thread, so an OMS that reads slowly stalls only itself; one too far behind is cut off."""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    import quickfix as fix

log = structlog.get_logger("gateway.fix")

# The syscall a thread blocked in send(2) sits in, as /proc/<tid>/syscall numbers it.
SENDTO = {"x86_64": 44, "aarch64": 206}.get(platform.machine())


def blocked_socket(tid: int, local_port: int) -> int | None:
    """The socket (fd) thread `tid` of this process is blocked sending on, if it is one accepted on local_port."""
    try:
        fields = Path(f"/proc/self/task/{tid}/syscall").read_text().split()
    except OSError:
        return None
    if SENDTO is None or len(fields) < 2 or fields[0] != str(SENDTO):
        return None
    fd = int(fields[1], 16)
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return fd if sock.getsockname()[1] == local_port else None
    except OSError:
        return None


def cut(fd: int) -> None:
    """shutdown(2) a socket another thread may be blocked sending on: the send returns at once with an error.

    quickfix's Session::disconnect would wait for that send, as both hold the session's mutex.
    """
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True, slots=True)
class Limits:
    max_queue: int  # messages waiting for one session
    send_timeout_s: float  # one send blocked this long


class SessionQueue:
    """One OMS session's FIFO of messages built under the engine lock, sent in order by its own thread."""

    def __init__(self, session: str, send: Callable[[fix.Message, str], bool]) -> None:
        self.session = session
        self._send = send
        self._items: deque[tuple[fix.Message, str]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.sending_since: float | None = None  # monotonic start of the send under way
        self.sender_tid: int | None = None
        self.reader_tid: int | None = None  # quickfix's thread for this session's connection
        self.cut_at: float | None = None
        self.in_send: dict[int, tuple[int, float]] = {}  # thread -> (socket, first seen blocked sending on it)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: fix.Message, cl_ord_id: str, wake: bool = True) -> None:
        with self._cond:
            self._items.append((message, cl_ord_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"sorgw-send-{self.session}", daemon=True)
                self._thread.start()
            if wake:
                self._cond.notify()

    def wake(self) -> None:
        """Wake the sender for what was put without waking it."""
        with self._cond:
            if self._items:
                self._cond.notify()

    def blocked_for(self, now: float) -> float:
        since = self.sending_since
        return 0.0 if since is None else now - since

    def close(self, deadline: float, local_port: int) -> None:
        """Send what is queued until the deadline, then end the sender thread (cutting off a send that blocks
        it: quickfix must not be sending when its sessions are destroyed). What is left was never sent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is None:
            return
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            with self._cond:
                log.warning("upstream.unsent_at_stop", session=self.session, queued=len(self._items))
                self._items.clear()
            if self.sender_tid is not None and (fd := blocked_socket(self.sender_tid, local_port)) is not None:
                cut(fd)
            self._thread.join(1)

    def _run(self) -> None:
        self.sender_tid = threading.get_native_id()
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                message, cl_ord_id = self._items[0]
            self.sending_since = time.monotonic()
            try:
                sent = self._send(message, self.session)
            except Exception:
                log.exception("upstream.send_failed", session=self.session, cl_ord_id=cl_ord_id)
                sent = True
            finally:
                self.sending_since = None
            with self._cond:
                if self._items:  # emptied by close() when the send outlasted the deadline
                    self._items.popleft()
            if not sent:
                # Not stored either: the session is unknown, or not logged on since its sequence numbers were
                # reset. Otherwise quickfix stores what it cannot send, for the resend after the next logon.
                log.warning("upstream.report_dropped", session=self.session, cl_ord_id=cl_ord_id)


class Outbound:
    """The send queues of every OMS session, and a watchdog that cuts off a session too far behind.

    A cut session's queue keeps draining: quickfix stores what is sent while the session is down and
    resends it after the next logon (with sequence numbers kept across logons).
    """

    def __init__(
        self,
        sessions: Iterable[str],
        send: Callable[[fix.Message, str], bool],
        disconnect: Callable[[str], None],
        local_port: int,
        limits: Limits,
        on_slow: Callable[[str, str], None],
    ) -> None:
        self._send = send
        self._disconnect = disconnect
        self._local_port = local_port
        self.limits = limits
        self._on_slow = on_slow
        self._queues = {session: SessionQueue(session, send) for session in sessions}
        self._asleep: set[SessionQueue] = set()  # queues put to without a wake-up
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="sorgw-send-watchdog", daemon=True)
        self._watchdog.start()

    def queue(self, session: str) -> SessionQueue:
        with self._lock:
            found = self._queues.get(session)
            if found is None:
                found = self._queues[session] = SessionQueue(session, self._send)
            return found

    def put(self, session: str, message: fix.Message, cl_ord_id: str, wake: bool = True) -> None:
        """Queue a message for the session (never blocks: called under the engine lock). `wake=False`: the
        sender waits for wake() (a thread woken while the engine lock is held mostly waits for that thread)."""
        queue = self.queue(session)
        queue.put(message, cl_ord_id, wake)
        if not wake:
            self._asleep.add(queue)

    def wake(self) -> None:
        """Wake the senders of what was put with wake=False."""
        while True:
            try:
                queue = self._asleep.pop()
            except KeyError:  # another thread woke the last one
                return
            queue.wake()

    def depths(self) -> dict[str, int]:
        with self._lock:
            return {session: len(queue) for session, queue in self._queues.items()}

    def reader_is_current_thread(self, session: str) -> None:
        """Called on quickfix's thread for the session's connection (at logon): a thread that may block in its
        own sends (heartbeats, resends) while our sender waits for the session."""
        queue = self.queue(session)
        queue.reader_tid = threading.get_native_id()
        queue.cut_at = None

    def close(self, timeout: float) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            queues = list(self._queues.values())
        for queue in queues:
            queue.close(deadline, self._local_port)
        self._watchdog.join(timeout=1)

    def _watch(self) -> None:
        interval = min(max(self.limits.send_timeout_s / 4, 0.01), 0.25)
        while not self._stopping.wait(interval):
            now = time.monotonic()
            with self._lock:
                queues = list(self._queues.values())
            for queue in queues:
                try:
                    self._check(queue, now)
                except Exception:
                    log.exception("upstream.watchdog_failed", session=queue.session)

    def _check(self, queue: SessionQueue, now: float) -> None:
        stuck = self._stuck_sockets(queue, now)
        if len(queue) > self.limits.max_queue:
            reason = "queue"
        elif stuck:
            reason = "send_timeout"
        else:
            return
        if queue.cut_at is not None and now - queue.cut_at < self.limits.send_timeout_s:
            return  # cut already; give the session time to go down and the queue to drain into the store
        queue.cut_at = now
        fds = stuck or {fd for fd, _ in queue.in_send.values()}
        log.error(
            "upstream.slow_consumer",
            session=queue.session,
            reason=reason,
            queued=len(queue),
            blocked_s=round(queue.blocked_for(now), 3),
            action="shutdown" if fds else "disconnect",
        )
        self._on_slow(queue.session, reason)
        for fd in fds:
            cut(fd)
        if not fds:
            # No thread is stuck in a send, so the session's mutex is free or soon will be.
            threading.Thread(target=self._disconnect, args=(queue.session,), daemon=True).start()

    def _stuck_sockets(self, queue: SessionQueue, now: float) -> set[int]:
        """The session's sockets a thread has been blocked sending on for over the send timeout.

        Only time in send(2) counts: our sender may also wait for the session's mutex while quickfix's
        thread resends to a peer that reads (and so is not behind). quickfix's thread is sampled at
        each check; our sender's send call has a known start.
        """
        stuck = set()
        for tid, started in ((queue.sender_tid, queue.sending_since), (queue.reader_tid, None)):
            if tid is None:
                continue
            fd = blocked_socket(tid, self._local_port)
            seen = queue.in_send.get(tid)
            if fd is None:
                queue.in_send.pop(tid, None)
                continue
            if seen is None or seen[0] != fd or (started is not None and seen[1] < started):
                seen = queue.in_send[tid] = (fd, now)
            if now - seen[1] > self.limits.send_timeout_s:
                stuck.add(fd)
        return stuck
