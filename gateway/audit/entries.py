"""Audit entries for what the gateway saw, decided and sent: FIX messages, decisions, state changes."""

from __future__ import annotations

import _json
import dataclasses
from decimal import Decimal
from enum import Enum

from gateway.audit.records import Entry
from gateway.core.book_record import BookLedger
from gateway.core.breaker import CircuitChange
from gateway.core.engine import StateChange
from gateway.core.market import Nbbo
from gateway.core.risk import PriceReference
from gateway.core.routing import RouteDecision
from gateway.core.types import CancelReject, ExecType, ExecutionReport, Outbox

_FIELDS: dict[type, tuple[str, ...]] = {}  # a dataclass -> the names of its init fields (derived ones are not kept)


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if (names := _FIELDS.get(type(value))) is not None:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS.setdefault(type(value), tuple(f.name for f in dataclasses.fields(value) if f.init))
        return {name: getattr(value, name) for name in names}
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} in the audit trail")


# json.dumps(value, default=_plain, separators=(",", ":"), sort_keys=True), built once: dumps builds a JSONEncoder
# and a C encoder on every call, which cost more than encoding a small record. No circular check (markers None):
# nothing here refers to itself, and a shared markers dict would keep stale entries after a failed call.
_encode = _json.make_encoder(None, _plain, _json.encode_basestring_ascii, None, ":", ",", True, False, True)


def to_json(value) -> bytes:
    return "".join(_encode(value, 0)).encode()


def wire_bytes(raw: str) -> bytes:
    """A message's bytes from quickfix's text of it, which decodes bytes that are not UTF-8 as lone surrogates."""
    return raw.encode("utf-8", "surrogateescape")


def fix_message(
    direction: str,
    session: str,
    raw: str,
    ts_ns: int,
    order_id: str | None = None,
    cl_ord_id: str | None = None,
    kind: str | None = None,
) -> Entry:
    """A FIX message as quickfix gave it (`message.toString()`), kept byte for byte, SOH and all."""
    return Entry(
        kind or ("fix_in" if direction == "in" else "fix_out"), wire_bytes(raw), session, order_id, cl_ord_id, ts_ns
    )


def for_outbox(out: Outbox, ts_ns: int, cl_ord_ids: dict[str, str]) -> list[Entry]:
    """Decisions, state changes and rejects of one engine step; cl_ord_ids maps OrderID -> ClOrdID."""
    entries = []
    for item in out.decisions:
        if isinstance(item, RouteDecision):
            body = _plain(item)
            del body["books"]  # in the decision's own `book` record, by reference where unchanged
            entries.append(Entry("decision", to_json(body), None, item.order_id, cl_ord_ids.get(item.order_id), ts_ns))
        elif isinstance(item, StateChange):
            entries.append(Entry("state", to_json(item), None, item.order_id, item.cl_ord_id, ts_ns))
        elif isinstance(item, CircuitChange):
            entries.append(Entry("breaker", to_json(item), item.venue, None, None, ts_ns))
        elif isinstance(item, PriceReference):  # recovery replays it: the market it was read from is gone
            entries.append(Entry("risk_ref", to_json(item.reference), item.session, None, item.cl_ord_id, ts_ns))
        else:
            entries.append(Entry("notice", to_json({"text": str(item)}), None, None, None, ts_ns))
    for command in out.commands:
        if isinstance(command, ExecutionReport) and command.exec_type is ExecType.REJECTED:
            entries.append(
                Entry(
                    "reject",
                    to_json(
                        {
                            "kind": "order",
                            "reason": command.ord_rej_reason,
                            "text": command.text,
                            "limit": command.risk_limit,
                        }
                    ),
                    command.session,
                    command.order_id,
                    command.cl_ord_id,
                    ts_ns,
                )
            )
        elif isinstance(command, CancelReject):
            entries.append(
                Entry(
                    "reject",
                    to_json(
                        {"kind": "cancel", "reason": command.reason, "text": command.text, "limit": command.risk_limit}
                    ),
                    command.session,
                    command.order_id,
                    command.cl_ord_id,
                    ts_ns,
                )
            )
    return entries


def marks(symbol: str, marked: list[tuple[str, int]], nbbo: Nbbo, touches: dict[str, tuple], ts_ns: int) -> Entry:
    """The market of `symbol` now, for each (upstream ExecID, horizon_ms) in `marked` that it marks: the NBBO and
    each lit venue's touch as [bid, ask] (null: that side empty), what markouts are computed from. One record
    for the marks made together; a trail from before it has a `mark` record per (ExecID, horizon)."""
    return Entry(
        "marks",
        to_json({"symbol": symbol, "marks": marked, "bid": nbbo.bid, "ask": nbbo.ask, "venues": touches}),
        None,
        None,
        None,
        ts_ns,
    )


def trade(venue: str, symbol: str, qty: int, price: Decimal, seq: int, venue_ts_ns: int, ts_ns: int) -> Entry:
    """One trade a venue published (anyone's), as the gateway received it."""
    return Entry(
        "trade",
        to_json({"venue": venue, "symbol": symbol, "qty": qty, "price": price, "seq": seq, "venue_ts_ns": venue_ts_ns}),
        ts_ns=ts_ns,
    )


def quote(report: ExecutionReport, nbbo: Nbbo, ts_ns: int) -> Entry:
    """The NBBO when a parent report went out: at a fill (`exec_id` names the report) or at the parent's end."""
    return Entry(
        "quote",
        to_json(
            {
                "exec_id": report.exec_id,
                "symbol": report.symbol,
                "fill": bool(report.last_qty),
                "ord_status": report.ord_status.value,
                "bid": nbbo.bid,
                "bid_qty": nbbo.bid_qty,
                "ask": nbbo.ask,
                "ask_qty": nbbo.ask_qty,
            }
        ),
        report.session,
        report.order_id,
        report.cl_ord_id,
        ts_ns,
    )


def books(decision: RouteDecision, symbol: str, cl_ord_id: str, ts_ns: int, ledger: BookLedger) -> Entry:
    """The `book` record of a decision: the lit books its plan read (see gateway.core.book_record)."""
    return Entry(
        "book", to_json(ledger.record(symbol, decision.books, ts_ns)), None, decision.order_id, cl_ord_id, ts_ns
    )
