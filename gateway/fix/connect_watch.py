"""Venue connection attempts, read from quickfix's session events: each failure counted, logged without flooding."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import quickfix as fix
import structlog

log = structlog.get_logger("gateway.fix")

_CONNECTING = re.compile(r"Connecting to (\S+) on port (\d+)")
_TEXT = re.compile(r"\x0158=([^\x01]*)\x01")
# quickfix says nothing of a failed connect(): it even writes its Logon to the socket before it learns. A connection
# the venue accepted and closed ends with a socket error event instead.
CONNECT_FAILED = "connection refused or unreachable"
_ERRNO = re.compile(r"\(errno\[\d+\]:(.*)\)")  # how quickfix words a failed recv(): "(errno[104]:Connection ...)"
LOGON_TIMEOUT = "logon timeout"


@dataclass(slots=True)
class _Venue:
    """One venue's connection: the attempt under way, and its failures since it was last logged on."""

    address: str = "?"
    reason: str | None = None  # what ended the attempt under way, when quickfix said
    logged_on: bool = False
    failures: int = 0  # since the last logon
    unreported: int = 0  # since the last warning
    down_since: float | None = None
    warned_at: float | None = None


def socket_error(text: str) -> str:
    """quickfix's Socket Error text as a reason, however it words it: "Connection reset by peer." and
    "(errno[104]:Connection reset by peer)" are both "connection reset by peer"."""
    errno = _ERRNO.fullmatch(text.strip())
    return (errno[1] if errno else text).strip().rstrip(".").lower()


class ConnectWatch:
    """Fed quickfix's events and incoming messages for each venue session (see WatchedLogFactory). A failed
    attempt calls `count(venue)`; the first failure after a logon (or at start) logs a warning with the reason,
    then at most one every `every_s` seconds with the failures since the last one; the logon that ends a run of
    failures logs an info line."""

    def __init__(self, venues: dict[str, str], count: Callable[[str], None], every_s: float = 60.0) -> None:
        self.venues = venues  # session key -> venue name
        self._count = count
        self._every_s = every_s
        self._lock = threading.Lock()  # the initiator's thread, and whichever thread stops the engine
        self._state = {key: _Venue() for key in venues}
        self._factory: WatchedLogFactory | None = None

    def event(self, session: str, text: str) -> None:
        venue = self._state.get(session)
        if venue is None:
            return
        with self._lock:
            connecting = _CONNECTING.match(text)
            if connecting:
                venue.address = f"{connecting[1]}:{connecting[2]}"
                venue.reason = None
            elif text.startswith("Received logon"):
                self._logged_on(session, venue)
            elif text.startswith("Timed out waiting for logon response"):
                venue.reason = LOGON_TIMEOUT
            elif text.startswith("Socket Error: ") and venue.reason is None:
                venue.reason = socket_error(text.removeprefix("Socket Error: "))
            elif text.startswith("Disconnecting") and not venue.logged_on:
                reason, venue.reason = venue.reason or CONNECT_FAILED, None
                self._failed(session, venue, reason)
            elif text.startswith("Disconnecting"):
                venue.logged_on = False  # a drop after a logon: session.logout says so; the next attempt counts

    def incoming(self, session: str, raw: str) -> None:
        """A Logout (35=5) answering our Logon names why the venue refused it."""
        venue = self._state.get(session)
        if venue is None or "\x0135=5\x01" not in raw:
            return
        with self._lock:
            if not venue.logged_on:
                text = _TEXT.search(raw)
                venue.reason = f"logout: {text[1] if text else 'no reason given'}"

    def _logged_on(self, session: str, venue: _Venue) -> None:
        if venue.failures:
            log.info(
                "venue.connected",
                venue=self.venues[session],
                address=venue.address,
                failures=venue.failures,
                down_s=round(time.monotonic() - (venue.down_since or 0.0), 1),
            )
        venue.logged_on, venue.failures, venue.unreported = True, 0, 0
        venue.down_since = venue.warned_at = None

    def _failed(self, session: str, venue: _Venue, reason: str) -> None:
        name = self.venues[session]
        self._count(name)
        now = time.monotonic()
        venue.failures += 1
        venue.unreported += 1
        if venue.down_since is None:
            venue.down_since = now
        if venue.warned_at is None or now - venue.warned_at >= self._every_s:
            log.warning(
                "venue.connect_failed",
                venue=name,
                address=venue.address,
                reason=reason,
                failures=venue.unreported,
                failing_for_s=round(now - venue.down_since, 1),
            )
            venue.warned_at, venue.unreported = now, 0

    def log_factory(self, inner: fix.LogFactory | None) -> fix.LogFactory:
        """A quickfix LogFactory feeding this watch (and `inner`, the file log, when there is one); kept alive by
        the watch, since quickfix holds only a pointer to it."""
        self._factory = WatchedLogFactory(self, inner)
        return self._factory


class _SessionLog(fix.Log):
    """quickfix's Log for one session: passes each event and incoming message to the watch, then to `inner`.
    Runs on quickfix's threads: nothing may escape it."""

    def __init__(self, watch: ConnectWatch, session: str | None, inner: fix.Log | None) -> None:
        super().__init__()
        self._watch, self._session, self._inner = watch, session, inner

    def clear(self) -> None:
        if self._inner is not None:
            self._inner.clear()

    def backup(self) -> None:
        if self._inner is not None:
            self._inner.backup()

    def onIncoming(self, message: str) -> None:  # noqa: N802 - quickfix's names
        try:
            if self._session is not None:
                self._watch.incoming(self._session, message)
            if self._inner is not None:
                self._inner.onIncoming(message)
        except Exception:
            log.exception("fix.log_failed")

    def onOutgoing(self, message: str) -> None:  # noqa: N802
        try:
            if self._inner is not None:
                self._inner.onOutgoing(message)
        except Exception:
            log.exception("fix.log_failed")

    def onEvent(self, text: str) -> None:  # noqa: N802
        try:
            if self._session is not None:
                self._watch.event(self._session, text)
            if self._inner is not None:
                self._inner.onEvent(text)
        except Exception:
            log.exception("fix.log_failed")


class WatchedLogFactory(fix.LogFactory):
    """Makes a _SessionLog per session. Each log is handed over to quickfix (__disown__): it deletes them, and a
    Python-owned log would be freed twice."""

    def __init__(self, watch: ConnectWatch, inner: fix.LogFactory | None) -> None:
        super().__init__()
        self._watch, self._inner = watch, inner

    def create(self, *args: Any) -> fix.Log:
        inner = self._inner.create(*args) if self._inner is not None else None
        session = args[0].toString() if args else None
        return _SessionLog(self._watch, session, inner).__disown__()

    def destroy(self, log_: fix.Log) -> None:
        pass  # quickfix deletes the logs it was given
