"""The gateway's simulated counterparties: an OMS that checks every report it gets, and venues that fill children.

Neither ever crashes. The OMS holds the invariants seen from upstream: each ExecID once (a
repeat only flagged PossDup/PossResend and with the same content), CumQty moving by exactly the
LastQty of each fill, LeavesQty right, no reject of an order it was told is live.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import quickfix as fix

from gateway.core.types import TERMINAL, OrdStatus
from gateway.fix import codec
from tests.recovery_sim.fixlayer import Endpoint, flagged, message

AVG_PLACES = Decimal("0.00000001")
TICK = Decimal("0.01")
_CONTENT = (
    codec.CL_ORD_ID,
    codec.ORIG_CL_ORD_ID,
    codec.ORDER_ID,
    codec.EXEC_TYPE,
    codec.ORD_STATUS,
    codec.ORDER_QTY,
    codec.CUM_QTY,
    codec.LEAVES_QTY,
    codec.AVG_PX,
    codec.LAST_QTY,
    codec.LAST_PX,
    codec.LAST_MKT,
)
_TERMINAL = frozenset(s.value for s in TERMINAL)


def _fields(msg: fix.Message, tags) -> tuple:
    return tuple(msg.getField(t) if msg.isSetField(t) else None for t in tags)


def _resent(msg: fix.Message) -> bool:
    return flagged(msg, codec.POSS_DUP_FLAG) or flagged(msg, codec.POSS_RESEND)


def _seq(msg: fix.Message) -> int:
    return int(msg.getHeader().getField(codec.MSG_SEQ_NUM))


@dataclass
class OmsOrder:
    root: str  # the ClOrdID of the NewOrderSingle
    side: str
    qty: int
    price: Decimal
    tif: str
    current: str  # the ClOrdID the order goes by now
    order_id: str | None = None
    cum: int = 0
    status: str | None = None
    accepted: bool = False
    pending: str | None = None  # the ClOrdID of a cancel or replace not answered yet

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL


@dataclass(frozen=True)
class Fill:
    venue: str
    qty: int
    px: Decimal


class Oms:
    """Sends orders, cancels and replaces; books every report; `violation` hears what a desk would call a break."""

    def __init__(self, rng: random.Random, violation: Callable[[str], None]) -> None:
        self.rng, self.violation = rng, violation
        self.endpoint: Endpoint | None = None
        self.orders: dict[str, OmsOrder] = {}
        self._by_cl: dict[str, OmsOrder] = {}
        self._exec_ids: dict[str, tuple] = {}
        self._first_seq: dict[str, int] = {}  # ExecID -> the MsgSeqNum it first came with
        self.fills: dict[str, list[Fill]] = {}  # root ClOrdID -> fills as reported
        self._ids = 0

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def new_order(self) -> None:
        side = self.rng.choice("12")
        offset = TICK * self.rng.randint(-2, 3)
        price = Decimal("100.00") + offset if side == "1" else Decimal("100.00") - offset
        order = OmsOrder(self._next_id("P"), side, 100 * self.rng.randint(1, 12), price, self.rng.choice("0003"), "")
        order.current = order.root
        self.orders[order.root] = order
        self._by_cl[order.root] = order
        self.fills[order.root] = []
        self.endpoint.send(
            message(
                "D",
                {
                    codec.CL_ORD_ID: order.root,
                    codec.SYMBOL: "AAPL",
                    codec.SIDE: side,
                    codec.ORDER_QTY: str(order.qty),
                    codec.ORD_TYPE: "2",
                    codec.PRICE: str(price),
                    codec.TIF: order.tif,
                    codec.SOR_URGENCY: self.rng.choice("LMH"),
                },
            )
        )

    def open_orders(self) -> list[OmsOrder]:
        return [o for o in self.orders.values() if not o.done and o.pending is None and o.status is not None]

    def cancel(self, order: OmsOrder) -> None:
        order.pending = self._next_id("X")
        self._by_cl[order.pending] = order
        self.endpoint.send(
            message(
                "F",
                {
                    codec.CL_ORD_ID: order.pending,
                    codec.ORIG_CL_ORD_ID: order.current,
                    codec.SYMBOL: "AAPL",
                    codec.SIDE: order.side,
                    codec.ORDER_QTY: str(order.qty),
                },
            )
        )

    def replace(self, order: OmsOrder) -> None:
        order.pending = self._next_id("R")
        self._by_cl[order.pending] = order
        qty = max(order.cum + 100, order.qty + 100 * self.rng.randint(-3, 3))
        self.endpoint.send(
            message(
                "G",
                {
                    codec.CL_ORD_ID: order.pending,
                    codec.ORIG_CL_ORD_ID: order.current,
                    codec.SYMBOL: "AAPL",
                    codec.SIDE: order.side,
                    codec.ORDER_QTY: str(qty),
                    codec.ORD_TYPE: "2",
                    codec.PRICE: str(order.price),
                    codec.TIF: "0",
                },
            )
        )

    def on_app(self, msg: fix.Message) -> None:
        msg_type = msg.getHeader().getField(codec.MSG_TYPE)
        text = msg.toString().replace("\x01", "|")
        cl = msg.getField(codec.CL_ORD_ID)
        order = self._by_cl.get(cl)
        if order is None:
            self.violation(f"OMS: a report for a ClOrdID it never sent: {text}")
            return
        if msg_type == "9":
            if "duplicate" in msg.getField(codec.TEXT):
                self.violation(f"OMS: a request of its own refused as a duplicate: {text}")
            if order.pending == cl:
                order.pending = None
            return
        exec_id = msg.getField(codec.EXEC_ID)
        content = _fields(msg, _CONTENT)
        if exec_id in self._exec_ids:
            if self._exec_ids[exec_id] != content:
                self.violation(f"OMS: ExecID {exec_id} reused for other content: {text}")
            elif not _resent(msg):
                self.violation(f"OMS: ExecID {exec_id} again without PossDupFlag or PossResend: {text}")
            elif self._first_seq[exec_id] != _seq(msg):  # not the FIX layer's resend of the same message
                self.violation(f"OMS: ExecID {exec_id} sent again as a new message though the OMS has it: {text}")
            return
        self._exec_ids[exec_id] = content
        self._first_seq[exec_id] = _seq(msg)
        self._book(order, msg, text)

    def _book(self, order: OmsOrder, msg: fix.Message, text: str) -> None:
        exec_type, status = msg.getField(codec.EXEC_TYPE), msg.getField(codec.ORD_STATUS)
        cum, leaves = int(msg.getField(codec.CUM_QTY)), int(msg.getField(codec.LEAVES_QTY))
        qty = int(msg.getField(codec.ORDER_QTY))
        if status == OrdStatus.REJECTED.value:
            if order.accepted:
                self.violation(f"OMS: order {order.root} was accepted (CumQty {order.cum}), then rejected: {text}")
            order.status = status
            return
        order.accepted = True
        order.order_id = msg.getField(codec.ORDER_ID)
        if exec_type == "F":
            last_qty, last_px = int(msg.getField(codec.LAST_QTY)), Decimal(msg.getField(codec.LAST_PX))
            self.fills[order.root].append(Fill(msg.getField(codec.LAST_MKT), last_qty, last_px))
            order.cum += last_qty
        if cum != order.cum:
            self.violation(f"OMS: CumQty {cum} but the fills reported to it sum to {order.cum}: {text}")
        if cum > qty or leaves != (0 if status in _TERMINAL else qty - cum):
            self.violation(f"OMS: CumQty {cum} / LeavesQty {leaves} do not fit OrderQty {qty}: {text}")
        if exec_type == "5":
            order.qty, order.current = qty, msg.getField(codec.CL_ORD_ID)
        if exec_type == "4" and msg.isSetField(codec.ORIG_CL_ORD_ID):
            order.current = msg.getField(codec.CL_ORD_ID)
        if exec_type in "458" and order.pending == msg.getField(codec.CL_ORD_ID):
            order.pending = None
        if exec_type == "5" or status in _TERMINAL:
            order.pending = None
        order.status = status


@dataclass
class VenueOrder:
    cl_ord_id: str
    side: str
    qty: int
    price: Decimal | None
    cum: int = 0
    notional: Decimal = Decimal(0)
    status: str = OrdStatus.NEW.value

    @property
    def live(self) -> bool:
        return self.status not in _TERMINAL


@dataclass
class Venue:
    """A venue's matching core reduced to what recovery needs: acks, fills at distinct prices, cancels, status."""

    name: str
    rng: random.Random
    violation: Callable[[str], None]
    endpoint: Endpoint | None = None
    orders: dict[str, VenueOrder] = field(default_factory=dict)
    executions: list[tuple[str, Fill]] = field(default_factory=list)  # (child ClOrdID, fill), as executed
    _seq: int = 0
    _first_seq: dict[str, int] = field(default_factory=dict)  # child ClOrdID -> the MsgSeqNum it first came with

    def _exec_id(self) -> str:
        self._seq += 1
        return f"{self.name}-X{self._seq}"

    def on_app(self, msg: fix.Message) -> None:
        msg_type = msg.getHeader().getField(codec.MSG_TYPE)
        cl = msg.getField(codec.CL_ORD_ID)
        if msg_type == "D":
            if cl in self.orders:
                if not _resent(msg):
                    self.violation(f"{self.name}: child ClOrdID {cl} sent twice as new")
                elif self._first_seq[cl] != _seq(msg):
                    self.violation(f"{self.name}: child ClOrdID {cl} sent again as a new message though it has it")
                self._report(self.orders[cl], "I")
                return
            price = msg.getField(codec.PRICE) if msg.isSetField(codec.PRICE) else None
            order = VenueOrder(
                cl, msg.getField(codec.SIDE), int(msg.getField(codec.ORDER_QTY)), Decimal(price) if price else None
            )
            self.orders[cl] = order
            self._first_seq[cl] = _seq(msg)
            self._report(order, "0")
            if msg.getField(codec.TIF) in ("3", "4"):  # IOC/FOK: what trades now, the rest canceled at once
                if self.rng.random() < 0.6:
                    self.fill(order)
                if order.live:
                    order.status = OrdStatus.CANCELED.value
                    self._report(order, "4")
        elif msg_type == "F":
            order = self.orders.get(msg.getField(codec.ORIG_CL_ORD_ID))
            if order is None or not order.live:
                self.endpoint.send(
                    message(
                        "9",
                        {
                            codec.ORDER_ID: "NONE",
                            codec.CL_ORD_ID: cl,
                            codec.ORIG_CL_ORD_ID: msg.getField(codec.ORIG_CL_ORD_ID),
                            codec.ORD_STATUS: order.status if order else "8",
                            codec.CXL_REJ_RESPONSE_TO: "1",
                            codec.CXL_REJ_REASON: "0",
                            codec.TEXT: "too late to cancel",
                        },
                    )
                )
                return
            order.status = OrdStatus.CANCELED.value
            self._report(order, "4", cl, order.cl_ord_id)
        elif msg_type == "H":
            order = self.orders.get(cl)
            if order is None:
                self.endpoint.send(
                    message(
                        "8",
                        {
                            codec.ORDER_ID: "NONE",
                            codec.CL_ORD_ID: cl,
                            codec.EXEC_ID: self._exec_id(),
                            codec.EXEC_TYPE: "I",
                            codec.ORD_STATUS: "8",
                            codec.SYMBOL: "AAPL",
                            codec.SIDE: msg.getField(codec.SIDE),
                            codec.LEAVES_QTY: "0",
                            codec.CUM_QTY: "0",
                            codec.AVG_PX: "0",
                        },
                    )
                )
            else:
                self._report(order, "I")

    def fill(self, order: VenueOrder) -> None:
        """Some or all of what is left, at the order's price or a tick better, under a new ExecID."""
        qty = self.rng.choice([order.qty - order.cum, self.rng.randint(1, order.qty - order.cum)])
        base = order.price if order.price is not None else Decimal("100.00")
        px = base - TICK * self.rng.randint(0, 1) if order.side == "1" else base + TICK * self.rng.randint(0, 1)
        order.cum += qty
        order.notional += qty * px
        order.status = (OrdStatus.FILLED if order.cum == order.qty else OrdStatus.PARTIALLY_FILLED).value
        self.executions.append((order.cl_ord_id, Fill(self.name, qty, px)))
        self._report(order, "F", last=(qty, px))

    def resting(self) -> list[VenueOrder]:
        return [o for o in self.orders.values() if o.live]

    def _report(
        self,
        order: VenueOrder,
        exec_type: str,
        cl: str | None = None,
        orig: str | None = None,
        last: tuple[int, Decimal] | None = None,
    ) -> None:
        fields = {
            codec.ORDER_ID: f"{self.name}-{order.cl_ord_id}",
            codec.CL_ORD_ID: cl or order.cl_ord_id,
            codec.EXEC_ID: self._exec_id(),
            codec.EXEC_TYPE: exec_type,
            codec.ORD_STATUS: order.status,
            codec.SYMBOL: "AAPL",
            codec.SIDE: order.side,
            codec.ORDER_QTY: str(order.qty),
            codec.CUM_QTY: str(order.cum),
            codec.LEAVES_QTY: str(order.qty - order.cum if order.live else 0),
            codec.AVG_PX: str((order.notional / order.cum).quantize(AVG_PLACES) if order.cum else 0),
        }
        if orig:
            fields[codec.ORIG_CL_ORD_ID] = orig
        if last:
            fields[codec.LAST_QTY], fields[codec.LAST_PX], fields[codec.LAST_MKT] = (
                str(last[0]),
                str(last[1]),
                self.name,
            )
        self.endpoint.send(message("8", fields))
