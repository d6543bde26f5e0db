"""The OMS-facing FIX acceptor: NewOrderSingle, cancel, replace and status requests in, reports out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import quickfix as fix
import structlog

from gateway.core.types import (
    CancelRequest,
    InvalidChange,
    InvalidOrder,
    NewOrder,
    ReplaceRequest,
    StatusRequest,
    Urgency,
)
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.logon import PASSWORD, REFUSALS, USERNAME, Credentials, refusal

log = structlog.get_logger("gateway.fix")


class OmsHandler(Protocol):
    """Receives each OMS request with the raw message it came in (for the audit trail)."""

    def new_order(self, order: NewOrder | InvalidOrder, raw: str) -> None: ...
    def cancel(self, request: CancelRequest | InvalidChange, raw: str) -> None: ...
    def replace(self, request: ReplaceRequest | InvalidChange, raw: str) -> None: ...
    def status(self, request: StatusRequest, raw: str) -> None: ...
    def session_status(self, role: str, session: str, up: bool) -> None: ...
    def logon_refused(self, session: str, reason: str, username: str | None) -> None: ...


class UpstreamApplication(GuardedApplication):
    role = "upstream"

    def __init__(
        self, handler: OmsHandler, default_urgency: Urgency, credentials: dict[str, Credentials] | None = None
    ) -> None:
        super().__init__()
        self.handler = handler
        self.default_urgency = default_urgency
        self.credentials = credentials or {}  # session key -> what its Logon must carry; absent: CompIDs only
        # Called with the session key on quickfix's thread for that session's connection, at each logon.
        self.connection_thread: Callable[[str], None] | None = None

    def on_logon(self, session: str) -> None:
        if self.connection_thread:
            self.connection_thread(session)
        self.handler.session_status(self.role, session, True)

    def on_logout(self, session: str) -> None:
        self.handler.session_status(self.role, session, False)

    def on_admin(self, message: fix.Message, session: str) -> None:
        expected = self.credentials.get(session)
        if expected is None or message.getHeader().getField(codec.MSG_TYPE) != "A":
            return
        try:
            username = message.getField(USERNAME) if message.isSetField(USERNAME) else None
            password = message.getField(PASSWORD) if message.isSetField(PASSWORD) else None
            reason = refusal(expected, username, password)
        except Exception:  # fail closed: a check that breaks lets nobody in
            log.exception("upstream.logon_check_failed", session=session)
            raise fix.RejectLogon("logon refused: the gateway could not check it") from None
        if reason is None:
            return
        try:
            self.handler.logon_refused(session, reason, username)
        except Exception:
            log.exception("upstream.logon_refused_failed", session=session)
        raise fix.RejectLogon(REFUSALS[reason])

    def on_app(self, message: codec.Readable, session: str) -> None:
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        raw = message.toString()
        try:
            if msg_type == "D":
                self.handler.new_order(codec.parse_new_order(message, session, self.default_urgency), raw)
            elif msg_type == "F":
                self.handler.cancel(codec.parse_cancel(message, session), raw)
            elif msg_type == "G":
                self.handler.replace(codec.parse_replace(message, session), raw)
            elif msg_type == "H":
                self.handler.status(codec.parse_status_request(message, session), raw)
            else:
                raise fix.UnsupportedMessageType()
        except codec.FieldError as exc:
            raise exc.to_fix() from None

    def on_failure(self, message: codec.Readable, session: str, exc: Exception) -> None:
        self.send(
            codec.business_reject(message, f"gateway could not process the message: {exc}", self.begin_string(session)),
            session,
        )
