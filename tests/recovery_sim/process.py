"""One lifetime of the gateway process, doing what gateway/service.py does in the order it does it.

Start: read every session's store, replay the trail with what the stores hold (gateway.recovery.replay),
record the start (the messages recovered from the stores, `config`, `store`, `never_sent`), send what
replay found unsent (PossResend=Y). Per incoming message: engine step, commit [whatever is queued +
inbound + decisions], then per command: MsgSeqNum, toApp queues the fix_out record (every store here is
persistent), quickfix stores it, sends it if logged on; counted received after fromApp returns. Queued
records are lost with the process unless a commit (the next step's, or the writer thread's own: `flush`)
took them first, as in gateway.audit.writer. `point(name)` marks each boundary a crash may fall on; a
message stored while its record is still queued is the boundary `stored_unrecorded`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal as D

import quickfix as fix

from gateway import recovery
from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, Record, chain
from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.types import (
    CancelChild,
    CancelReject,
    ExecutionReport,
    InvalidOrder,
    Outbox,
    QueryChild,
    SendChild,
    Urgency,
    VenueKind,
)
from gateway.core.validation import Instrument
from gateway.fix import codec
from tests.recovery_sim.fixlayer import ADMIN, BEGIN_STRING, Endpoint, Store, flagged

OMS = "FIX.4.4:SORGW->OMS"
VENUES = {"LITA": "FIX.4.4:SORGW->LITA", "LITB": "FIX.4.4:SORGW->LITB", "DRKA": "FIX.4.4:SORGW->DRKA"}
BOOKS = {"LITA": ((D("99.99"), 400), (D("100.01"), 300)), "LITB": ((D("99.98"), 500), (D("100.02"), 500))}


class Trail:
    """The audit store: committed records survive every crash."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.child_parent: dict[str, str] = {}  # child ClOrdID -> OrderID, for the checks once the engine forgot it

    def commit(self, batch: list[Entry]) -> None:
        prev = self.records[-1].hash if self.records else GENESIS
        self.records += chain(batch, len(self.records) + 1, prev)


def new_engine(boot: str, clock: ManualClock) -> OrderEngine:
    market = MarketView()
    for venue, (bid, ask) in BOOKS.items():
        market.update(BookSnapshot(venue, "AAPL", (Level(*bid),), (Level(*ask),), 1, 0))
    venues = {
        v: VenueInfo(
            v,
            VenueKind.DARK if v.startswith("DRK") else VenueKind.LIT,
            D("-0.002"),
            D("0.003"),
            300,
            False,
            resends=True,
        )
        for v in VENUES
    }
    return OrderEngine({"AAPL": Instrument("AAPL", D("0.01"))}, venues, market, IdSource(boot), clock)


