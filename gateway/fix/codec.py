"""Translation between FIX messages and the core's plain types, for FIX 4.2 and FIX 4.4."""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Protocol

import quickfix as fix

from gateway.core.types import (
    CancelChild,
    CancelReject,
    CancelRequest,
    ExecType,
    ExecutionReport,
    InvalidChange,
    InvalidOrder,
    Liquidity,
    NewOrder,
    OrdRejReason,
    OrdStatus,
    OrdType,
    QueryChild,
    ReplaceRequest,
    SendChild,
    Side,
    StatusRequest,
    Strategy,
    TimeInForce,
    Urgency,
    VenueReport,
)
from gateway.core.validation import shown
from gateway.fix.wire import SOH

# Tags, named once; msg.getField(tag) on raw tags is far cheaper than typed field objects.
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_TRANS_TYPE = 1, 6, 11, 14, 17, 20
LAST_MKT, LAST_PX, LAST_QTY, MSG_SEQ_NUM, MSG_TYPE = 30, 31, 32, 34, 35
ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE, ORIG_CL_ORD_ID, PRICE = 37, 38, 39, 40, 41, 44
REF_SEQ_NUM, SIDE, SYMBOL, TEXT, TIF, TRANSACT_TIME, EX_DESTINATION = 45, 54, 55, 58, 59, 60, 100
ORD_REJ_REASON, CXL_REJ_REASON, EXEC_TYPE, LEAVES_QTY = 103, 102, 150, 151
BUSINESS_REJECT_REF_ID, CXL_REJ_RESPONSE_TO, LAST_LIQUIDITY_IND = 379, 434, 851
POSS_DUP_FLAG, POSS_RESEND, SENDING_TIME = 43, 97, 52
ADMIN_MSG_TYPES = frozenset("0 1 2 3 4 5 A".split())
SOR_URGENCY = 9701
SOR_STRATEGY = 9702

FIX42 = "FIX.4.2"
MAX_INTEGER_DIGITS = 12  # in a price or a quantity
MAX_ID_CHARS = 64  # ClOrdID (11) and OrigClOrdID (41) from an OMS
MAX_FREE_TEXT = 1024  # Text (58) on an OMS request
MAX_TEXT_OUT = 1000  # Text (58) the gateway sends; a longer one (a venue's text passed on) is cut
NO_ID = "NONE"  # in a cancel reject, for an OrigClOrdID that was missing or unusable
AVG_PX_PLACES = Decimal("0.00000001")
_FIX42_TRADE = {OrdStatus.FILLED: "2"}  # any other status of a fill is "1" (partial fill)
_LIQUIDITY_IND = {Liquidity.MAKER: "1", Liquidity.TAKER: "2"}
_LIQUIDITY_FROM_IND = {"1": Liquidity.MAKER, "2": Liquidity.TAKER}
_TRADE_EXEC_TYPES = frozenset({"F", "1", "2"})
# Venue ExecTypes the engine acts on; any other (stopped, suspended, restated, ...) is status only.
_VENUE_EXEC_TYPES = {
    t.value: t
    for t in (
        ExecType.NEW,
        ExecType.DONE_FOR_DAY,
        ExecType.CANCELED,
        ExecType.REPLACED,
        ExecType.PENDING_CANCEL,
        ExecType.REJECTED,
        ExecType.PENDING_NEW,
        ExecType.EXPIRED,
        ExecType.PENDING_REPLACE,
    )
}
# Venue OrdStatus values with no counterpart in the parent's life: the child is still working.
_VENUE_WORKING = {"5": OrdStatus.NEW, "7": OrdStatus.NEW, "9": OrdStatus.NEW, "B": OrdStatus.NEW, "D": OrdStatus.NEW}


class FieldError(ValueError):
    """A business field that is missing or unusable; the text is sent back to the peer."""

    def __init__(self, text: str, tag: int, missing: bool = False) -> None:
        super().__init__(text)
        self.tag = tag
        self.missing = missing

    def to_fix(self) -> Exception:
        """The quickfix exception that makes the session send a Reject (3) naming the tag."""
        return fix.FieldNotFound(self.tag) if self.missing else fix.IncorrectTagValue(self.tag)


