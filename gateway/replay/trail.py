"""Read recorded parent orders off the audit trail for a replay: the order, each decision with the books it
read, what the OMS asked later, what was filled, and the mids that followed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import ValidationError

from gateway.analytics.tca import ParentTrail, VenueTerms
from gateway.audit.records import Record
from gateway.config import GatewayConfig
from gateway.core.book_record import BookRecordError, Levels, read_books, written
from gateway.core.market import BookSnapshot, Nbbo
from gateway.core.routing import DISCONNECTED
from gateway.core.types import CancelRequest, ChildSpec, InvalidOrder, NewOrder
from gateway.fix import codec
from gateway.fix.wire import WireMessage
from gateway.recovery import decision_from_json
from gateway.tca.trail import Selection, read_trail


class ReplayError(Exception):
    """A replay the trail cannot support: said plainly, exit 2."""


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """One routing decision on record, with the lit books its plan read."""

    ts_ns: int
    phase: str
    reason: str
    strategy: str | None
    children: tuple[ChildSpec, ...]
    nbbo: Nbbo
    disconnected: frozenset[str]
    books: tuple[BookSnapshot, ...]


@dataclass(slots=True)
class RecordedOrder:
    order_id: str
    order: NewOrder
    config: GatewayConfig
    arrival_ns: int
    decisions: list[RecordedDecision] = field(default_factory=list)
    cancels: list[tuple[int, CancelRequest]] = field(default_factory=list)  # the OMS's, at their times
    replaced: bool = False
    trail: ParentTrail | None = None  # what happened, as TCA reads it
    venues: dict[str, VenueTerms] = field(default_factory=dict)


@dataclass(slots=True)
class Tape:
    """Every NBBO mid on record (decisions and quotes, of any order), in time order."""

    mids: list[tuple[int, Decimal]] = field(default_factory=list)

    def add(self, ts_ns: int, bid: str | None, ask: str | None) -> None:
        if bid is not None and ask is not None:
            self.mids.append((ts_ns, (Decimal(bid) + Decimal(ask)) / 2))


class _Collect:
    """One pass over the trail in seq order."""

    def __init__(self, wanted: Callable[[str, int], bool]) -> None:
        self.wanted = wanted
        self.config: dict | None = None
        self.config_record: Record | None = None
        self.orders: dict[str, tuple[dict, Record, list[Record]]] = {}  # order id -> (config, its record, records)
        # (venue, symbol) -> (seq, time of the record, levels) of the snapshot last written out: a reference
        # always names the latest one (the gateway's ledger moves only forward, and starts afresh each run).
        self.books: dict[tuple[str, str], tuple[int, int, Levels]] = {}
        self.resolved: dict[int, list[BookSnapshot]] = {}  # book record seq -> its books
        self.tape = Tape()

    def read(self, record: Record) -> None:
        kind = record.kind
        if kind == "config":
            self.config, self.config_record = json.loads(record.body), record
            return
        if kind in ("decision", "quote"):
            body = json.loads(record.body)
            quote = body["nbbo"] if kind == "decision" else body
            self.tape.add(record.ts_ns, quote.get("bid"), quote.get("ask"))
        if kind == "book":
            self._book(record)
        order_id = record.order_id
        if not order_id or order_id == "NONE":
            return
        if order_id not in self.orders:
            if kind != "fix_in" or WireMessage(record.body).getField(codec.MSG_TYPE) != "D":
                return
            if not self.wanted(order_id, record.ts_ns):
                return
            if self.config is None or self.config_record is None:
                raise ReplayError(f"order {order_id}: no config record before it on the trail")
            self.orders[order_id] = (self.config, self.config_record, [])
        self.orders[order_id][2].append(record)

    def _book(self, record: Record) -> None:
        body = json.loads(record.body)
        if record.order_id not in self.orders:  # only what it writes out matters: later records may refer to it
            for entry in body.get("books", ()):
                if "at" not in entry and isinstance(body.get("symbol"), str):
                    self.books[(entry["venue"], body["symbol"])] = (entry["seq"], record.ts_ns, written(entry))
            return

        def resolve(venue: str, symbol: str, seq: int, at: int) -> Levels | None:
            known = self.books.get((venue, symbol))
            return known[2] if known is not None and known[:2] == (seq, at) else None

        try:
            books = read_books(body, resolve)
        except BookRecordError as exc:
            raise ReplayError(f"record {record.seq}: {exc}") from None
        for entry, snapshot in zip(body["books"], books):
            if "at" not in entry:
                self.books[(snapshot.venue, snapshot.symbol)] = (snapshot.seq, record.ts_ns, written(entry))
        self.resolved[record.seq] = books


def collect(records: Iterable[Record], wanted: Callable[[str, int], bool]) -> tuple[list[RecordedOrder], Tape]:
    """The wanted parents (by OrderID and arrival time) in arrival order, and the tape of mids."""
    pass_ = _Collect(wanted)
    for record in records:
        pass_.read(record)
    orders = [
        _order(order_id, config, config_record, story, pass_.resolved)
        for order_id, (config, config_record, story) in pass_.orders.items()
    ]
    return orders, pass_.tape


def one_order(store, key: str, horizon_ns: int) -> tuple[list[RecordedOrder], Tape]:
    """The order `key` names (its OrderID or any ClOrdID) read by index, not by a pass over the whole trail:
    its own records, the config it ran under, the records its book references name, and every record from
    its arrival to horizon_ns past its last one (the mids its markouts read)."""
    found = store.for_order(key)
    story = [r for r in found if r.order_id not in (None, "NONE")]
    new = next((r for r in story if r.kind == "fix_in" and WireMessage(r.body).getField(codec.MSG_TYPE) == "D"), None)
    if new is None:
        if found and not story:
            raise ReplayError(f"order {key!r} was rejected before it was routed: nothing to replay")
        raise ReplayError(
            f"unknown order {key!r} (an OrderID or any ClOrdID of the order)"
            if not story
            else f"order {key!r}: its NewOrderSingle is not on the trail"
        )
    config = store.last_before("config", new.seq)
    if config is None:
        raise ReplayError(f"order {new.order_id}: no config record before it on the trail")
    chosen = {r.seq: r for r in story}
    for record in story:
        if record.kind == "book":
            for at in {entry["at"] for entry in json.loads(record.body).get("books", ()) if "at" in entry}:
                chosen.update((r.seq, r) for r in store.records(at, at + 1) if r.kind == "book")
    chosen.update(
        (r.seq, r)
        for r in store.records(new.ts_ns, story[-1].ts_ns + horizon_ns + 1)
        if r.kind in ("decision", "quote")
    )
    chosen[config.seq] = config
    return collect((chosen[seq] for seq in sorted(chosen)), lambda order_id, _: order_id == new.order_id)


def _order(
    order_id: str, config: dict, config_record: Record, story: list[Record], resolved: dict[int, list[BookSnapshot]]
) -> RecordedOrder:
    try:
        cfg = GatewayConfig.model_validate(config.get("config") or {}, by_name=True)
    except ValidationError as exc:
        raise ReplayError(f"order {order_id}: the config on record does not load: {exc}") from None
    new = story[0]
    session = new.session
    if session is None:
        raise ReplayError(f"order {order_id}: its NewOrderSingle on record (record {new.seq}) names no session")
    order = codec.parse_new_order(WireMessage(new.body), session, cfg.routing.default_urgency)
    if isinstance(order, InvalidOrder):
        raise ReplayError(f"order {order_id}: its NewOrderSingle on record does not parse: {order.text}")
    recorded = RecordedOrder(order_id, order, cfg, new.ts_ns)
    pending: list[tuple[Record, Record | None]] = []  # (decision, its book record)
    for record in story:
        if record.kind == "decision":
            pending.append((record, None))
        elif record.kind == "book" and pending and pending[-1][1] is None:
            pending[-1] = (pending[-1][0], record)
        elif record.kind == "fix_in" and record.session == session:
            msg = WireMessage(record.body)
            msg_type = msg.getField(codec.MSG_TYPE)
            cancel = codec.parse_cancel(msg, session) if msg_type == "F" else None
            if isinstance(cancel, CancelRequest):  # a cancel that could not be parsed was refused
                recorded.cancels.append((record.ts_ns, cancel))
            elif msg_type == "G":
                recorded.replaced = True
    for decision, book in pending:
        if book is None:
            raise ReplayError(
                f"order {order_id}: decision record {decision.seq} has no book record (a trail written "
                f"before books were recorded): the market it met is not on record"
            )
        parsed = decision_from_json(decision.body)
        body = json.loads(decision.body)
        recorded.decisions.append(
            RecordedDecision(
                decision.ts_ns,
                parsed.phase,
                parsed.reason,
                body.get("strategy"),
                parsed.children,
                parsed.nbbo,
                frozenset(e.venue for e in parsed.exclusions if e.reason == DISCONNECTED),
                tuple(resolved[book.seq]),
            )
        )
    trails, venues = read_trail([config_record, *story], Selection(order=order_id))[:2]
    recorded.trail = trails[0] if trails else None
    recorded.venues = venues
    return recorded
