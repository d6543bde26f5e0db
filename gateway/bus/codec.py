"""Book snapshots and venue trades as compact JSON for the MQTT bus, and the topics they travel on."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.core.market import BookSnapshot, Level, Trade

_FIELDS = ("venue", "symbol", "seq", "ts_ns", "bids", "asks")
_TRADE_FIELDS = ("venue", "symbol", "seq", "ts_ns", "qty", "price")
_TOPIC_FORBIDDEN = ("/", "+", "#")


def topic(prefix: str, venue: str, symbol: str, kind: str = "book") -> str:
    """The topic of one venue's book (retained) or trades (kind "trade", not retained) for one symbol."""
    for name, part in (("venue", venue), ("symbol", symbol)):
        if not part or any(c in part for c in _TOPIC_FORBIDDEN):
            raise ValueError(f"{name} {part!r} cannot be an MQTT topic level (empty, or holds / + #)")
    return f"{prefix}/{kind}/{venue}/{symbol}"


def topic_filter(prefix: str, kind: str = "book") -> str:
    """The subscription that matches every book (or, kind "trade", every trade) under the prefix."""
    return f"{prefix}/{kind}/+/+"


def encode(snapshot: BookSnapshot) -> bytes:
    doc = {
        "venue": snapshot.venue,
        "symbol": snapshot.symbol,
        "seq": snapshot.seq,
        "ts_ns": snapshot.ts_ns,
        # Prices travel as strings: a JSON number would go through float and lose exactness.
        "bids": [[str(level.price), level.qty] for level in snapshot.bids],
        "asks": [[str(level.price), level.qty] for level in snapshot.asks],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(payload: bytes) -> BookSnapshot | None:
    """The snapshot in the payload; None for an empty payload (a deleted retained book).

    Raises ValueError naming the problem when the payload is not a valid snapshot.
    """
    if not payload:
        return None
    try:
        doc = json.loads(payload)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise ValueError(f"snapshot is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"snapshot must be a JSON object, got {type(doc).__name__}")
    missing = [name for name in _FIELDS if name not in doc]
    if missing:
        raise ValueError(f"snapshot is missing {', '.join(missing)}")
    return BookSnapshot(
        venue=_name(doc, "venue"),
        symbol=_name(doc, "symbol"),
        bids=_levels(doc, "bids"),
        asks=_levels(doc, "asks"),
        seq=_count(doc["seq"], "seq"),
        ts_ns=_count(doc["ts_ns"], "ts_ns"),
    )


def encode_trade(trade: Trade) -> bytes:
    return json.dumps(
        {
            "venue": trade.venue,
            "symbol": trade.symbol,
            "seq": trade.seq,
            "ts_ns": trade.ts_ns,
            "qty": trade.qty,
            "price": str(trade.price),
        },
        separators=(",", ":"),
    ).encode()


def decode_trade(payload: bytes) -> Trade:
    """The trade in the payload; ValueError naming the problem when it is not a valid trade."""
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise ValueError(f"trade is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"trade must be a JSON object, got {type(doc).__name__}")
    missing = [name for name in _TRADE_FIELDS if name not in doc]
    if missing:
        raise ValueError(f"trade is missing {', '.join(missing)}")
    return Trade(
        venue=_name(doc, "venue"),
        symbol=_name(doc, "symbol"),
        qty=_qty(doc["qty"], "trade"),
        price=_price(doc["price"], "trade"),
        seq=_count(doc["seq"], "seq"),
        ts_ns=_count(doc["ts_ns"], "ts_ns"),
    )


def _name(doc: dict[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _count(value: Any, what: str) -> int:
    # bool is an int subclass: true/false must not pass for a number.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _levels(doc: dict[str, Any], side: str) -> tuple[Level, ...]:
    rows = doc[side]
    if not isinstance(rows, list):
        raise ValueError(f"{side} must be a list of [price, qty], got {rows!r}")
    return tuple(_level(row, f"{side}[{i}]") for i, row in enumerate(rows))


def _level(row: Any, where: str) -> Level:
    if not isinstance(row, list) or len(row) != 2:
        raise ValueError(f"{where} must be [price, qty], got {row!r}")
    price, qty = row
    return Level(_price(price, where), _qty(qty, where))


def _price(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"{where} price must be a decimal string, got {value!r}")
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{where} price {value!r} is not a decimal") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"{where} price must be a positive finite decimal, got {value!r}")
    return price


def _qty(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where} qty must be a positive integer, got {value!r}")
    return value
