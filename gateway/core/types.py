"""Plain domain types shared by the core, the FIX adapters and the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum


class Side(str, Enum):
    BUY = "1"
    SELL = "2"
    SELL_SHORT = "5"

    @property
    def is_buy(self) -> bool:
        return self is Side.BUY


class OrdType(str, Enum):
    MARKET = "1"
    LIMIT = "2"


class TimeInForce(str, Enum):
    DAY = "0"
    IOC = "3"
    FOK = "4"


class Urgency(str, Enum):
    LOW = "L"
    MEDIUM = "M"
    HIGH = "H"


class Strategy(str, Enum):
    """How the router works a parent (SorStrategy 9702); an order without one gets the configured default."""

    SWEEP = "sweep"  # lit only: price, then taker fee, then latency
    COST = "cost"  # lit only: all-in cost per share (fees, toxicity, latency, staleness) within each price tier
    DARK = "dark"  # by urgency: L rests in dark pools until a timeout, M probes dark pools with IOCs, H sweeps
    LIQUIDITY = "liquidity"  # lit only: the marginal price tier split pro rata to displayed size
    SINGLE = "single"  # the one lit venue that fills the most at the best average price


class OrdStatus(str, Enum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"


class ExecType(str, Enum):
    NEW = "0"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdRejReason(str, Enum):
    """FIX OrdRejReason (103) values the gateway uses."""

    BROKER_OPTION = "0"
    UNKNOWN_SYMBOL = "1"
    EXCHANGE_CLOSED = "2"
    EXCEEDS_LIMIT = "3"
    TOO_LATE = "4"
    UNKNOWN_ORDER = "5"
    DUPLICATE_ORDER = "6"
    INCORRECT_QUANTITY = "13"
    UNKNOWN_ACCOUNT = "15"
    INVALID_PRICE_INCREMENT = "18"
    OTHER = "99"


class CxlRejReason(str, Enum):
    TOO_LATE = "0"
    UNKNOWN_ORDER = "1"
    BROKER_OPTION = "2"
    PENDING = "3"
    OTHER = "99"


class Liquidity(str, Enum):
    """Where a fill's liquidity came from (LastLiquidityInd 851 plus dark)."""

    MAKER = "maker"
    TAKER = "taker"
    DARK = "dark"


class VenueKind(str, Enum):
    LIT = "lit"
    DARK = "dark"


TERMINAL = frozenset(
    {OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED, OrdStatus.DONE_FOR_DAY}
)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A parent order as the OMS sent it (NewOrderSingle), already parsed."""

    session: str
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType
    price: Decimal | None
    tif: TimeInForce
    ex_destination: str | None = None
    urgency: Urgency = Urgency.MEDIUM
    account: str | None = None
    strategy: Strategy | None = None  # None: the routing policy's default
    poss_dup: bool = False  # PossDupFlag (43) or PossResend (97): the OMS may have sent it before


@dataclass(frozen=True, slots=True)
class CancelRequest:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    poss_dup: bool = False


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType
    price: Decimal | None
    tif: TimeInForce
    poss_dup: bool = False


@dataclass(frozen=True, slots=True)
class StatusRequest:
    session: str
    cl_ord_id: str
    symbol: str
    side: Side


@dataclass(slots=True)  # not frozen: that doubles the cost of making one, and the router makes one per child
class ChildSpec:
    """One child order the router wants sent: where, how much, at what price; treated as immutable
    (fitting one to a venue's rules makes a copy)."""

    venue: str
    qty: int
    price: Decimal | None
    ord_type: OrdType
    tif: TimeInForce
    purpose: str  # "directed", "dark", "take" or "post": why the router chose it
    cancel_on_ack: bool = False  # an IOC sent as DAY to a venue without IOC: canceled once acknowledged


@dataclass(frozen=True, slots=True)
class VenueReport:
    """A child execution report from a venue, copied out of the FIX message."""

    venue: str
    cl_ord_id: str
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    last_qty: int = 0
    last_px: Decimal | None = None
    leaves_qty: int | None = None
    cum_qty: int | None = None
    avg_px: Decimal | None = None
    venue_order_id: str | None = None
    liquidity: Liquidity | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """A parent execution report to send to the OMS."""

    session: str
    order_id: str
    cl_ord_id: str
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side | None  # None only when rejecting an order whose Side was unusable
    order_qty: int
    ord_type: OrdType | None
    price: Decimal | None
    tif: TimeInForce | None
    cum_qty: int
    leaves_qty: int
    avg_px: Decimal
    orig_cl_ord_id: str | None = None
    last_qty: int = 0
    last_px: Decimal | None = None
    last_mkt: str | None = None
    ord_rej_reason: OrdRejReason | None = None
    text: str | None = None
    risk_limit: str | None = None  # a reject: the pre-trade limit the order broke


@dataclass(frozen=True, slots=True)
class CancelReject:
    """An OrderCancelReject (35=9) to send to the OMS."""

    session: str
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    ord_status: OrdStatus
    response_to: str  # "1" cancel, "2" cancel/replace
    reason: CxlRejReason
    text: str
    risk_limit: str | None = None  # a replace refused: the pre-trade limit it broke


@dataclass(frozen=True, slots=True)
class SendChild:
    """Command: send a new child order to a venue."""

    venue: str
    cl_ord_id: str
    parent_order_id: str
    symbol: str
    side: Side
    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class CancelChild:
    """Command: cancel a live child order at its venue."""

    venue: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int


@dataclass(frozen=True, slots=True)
class QueryChild:
    """Command: ask a venue where a child stands (OrderStatusRequest), when its reports may have been lost."""

    venue: str
    cl_ord_id: str
    symbol: str
    side: Side


Command = SendChild | CancelChild | QueryChild | ExecutionReport | CancelReject


@dataclass(frozen=True, slots=True)
class InvalidOrder:
    """A NewOrderSingle that could not be parsed into a NewOrder: what was readable, and why."""

    session: str
    cl_ord_id: str
    symbol: str
    side: Side | None
    qty: int
    text: str
    reason: OrdRejReason = OrdRejReason.OTHER
    poss_dup: bool = False


@dataclass(frozen=True, slots=True)
class InvalidChange:
    """An OrderCancelRequest or OrderCancelReplaceRequest that could not be parsed: answered with a cancel reject."""

    session: str
    cl_ord_id: str
    orig_cl_ord_id: str  # "NONE" when the request's own was missing or unusable
    response_to: str  # "1" cancel, "2" cancel/replace
    text: str
    poss_dup: bool = False


@dataclass(slots=True)
class Outbox:
    """What one engine step produced: commands in the order they must be carried out,
    and the routing decisions and state changes behind them (for logs and audit)."""

    commands: list[Command] = field(default_factory=list)
    decisions: list[object] = field(default_factory=list)

    def add(self, command: Command) -> None:
        self.commands.append(command)
