"""A scripted OMS: a FIX initiator that sends parent orders and records every reply (demo and tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from gateway.config import FixConfig
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.sessions import SessionSpec, begin_shutdown, make_engine, session_id, session_key


@dataclass(frozen=True, slots=True)
class Received:
    """One application or reject message the OMS received, as tag -> value."""

    msg_type: str
    fields: dict[int, str]

    def __getitem__(self, tag: int) -> str:
        return self.fields[tag]

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self.fields.get(tag, default)


def _fields(message: codec.Readable) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in message.toString().split("\x01"):
        if "=" in part:
            tag, _, value = part.partition("=")
            out.setdefault(int(tag), value)
    return out


def wait_for(
    cond: threading.Condition, predicate: Callable[[], bool], timeout: float, poll: float | None = None
) -> bool:
    """Wait on `cond` until predicate() holds (checked on each notify, and every `poll` seconds if given)."""
    deadline = time.monotonic() + timeout
    with cond:
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            cond.wait(remaining if poll is None else min(remaining, poll))
        return True


class OmsClient(GuardedApplication):
    role = "oms"

    def __init__(self, spec: SessionSpec, cfg: FixConfig, work_dir: Path) -> None:
        super().__init__()
        self.spec = spec
        self.received: list[Received] = []
        self.rejects_sent: list[Received] = []
        self._cond = threading.Condition()
        self._logged_on = False
        self._initiator = make_engine("initiator", self, [spec], cfg, work_dir)
        self.session = session_key(session_id(spec))

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._initiator.start()
        if not self.wait(lambda: self._logged_on, timeout):
            self.stop()
            raise TimeoutError(f"OMS session {self.session} did not log on within {timeout}s")

    def stop(self) -> None:
        self.begin_stop()()

    def begin_stop(self) -> Callable[[], None]:
        """Log out now; the function returned finishes the stop (see gateway.fix.sessions.begin_shutdown)."""
        stopped = begin_shutdown(self._initiator, self.sessions.values())

        def finish() -> None:
            stopped()
            self._initiator = None  # destroy its sessions now: see Gateway.stop

        return finish

    def on_logon(self, session: str) -> None:
        with self._cond:
            self._logged_on = True
            self._cond.notify_all()

    def on_logout(self, session: str) -> None:
        with self._cond:
            self._logged_on = False
            self._cond.notify_all()

    def on_app(self, message: codec.Readable, session: str) -> None:
        self._record(message)

    def on_admin(self, message: fix.Message, session: str) -> None:
        if message.getHeader().getField(codec.MSG_TYPE) == "3":
            self._record(message)

    def on_admin_sent(self, message: fix.Message, session: str) -> None:
        super().on_admin_sent(message, session)
        # A reject the OMS itself sends means the gateway sent something its dictionary refuses.
        if message.getHeader().getField(codec.MSG_TYPE) == "3":
            with self._cond:
                self.rejects_sent.append(Received("3", _fields(message)))

    def _record(self, message: codec.Readable) -> None:
        received = Received(message.getHeader().getField(codec.MSG_TYPE), _fields(message))
        with self._cond:
            self.received.append(received)
            self._cond.notify_all()

    # --- sending ------------------------------------------------------------------------

    def _message(self, msg_type: str, fields: dict[int, object]) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(fix.BeginString(self.spec.begin_string))
        msg.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in fields.items():
            if value is not None:
                msg.setField(tag, str(value))
        msg.setField(fix.TransactTime())
        return msg

    def send_fields(self, msg_type: str, fields: dict[int, object]) -> None:
        """Send any application message; fields with None are left out."""
        if not fix.Session.sendToTarget(self._message(msg_type, fields), self.sessions[self.session]):
            raise RuntimeError(f"OMS session {self.session} is not logged on")

    def new_order(
        self,
        cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        price: Decimal | str | None = None,
        tif: str = "0",
        ex_destination: str | None = None,
        urgency: str | None = None,
        strategy: str | None = None,
    ) -> None:
        fields: dict[int, object] = {
            codec.CL_ORD_ID: cl_ord_id,
            codec.SYMBOL: symbol,
            codec.SIDE: side,
            codec.ORDER_QTY: qty,
            codec.ORD_TYPE: "1" if price is None else "2",
            codec.PRICE: price,
            codec.TIF: tif,
            codec.EX_DESTINATION: ex_destination,
            codec.SOR_URGENCY: urgency,
            codec.SOR_STRATEGY: strategy,
        }
        if self.spec.begin_string == codec.FIX42:
            fields[21] = "1"
        self.send_fields("D", fields)

    def cancel(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, side: str, qty: int) -> None:
        self.send_fields(
            "F",
            {
                codec.CL_ORD_ID: cl_ord_id,
                codec.ORIG_CL_ORD_ID: orig_cl_ord_id,
                codec.SYMBOL: symbol,
                codec.SIDE: side,
                codec.ORDER_QTY: qty,
            },
        )

    def replace(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        price: Decimal | str | None,
        tif: str = "0",
    ) -> None:
        fields: dict[int, object] = {
            codec.CL_ORD_ID: cl_ord_id,
            codec.ORIG_CL_ORD_ID: orig_cl_ord_id,
            codec.SYMBOL: symbol,
            codec.SIDE: side,
            codec.ORDER_QTY: qty,
            codec.ORD_TYPE: "1" if price is None else "2",
            codec.PRICE: price,
            codec.TIF: tif,
        }
        if self.spec.begin_string == codec.FIX42:
            fields[21] = "1"
        self.send_fields("G", fields)

    def status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        self.send_fields("H", {codec.CL_ORD_ID: cl_ord_id, codec.SYMBOL: symbol, codec.SIDE: side})

    # --- reading ------------------------------------------------------------------------

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until predicate() holds; it is re-checked on every message and every 20 ms."""
        return wait_for(self._cond, predicate, timeout, poll=0.02)

    def reports(self, order_id_or_cl_ord_id: str | None = None) -> list[Received]:
        """Execution reports and cancel rejects, optionally those of one order (by ClOrdID chain or OrderID)."""
        with self._cond:
            items = [m for m in self.received if m.msg_type in ("8", "9")]
        if order_id_or_cl_ord_id is None:
            return items
        order_ids = {
            m.get(codec.ORDER_ID)
            for m in items
            if order_id_or_cl_ord_id in (m.get(codec.CL_ORD_ID), m.get(codec.ORIG_CL_ORD_ID))
        }
        order_ids.discard("NONE")
        return [
            m
            for m in items
            if m.get(codec.ORDER_ID) in order_ids
            or (m.get(codec.ORDER_ID) == "NONE" and m.get(codec.CL_ORD_ID) == order_id_or_cl_ord_id)
        ]

    def wait_final(self, cl_ord_id: str, timeout: float = 10.0) -> Received | None:
        """The report that ends an order (OrdStatus filled, canceled, rejected, expired), if it comes in time."""

        def final() -> Received | None:
            for m in reversed(self.reports(cl_ord_id)):
                if (
                    m.msg_type == "8"
                    and m.get(codec.ORD_STATUS) in ("2", "4", "8", "C", "3")
                    and m.get(codec.EXEC_TYPE) != "I"
                ):
                    return m
            return None

        self.wait(lambda: final() is not None, timeout)
        return final()

    def session_rejects(self) -> list[Received]:
        with self._cond:
            return [m for m in self.received if m.msg_type in ("3", "j")]
