"""The venue-facing FIX initiator: child orders out, child execution reports and rejects in."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import quickfix as fix
import structlog

from gateway.core.types import VenueReport
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.logon import PASSWORD, USERNAME

log = structlog.get_logger("gateway.fix")

SENT_KEPT = 10_000  # a reject refers to a recent message (milliseconds old); older ones need not be kept


class VenueHandler(Protocol):
    """Receives each venue event with the raw message it came in (for the audit trail)."""

    def venue_report(self, report: VenueReport, raw: str) -> None: ...
    def child_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None: ...
    def child_cancel_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None: ...
    def session_status(self, role: str, session: str, up: bool) -> None: ...


class VenueApplication(GuardedApplication):
    """One application for every venue session; `venues` maps session key -> venue name."""

    role = "venue"

    def __init__(
        self,
        handler: VenueHandler,
        venues: dict[str, str],
        credentials: dict[str, tuple[str, str | None]] | None = None,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.venues = venues
        self.session_of = {venue: key for key, venue in venues.items()}
        self.credentials = credentials or {}  # session key -> (Username, Password or None)
        # (session, MsgSeqNum) -> (MsgType, ClOrdID) of recent orders and cancels, so a reject that names
        # only the sequence number (35=3, or 35=j without BusinessRejectRefID) finds what it refused.
        self._sent: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._sent_ids: dict[tuple[str, str], str] = {}  # (session, ClOrdID) -> MsgSeqNum

    def on_logon(self, session: str) -> None:
        self.handler.session_status(self.role, self.venues[session], True)

    def on_logout(self, session: str) -> None:
        self.handler.session_status(self.role, self.venues[session], False)

    def on_sent(self, message: codec.Readable, session: str) -> None:
        header = message.getHeader()
        msg_type = header.getField(codec.MSG_TYPE)
        if msg_type in ("D", "F"):
            seq = header.getField(codec.MSG_SEQ_NUM)
            cl_ord_id = message.getField(codec.CL_ORD_ID)
            self._sent[(session, seq)] = (msg_type, cl_ord_id)
            self._sent_ids[(session, cl_ord_id)] = seq
            if len(self._sent) > SENT_KEPT:
                (old_session, _), (_, old_id) = self._sent.popitem(last=False)
                self._sent_ids.pop((old_session, old_id), None)

    def on_admin_sent(self, message: fix.Message, session: str) -> None:
        super().on_admin_sent(message, session)
        credentials = self.credentials.get(session)
        if credentials is not None and message.getHeader().getField(codec.MSG_TYPE) == "A":
            # Set after the audit tap has recorded the Logon: the password never reaches the trail.
            username, password = credentials
            message.setField(USERNAME, username)
            if password is not None:
                message.setField(PASSWORD, password)

    def on_admin(self, message: fix.Message, session: str) -> None:
        if message.getHeader().getField(codec.MSG_TYPE) == "3":
            text = codec.text(message) or "no reason given"
            self._refused(session, self._referenced(session, message, None), f"session reject: {text}", message)

    def _referenced(self, session: str, message: codec.Readable, ref_id: str | None) -> tuple[str, str] | None:
        """(MsgType, ClOrdID) of the order or cancel a reject refers to, by ClOrdID or by MsgSeqNum."""
        if ref_id is not None and (session, ref_id) in self._sent_ids:
            return self._sent.get((session, self._sent_ids[(session, ref_id)]))
        if message.isSetField(codec.REF_SEQ_NUM):
            return self._sent.get((session, message.getField(codec.REF_SEQ_NUM)))
        return None

    def _refused(self, session: str, sent: tuple[str, str] | None, text: str, message: codec.Readable) -> None:
        venue = self.venues[session]
        if sent is None:
            log.warning(
                "venue.reject_unmatched", venue=venue, text=text, message=message.toString().replace("\x01", "|")
            )
            if self.tap and message.getHeader().getField(codec.MSG_TYPE) == "j":
                self.tap("in", session, message, "j")  # fromAdmin messages are tapped already
        elif sent[0] == "D":
            self.handler.child_rejected(venue, sent[1], text, message.toString())
        else:
            self.handler.child_cancel_rejected(venue, sent[1], text, message.toString())

    def on_app(self, message: codec.Readable, session: str) -> None:
        venue = self.venues[session]
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        text = codec.text(message) or ""
        raw = message.toString()
        if msg_type == "8":
            try:
                report = codec.parse_venue_report(message, venue)
            except codec.FieldError as exc:
                raise exc.to_fix() from None
            self.handler.venue_report(report, raw)
        elif msg_type == "9":
            self.handler.child_cancel_rejected(venue, message.getField(codec.ORIG_CL_ORD_ID), text, raw)
        elif msg_type == "j":
            ref_id = (
                message.getField(codec.BUSINESS_REJECT_REF_ID)
                if message.isSetField(codec.BUSINESS_REJECT_REF_ID)
                else None
            )
            self._refused(session, self._referenced(session, message, ref_id), f"business reject: {text}", message)
        else:
            raise fix.UnsupportedMessageType()

    def send_to_venue(self, message: fix.Message, venue: str) -> bool:
        """False when the venue's session is not logged on. quickfix would store the message and say it was
        sent, but a session that resets on logon drops it: the engine sends it again after the next logon."""
        sid = self.sessions.get(self.session_of[venue])
        if sid is None:
            return False
        session = fix.Session.lookupSession(sid)
        if session is None or not session.isLoggedOn():
            return False
        return fix.Session.sendToTarget(message, sid)

    def venue_begin_string(self, venue: str) -> str:
        return self.begin_string(self.session_of[venue])
