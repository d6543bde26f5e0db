"""Parent and child order state: quantities, fills, FIX OrdStatus, CumQty and AvgPx."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from gateway.core.types import (
    TERMINAL,
    CancelRequest,
    ChildSpec,
    NewOrder,
    OrdStatus,
    OrdType,
    ReplaceRequest,
    Side,
    Strategy,
    TimeInForce,
    Urgency,
)

ZERO = Decimal(0)


@dataclass(slots=True)
class ChildOrder:
    """One order at one venue, working on behalf of a parent."""

    cl_ord_id: str
    parent_id: str
    venue: str
    symbol: str
    side: Side
    spec: ChildSpec
    status: OrdStatus = OrdStatus.PENDING_NEW
    cum_qty: int = 0
    notional: Decimal = ZERO
    cancel_sent: bool = False
    sent_ns: int = 0
    sent_mid: Decimal | None = None  # the venue's mid when the child was sent: its fills' horizon-0 markout
    acked: bool = False  # some report from the venue arrived
    queried_ns: int | None = None  # when a status query went out that has no answer yet
    rejected: bool = False
    status_ahead: int = 0  # status answers in a row that showed fills its execution reports had not (yet) told
    in_doubt: bool = False  # its venue stayed down past routing.venue_down_timeout_ms: it may still fill
    cancel_ids: tuple[str, ...] = ()  # ClOrdIDs of the cancels sent for it
    exec_ids: list[str] = field(default_factory=list)  # venue ExecIDs seen, so a repeated report is ignored

    @property
    def live(self) -> bool:
        return self.status not in TERMINAL

    @property
    def leaves_qty(self) -> int:
        return self.spec.qty - self.cum_qty if self.live else 0


@dataclass(slots=True)
class ParentOrder:
    """An OMS order the gateway owns: the order of record that children roll up into."""

    order_id: str
    session: str
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType
    price: Decimal | None
    tif: TimeInForce
    urgency: Urgency
    ex_destination: str | None
    strategy: Strategy | None = None  # None: the routing policy's default
    status: OrdStatus = OrdStatus.NEW
    cum_qty: int = 0
    notional: Decimal = ZERO
    children: dict[str, ChildOrder] = field(default_factory=dict)
    pending: CancelRequest | ReplaceRequest | None = None
    dark_done: bool = False
    dark_deadline_ns: int | None = None  # when resting dark children are pulled
    rounds: int = 0
    venue_rejects: dict[str, int] = field(default_factory=dict)
    last_reject: str | None = None
    cl_ord_ids: list[str] = field(default_factory=list)  # every ClOrdID the OMS gave it, oldest first
    close_reason: str | None = None  # set: once nothing works at a venue, it ends Canceled with this Text
    finished_ns: int | None = None  # when it was final with no child live (it leaves memory some time later)
    risk_px: Decimal | None = None  # what one share counts for in the session's open notional
    replace_risk_px: Decimal | None = None  # the same for the replace pending, once it applies

    @classmethod
    def accept(cls, order_id: str, order: NewOrder) -> "ParentOrder":
        return cls(
            order_id=order_id,
            session=order.session,
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            ord_type=order.ord_type,
            price=order.price,
            tif=order.tif,
            urgency=order.urgency,
            ex_destination=order.ex_destination,
            strategy=order.strategy,
            cl_ord_ids=[order.cl_ord_id],
        )

    @property
    def live(self) -> bool:
        return self.status not in TERMINAL

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.cum_qty if self.live else 0

    @property
    def avg_px(self) -> Decimal:
        return self.notional / self.cum_qty if self.cum_qty else ZERO

    def live_children(self) -> list[ChildOrder]:
        return [child for child in self.children.values() if child.live]

    def working_status(self) -> OrdStatus:
        """OrdStatus of a live order given its fills and any pending request."""
        if self.cum_qty >= self.qty:
            return OrdStatus.FILLED
        if isinstance(self.pending, CancelRequest):
            return OrdStatus.PENDING_CANCEL
        if isinstance(self.pending, ReplaceRequest):
            return OrdStatus.PENDING_REPLACE
        return OrdStatus.PARTIALLY_FILLED if self.cum_qty else OrdStatus.NEW

    def apply_fill(self, qty: int, price: Decimal) -> None:
        self.cum_qty += qty
        self.notional += price * qty
        self.status = self.working_status()

    def apply_replace(self, request: ReplaceRequest) -> None:
        self.cl_ord_id = request.cl_ord_id
        self.qty = request.qty
        self.ord_type = request.ord_type
        self.price = request.price
        self.tif = request.tif
        self.risk_px = self.replace_risk_px
        self.pending = None
        self.rounds = 0
        self.status = self.working_status()
