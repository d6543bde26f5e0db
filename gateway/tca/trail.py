"""Read the audit trail into the plain records TCA works on: parents, their children, fills and NBBOs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from gateway.analytics.tca import Child, Fill, Mark, ParentTrail, Print, Quote, VenueTerms
from gateway.audit.records import Record
from gateway.fix.wire import WireMessage

FINAL = {"2": "filled", "3": "done_for_day", "4": "canceled", "8": "rejected", "C": "expired"}
ORD_TYPES = {"1": "market", "2": "limit"}  # anything else counts as "other"
LIVE = {"0": "new", "1": "partially_filled"}
_PASSIVE: dict[str | None, bool] = {"1": True, "2": False}  # LastLiquidityInd: added, removed liquidity


@dataclass(frozen=True, slots=True)
class Selection:
    """Which parents to analyse: arrival in [start_ns, end_ns), and the session, symbol or order named."""

    start_ns: int | None = None
    end_ns: int | None = None
    session: str | None = None
    symbol: str | None = None
    order: str | None = None  # an OrderID or any ClOrdID of the order

    def wants(self, parent: ParentTrail, cl_ord_ids: set[str]) -> bool:
        return (
            (self.start_ns is None or parent.arrival_ns >= self.start_ns)
            and (self.end_ns is None or parent.arrival_ns < self.end_ns)
            and self.session in (None, parent.session)
            and self.symbol in (None, parent.symbol)
            and (self.order is None or self.order == parent.order_id or self.order in cl_ord_ids)
        )


def _ord_type(msg: WireMessage) -> str:
    return ORD_TYPES.get(msg.getField(40), "other") if msg.isSetField(40) else "other"


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _quote(body: dict) -> Quote:
    return Quote(_decimal(body.get("bid")), _decimal(body.get("ask")))


class _Reader:
    def __init__(self) -> None:
        self.venues: dict[str, VenueTerms] = {}
        self.venue_of_session: dict[str, str] = {}
        self.parents: dict[str, ParentTrail] = {}
        self.cl_ord_ids: dict[str, set[str]] = {}  # OrderID -> every ClOrdID the OMS gave it
        self.route_quote: dict[str, Quote] = {}  # OrderID -> the NBBO of its latest decision
        self.children: dict[str, tuple[str, Child]] = {}  # child ClOrdID -> (OrderID, child)
        self.exec_ids: set[tuple[str, str]] = set()  # (venue, ExecID) of fills seen: duplicates count once
        self.unquoted: dict[str, int] = {}  # OrderID -> index of its latest fill that has no fill-time NBBO yet
        self.fill_of: dict[str, tuple[str, int]] = {}  # upstream ExecID of a fill -> (OrderID, index of the fill)
        self.marks: dict[str, list[Mark]] = {}  # upstream ExecID -> the marks recorded after it
        self.tape: dict[str, list[Print]] = {}  # symbol -> the venues' prints, as received

    def config(self, body: dict) -> None:
        for venue in body.get("config", {}).get("venues", []):
            name = venue["name"]
            session = (
                f"{venue.get('begin_string') or 'FIX.4.4'}:{venue.get('sender_comp_id') or 'SORGW'}->"
                f"{venue.get('target_comp_id') or name}"
            )
            self.venue_of_session[session] = name
            self.venues[name] = VenueTerms(
                venue.get("kind") == "dark",
                Decimal(str(venue.get("maker_fee", 0))),
                Decimal(str(venue.get("taker_fee", 0))),
            )

    def read(self, record: Record) -> None:
        if record.kind == "config":
            self.config(json.loads(record.body))
        elif record.kind in ("fix_in", "fix_out"):
            msg = WireMessage(record.body)
            venue = self.venue_of_session.get(record.session or "")
            if venue is None:
                self.upstream(record, msg)
            elif record.kind == "fix_out" and msg.getField(35) == "D":
                self.child_sent(record, msg, venue)
            elif record.kind == "fix_in" and msg.getField(35) == "8":
                self.venue_report(record, msg, venue)
        elif record.kind == "trade":
            body = json.loads(record.body)
            self.tape.setdefault(body["symbol"], []).append(
                Print(record.ts_ns, body["venue"], int(body["qty"]), Decimal(body["price"]))
            )
        elif record.kind in ("marks", "mark"):
            self.marked(record)
        elif record.order_id is not None and record.order_id in self.parents:
            body = json.loads(record.body)
            if record.kind == "decision":
                self.route_quote[record.order_id] = quote = _quote(body["nbbo"])
                parent = self.parents[record.order_id]
                parent.arrival = parent.arrival or quote
            elif record.kind == "quote":
                self.quoted(record.order_id, body)
            elif record.kind == "event" and body.get("event") == "child_rejected":
                self.rejected(body["cl_ord_id"], record.ts_ns)

    def marked(self, record: Record) -> None:
        """One market read for the (ExecID, horizon) pairs a `marks` record lists; an older trail's `mark` record
        holds one pair of its own."""
        body = json.loads(record.body)
        nbbo = _quote(body)
        touches = {venue: (_decimal(bid), _decimal(ask)) for venue, (bid, ask) in body["venues"].items()}
        pairs = body["marks"] if record.kind == "marks" else [(body["exec_id"], body["horizon_ms"])]
        for exec_id, horizon_ms in pairs:
            self.marks.setdefault(exec_id, []).append(Mark(int(horizon_ms), record.ts_ns, nbbo, touches))

    def upstream(self, record: Record, msg: WireMessage) -> None:
        msg_type = msg.getField(35)
        order_id = record.order_id
        if not order_id or order_id == "NONE":
            return
        if record.kind == "fix_in" and msg_type in ("D", "F", "G") and msg.isSetField(11):
            self.cl_ord_ids.setdefault(order_id, set()).add(msg.getField(11))
        if record.kind == "fix_in" and msg_type == "D" and order_id not in self.parents and msg.isSetField(38):
            self.parents[order_id] = ParentTrail(
                order_id,
                msg.getField(11),
                record.session or "",
                msg.getField(55),
                1 if msg.getField(54) == "1" else -1,
                int(Decimal(msg.getField(38))),
                record.ts_ns,
                ord_type=_ord_type(msg),
                directed=msg.isSetField(100) and bool(msg.getField(100)),
            )
        elif record.kind == "fix_out" and msg_type == "8" and order_id in self.parents:
            parent = self.parents[order_id]
            if parent.end_ns is not None:
                return
            status = msg.getField(39)
            if msg.isSetField(38):
                parent.order_qty = int(Decimal(msg.getField(38)))  # a replace can change it
            parent.status = FINAL.get(status) or LIVE.get(status, parent.status)
            if status in FINAL:
                parent.end_ns = record.ts_ns

    def child_sent(self, record: Record, msg: WireMessage, venue: str) -> None:
        order_id = record.order_id
        if order_id is None or order_id not in self.parents or msg.getField(11) in self.children:
            return  # a resent child is the same child
        child = Child(
            msg.getField(11),
            venue,
            int(Decimal(msg.getField(38))),
            record.ts_ns,
            None,
            False,
            _ord_type(msg),
            Decimal(msg.getField(44)) if msg.isSetField(44) else None,
            self.route_quote.get(order_id),
        )
        self.parents[order_id].children.append(child)
        self.children[child.cl_ord_id] = (order_id, child)

    def _answered(self, cl_ord_id: str, ts_ns: int, rejected: bool) -> None:
        order_id, child = self.children[cl_ord_id]
        updated = replace(
            child, ack_ns=child.ack_ns if child.ack_ns is not None else ts_ns, rejected=child.rejected or rejected
        )
        children = self.parents[order_id].children
        children[children.index(child)] = updated
        self.children[cl_ord_id] = (order_id, updated)

    def rejected(self, cl_ord_id: str, ts_ns: int) -> None:
        if cl_ord_id in self.children:
            self._answered(cl_ord_id, ts_ns, True)

    def venue_report(self, record: Record, msg: WireMessage, venue: str) -> None:
        cl_ord_id = msg.getField(11) if msg.isSetField(11) else None
        if cl_ord_id not in self.children and msg.isSetField(41):
            cl_ord_id = msg.getField(41)  # a report about a cancel names the child as OrigClOrdID
        if cl_ord_id not in self.children:
            return
        self._answered(cl_ord_id, record.ts_ns, msg.getField(150) == "8")
        last_qty = int(Decimal(msg.getField(32))) if msg.isSetField(32) else 0
        key = (venue, msg.getField(17) if msg.isSetField(17) else "")
        if last_qty <= 0 or key in self.exec_ids:
            return
        self.exec_ids.add(key)
        order_id = self.children[cl_ord_id][0]
        liquidity = msg.getField(851) if msg.isSetField(851) else None
        fills = self.parents[order_id].fills
        fills.append(
            Fill(
                record.ts_ns,
                venue,
                last_qty,
                Decimal(msg.getField(31)),
                _PASSIVE.get(liquidity),
                None,
                self.children[cl_ord_id][1].route,
                child=cl_ord_id,
            )
        )
        self.unquoted[order_id] = len(fills) - 1

    def quoted(self, order_id: str, body: dict) -> None:
        """A quote follows, in the same commit, the venue report whose fill it reported upstream."""
        parent = self.parents[order_id]
        if body.get("fill") and order_id in self.unquoted:
            index = self.unquoted.pop(order_id)
            parent.fills[index] = replace(parent.fills[index], at_fill=_quote(body))
            self.fill_of[body["exec_id"]] = (order_id, index)
        if body.get("ord_status") in FINAL and parent.end is None:
            parent.end = _quote(body)


def read_trail(
    records: Iterable[Record], selection: Selection
) -> tuple[list[ParentTrail], dict[str, VenueTerms], dict[str, list[Print]]]:
    """The selected parents in arrival order, the venues' terms as last configured, and the prints per symbol."""
    reader = _Reader()
    for record in records:
        reader.read(record)
    for exec_id, marks in reader.marks.items():  # a mark at horizon 0 may be on the trail before its fill's quote
        if exec_id in reader.fill_of:
            order_id, index = reader.fill_of[exec_id]
            fills = reader.parents[order_id].fills
            fills[index] = replace(fills[index], marks=tuple(marks))
    parents = [p for p in reader.parents.values() if selection.wants(p, reader.cl_ord_ids.get(p.order_id, set()))]
    return parents, reader.venues, reader.tape
