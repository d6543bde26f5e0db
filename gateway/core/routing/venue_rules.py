"""What each venue accepts (order types, TimeInForce, tick, lot, minimum size) and child orders fitted to it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from math import lcm

from gateway.core.types import ChildSpec, OrdType, TimeInForce

ALL_ORD_TYPES = frozenset(OrdType)
ALL_TIFS = frozenset(TimeInForce)


@dataclass(frozen=True, slots=True)
class VenueRules:
    """One venue's order-entry rules; tick None means the symbol's own tick."""

    order_types: frozenset[OrdType] = ALL_ORD_TYPES
    tifs: frozenset[TimeInForce] = ALL_TIFS
    tick: Decimal | None = None
    lot: int = 1
    min_qty: int = 1
    market_data: bool = True


@dataclass(frozen=True, slots=True)
class Fitted:
    """A child as the venue will take it, or None with the reason it cannot be sent."""

    child: ChildSpec | None
    note: str | None = None


def round_price(price: Decimal, tick: Decimal, buy: bool) -> Decimal:
    """Onto the tick in the order's favour: a buy rounds down, a sell up (so never beyond its limit)."""
    steps = (price / tick).to_integral_value(ROUND_FLOOR if buy else ROUND_CEILING)
    return steps * tick


def protective_price(touch: Decimal, band_bps: int, tick: Decimal, buy: bool) -> Decimal:
    """The limit that stands in for a market order: band_bps beyond the far touch, rounded onto the tick
    in the order's favour."""
    band = touch * band_bps / 10_000
    return round_price(touch + band if buy else touch - band, tick, buy)


def fit(
    child: ChildSpec,
    rules: VenueRules,
    symbol_tick: Decimal,
    symbol_lot: int,
    buy: bool,
    far_touch: Decimal | None,
    band_bps: int,
) -> Fitted:
    """The child reshaped to what its venue accepts: market -> protective limit, IOC -> DAY cancelled on
    acknowledgement, price on the venue's tick in the order's favour, quantity in whole venue lots."""
    venue = child.venue
    lot = lcm(symbol_lot, rules.lot)
    qty = child.qty - child.qty % lot
    if qty == 0:
        return Fitted(None, f"{venue}: {child.qty} is less than its lot of {lot}")
    if qty < rules.min_qty:
        return Fitted(None, f"{venue}: {qty} is below its minimum quantity {rules.min_qty}")
    tick = rules.tick or symbol_tick
    price, ord_type = child.price, child.ord_type
    if ord_type is OrdType.MARKET and OrdType.MARKET not in rules.order_types:
        if far_touch is None:
            return Fitted(None, f"{venue} takes no market orders and no quote prices a protective limit")
        price, ord_type = protective_price(far_touch, band_bps, tick, buy), OrdType.LIMIT
    if price is not None:
        price = round_price(price, tick, buy)
        if price <= 0:
            return Fitted(None, f"{venue}: price rounds to {price} on its tick {tick}")
    tif, cancel_on_ack = child.tif, child.cancel_on_ack
    if tif not in rules.tifs:
        if tif is not TimeInForce.IOC:
            return Fitted(None, f"{venue} does not accept TimeInForce {tif.name}")
        tif, cancel_on_ack = TimeInForce.DAY, True
    if (qty, price, ord_type, tif, cancel_on_ack) == (
        child.qty,
        child.price,
        child.ord_type,
        child.tif,
        child.cancel_on_ack,
    ):
        return Fitted(child)
    note = None if qty == child.qty else f"{venue}: {child.qty - qty} kept with the parent (lot {lot})"
    return Fitted(replace(child, qty=qty, price=price, ord_type=ord_type, tif=tif, cancel_on_ack=cancel_on_ack), note)