def _utf8(value: str) -> bool:
    """False for a value the peer sent as bytes that are not UTF-8 (quickfix hands those over as lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _checked(value: str, name: str, tag: int) -> str:
    # Such a value could be neither echoed (quickfix refuses to set it) nor logged or stored as text.
    if not _utf8(value):
        raise FieldError(f"{name} ({tag}) is not valid UTF-8", tag)
    return value


class Fields(Protocol):
    """What the parsers read of a message part: a quickfix Message or Header, or a WireMessage off the trail."""

    def getField(self, tag: int) -> str: ...  # noqa: N802 - quickfix's names

    def isSetField(self, tag: int) -> bool: ...  # noqa: N802


class Readable(Fields, Protocol):
    """A whole message: a quickfix Message, or a WireMessage (off the trail, or read once in a callback)."""

    def getHeader(self) -> Fields: ...  # noqa: N802

    def toString(self) -> str: ...  # noqa: N802


def _get(msg: Readable, tag: int, name: str) -> str:
    if not msg.isSetField(tag):
        raise FieldError(f"missing required field {name} ({tag})", tag, missing=True)
    return _checked(msg.getField(tag), name, tag)


def _opt(msg: Readable, tag: int, name: str) -> str | None:
    return _checked(msg.getField(tag), name, tag) if msg.isSetField(tag) else None


def text(msg: Readable) -> str | None:
    """Text (58), free text passed on to the OMS and the logs: bytes that are not UTF-8 become U+FFFD."""
    if not msg.isSetField(TEXT):
        return None
    value = msg.getField(TEXT)
    return value if _utf8(value) else value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _enum(kind, value: str, name: str, tag: int):
    try:
        return kind(value)
    except ValueError:
        raise FieldError(f"unsupported {name} ({tag}) value {shown(repr(value))}", tag) from None


def _qty(value: str, name: str, tag: int) -> int:
    qty = _decimal(value, name, tag)
    if qty != qty.to_integral_value():
        raise FieldError(f"{name} ({tag}) must be a whole number of shares, got {shown(value)}", tag)
    return int(qty)


def _decimal(value: str, name: str, tag: int) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FieldError(f"{name} ({tag}) is not a number: {shown(repr(value))}", tag) from None
    if not number.is_finite():
        raise FieldError(f"{name} ({tag}) is not a number: {shown(repr(value))}", tag)
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        # Past this, Decimal arithmetic at 28 digits (tick checks, qty x price) is no longer exact.
        raise FieldError(f"{name} ({tag}) has more than {MAX_INTEGER_DIGITS} digits before the decimal point", tag)
    return number


def _price(value: str | None) -> Decimal | None:
    return None if value is None else _decimal(value, "Price", PRICE)


def _id(msg: Readable, tag: int, name: str) -> str:
    value = _get(msg, tag, name)
    if not value or len(value) > MAX_ID_CHARS:
        raise FieldError(f"{name} ({tag}) must be 1 to {MAX_ID_CHARS} characters, got {len(value)}", tag)
    return value


def cl_ord_id(msg: Readable) -> str:
    """ClOrdID (11): what every answer names; without a usable one only a session reject can answer."""
    return _id(msg, CL_ORD_ID, "ClOrdID")


def _free_text(msg: Readable) -> None:
    """Text (58) on a request is not acted on, but it is stored with the request: its length is bounded."""
    if msg.isSetField(TEXT) and len(msg.getField(TEXT)) > MAX_FREE_TEXT:
        raise FieldError(f"Text (58) is longer than {MAX_FREE_TEXT} characters", TEXT)


def _orig_or_none(msg: Readable) -> str:
    """OrigClOrdID (41) to echo in a cancel reject, or NO_ID when it is missing or unusable."""
    try:
        return _id(msg, ORIG_CL_ORD_ID, "OrigClOrdID")
    except FieldError:
        return NO_ID


def poss_dup(msg: Readable) -> bool:
    """PossDupFlag (43) or PossResend (97) is Y: the sender may have sent this message before."""
    header = msg.getHeader()
    return any(header.isSetField(tag) and header.getField(tag) == "Y" for tag in (POSS_DUP_FLAG, POSS_RESEND))


def parse_new_order(msg: Readable, session: str, default_urgency: Urgency) -> NewOrder | InvalidOrder:
    cid = cl_ord_id(msg)
    symbol = msg.getField(SYMBOL) if msg.isSetField(SYMBOL) else ""
    if not _utf8(symbol):
        symbol = ""  # the reject names the field; it cannot echo the value
    side: Side | None = None
    qty = 0
    try:
        side = _enum(Side, _get(msg, SIDE, "Side"), "Side", SIDE)
        qty = _qty(_get(msg, ORDER_QTY, "OrderQty"), "OrderQty", ORDER_QTY)
        _get(msg, SYMBOL, "Symbol")
        ord_type = _enum(OrdType, _get(msg, ORD_TYPE, "OrdType"), "OrdType", ORD_TYPE)
        tif = _enum(TimeInForce, _opt(msg, TIF, "TimeInForce") or TimeInForce.DAY.value, "TimeInForce", TIF)
        urgency_raw = _opt(msg, SOR_URGENCY, "SorUrgency")
        urgency = _enum(Urgency, urgency_raw, "SorUrgency", SOR_URGENCY) if urgency_raw else default_urgency
        strategy_raw = _opt(msg, SOR_STRATEGY, "SorStrategy")
        strategy = _enum(Strategy, strategy_raw, "SorStrategy", SOR_STRATEGY) if strategy_raw else None
        _free_text(msg)
        return NewOrder(
            session=session,
            cl_ord_id=cid,
            symbol=symbol,
            side=side,
            qty=qty,
            ord_type=ord_type,
            price=_price(_opt(msg, PRICE, "Price")),
            tif=tif,
            ex_destination=_opt(msg, EX_DESTINATION, "ExDestination"),
            urgency=urgency,
            account=_opt(msg, ACCOUNT, "Account"),
            strategy=strategy,
            poss_dup=poss_dup(msg),
        )
    except FieldError as exc:
        return InvalidOrder(session, cid, symbol, side, qty, str(exc), poss_dup=poss_dup(msg))


def parse_cancel(msg: Readable, session: str) -> CancelRequest | InvalidChange:
    """A cancel, or with a usable ClOrdID but a field that is not, what its cancel reject (35=9) says."""
    cid = cl_ord_id(msg)
    try:
        _free_text(msg)
        return CancelRequest(
            session=session,
            cl_ord_id=cid,
            orig_cl_ord_id=_id(msg, ORIG_CL_ORD_ID, "OrigClOrdID"),
            symbol=_get(msg, SYMBOL, "Symbol"),
            side=_enum(Side, _get(msg, SIDE, "Side"), "Side", SIDE),
            poss_dup=poss_dup(msg),
        )
    except FieldError as exc:
        return InvalidChange(session, cid, _orig_or_none(msg), "1", str(exc), poss_dup(msg))


def parse_replace(msg: Readable, session: str) -> ReplaceRequest | InvalidChange:
    """A cancel/replace, or with a usable ClOrdID but a field that is not, what its cancel reject (35=9) says."""
    cid = cl_ord_id(msg)
    try:
        _free_text(msg)
        return ReplaceRequest(
            session=session,
            cl_ord_id=cid,
            orig_cl_ord_id=_id(msg, ORIG_CL_ORD_ID, "OrigClOrdID"),
            symbol=_get(msg, SYMBOL, "Symbol"),
            side=_enum(Side, _get(msg, SIDE, "Side"), "Side", SIDE),
            qty=_qty(_get(msg, ORDER_QTY, "OrderQty"), "OrderQty", ORDER_QTY),
            ord_type=_enum(OrdType, _get(msg, ORD_TYPE, "OrdType"), "OrdType", ORD_TYPE),
            price=_price(_opt(msg, PRICE, "Price")),
            tif=_enum(TimeInForce, _opt(msg, TIF, "TimeInForce") or TimeInForce.DAY.value, "TimeInForce", TIF),
            poss_dup=poss_dup(msg),
        )
    except FieldError as exc:
        return InvalidChange(session, cid, _orig_or_none(msg), "2", str(exc), poss_dup(msg))


def parse_status_request(msg: Readable, session: str) -> StatusRequest:
    return StatusRequest(
        session=session,
        cl_ord_id=cl_ord_id(msg),
        symbol=_opt(msg, SYMBOL, "Symbol") or "",
        side=_enum(Side, _get(msg, SIDE, "Side"), "Side", SIDE),
    )


def parse_venue_report(msg: Readable, venue: str) -> VenueReport:
    """A child execution report, FIX 4.2 or 4.4, optional fields (LeavesQty, CumQty, AvgPx, LastMkt) or not.

    A fill is ExecType F (4.4) or 1/2 (4.2, and deprecated 4.4) and must carry LastQty/LastShares (32) and
    LastPx (31). A status report (ExecType I, or 4.2 ExecTransType 3), a trade bust or correction (4.2
    ExecTransType 1/2, 4.4 ExecType G/H) and any ExecType we do not act on are status only: no fill, and
    the OrdStatus says whether the child is still working.
    """
    raw_type = _get(msg, EXEC_TYPE, "ExecType")
    raw_status = _get(msg, ORD_STATUS, "OrdStatus")
    status = _VENUE_WORKING.get(raw_status) or _enum(OrdStatus, raw_status, "OrdStatus", ORD_STATUS)
    trans_type = _opt(msg, EXEC_TRANS_TYPE, "ExecTransType")
    if trans_type not in (None, "0"):
        exec_type = ExecType.ORDER_STATUS
    elif raw_type in _TRADE_EXEC_TYPES:
        exec_type = ExecType.TRADE
    else:
        exec_type = _VENUE_EXEC_TYPES.get(raw_type, ExecType.ORDER_STATUS)
    last_qty, last_px = 0, None
    if exec_type is ExecType.TRADE:
        last_qty = _qty(_get(msg, LAST_QTY, "LastQty"), "LastQty", LAST_QTY)
        last_px = _decimal(_get(msg, LAST_PX, "LastPx"), "LastPx", LAST_PX)
        if last_qty < 0 or last_px <= 0:
            raise FieldError(f"a fill needs LastQty >= 0 and LastPx > 0, got {last_qty} at {last_px}", LAST_QTY)
    leaves = _opt(msg, LEAVES_QTY, "LeavesQty")
    cum = _opt(msg, CUM_QTY, "CumQty")
    avg_px = _opt(msg, AVG_PX, "AvgPx")
    return VenueReport(
        venue=venue,
        cl_ord_id=cl_ord_id(msg),
        exec_id=_get(msg, EXEC_ID, "ExecID"),
        exec_type=exec_type,
        ord_status=status,
        last_qty=last_qty,
        last_px=last_px,
        leaves_qty=_qty(leaves, "LeavesQty", LEAVES_QTY) if leaves else None,
        cum_qty=_qty(cum, "CumQty", CUM_QTY) if cum else None,
        avg_px=_decimal(avg_px, "AvgPx", AVG_PX) if avg_px else None,
        venue_order_id=_opt(msg, ORDER_ID, "OrderID"),
        liquidity=_LIQUIDITY_FROM_IND.get(_opt(msg, LAST_LIQUIDITY_IND, "LastLiquidityInd") or ""),
        text=text(msg),
    )


def _message(begin_string: str, msg_type: str, body: list[tuple[int, str]]) -> fix.Message:
    """The message of these body fields, made in one call into quickfix: each setField would be a call of its own,
    and every call releases the GIL (see gateway.fix.wire). quickfix orders the fields as setField would."""
    text = f"8={begin_string}{SOH}35={msg_type}{SOH}" + "".join([f"{tag}={value}{SOH}" for tag, value in body])
    if text.count(SOH) != len(body) + 2:
        raise ValueError(f"a {msg_type} message field holds SOH (0x01): {[v for _, v in body if SOH in v]!r}")
    return fix.Message(text, False)


def _transact_time() -> str:
    """TransactTime (60) now, UTC, to the second (what quickfix's TransactTime() gives)."""
    return _utc_second(int(time.time()))


@lru_cache(maxsize=2)
def _utc_second(second: int) -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(second))


