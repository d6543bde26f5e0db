"""Rebuild the order book of record from the audit trail after a crash, and find what was never sent.

The engine is deterministic given its inputs, its ids and its routing decisions, all of which
are on record. Replaying the recorded inputs (OMS requests, venue reports, venue session
changes, child rejects) with each start's id prefix and the recorded decisions in place of the
router rebuilds every parent and child exactly as they were. Every command the replay produces
that was never recorded as sent (reports by ExecID, child orders and cancels by ClOrdID) was
decided but lost in the crash: those are sent now, and nothing else is sent twice.
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import quickfix as fix

from gateway.audit.records import Record
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import Nbbo
from gateway.core.router import Candidate, Exclusion, RouteDecision
from gateway.core.types import (
    CancelChild,
    CancelReject,
    ChildSpec,
    Command,
    ExecutionReport,
    InvalidOrder,
    OrdType,
    QueryChild,
    SendChild,
    TimeInForce,
    Urgency,
)
from gateway.fix import codec
from gateway.fix.wire import WireMessage


class RecoveryError(Exception):
    """The audit trail does not replay to the state it recorded (it was altered, or is from other code)."""


@dataclass
class Replay:
    unsent: list[Command] = field(default_factory=list)
    parents: int = 0
    open_parents: int = 0
    records: int = 0


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def decision_from_json(body: str) -> RouteDecision:
    d = json.loads(body)
    children = tuple(ChildSpec(c["venue"], c["qty"], _decimal(c["price"]), OrdType(c["ord_type"]),
                               TimeInForce(c["tif"]), c["purpose"], c.get("cancel_on_ack", False))
                     for c in d["children"])
    candidates = tuple(Candidate(c["venue"], _decimal(c["price"]), c["qty"], Decimal(c["fee"]), c["latency_us"],
                                 c["rank"]) for c in d["candidates"])
    exclusions = tuple(Exclusion(e["venue"], e["reason"]) for e in d["exclusions"])
    n = d["nbbo"]
    nbbo = Nbbo(_decimal(n["bid"]), n["bid_qty"], _decimal(n["ask"]), n["ask_qty"])
    return RouteDecision(d["order_id"], d["phase"], children, candidates, exclusions, nbbo, d["reason"])


def _message(body: bytes) -> WireMessage:
    """The recorded message, field values exactly as its live callback read them (even bytes that are not UTF-8)."""
    return WireMessage(body)


def _identity(command: Command) -> tuple[str, str]:
    if isinstance(command, ExecutionReport):
        return ("exec", command.exec_id)
    if isinstance(command, CancelReject):
        return ("cxl_reject", f"{command.session}:{command.cl_ord_id}")
    if isinstance(command, SendChild | CancelChild):
        return ("child", command.cl_ord_id)
    if isinstance(command, QueryChild):
        return ("query", command.cl_ord_id)
    raise TypeError(command)


def _sent_identity(record: Record) -> tuple[str, str] | None:
    msg = _message(record.body)
    msg_type = msg.getHeader().getField(codec.MSG_TYPE)
    if msg_type == "8" and msg.isSetField(codec.EXEC_ID):
        return ("exec", msg.getField(codec.EXEC_ID))
    if msg_type == "9":
        return ("cxl_reject", f"{record.session}:{msg.getField(codec.CL_ORD_ID)}")
    if msg_type in ("D", "F"):
        return ("child", msg.getField(codec.CL_ORD_ID))
    return None


def replay(engine: OrderEngine, records: Iterable[Record], upstream_sessions: set[str],
           venue_of_session: dict[str, str], default_urgency: Urgency) -> Replay:
    """Rebuild `engine` from `records` (seq order); return what was decided but never sent."""
    result = Replay()
    decisions: deque[RouteDecision] = deque()
    produced: dict[tuple[str, str], Command] = {}
    sent: set[tuple[str, str]] = set()

    def recorded_plan(request, market, venues, policy, learning) -> RouteDecision:
        if not decisions:
            raise RecoveryError(f"order {request.order_id} was routed but no decision is on record")
        decision = decisions.popleft()
        if decision.order_id != request.order_id:
            raise RecoveryError(f"recorded decision is for {decision.order_id}, replay routes {request.order_id}")
        return decision

    pending: list[Record] = []
    for record in records:
        result.records += 1
        if record.kind == "decision":
            decisions.append(decision_from_json(record.body))
        elif record.kind == "fix_out":
            identity = _sent_identity(record)
            if identity:
                sent.add(identity)
        elif record.kind in ("config", "fix_in", "session", "event"):
            pending.append(record)

    live_planner, engine.planner = engine.planner, recorded_plan
    live_ids, live_clock = engine.ids, engine.clock
    engine.clock = clock = _RecordClock()  # deadlines replay as they were set: from recorded times
    engine.learning.enabled = False
    try:
        for record in pending:
            clock.now = record.ts_ns
            for command in _apply(engine, record, upstream_sessions, venue_of_session, default_urgency):
                produced[_identity(command)] = command
    finally:
        engine.planner, engine.ids, engine.clock = live_planner, live_ids, live_clock
        engine.learning.enabled = True
        disconnect_all(engine)  # this process has logged on to no venue yet
    if decisions:
        raise RecoveryError(f"{len(decisions)} recorded decisions were not reached by the replay")
    # Status queries are not resent: every venue logon queries its live children afresh.
    result.unsent = [command for key, command in produced.items()
                     if key not in sent and not isinstance(command, QueryChild)]
    result.parents = len(engine.parents)
    result.open_parents = sum(parent.live for parent in engine.parents.values())
    return result


class _RecordClock:
    """The time of the record being replayed."""

    now = 0

    def now_ns(self) -> int:
        return self.now


def disconnect_all(engine: OrderEngine) -> None:
    for venue in list(engine.venues):
        engine.on_venue_status(venue, False)


def _apply(engine: OrderEngine, record: Record, upstream: set[str], venues: dict[str, str],
           default_urgency: Urgency) -> list[Command]:
    if record.kind == "config":
        # A start: that run's id prefix, and no venue session is up yet.
        boot = json.loads(record.body).get("boot")
        if boot:
            engine.ids = IdSource(boot)
        disconnect_all(engine)
        return []
    if record.kind == "session":
        body = json.loads(record.body)
        if body["role"] == "venue":
            return engine.on_venue_status(record.session, body["event"] == "logon").commands
        return []
    if record.kind == "event":
        body = json.loads(record.body)
        if body["event"] == "cancel_unsent":
            return engine.on_cancel_unsent(body["cl_ord_id"]).commands
        if body["event"] == "timer":
            return engine.on_timer(body["now_ns"]).commands
        return engine.on_child_rejected(body["venue"], body["cl_ord_id"], body["text"]).commands
    msg = _message(record.body)
    msg_type = msg.getHeader().getField(codec.MSG_TYPE)
    try:
        return _apply_message(engine, msg, msg_type, record.session, upstream, venues, default_urgency)
    except codec.FieldError:
        return []  # refused with a session-level reject when it came in: the engine never saw it


def _apply_message(engine: OrderEngine, msg: fix.Message, msg_type: str, session: str, upstream: set[str],
                   venues: dict[str, str], default_urgency: Urgency) -> list[Command]:
    if session in upstream:
        if msg_type == "D":
            order = codec.parse_new_order(msg, session, default_urgency)
            step = engine.on_invalid_order if isinstance(order, InvalidOrder) else engine.on_new_order
            return step(order).commands
        if msg_type == "F":
            return engine.on_cancel(codec.parse_cancel(msg, session)).commands
        if msg_type == "G":
            return engine.on_replace(codec.parse_replace(msg, session)).commands
        if msg_type == "H":
            return engine.on_status_request(codec.parse_status_request(msg, session)).commands
    elif session in venues and msg_type == "8":
        return engine.on_venue_report(codec.parse_venue_report(msg, venues[session])).commands
    return []
