"""A plain FIX 4.2 exchange on quickfix directly, not our simulator: limit orders only, Day only, fills at
the limit price, no market data, terse reports; a session can instead answer every order with 35=3 or 35=j."""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import quickfix as fix

from gateway.fix import specs

BEGIN = "FIX.4.2"
CL_ORD_ID, ORDER_ID, ORIG_CL_ORD_ID, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE, TIF = 11, 37, 41, 55, 54, 38, 40, 44, 59


@dataclass
class PlainVenue:
    """One session of the exchange and how it behaves."""

    comp_id: str
    port: int
    fill_qty: int = 0  # each order fills up to this much at once, at its limit, in two reports
    answer: str = "fill"  # "fill", "session_reject" (35=3) or "business_reject" (35=j)
    password: str | None = None  # required in Password (554) on Logon
    orders: list[dict[int, str]] = field(default_factory=list)  # every NewOrderSingle received
    cancels: list[dict[int, str]] = field(default_factory=list)
    resting: dict[str, dict] = field(default_factory=dict)  # ClOrdID -> order state
    closed: bool = False


def dictionary(work_dir: Path) -> Path:
    """The exchange's own FIX 4.2 dictionary: the standard one plus Username/Password on Logon."""
    path = work_dir / "plain42.xml"
    specs.merge(specs.standard_spec_dir() / "FIX42.xml", specs.custom_fields_file(), path)
    return path


