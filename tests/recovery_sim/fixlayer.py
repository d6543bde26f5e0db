"""A simulated FIX session layer: a message store per side, sequence numbers, logon, resend and gap fill.

It follows quickfix's order of operations: an outgoing application message gets its MsgSeqNum,
goes through toApp (where the gateway records it), is stored, and is sent only if logged on;
an incoming one is counted received only after fromApp returns. On logon each side that sees a
MsgSeqNum higher than it expects asks for a resend and gets the stored application messages
again with PossDupFlag=Y (the rest gap-filled); a message with a lower MsgSeqNum and no
PossDupFlag is the protocol failure quickfix logs out for.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import quickfix as fix

from gateway.fix import codec
from gateway.fix.sessions import StoreState

BEGIN_STRING = "FIX.4.4"
ADMIN = frozenset("0 1 2 3 4 5 A".split())
BEGIN_SEQ_NO, END_SEQ_NO, GAP_FILL_FLAG, NEW_SEQ_NO = 7, 16, 123, 36
TRACE = bool(os.environ.get("SORGW_SIM_TRACE"))  # print every message as it arrives, to follow one seed


@dataclass
class Store:
    """What quickfix keeps on disk for one side of a session: it survives every crash."""

    created: str
    next_sender: int = 1
    next_target: int = 1
    messages: dict[int, str] = field(default_factory=dict)  # MsgSeqNum -> application message text

    def state(self) -> StoreState:
        return StoreState(self.next_sender, self.next_target, self.created, True)


def message(msg_type: str, fields: dict[int, str] | None = None) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString(BEGIN_STRING))
    msg.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in (fields or {}).items():
        msg.setField(tag, value)
    return msg


def flagged(msg: fix.Message, tag: int) -> bool:
    header = msg.getHeader()
    return header.isSetField(tag) and header.getField(tag) == "Y"


def _nothing(*_args) -> None:
    return None


class Endpoint:
    """One side of one session in one process lifetime; `store` is what outlives the process."""

    def __init__(
        self,
        name: str,
        store: Store,
        on_app: Callable[[fix.Message], None],
        acceptor: bool,
        violation: Callable[[str], None],
        tap: Callable[[fix.Message], None] = _nothing,
        tap_in: Callable[[fix.Message], None] = _nothing,
        point: Callable[[str], None] = _nothing,
        on_logon: Callable[[], None] = _nothing,
        on_logout: Callable[[], None] = _nothing,
    ) -> None:
        self.name = name
        self.store = store
        self.on_app, self.acceptor, self.violation = on_app, acceptor, violation
        self.tap, self.tap_in = tap, tap_in  # toApp/toAdmin, and the peer's Logon
        self.point, self.on_logon, self.on_logout = point, on_logon, on_logout
        self.inbox: deque[str] = deque()  # in flight to this side
        self.other: Endpoint | None = None  # the other side while connected
        self.logged_on = False
        self._queued: dict[int, str] = {}  # arrived ahead of a gap
        self._awaiting_resend = False

    # --- sending --------------------------------------------------------------------------

    def send(self, msg: fix.Message) -> bool:
        """quickfix's sendRaw for an application message: number, toApp, store, send if logged on."""
        seq = self.store.next_sender
        msg.getHeader().setField(codec.MSG_SEQ_NUM, str(seq))
        self.tap(msg)
        text = msg.toString()
        self.store.messages[seq] = text
        self.store.next_sender += 1
        self.point("stored")
        if self.logged_on:
            self._transmit(text)
        return True

    def _send_admin(self, msg: fix.Message, seq: int | None = None, poss_dup: bool = False) -> None:
        if seq is None:
            seq = self.store.next_sender
            self.store.next_sender += 1
        msg.getHeader().setField(codec.MSG_SEQ_NUM, str(seq))
        if poss_dup:
            msg.getHeader().setField(codec.POSS_DUP_FLAG, "Y")
        self.tap(msg)
        self._transmit(msg.toString())

    def _transmit(self, text: str) -> None:
        if self.other is not None:
            self.other.inbox.append(text)

    def logon(self) -> None:
        self._send_admin(message("A", {98: "0", 108: "30"}))

    # --- receiving ------------------------------------------------------------------------

    def receive_one(self) -> None:
        self._receive(self.inbox.popleft())

    def _receive(self, text: str) -> None:
        if TRACE:
            print(f"{self.name} <- {text.replace(chr(1), '|')}")
        msg = fix.Message(text, False)
        header = msg.getHeader()
        msg_type = header.getField(codec.MSG_TYPE)
        seq = int(header.getField(codec.MSG_SEQ_NUM))
        if msg_type == "A" and not self.logged_on:
            self.tap_in(msg)
            if self.acceptor:
                self.logon()
            self.logged_on = True
            self.on_logon()
        if msg_type == "2":
            self._resend(int(msg.getField(BEGIN_SEQ_NO)), int(msg.getField(END_SEQ_NO)))
        if seq < self.store.next_target:
            if not flagged(msg, codec.POSS_DUP_FLAG):
                self.violation(
                    f"{self.name}: MsgSeqNum too low, {seq} < {self.store.next_target}, "
                    f"without PossDupFlag: {text.replace(chr(1), '|')}"
                )
            return
        if seq > self.store.next_target:
            self._queued[seq] = text
            if not self._awaiting_resend:  # as quickfix asks: from the gap to infinity (EndSeqNo 0)
                self._awaiting_resend = True
                self._send_admin(message("2", {BEGIN_SEQ_NO: str(self.store.next_target), END_SEQ_NO: "0"}))
            return
        self._process(msg, msg_type)
        self._drain()

    def _process(self, msg: fix.Message, msg_type: str) -> None:
        if msg_type == "4" and msg.isSetField(GAP_FILL_FLAG) and msg.getField(GAP_FILL_FLAG) == "Y":
            self.store.next_target = max(self.store.next_target + 1, int(msg.getField(NEW_SEQ_NO)))
            return
        if msg_type not in ADMIN:
            self.on_app(msg)
            self.point("handled")
        self.store.next_target += 1

    def _drain(self) -> None:
        while self._queued:
            seq = min(self._queued)
            if seq > self.store.next_target:
                break
            text = self._queued.pop(seq)
            if seq == self.store.next_target:
                msg = fix.Message(text, False)
                self._process(msg, msg.getHeader().getField(codec.MSG_TYPE))
        self._awaiting_resend = bool(self._queued)

    def _resend(self, begin: int, end: int) -> None:
        """Answer a ResendRequest: stored application messages again with PossDupFlag=Y, gaps filled."""
        end = end or self.store.next_sender - 1
        seq = begin
        while seq <= end:
            text = self.store.messages.get(seq)
            if text is None:
                upto = seq
                while upto <= end and upto not in self.store.messages:
                    upto += 1
                self._send_admin(message("4", {GAP_FILL_FLAG: "Y", NEW_SEQ_NO: str(upto)}), seq, poss_dup=True)
                seq = upto
                continue
            msg = fix.Message(text, False)
            msg.getHeader().setField(codec.POSS_DUP_FLAG, "Y")
            self.tap(msg)
            self._transmit(msg.toString())
            seq += 1

    def disconnected(self) -> None:
        """The connection is gone: what was queued ahead of a gap is asked for again at the next logon."""
        was_on = self.logged_on
        self.other = None
        self.logged_on = False
        self._queued.clear()
        self._awaiting_resend = False
        if was_on:
            self.on_logout()


def connect(initiator: Endpoint, acceptor: Endpoint) -> None:
    initiator.other, acceptor.other = acceptor, initiator
    initiator.logon()
