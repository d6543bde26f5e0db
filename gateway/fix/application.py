"""A quickfix Application base that never lets an exception escape a callback."""

from __future__ import annotations

from collections.abc import Callable

import quickfix as fix
import structlog

from gateway.fix import codec
from gateway.fix.logon import masked
from gateway.fix.sessions import logging_out, session_key
from gateway.fix.wire import SOH, WireMessage

log = structlog.get_logger("gateway.fix")

# Exceptions quickfix turns into a session-level reject (35=3) or a business reject (35=j).
FIX_REJECTS = (fix.FieldNotFound, fix.IncorrectDataFormat, fix.IncorrectTagValue, fix.UnsupportedMessageType)


class GuardedApplication(fix.Application):
    """Subclasses implement on_app/on_admin/on_logon/on_logout; errors become logs or FIX rejects.

    quickfix ends the process when a Python exception escapes a callback, so every callback
    catches. Messages are valid only inside the callback: subclasses copy out what they need.
    """

    role = "fix"

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, fix.SessionID] = {}
        self._begin_strings: dict[str, str] = {}  # a session key names its BeginString for good
        # Called with ("in" | "out", session, message, MsgType) for every message but incoming
        # application messages, which the handler records itself with their context.
        self.tap: Callable[[str, str, codec.Readable, str], None] | None = None
        # Called with ("in" | "out", session, MsgType) for every message, for metrics.
        self.count: Callable[[str, str, str], None] | None = None
        # Called with each outgoing application message before anything reads it: the one place it may change.
        self.amend: Callable[[fix.Message], None] | None = None

    def _guarded(self, callback: str, action: Callable[[], None]) -> None:
        try:
            action()
        except fix.RejectLogon:
            raise  # quickfix answers with a Logout carrying its text, and disconnects
        except Exception:
            log.exception(f"fix.{callback}_failed", role=self.role)

    def _tapped(self, direction: str, message, sessionID, then: Callable[[fix.Message, str], None]) -> None:
        key = session_key(sessionID)
        msg_type = message.getHeader().getField(codec.MSG_TYPE)  # read once: each read is a call into quickfix
        if self.count:
            self.count(direction, key, msg_type)
        if self.tap:
            # No password reaches the audit trail.
            self.tap(direction, key, masked(message) if msg_type == "A" else message, msg_type)
        then(message, key)

    def onCreate(self, sessionID):  # noqa: N802 - quickfix's names
        self._guarded("on_create", lambda: self.sessions.__setitem__(session_key(sessionID), sessionID))

    def onLogon(self, sessionID):  # noqa: N802
        self._guarded("on_logon", lambda: self.on_logon(session_key(sessionID)))

    def onLogout(self, sessionID):  # noqa: N802
        self._guarded("on_logout", lambda: self.on_logout(session_key(sessionID)))

    def toAdmin(self, message, sessionID):  # noqa: N802
        self._guarded("to_admin", lambda: self._tapped("out", message, sessionID, self.on_admin_sent))
        self._guarded("logging_out", lambda: logging_out(message, sessionID))

    def toApp(self, message, sessionID):  # noqa: N802
        amend = self.amend
        if amend is not None:
            self._guarded("amend", lambda: amend(message))
        self._guarded("to_app", lambda: self._app_sent(message, sessionID))

    def fromAdmin(self, message, sessionID):  # noqa: N802
        self._guarded("from_admin", lambda: self._tapped("in", message, sessionID, self.on_admin))

    def _app_sent(self, message, sessionID) -> None:
        key = session_key(sessionID)
        sent = WireMessage(message.toString())  # one call into quickfix: see gateway.fix.wire
        msg_type = sent.getField(codec.MSG_TYPE)
        if self.count:
            self.count("out", key, msg_type)
        if self.tap:
            self.tap("out", key, sent, msg_type)
        self.on_sent(sent, key)

    def fromApp(self, message, sessionID):  # noqa: N802
        key = session_key(sessionID)
        message = WireMessage(message.toString())  # one call into quickfix: see gateway.fix.wire
        msg_type = message.getField(codec.MSG_TYPE)
        try:
            if self.count:
                self.count("in", key, msg_type)
        except Exception:
            log.exception("fix.count_failed", role=self.role)
        try:
            self.on_app(message, key)
        except FIX_REJECTS:
            # Refused before the handler recorded it: the audit trail still gets the message.
            if self.tap:
                self.tap("in", key, message, msg_type)
            raise
        except Exception as exc:
            log.exception("fix.from_app_failed", role=self.role, message=message.toString().replace(SOH, "|"))
            try:
                self.on_failure(message, key, exc)
            except Exception:
                log.exception("fix.on_failure_failed", role=self.role)

    def send(self, message: fix.Message, session: str) -> bool:
        """Send on a session by key; False when the session is unknown or not logged on."""
        sid = self.sessions.get(session)
        if sid is None:
            return False
        return fix.Session.sendToTarget(message, sid)

    def disconnect(self, session: str) -> None:
        """Drop the session's connection (waits for a send under way on it: see gateway.fix.outbound.cut)."""
        sid = self.sessions.get(session)
        found = fix.Session.lookupSession(sid) if sid is not None else None
        if found is not None:
            found.disconnect()

    def begin_string(self, session: str) -> str:
        begin = self._begin_strings.get(session)
        if begin is None:
            begin = self._begin_strings[session] = self.sessions[session].getBeginString().getValue()
        return begin

    def on_logon(self, session: str) -> None: ...

    def on_logout(self, session: str) -> None: ...

    def on_sent(self, message: codec.Readable, session: str) -> None: ...

    def on_admin_sent(self, message: fix.Message, session: str) -> None:
        if message.getHeader().getField(codec.MSG_TYPE) == "3":  # we refused what the peer sent: ops must see it
            log.warning(
                "fix.session_reject_sent",
                role=self.role,
                session=session,
                message=message.toString().replace("\x01", "|"),
            )

    def on_admin(self, message: fix.Message, session: str) -> None: ...

    def on_app(self, message: codec.Readable, session: str) -> None: ...

    def on_failure(self, message: codec.Readable, session: str, exc: Exception) -> None:
        """on_app raised: tell the peer, so nothing it sent goes unanswered."""