def price_text(value: Decimal) -> str:
    """A price as FIX text: plain digits, no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def avg_px_text(value: Decimal) -> str:
    """AvgPx rounded to 8 decimals (the exact value is kept in the core)."""
    return price_text(value.quantize(AVG_PX_PLACES))


# OrdRejReason values each version defines; a newer reason falls back to "other" / "broker option".
_ORD_REJ_REASONS = {FIX42: ({str(n) for n in range(9)}, "0"), "FIX.4.4": ({str(n) for n in range(17)} | {"99"}, "99")}


def ord_rej_reason(reason: OrdRejReason, begin_string: str) -> str:
    known, fallback = _ORD_REJ_REASONS[begin_string]
    return reason.value if reason.value in known else fallback


def execution_report(er: ExecutionReport, begin_string: str) -> fix.Message:
    body: list[tuple[int, str]] = []
    add = body.append
    exec_type = er.exec_type.value
    if begin_string == FIX42:
        # FIX 4.2 has no ExecType F or I: a fill is 1 (partial) or 2 (fill), a status report is
        # ExecTransType 3 (Status) with the order's status as its ExecType.
        add((EXEC_TRANS_TYPE, "3" if er.exec_type is ExecType.ORDER_STATUS else "0"))
        if er.exec_type is ExecType.TRADE:
            exec_type = _FIX42_TRADE.get(er.ord_status, "1")
        elif er.exec_type is ExecType.ORDER_STATUS:
            exec_type = er.ord_status.value
    add((ORDER_ID, er.order_id))
    add((CL_ORD_ID, er.cl_ord_id))
    if er.orig_cl_ord_id:
        add((ORIG_CL_ORD_ID, er.orig_cl_ord_id))
    add((EXEC_ID, er.exec_id))
    add((EXEC_TYPE, exec_type))
    add((ORD_STATUS, er.ord_status.value))
    if er.symbol:
        add((SYMBOL, er.symbol))
    if er.side is not None:
        add((SIDE, er.side.value))
    add((ORDER_QTY, str(er.order_qty)))
    if er.ord_type is not None:
        add((ORD_TYPE, er.ord_type.value))
    if er.price is not None:
        add((PRICE, price_text(er.price)))
    if er.tif is not None:
        add((TIF, er.tif.value))
    add((CUM_QTY, str(er.cum_qty)))
    add((LEAVES_QTY, str(er.leaves_qty)))
    add((AVG_PX, avg_px_text(er.avg_px)))
    if er.last_qty:
        if er.last_px is None:
            raise ValueError(f"execution report {er.exec_id}: LastQty {er.last_qty} without LastPx")
        add((LAST_QTY, str(er.last_qty)))
        add((LAST_PX, price_text(er.last_px)))
        if er.last_mkt:
            add((LAST_MKT, er.last_mkt))
    if er.ord_rej_reason is not None:
        add((ORD_REJ_REASON, ord_rej_reason(er.ord_rej_reason, begin_string)))
    if er.text:
        add((TEXT, _capped(er.text)))
    add((TRANSACT_TIME, _transact_time()))
    return _message(begin_string, "8", body)


def cancel_reject(cr: CancelReject, begin_string: str) -> fix.Message:
    reason = cr.reason.value
    if begin_string == FIX42 and reason == "99":
        reason = "2"  # FIX 4.2 has no "Other"; "Broker option" is its closest value
    body = [
        (ORDER_ID, cr.order_id),
        (CL_ORD_ID, cr.cl_ord_id),
        (ORIG_CL_ORD_ID, cr.orig_cl_ord_id),
        (ORD_STATUS, cr.ord_status.value),
        (CXL_REJ_RESPONSE_TO, cr.response_to),
        (CXL_REJ_REASON, reason),
        (TEXT, _capped(cr.text)),
    ]
    return _message(begin_string, "9", body)


def _capped(text: str) -> str:
    return text if len(text) <= MAX_TEXT_OUT else f"{text[: MAX_TEXT_OUT - 3]}..."


def new_order_single(cmd: SendChild, begin_string: str) -> fix.Message:
    spec = cmd.spec
    body = [(CL_ORD_ID, cmd.cl_ord_id)]
    if begin_string == FIX42:
        body.append((21, "1"))  # HandlInst: automated, no broker intervention (required in 4.2)
    body += [(SYMBOL, cmd.symbol), (SIDE, cmd.side.value), (ORDER_QTY, str(spec.qty)), (ORD_TYPE, spec.ord_type.value)]
    if spec.price is not None:
        body.append((PRICE, price_text(spec.price)))
    body += [(TIF, spec.tif.value), (TRANSACT_TIME, _transact_time())]
    return _message(begin_string, "D", body)


def order_cancel_request(cmd: CancelChild, begin_string: str) -> fix.Message:
    body = [
        (ORIG_CL_ORD_ID, cmd.orig_cl_ord_id),
        (CL_ORD_ID, cmd.cl_ord_id),
        (SYMBOL, cmd.symbol),
        (SIDE, cmd.side.value),
        (ORDER_QTY, str(cmd.qty)),
        (TRANSACT_TIME, _transact_time()),
    ]
    return _message(begin_string, "F", body)


def order_status_request(cmd: QueryChild, begin_string: str) -> fix.Message:
    return _message(begin_string, "H", [(CL_ORD_ID, cmd.cl_ord_id), (SYMBOL, cmd.symbol), (SIDE, cmd.side.value)])


def business_reject(ref: Readable, text: str, begin_string: str) -> fix.Message:
    """BusinessMessageReject (35=j) for a message we could not act on."""
    header = ref.getHeader()
    body = []
    if header.isSetField(MSG_SEQ_NUM):
        body.append((REF_SEQ_NUM, header.getField(MSG_SEQ_NUM)))
    body.append((372, header.getField(MSG_TYPE)))  # RefMsgType
    if ref.isSetField(CL_ORD_ID) and _utf8(ref.getField(CL_ORD_ID)):
        body.append((BUSINESS_REJECT_REF_ID, ref.getField(CL_ORD_ID)))
    body += [(380, "0"), (TEXT, text[:200])]  # BusinessRejectReason: other
    return _message(begin_string, "j", body)