class PlainExchange(fix.Application):
    def __init__(self, venues: list[PlainVenue], work_dir: Path, gateway_comp_id: str = "SORGW") -> None:
        super().__init__()
        self.venues = {v.comp_id: v for v in venues}
        self.lock = threading.Condition()
        self.logged_on: set[str] = set()
        self._sessions: dict[str, fix.SessionID] = {}
        self._ids = itertools.count(1)
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        for key, value in {
            "ConnectionType": "acceptor",
            "StartTime": "00:00:00",
            "EndTime": "00:00:00",
            "UseDataDictionary": "Y",
            "DataDictionary": str(dictionary(work_dir)),
            "ResetOnLogon": "Y",
            "FileLogPath": str(work_dir / "plain-log"),
        }.items():
            defaults.setString(key, value)
        settings.set(defaults)
        for venue in venues:
            d = fix.Dictionary()
            d.setString("SocketAcceptPort", str(venue.port))
            settings.set(fix.SessionID(BEGIN, venue.comp_id, gateway_comp_id), d)
        self._acceptor = fix.ThreadedSocketAcceptor(self, fix.MemoryStoreFactory(), settings)

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        self._acceptor.stop()
        self._acceptor = None

    # --- quickfix callbacks: nothing may escape but the rejects quickfix turns into 35=3 / RejectLogon ------

    def onCreate(self, sessionID):
        self._sessions[sessionID.getSenderCompID().getValue()] = sessionID

    def onLogon(self, sessionID):
        with self.lock:
            self.logged_on.add(sessionID.getSenderCompID().getValue())
            self.lock.notify_all()

    def onLogout(self, sessionID):
        with self.lock:
            self.logged_on.discard(sessionID.getSenderCompID().getValue())

    def toAdmin(self, message, sessionID):
        pass

    def toApp(self, message, sessionID):
        pass

    def fromAdmin(self, message, sessionID):
        venue = self.venues[sessionID.getSenderCompID().getValue()]
        if message.getHeader().getField(35) == "A" and venue.password is not None:
            given = message.getField(554) if message.isSetField(554) else None
            if given != venue.password:
                raise fix.RejectLogon("bad password")

    def fromApp(self, message, sessionID):
        try:
            self._from_app(message, sessionID)
        except (fix.IncorrectTagValue, fix.UnsupportedMessageType):
            raise
        except Exception:  # noqa: BLE001 - anything escaping a callback would end the test process
            traceback.print_exc()

    def _from_app(self, message, sessionID) -> None:
        venue = self.venues[sessionID.getSenderCompID().getValue()]
        msg_type = message.getHeader().getField(35)
        fields = {
            tag: message.getField(tag)
            for tag in (CL_ORD_ID, ORIG_CL_ORD_ID, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE, TIF)
            if message.isSetField(tag)
        }
        if msg_type == "D":
            with self.lock:
                venue.orders.append(fields)
                self.lock.notify_all()
            if venue.answer == "session_reject":
                raise fix.IncorrectTagValue(ORD_TYPE)
            if venue.answer == "business_reject":
                self._business_reject(message, sessionID, fields[CL_ORD_ID])
                return
            self._new_order(venue, fields, sessionID)
        elif msg_type == "F":
            with self.lock:
                venue.cancels.append(fields)
            self._cancel(venue, fields, sessionID)
        else:
            raise fix.UnsupportedMessageType()

    # --- behaviour ----------------------------------------------------------------------------------------

    def _new_order(self, venue: PlainVenue, f: dict[int, str], sid: fix.SessionID) -> None:
        problem = (
            "market closed"
            if venue.closed
            else "limit orders only"
            if f.get(ORD_TYPE) != "2"
            else "Day orders only"
            if f.get(TIF, "0") != "0"
            else None
        )
        order = {"f": f, "order_id": f"X{next(self._ids)}", "qty": int(f[ORDER_QTY]), "cum": 0}
        if problem:
            self._report(sid, order, f[CL_ORD_ID], "8", "8", text=problem)
            return
        self._report(sid, order, f[CL_ORD_ID], "0", "0")  # no LeavesQty, CumQty or AvgPx
        fill = min(venue.fill_qty, order["qty"])
        for part in (fill // 2, fill - fill // 2):
            if part:
                order["cum"] += part
                done = order["cum"] == order["qty"]
                self._report(
                    sid,
                    order,
                    f[CL_ORD_ID],
                    "2" if done else "1",
                    "2" if done else "1",
                    last=(part, f[PRICE]),
                    totals=done,
                )
        if order["cum"] < order["qty"]:
            with self.lock:
                venue.resting[f[CL_ORD_ID]] = order

    def _cancel(self, venue: PlainVenue, f: dict[int, str], sid: fix.SessionID) -> None:
        with self.lock:
            order = venue.resting.pop(f[ORIG_CL_ORD_ID], None)
        if order is None:
            reject = self._message("9")
            for tag, value in (
                (CL_ORD_ID, f[CL_ORD_ID]),
                (ORIG_CL_ORD_ID, f[ORIG_CL_ORD_ID]),
                (ORDER_ID, "NONE"),
                (39, "8"),
                (434, "1"),
                (102, "1"),
                (58, "unknown order"),
            ):
                reject.setField(tag, value)
            fix.Session.sendToTarget(reject, sid)
            return
        self._report(sid, order, f[CL_ORD_ID], "4", "4", orig=f[ORIG_CL_ORD_ID], totals=True)

    def unsolicited(self, comp_id: str, exec_type: str) -> int:
        """End every resting order of a session on the exchange's own initiative: 4 canceled, 3 done for day."""
        venue = self.venues[comp_id]
        with self.lock:
            orders, venue.resting = list(venue.resting.values()), {}
            venue.closed = venue.closed or exec_type == "3"
        for order in orders:
            self._report(self._sessions[comp_id], order, order["f"][CL_ORD_ID], exec_type, exec_type, totals=True)
        return len(orders)

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def _business_reject(self, ref: fix.Message, sid: fix.SessionID, cl_ord_id: str) -> None:
        msg = self._message("j")
        msg.setField(45, ref.getHeader().getField(34))  # RefSeqNum
        msg.setField(372, "D")  # RefMsgType
        msg.setField(379, cl_ord_id)  # BusinessRejectRefID
        msg.setField(380, "3")  # BusinessRejectReason: unsupported message type
        msg.setField(58, "orders are not accepted on this session")
        fix.Session.sendToTarget(msg, sid)

    def _report(
        self,
        sid: fix.SessionID,
        order: dict,
        cl_ord_id: str,
        exec_type: str,
        status: str,
        *,
        last: tuple[int, str] | None = None,
        orig: str | None = None,
        text: str | None = None,
        totals: bool = False,
    ) -> None:
        f = order["f"]
        msg = self._message("8")
        for tag, value in (
            (ORDER_ID, order["order_id"]),
            (17, f"E{next(self._ids)}"),
            (20, "0"),
            (150, exec_type),
            (39, status),
            (CL_ORD_ID, cl_ord_id),
            (SYMBOL, f[SYMBOL]),
            (SIDE, f[SIDE]),
            (ORDER_QTY, f[ORDER_QTY]),
        ):
            msg.setField(tag, value)
        if orig:
            msg.setField(ORIG_CL_ORD_ID, orig)
        if last:
            msg.setField(32, str(last[0]))  # LastShares
            msg.setField(31, last[1])
        if totals:
            msg.setField(14, str(order["cum"]))
            msg.setField(151, "0" if status != "1" else str(order["qty"] - order["cum"]))
            msg.setField(6, f[PRICE] if order["cum"] else "0")
        if text:
            msg.setField(58, text)
        fix.Session.sendToTarget(msg, sid)

    @staticmethod
    def _message(msg_type: str) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(fix.BeginString(BEGIN))
        msg.getHeader().setField(fix.MsgType(msg_type))
        return msg
