"""The venue-facing FIX initiator: child orders out, child execution reports and rejects in."""
from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import quickfix as fix

from gateway.core.types import VenueReport
from gateway.fix import codec
from gateway.fix.application import GuardedApplication

SENT_ORDERS_KEPT = 100_000  # a reject refers to a recent message; older ones need not be kept


class VenueHandler(Protocol):
    """Receives each venue event with the raw message it came in (for the audit trail)."""

    def venue_report(self, report: VenueReport, raw: str) -> None: ...
    def child_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None: ...
    def child_cancel_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None: ...
    def session_status(self, role: str, session: str, up: bool) -> None: ...


class VenueApplication(GuardedApplication):
    """One application for every venue session; `venues` maps session key -> venue name."""

    role = "venue"

    def __init__(self, handler: VenueHandler, venues: dict[str, str]) -> None:
        super().__init__()
        self.handler = handler
        self.venues = venues
        self.session_of = {venue: key for key, venue in venues.items()}
        # MsgSeqNum of recent NewOrderSingles, so a session reject (35=3) finds its child.
        self._sent_orders: OrderedDict[tuple[str, str], str] = OrderedDict()

    def on_logon(self, session: str) -> None:
        self.handler.session_status(self.role, self.venues[session], True)

    def on_logout(self, session: str) -> None:
        self.handler.session_status(self.role, self.venues[session], False)

    def on_sent(self, message: fix.Message, session: str) -> None:
        header = message.getHeader()
        if header.getField(codec.MSG_TYPE) == "D":
            seq = header.getField(codec.MSG_SEQ_NUM)
            self._sent_orders[(session, seq)] = message.getField(codec.CL_ORD_ID)
            if len(self._sent_orders) > SENT_ORDERS_KEPT:
                self._sent_orders.popitem(last=False)

    def on_admin(self, message: fix.Message, session: str) -> None:
        if message.getHeader().getField(codec.MSG_TYPE) != "3":
            return
        ref = message.getField(codec.REF_SEQ_NUM) if message.isSetField(codec.REF_SEQ_NUM) else None
        cl_ord_id = self._sent_orders.pop((session, ref), None)
        if cl_ord_id is not None:
            text = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else "session reject"
            self.handler.child_rejected(self.venues[session], cl_ord_id, f"session reject: {text}",
                                        message.toString())

    def on_app(self, message: fix.Message, session: str) -> None:
        venue = self.venues[session]
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        text = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else ""
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
            cl_ord_id = None
            if message.isSetField(codec.BUSINESS_REJECT_REF_ID):
                cl_ord_id = message.getField(codec.BUSINESS_REJECT_REF_ID)
            elif message.isSetField(codec.REF_SEQ_NUM):
                cl_ord_id = self._sent_orders.pop((session, message.getField(codec.REF_SEQ_NUM)), None)
            if cl_ord_id is not None:
                self.handler.child_rejected(venue, cl_ord_id, f"business reject: {text}", raw)
            elif self.tap:
                self.tap("in", session, message)
        else:
            raise fix.UnsupportedMessageType()

    def send_to_venue(self, message: fix.Message, venue: str) -> bool:
        return self.send(message, self.session_of[venue])

    def venue_begin_string(self, venue: str) -> str:
        return self.begin_string(self.session_of[venue])
