"""Business validation of parent orders and replaces, each failure with a FIX reason and a clear text."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from decimal import Decimal

from gateway.core.types import NewOrder, OrdRejReason, OrdType, ReplaceRequest

SHOWN_CHARS = 40  # of a value the OMS sent, echoed in a reject's Text


def shown(value: object) -> str:
    """A value the OMS sent, as a reject's Text may echo it: at most SHOWN_CHARS characters."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 3]}..."


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick: Decimal
    lot: int = 1


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: OrdRejReason
    text: str


def check_price(ord_type: OrdType, price: Decimal | None, instrument: Instrument) -> Rejection | None:
    if ord_type is OrdType.LIMIT:
        if price is None:
            return Rejection(OrdRejReason.OTHER, "Price (44) is required for a limit order")
        if price <= 0:
            return Rejection(OrdRejReason.OTHER, f"Price (44) must be positive, got {shown(price)}")
        if price % instrument.tick:
            return Rejection(
                OrdRejReason.INVALID_PRICE_INCREMENT,
                f"Price {shown(price)} is not a multiple of the tick {instrument.tick} for {instrument.symbol}",
            )
    elif price is not None:
        return Rejection(OrdRejReason.OTHER, "Price (44) is not allowed on a market order")
    return None


def check_qty(qty: int) -> Rejection | None:
    if qty <= 0:
        return Rejection(OrdRejReason.INCORRECT_QUANTITY, f"OrderQty (38) must be positive, got {qty}")
    return None


def validate_new(
    order: NewOrder,
    instruments: Mapping[str, Instrument],
    venues: Container[str],
    cl_ord_id_taken: bool,
) -> Rejection | None:
    """The first reason this order cannot be accepted, or None."""
    if cl_ord_id_taken:
        return Rejection(OrdRejReason.DUPLICATE_ORDER, f"duplicate ClOrdID {order.cl_ord_id}")
    instrument = instruments.get(order.symbol)
    if instrument is None:
        return Rejection(OrdRejReason.UNKNOWN_SYMBOL, f"unknown symbol {shown(order.symbol)}")
    rejection = check_qty(order.qty) or check_price(order.ord_type, order.price, instrument)
    if rejection:
        return rejection
    if order.ex_destination is not None and order.ex_destination not in venues:
        return Rejection(OrdRejReason.OTHER, f"unknown ExDestination (100) {shown(order.ex_destination)}")
    return None


def validate_replace(request: ReplaceRequest, instrument: Instrument, cum_qty: int) -> Rejection | None:
    rejection = check_qty(request.qty) or check_price(request.ord_type, request.price, instrument)
    if rejection:
        return rejection
    if request.qty <= cum_qty:
        return Rejection(
            OrdRejReason.INCORRECT_QUANTITY,
            f"OrderQty {request.qty} must exceed the quantity already filled ({cum_qty})",
        )
    return None
