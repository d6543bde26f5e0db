"""Rebuild the order book of record from the audit trail after a crash, and find what was never sent.

The engine is deterministic given its inputs, its ids and its routing decisions, all of which
are on record. Replaying the recorded inputs (OMS requests, venue reports, venue session
changes, child rejects) with each start's id prefix and the recorded decisions in place of the
router rebuilds every parent and child exactly as they were.

What was sent is judged against quickfix's message store, not the trail alone: an outgoing
message is on record before quickfix stores it (or, on a persistent store, is taken back from the
store afterwards: below), and quickfix stores it before it sends it. Each
start records every session's store (next MsgSeqNum, creation time). A message recorded in a
run with MsgSeqNum below the store's next number at the following start was stored, so the peer
has it or gets it by FIX resend; one at or above it was recorded but never stored, so never
sent, and its number went to other content. Every command the replay produces with no stored
message (reports by ExecID, child orders and cancels by ClOrdID) is sent now, marked PossResend;
nothing else is sent twice. Where a store cannot tell (memory store, reset on logon, a store
reset since), being on record counts as sent.

Where the store is persistent the gateway does not wait for an outgoing message's record before quickfix
stores and sends it, so a crash can lose the record of a message the peer has. Replay is then given what
each such store holds (its current life, numbers below the next sender number) and takes every stored
application message that no fix_out record of that session holds byte for byte as on record, sent in the
last run: `Replay.recovered`, which the caller appends to the trail.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from gateway.analytics.learning import VenueLearning
from gateway.audit.records import Record
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import MarketView, Nbbo, VenueInfo
from gateway.core.risk import Halt, Reference
from gateway.core.routing import Candidate, Exclusion, PlanRequest, RouteDecision, RoutingPolicy
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
    Side,
    TimeInForce,
    Urgency,
)
from gateway.fix import codec
from gateway.fix.sessions import StoreState
from gateway.fix.wire import WireMessage
from gateway.policy import recorded_risk_limits


class RecoveryError(Exception):
    """The audit trail does not replay to the state it recorded (it was altered, or is from other code)."""


RESET_SEQ_NUM_FLAG = 141


@dataclass
class Replay:
    unsent: list[Command] = field(default_factory=list)
    never_sent: list[Record] = field(default_factory=list)  # the last run's messages recorded but never stored
    recovered: list[Record] = field(default_factory=list)  # stored and sent in the last run, not on record
    parents: int = 0
    open_parents: int = 0
    records: int = 0


@dataclass
class _Sent:
    """Outgoing messages on record, per session and run, to be judged against the stores."""

    runs: int = 0
    stores: dict[tuple[int, str], StoreState] = field(default_factory=dict)  # (run, session) -> store at its start
    messages: dict[str, list[tuple[int, int | None, tuple[str, str] | None, Record]]] = field(default_factory=dict)
    resets: dict[tuple[int, str], int] = field(default_factory=dict)  # (run, session) -> trail seq of last reset

    def add(self, record: Record, msg: WireMessage) -> None:
        header = msg.getHeader()
        msg_type = header.getField(codec.MSG_TYPE)
        if msg_type == "A" and msg.isSetField(RESET_SEQ_NUM_FLAG) and msg.getField(RESET_SEQ_NUM_FLAG) == "Y":
            self.resets[(self.runs, _session(record))] = record.seq  # both sides start again at 1
        if record.kind == "fix_out":
            msg_seq = int(header.getField(codec.MSG_SEQ_NUM)) if header.isSetField(codec.MSG_SEQ_NUM) else None
            self.messages.setdefault(_session(record), []).append(
                (self.runs, msg_seq, _sent_identity(record, msg), record)
            )

    def judge(self, live: Mapping[str, StoreState]) -> tuple[set[tuple[str, str]], list[Record]]:
        """(identities the peer has or can get by resend, the last run's records that were never stored)."""
        sent: set[tuple[str, str]] = set()
        never: list[Record] = []
        for session, messages in self.messages.items():
            for run, msg_seq, identity, record in messages:
                before = self.stores.get((run, session))
                after = live.get(session) if run == self.runs else self.stores.get((run + 1, session))
                if _stored(before, after, msg_seq, record.seq > self.resets.get((run, session), 0)):
                    if identity is not None:
                        sent.add(identity)
                elif run == self.runs and identity is not None:
                    never.append(record)
        return sent, never


def _stored(before: StoreState | None, after: StoreState | None, msg_seq: int | None, judged: bool) -> bool:
    """Whether a message sent in a run was stored, from the session's store at that run's start and the next."""
    if not judged or msg_seq is None or before is None or after is None or not (before.persistent and after.persistent):
        return True  # the store cannot tell: on record counts as sent
    if after.created != before.created or after.next_sender < before.next_sender:
        return True  # the store was reset in between: what the peer saw is gone from both sides
    return msg_seq < after.next_sender


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def decision_from_json(body: str | bytes) -> RouteDecision:
    d = json.loads(body)
    children = tuple(
        ChildSpec(
            c["venue"],
            c["qty"],
            _decimal(c["price"]),
            OrdType(c["ord_type"]),
            TimeInForce(c["tif"]),
            c["purpose"],
            c.get("cancel_on_ack", False),
        )
        for c in d["children"]
    )
    candidates = tuple(
        Candidate(c["venue"], _decimal(c["price"]), c["qty"], Decimal(c["fee"]), c["latency_us"], c["rank"])
        for c in d["candidates"]
    )
    exclusions = tuple(Exclusion(e["venue"], e["reason"]) for e in d["exclusions"])
    n = d["nbbo"]
    nbbo = Nbbo(_decimal(n["bid"]), n["bid_qty"], _decimal(n["ask"]), n["ask_qty"])
    return RouteDecision(d["order_id"], d["phase"], children, candidates, exclusions, nbbo, d["reason"])


def halt_body(event: str, halt: Halt) -> dict:
    """The `event` record of a halt or resume (read back by replay: a halt lasts across restarts)."""
    return {"event": event, "session": halt.session, "symbol": halt.symbol, "venue": halt.venue}


def halt_from_json(body: dict) -> Halt:
    return Halt(body.get("session"), body.get("symbol"), body.get("venue"))


def reference_from_json(body: str | bytes) -> Reference | None:
    d = json.loads(body)
    return None if d is None else Reference(d["symbol"], Side(d["side"]), Decimal(d["price"]), d["source"])


def _session(record: Record) -> str:
    if record.session is None:
        raise RecoveryError(f"audit record {record.seq} ({record.kind}) names no session")
    return record.session


def _message(body: bytes) -> WireMessage:
    """The recorded message, field values exactly as its live callback read them (even bytes that are not UTF-8)."""
    return WireMessage(body)


def store_record_body(session: str, state: StoreState) -> dict:
    """The `store` record each start writes per session (read back by replay)."""
    return {"session": session, **state.as_dict()}


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


def _sent_identity(record: Record, msg: WireMessage) -> tuple[str, str] | None:
    msg_type = msg.getHeader().getField(codec.MSG_TYPE)
    if msg_type == "8" and msg.isSetField(codec.EXEC_ID):
        return ("exec", msg.getField(codec.EXEC_ID))
    if msg_type == "9":
        return ("cxl_reject", f"{record.session}:{msg.getField(codec.CL_ORD_ID)}")
    if msg_type in ("D", "F"):
        return ("child", msg.getField(codec.CL_ORD_ID))
    return None


def replay(
    engine: OrderEngine,
    records: Iterable[Record],
    upstream_sessions: set[str],
    venue_of_session: dict[str, str],
    default_urgency: Urgency,
    stores: Mapping[str, StoreState] | None = None,
    stored: Mapping[str, Mapping[int, bytes]] | None = None,
) -> Replay:
    """Rebuild `engine` from `records` (seq order); return what was decided but never sent.

    `stores`: each session's message store now, before any session starts. `stored`: MsgSeqNum -> bytes of
    what the persistent stores hold whose records may be missing (a torn entry reads as absent).
    """
    result = Replay()
    stored = stored or {}
    unmatched = {session: set(messages) for session, messages in stored.items()}
    last = (0, 0)  # (seq, ts_ns) of the last record
    decisions: deque[RouteDecision] = deque()
    produced: dict[tuple[str, str], Command] = {}
    on_record = _Sent()

    def recorded_plan(
        order: PlanRequest,
        market: MarketView,
        venues: Mapping[str, VenueInfo],
        policy: RoutingPolicy,
        stats: VenueLearning | None = None,
    ) -> RouteDecision:
        if not decisions:
            raise RecoveryError(f"order {order.order_id} was routed but no decision is on record")
        decision = decisions.popleft()
        if decision.order_id != order.order_id:
            raise RecoveryError(f"recorded decision is for {decision.order_id}, replay routes {order.order_id}")
        return decision

    references: deque[tuple[str | None, Reference | None]] = deque()  # (ClOrdID, reference)

    def recorded_reference(symbol: str, side: Side) -> Reference | None:
        if not references:
            raise RecoveryError(f"an order in {symbol} was checked against a price but none is on record")
        cl_ord_id, reference = references.popleft()
        if reference is not None and reference.symbol != symbol:
            raise RecoveryError(f"recorded reference for {cl_ord_id} is in {reference.symbol}, replay checks {symbol}")
        return reference

    pending: list[Record] = []
    for record in records:
        result.records += 1
        last = (record.seq, record.ts_ns)
        if record.kind == "decision":
            decisions.append(decision_from_json(record.body))
        elif record.kind == "risk_ref":
            references.append((record.cl_ord_id, reference_from_json(record.body)))
        elif record.kind == "fix_out":
            msg = _message(record.body)
            on_record.add(record, msg)
            if (numbers := unmatched.get(_session(record))) and msg.isSetField(codec.MSG_SEQ_NUM):
                msg_seq = int(msg.getField(codec.MSG_SEQ_NUM))
                if msg_seq in numbers and stored[_session(record)].get(msg_seq) == record.body:
                    numbers.discard(msg_seq)
        elif record.kind == "store":
            body = json.loads(record.body)
            on_record.stores[(on_record.runs, body["session"])] = StoreState(
                body["next_sender"], body["next_target"], body["created"], body["persistent"]
            )
        elif record.kind in ("config", "fix_in", "session", "event"):
            if record.kind == "config":
                on_record.runs += 1
            elif record.kind == "fix_in":
                msg = _message(record.body)
                if msg.getField(codec.MSG_TYPE) == "A":  # a peer's Logon may reset both sides' numbers
                    on_record.add(record, msg)
            pending.append(record)

    result.recovered = _unrecorded(unmatched, stored, *last)
    for record in result.recovered:
        on_record.add(record, _message(record.body))

    live_planner, engine.planner = engine.planner, recorded_plan
    live_reference, engine.reference = engine.reference, recorded_reference
    live_limits = engine.risk.limits
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
        engine.reference = live_reference
        engine.risk.reconfigure(live_limits)
        engine.learning.enabled = True
        disconnect_all(engine)  # this process has logged on to no venue yet
        engine.breakers.reset()  # and its breakers start closed
    if decisions:
        raise RecoveryError(f"{len(decisions)} recorded decisions were not reached by the replay")
    if references:
        raise RecoveryError(f"{len(references)} recorded price references were not reached by the replay")
    sent, result.never_sent = on_record.judge(stores or {})
    # Status queries are not resent: every venue logon queries its live children afresh.
    result.unsent = [
        command for key, command in produced.items() if key not in sent and not isinstance(command, QueryChild)
    ]
    result.parents = len(engine.parents)
    result.open_parents = sum(parent.live for parent in engine.parents.values())
    return result


def _unrecorded(
    unmatched: Mapping[str, set[int]], stored: Mapping[str, Mapping[int, bytes]], last_seq: int, last_ts_ns: int
) -> list[Record]:
    """The stored application messages no record holds, as the fix_out records that follow the trail's last,
    in the order they were sent (their SendingTime, then MsgSeqNum)."""
    found = []
    for session, numbers in unmatched.items():
        for msg_seq in numbers:
            raw = stored[session].get(msg_seq)
            if raw is None:
                continue  # a torn entry: not a message that was sent
            msg = _message(raw)
            if msg.getField(codec.MSG_TYPE) in codec.ADMIN_MSG_TYPES:
                continue
            cl_ord_id = msg.getField(codec.CL_ORD_ID) if msg.isSetField(codec.CL_ORD_ID) else None
            sent_at = msg.getField(codec.SENDING_TIME) if msg.isSetField(codec.SENDING_TIME) else ""
            found.append((_utc_ns(sent_at, last_ts_ns), session, msg_seq, raw, cl_ord_id))
    found.sort(key=lambda item: item[:3])
    return [
        Record(last_seq + n, ts_ns, "fix_out", session, None, cl_ord_id, raw, "", "")
        for n, (ts_ns, session, _, raw, cl_ord_id) in enumerate(found, 1)
    ]


def _utc_ns(sending_time: str, otherwise: int) -> int:
    """A FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fraction]) as nanoseconds since the epoch; `otherwise` if it is not
    one."""
    stamp, _, fraction = sending_time.partition(".")
    try:
        moment = datetime.strptime(stamp, "%Y%m%d-%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return otherwise
    if fraction and not fraction.isdigit():
        return otherwise
    return int(moment.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


class _RecordClock:
    """The time of the record being replayed."""

    now = 0

    def now_ns(self) -> int:
        return self.now


def disconnect_all(engine: OrderEngine) -> None:
    for venue in list(engine.venues):
        engine.on_venue_status(venue, False)


def _apply(
    engine: OrderEngine, record: Record, upstream: set[str], venues: dict[str, str], default_urgency: Urgency
) -> list[Command]:
    if record.kind == "config":
        # A start: that run's id prefix, and no venue session is up yet.
        body = json.loads(record.body)
        boot = body.get("boot")
        if boot:
            engine.ids = IdSource(boot)
        engine.risk.reconfigure(recorded_risk_limits(body.get("config") or {}))  # the limits that run had
        engine.closing = None  # a new run takes orders again
        disconnect_all(engine)
        engine.breakers.reset()  # that run started with every breaker closed
        return []
    if record.kind == "session":
        body = json.loads(record.body)
        if body["role"] == "venue":
            return engine.on_venue_status(_session(record), body["event"] == "logon").commands
        return []
    if record.kind == "event":
        body = json.loads(record.body)
        if body["event"] == "cancel_unsent":
            return engine.on_cancel_unsent(body["cl_ord_id"]).commands
        if body["event"] == "timer":
            return engine.on_timer(body["now_ns"]).commands
        if body["event"] == "shutdown":
            return engine.on_shutdown(body["text"]).commands
        if body["event"] == "left_working":
            return engine.on_left_working(body["text"]).commands
        if body["event"] == "oms_disconnect":
            return engine.on_oms_disconnect(_session(record), body["text"]).commands
        if body["event"] in ("halt", "resume"):
            halt = halt_from_json(body)
            return (engine.on_halt if body["event"] == "halt" else engine.on_resume)(halt).commands
        if body["event"] == "child_rejected":
            return engine.on_child_rejected(body["venue"], body["cl_ord_id"], body["text"]).commands
        return []  # notes for readers of the trail (never_sent): no engine input
    msg = _message(record.body)
    msg_type = msg.getHeader().getField(codec.MSG_TYPE)
    try:
        return _apply_message(engine, msg, msg_type, _session(record), upstream, venues, default_urgency)
    except codec.FieldError:
        return []  # refused with a session-level reject when it came in: the engine never saw it


def _apply_message(
    engine: OrderEngine,
    msg: WireMessage,
    msg_type: str,
    session: str,
    upstream: set[str],
    venues: dict[str, str],
    default_urgency: Urgency,
) -> list[Command]:
    if session in upstream:
        if msg_type == "D":
            order = codec.parse_new_order(msg, session, default_urgency)
            if isinstance(order, InvalidOrder):
                return engine.on_invalid_order(order).commands
            return engine.on_new_order(order).commands
        if msg_type == "F":
            return engine.on_cancel(codec.parse_cancel(msg, session)).commands
        if msg_type == "G":
            return engine.on_replace(codec.parse_replace(msg, session)).commands
        if msg_type == "H":
            return engine.on_status_request(codec.parse_status_request(msg, session)).commands
    elif session in venues and msg_type == "8":
        return engine.on_venue_report(codec.parse_venue_report(msg, venues[session])).commands
    return []