class Gateway:
    """The gateway process between a start and its crash (or the end of the run)."""

    def __init__(
        self,
        boot: str,
        trail: Trail,
        stores: dict[str, Store],
        clock: ManualClock,
        point: Callable[[str], None],
        violation: Callable[[str], None],
    ) -> None:
        self.boot, self.trail, self.clock, self.point = boot, trail, clock, point
        self.queued: list[Entry] = []  # submitted to the audit writer, not committed yet
        self.engine = new_engine(boot, clock)
        self.control: deque[Callable[[], None]] = deque()  # session events, run later as the control thread does
        self._resend: set[str] = set()
        self.sessions = {
            OMS: Endpoint(
                OMS,
                stores[OMS],
                self._from_oms,
                True,
                violation,
                self._tapper(OMS),
                self._tap_in(OMS),
                self._fix_point,
                self._oms_status(True),
                self._oms_status(False),
            )
        }
        for venue, key in VENUES.items():
            self.sessions[key] = Endpoint(
                key,
                stores[key],
                self._from_venue(venue),
                False,
                violation,
                self._tapper(key),
                self._tap_in(key),
                self._fix_point,
                self._venue_status(venue, True),
                self._venue_status(venue, False),
            )

    def start(self) -> None:
        stores = {key: endpoint.store.state() for key, endpoint in self.sessions.items()}
        stored = {
            key: {seq: text.encode() for seq, text in endpoint.store.messages.items()}
            for key, endpoint in self.sessions.items()
        }
        result = recovery.replay(
            self.engine,
            list(self.trail.records),
            {OMS},
            {key: venue for venue, key in VENUES.items()},
            Urgency.MEDIUM,
            stores,
            stored,
        )
        now = self.clock.now_ns()
        start = [Entry("fix_out", r.body, r.session, None, r.cl_ord_id, r.ts_ns) for r in result.recovered]
        start += [Entry("config", entries.to_json({"boot": self.boot}), ts_ns=now)]
        start += [
            Entry("store", entries.to_json(recovery.store_record_body(key, state)), key, ts_ns=now)
            for key, state in stores.items()
        ]
        start += [
            Entry(
                "event",
                entries.to_json({"event": "never_sent", "record": r.seq, "session": r.session}),
                r.session,
                r.order_id,
                r.cl_ord_id,
                now,
            )
            for r in result.never_sent
        ]
        self.commit(start)
        if result.unsent:
            self._resend.update(c.exec_id if isinstance(c, ExecutionReport) else c.cl_ord_id for c in result.unsent)
            self.step(lambda: Outbox(commands=result.unsent))

    # --- FIX callbacks --------------------------------------------------------------------

    def _tapper(self, session: str) -> Callable[[fix.Message], None]:
        def tap(msg: fix.Message) -> None:
            msg_type = msg.getHeader().getField(codec.MSG_TYPE)
            if self._resend:
                tag = codec.EXEC_ID if msg_type == "8" else codec.CL_ORD_ID
                if msg.isSetField(tag) and msg.getField(tag) in self._resend:
                    self._resend.discard(msg.getField(tag))
                    msg.getHeader().setField(codec.POSS_RESEND, "Y")
            self.queued.append(self._entry("out", session, msg))
            if msg_type not in ADMIN:
                self.point("recorded_resend" if flagged(msg, codec.POSS_DUP_FLAG) else "recorded_out")

        return tap

    def _tap_in(self, session: str) -> Callable[[fix.Message], None]:
        return lambda msg: self.queued.append(self._entry("in", session, msg))

    def _fix_point(self, name: str) -> None:
        self.point("stored_unrecorded" if name == "stored" and self.queued else name)

    def commit(self, batch: list[Entry]) -> None:
        """A commit takes whatever is queued first, in the order it was submitted."""
        self.trail.commit(self.queued + batch)
        self.queued = []

    def flush(self) -> None:
        """The audit writer thread commits what nobody waits for."""
        self.commit([])

    def _entry(self, direction: str, session: str, msg: fix.Message) -> Entry:
        """The one place a message becomes an audit body (recovery.replay reads it back)."""
        cl = msg.getField(codec.CL_ORD_ID) if msg.isSetField(codec.CL_ORD_ID) else None
        return entries.fix_message(direction, session, msg.toString(), self.clock.now_ns(), None, cl)

    def _from_oms(self, msg: fix.Message) -> None:
        self.point("received")  # mid-step: nothing of it on record
        msg_type = msg.getHeader().getField(codec.MSG_TYPE)
        if msg_type == "D":
            order = codec.parse_new_order(msg, OMS, Urgency.MEDIUM)
            step = self.engine.on_invalid_order if isinstance(order, InvalidOrder) else self.engine.on_new_order
        elif msg_type == "F":
            order, step = codec.parse_cancel(msg, OMS), self.engine.on_cancel
        else:
            order, step = codec.parse_replace(msg, OMS), self.engine.on_replace
        self.step(lambda: step(order), self._entry("in", OMS, msg))

    def _from_venue(self, venue: str) -> Callable[[fix.Message], None]:
        def on_app(msg: fix.Message) -> None:
            self.point("received")
            if msg.getHeader().getField(codec.MSG_TYPE) == "9":  # the child's own final report follows
                self.commit([self._entry("in", VENUES[venue], msg)])
                return
            report = codec.parse_venue_report(msg, venue)
            self.step(lambda: self.engine.on_venue_report(report), self._entry("in", VENUES[venue], msg))

        return on_app

    def _venue_status(self, venue: str, up: bool) -> Callable[[], None]:
        record = Entry("session", entries.to_json({"role": "venue", "event": "logon" if up else "logout"}), venue)

        def queue() -> None:
            self.control.append(lambda: self.step(lambda: self.engine.on_venue_status(venue, up), record))

        return queue

    def _oms_status(self, up: bool) -> Callable[[], None]:
        body = entries.to_json({"role": "upstream", "event": "logon" if up else "logout"})
        return lambda: self.commit([Entry("session", body, OMS, ts_ns=self.clock.now_ns())])

    def tick(self, advance_ns: int) -> None:
        """The timer thread: time passes; a tick that changes nothing leaves no trace."""
        self.clock.advance(advance_ns)
        now = self.clock.now_ns()
        tick = Entry("event", entries.to_json({"event": "timer", "now_ns": now}), ts_ns=now)
        self.step(lambda: self.engine.on_timer(now), tick, quiet=True)

    # --- carrying out engine steps ----------------------------------------------------------

    def step(self, step: Callable[[], Outbox], inbound: Entry | None = None, quiet: bool = False) -> None:
        out = step()
        if quiet and not out.commands and not out.decisions:
            return
        now = self.clock.now_ns()
        head = [] if inbound is None else [inbound]
        self.commit(head + entries.for_outbox(out, now, {}))
        if out.commands:
            self.point("step_committed")
        for command in out.commands:
            self._carry_out(command)

    def _carry_out(self, command) -> None:
        # A persistent store takes a message whether or not the session is logged on: no send fails here.
        if isinstance(command, ExecutionReport):
            self.sessions[OMS].send(codec.execution_report(command, BEGIN_STRING))
        elif isinstance(command, CancelReject):
            self.sessions[OMS].send(codec.cancel_reject(command, BEGIN_STRING))
        elif isinstance(command, SendChild):
            self.trail.child_parent[command.cl_ord_id] = command.parent_order_id
            self.sessions[VENUES[command.venue]].send(codec.new_order_single(command, BEGIN_STRING))
        elif isinstance(command, CancelChild):
            self.sessions[VENUES[command.venue]].send(codec.order_cancel_request(command, BEGIN_STRING))
        elif isinstance(command, QueryChild):
            self.sessions[VENUES[command.venue]].send(codec.order_status_request(command, BEGIN_STRING))
