"""The running gateway: the order engine under one lock, with the upstream and venue FIX sessions around it.

quickfix calls back on its own threads (one per OMS connection, one for the venue initiator).
Each callback copies its message into a plain event and, holding the engine lock, runs one
engine step and carries out what it produced before releasing the lock: state has one writer at
a time and messages leave in the order the engine decided them. Child orders go to the venues at
once (the initiator's sockets never block a send); reports go into their OMS session's send
queue (gateway.fix.outbound), since a send to an OMS blocks until it reads, and its sender thread
is woken once the step has released the lock. Session up/down
events arrive while quickfix holds a session lock, so they are handed to a control thread
instead of taking the engine lock there.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import structlog

from gateway import faults, recovery
from gateway.admin import AdminEndpoint, scopes
from gateway.analytics.markouts import touch_without
from gateway.audit import entries
from gateway.audit.records import Entry, Record
from gateway.audit.stores import open_store
from gateway.audit.writer import AuditWriter
from gateway.config import GatewayConfig, VenueConfig
from gateway.core.book_record import BookLedger
from gateway.core.breaker import CircuitChange, CircuitState
from gateway.core.clock import Clock, WallClock
from gateway.core.engine import IdSource, OrderEngine, Routine, StateChange
from gateway.core.market import BookSnapshot, MarketView, Trade, VenueInfo
from gateway.core.risk import ORDER_KEYS, Halt, PriceReference
from gateway.core.routing import RouteDecision
from gateway.core.routing.venue_planner import VenuePlanner, VenuePolicy
from gateway.core.schedule import in_schedule
from gateway.core.types import (
    TERMINAL,
    CancelChild,
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    InvalidChange,
    InvalidOrder,
    NewOrder,
    OrdRejReason,
    OrdStatus,
    Outbox,
    QueryChild,
    ReplaceRequest,
    SendChild,
    StatusRequest,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument
from gateway.endpoint import Endpoint
from gateway.fix import codec
from gateway.fix.connect_watch import ConnectWatch
from gateway.fix.downstream import VenueApplication
from gateway.fix.filestore import StoredMessages
from gateway.fix.logon import Credentials
from gateway.fix.outbound import Limits, Outbound
from gateway.fix.pending import PendingWatch
from gateway.fix.sessions import (
    SessionSpec,
    StoreState,
    make_engine,
    scheduled,
    session_id,
    session_key,
    shutdown,
    store_prefix,
    store_state,
    uses_file_store,
)
from gateway.fix.upstream import UpstreamApplication
from gateway.fix.wire import WireMessage
from gateway.listen import start_acceptor
from gateway.metrics import Metrics, VenueQuality
from gateway.observer import Arrival, Observer
from gateway.policy import breaker_policy, learning_config, risk_limits, routing_policy
from gateway.tca.marks import MarkTimer

log = structlog.get_logger("gateway")

SHUTDOWN_TEXT = "gateway shutting down"
DISCONNECT_TEXT = "canceled: OMS session disconnected (cancel_on_disconnect)"
SESSION_LIMITS = ("max_open_qty", "max_open_notional", "max_orders_per_s")
ROUTINE_REPORTS = frozenset({ExecType.NEW, ExecType.TRADE})  # logged at debug: the parent's outcome is at info
LISTED_AT_MOST = 100  # orders named in one log line; the audit trail names every one
DROPPED_LOGGED = 100  # unknown books from the bus logged (the first of each); past that only counted


def boot_id(clock: Clock) -> str:
    """A prefix for ids that differs between restarts: base-36 milliseconds since the epoch, then two random
    base-36 digits, so that two starts in one millisecond (or after the clock was set back) differ as well."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for value, width in ((clock.now_ns() // 1_000_000, 0), (secrets.randbelow(36 * 36), 2)):
        part = ""
        while value or len(part) < width:
            value, rem = divmod(value, 36)
            part = digits[rem] + part
        out += part
    return out


def venue_infos(cfg: GatewayConfig) -> dict[str, VenueInfo]:
    return {
        v.name: VenueInfo(
            v.name,
            v.kind,
            v.maker_fee,
            v.taker_fee,
            v.latency_us,
            False,
            v.min_qty,
            v.protected,
            resends=v.keeps_sequence_numbers(cfg.fix),
        )
        for v in cfg.venues
    }


def venue_session(venue: VenueConfig) -> SessionSpec:
    """The venue's FIX session as configured: version, CompIDs, heartbeat, schedule, sequence policy, dictionary."""
    return SessionSpec(
        venue.begin_string,
        venue.sender_comp_id,
        venue.target,
        venue.host,
        venue.port,
        heartbeat_interval=venue.heartbeat_interval,
        **scheduled(venue.schedule, venue.logon_timeout, venue.quickfix),
        reset_on_logon=None if venue.sequence_reset is None else venue.sequence_reset == "logon",
        dictionary=venue.data_dictionary,
    )


TIMER_STEP_AT_LEAST_NS = 1_000_000_000  # the engine sees time pass at least this often, deadline or none


class Gateway:
    def __init__(self, cfg: GatewayConfig, market: MarketView, work_dir: Path, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.observer = Observer(self.metrics, [v.name for v in cfg.venues if v.kind is VenueKind.DARK])
        self.audit = AuditWriter(
            open_store(cfg.audit.url, cfg.audit.table),
            metrics=self.metrics,
            key=cfg.audit.key(os.environ),
            checkpoint_path=cfg.audit.checkpoint_path,
            checkpoint_interval_s=cfg.audit.checkpoint_interval_s,
        )
        self.clock = clock or WallClock()
        self.market = market
        self._sending = threading.local()  # the parent OrderID of the message being sent, for the tap
        instruments = {s.symbol: Instrument(s.symbol, s.tick, s.lot) for s in cfg.symbols}
        self.boot = boot_id(self.clock)
        self._refusals = itertools.count(1)  # ExecIDs of audit-outage rejects: outside the engine's id sequence
        self.engine = OrderEngine(
            instruments,
            venue_infos(cfg),
            market,
            IdSource(self.boot),
            self.clock,
            policy=routing_policy(cfg.routing),
            max_rounds=cfg.routing.max_sweeps,
            max_venue_rejects=cfg.routing.max_venue_rejects,
            learning=learning_config(cfg.routing),
            retain_finished_ns=cfg.routing.retain_finished_ms * 1_000_000,
            final_states_kept=cfg.routing.final_states_kept,
            venue_down_timeout_ns=cfg.routing.venue_down_timeout_ms * 1_000_000,
            risk=risk_limits(cfg.risk, cfg.symbols, cfg.upstream.sessions),
            breaker=breaker_policy(cfg.routing),
        )
        self.engine.planner = _Timed(
            VenuePlanner(
                {v.name: v.rules() for v in cfg.venues},
                instruments,
                VenuePolicy(cfg.routing.market_protection_bps, cfg.routing.unquoted_remainders),
            ),
            self.metrics.routing_latency.observe,
        )
        self._books = BookLedger(cfg.audit.book_levels)  # what the trail already holds of each venue's book
        self._lock = threading.Lock()
        self._control: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._control_thread = threading.Thread(target=self._run_control, name="sorgw-control", daemon=True)
        self._stopping = threading.Event()
        self._timer_thread = threading.Thread(target=self._run_timer, name="sorgw-timer", daemon=True)
        self._last_tick = time.monotonic()
        self._listening = False
        self.sessions_up: dict[str, bool] = {}
        self._feeds = [v.name for v in cfg.venues if v.kind is VenueKind.LIT and v.market_data]
        self._stale: set[str] = set()
        self._venue_names = frozenset(v.name for v in cfg.venues)
        self._symbol_names = frozenset(s.symbol for s in cfg.symbols)
        self._dropped: set[tuple[str, str]] = set()  # books dropped from the bus, each logged once
        self.endpoint: Endpoint | None = None
        self.admin: AdminEndpoint | None = None
        self._admin_token = cfg.admin.token(os.environ) if cfg.admin.enabled else None  # refused at once if unset

        upstream_specs = [
            SessionSpec(
                s.begin_string,
                s.sender_comp_id,
                s.target_comp_id,
                cfg.upstream.host,
                cfg.upstream.port,
                **scheduled(s.schedule, s.logon_timeout, s.quickfix),
            )
            for s in cfg.upstream.sessions
        ]
        venue_specs = {v.name: venue_session(v) for v in cfg.venues}
        self._upstream_keys = {session_key(session_id(spec)) for spec in upstream_specs}
        self._oms_comp_ids = {session_key(session_id(spec)): spec.target for spec in upstream_specs}
        self.upstream = UpstreamApplication(
            self,
            cfg.routing.default_urgency,
            {
                session_key(session_id(spec)): Credentials(*pair)
                for spec, s in zip(upstream_specs, cfg.upstream.sessions)
                if (pair := s.credentials(os.environ))
            },
        )
        self.outbound = Outbound(
            sorted(self._upstream_keys),
            self.upstream.send,
            self.upstream.disconnect,
            cfg.upstream.port,
            Limits(cfg.upstream.max_send_queue, cfg.upstream.send_timeout_ms / 1000),
            self.observer.slow_consumer,
        )
        self.upstream.connection_thread = self.outbound.reader_is_current_thread
        self.pending_watch = PendingWatch(
            cfg.upstream.port,
            cfg.fix.logon_timeout_s,
            cfg.upstream.max_pending_connections,
            self._pending_closed,
            self.metrics.pending.set,
        )
        self.downstream = VenueApplication(
            self,
            {session_key(session_id(spec)): name for name, spec in venue_specs.items()},
            {
                session_key(session_id(venue_specs[v.name])): (v.username, v.password(os.environ))
                for v in cfg.venues
                if v.username is not None
            },
        )
        self.upstream.tap = self.downstream.tap = self._tap
        self.upstream.amend = self.downstream.amend = self._mark_resent
        self.upstream.count = lambda direction, key, msg_type: self.observer.message(
            "upstream", key, direction, msg_type
        )
        self.downstream.count = lambda direction, key, msg_type: self.observer.message(
            "venue", self.downstream.venues.get(key, key), direction, msg_type
        )
        self.observer.declare(sorted(self._upstream_keys), venue_specs)
        windows = [
            (key, "upstream", s.schedule)
            for key, s in zip((session_key(session_id(spec)) for spec in upstream_specs), cfg.upstream.sessions)
        ]
        windows += [(v.name, "venue", v.schedule) for v in cfg.venues]
        self._windows = {
            (session, role): schedule.window() if schedule else None for session, role, schedule in windows
        }
        self.metrics.sessions_in_schedule = self._in_schedule
        self.metrics.quote_ages = self._quote_ages
        self.metrics.venue_quality = lambda: self.inspect(_venue_quality)
        self.metrics.audit_queue_depth = lambda: self.audit.depth
        self.metrics.send_queues = self.outbound.depths
        self.metrics.children_in_doubt = lambda: self.inspect(_in_doubt)
        self.metrics.halts = lambda: self.inspect(lambda engine: [str(h) for h in engine.halts])
        self.metrics.open_exposure = lambda: self.inspect(
            lambda engine: {key: _floats(engine.exposure(key)) for key in self._upstream_keys}
        )
        self.metrics.risk_limits = lambda: self.inspect(
            lambda engine: _limits_in_force(engine, sorted(self._upstream_keys), [s.symbol for s in cfg.symbols])
        )
        self._cancel_on_disconnect = {
            session_key(session_id(spec))
            for spec, s in zip(upstream_specs, cfg.upstream.sessions)
            if s.cancel_on_disconnect
        }
        self._acceptor = make_engine("acceptor", self.upstream, upstream_specs, cfg.fix, work_dir)
        # Held as long as the initiator: quickfix keeps only a pointer to the log factory the watch holds.
        self._connect_watch = ConnectWatch(
            self.downstream.venues, self.observer.venue_connect_failed, cfg.fix.connect_failure_log_interval_s
        )
        self._initiator = make_engine(
            "initiator", self.downstream, list(venue_specs.values()), cfg.fix, work_dir, self._connect_watch
        )
        # Read before any session starts: what each store kept tells recovery what was really sent.
        self.stores: dict[str, StoreState] = {}
        self._store_prefixes: dict[str, Path] = {}  # persistent stores recovery reads: their taps do not wait
        for specs in (upstream_specs, list(venue_specs.values())):
            file_store = uses_file_store(cfg.fix, specs)
            for spec in specs:
                sid = session_id(spec)
                key = session_key(sid)
                self.stores[key] = store_state(sid, cfg.fix, file_store)
                if self.stores[key].persistent and cfg.fix.store == "file":
                    self._store_prefixes[key] = store_prefix(sid, cfg.fix)
        self._out_ticket = 0  # the last out-record queued (kept only while a crash point is armed)
        self._resend: set[str] = set()  # ExecIDs and ClOrdIDs recovery sends again: they go out PossResend=Y
        self._held: dict[str, list] = {}  # venue -> child orders and cancels recovery sends once it logs on
        self._marks = MarkTimer(cfg.tca.markout_horizons_ms, self._mark) if cfg.tca.markout_horizons_ms else None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics, /healthz and /readyz are served (None with metrics.enabled off)."""
        return self.endpoint.url if self.endpoint is not None else None

    def start(self) -> None:
        self.audit.start()
        if self.cfg.metrics.enabled:
            self.endpoint = Endpoint(
                self.cfg.metrics.host,
                self.cfg.metrics.port,
                self.metrics.registry,
                self.health_problems,
                self.readiness_problems,
            )
            self.endpoint.start()
        unsent, never_sent, recovered = self._recover() if self.cfg.fix.store == "file" else ([], [], [])
        if self._admin_token is not None:  # after recovery: the halts it lists are those in force
            self.admin = AdminEndpoint(
                self.cfg.admin.host,
                self.cfg.admin.port,
                self._admin_token,
                scopes(self._oms_comp_ids, [s.symbol for s in self.cfg.symbols], [v.name for v in self.cfg.venues]),
                self.halt,
                lambda: self.inspect(lambda engine: list(engine.halts)),
            )
            self.admin.start()
        self.observer.open_orders(*self.inspect(_open_orders))
        if self.cfg.fix.store == "memory" and self.audit.records_at_start:
            log.warning(
                "gateway.not_recovered",
                records=self.audit.records_at_start,
                detail="fix.store is memory: orders of earlier runs are not rebuilt (use fix.store: file)",
            )
        config_json = entries.to_json(self.cfg.model_dump(mode="json"))
        now = self.clock.now_ns()
        # Sent by the last run, before the `config` that opens this one.
        taken = [self._recovered_entry(record) for record in recovered]
        start = taken + [
            Entry(
                "event",
                entries.to_json(
                    {
                        "event": "recovered_from_store",
                        "record": record.seq,
                        "session": record.session,
                        "msg_seq_num": int(WireMessage(record.body).getField(codec.MSG_SEQ_NUM)),
                        "detail": "quickfix stored and sent it, the process stopped before its record was "
                        "committed: recovered from the session's store",
                    }
                ),
                record.session,
                entry.order_id,
                record.cl_ord_id,
                now,
            )
            for record, entry in zip(recovered, taken)
        ]
        start += [
            Entry(
                "config",
                entries.to_json(
                    {
                        "sha256": hashlib.sha256(config_json).hexdigest(),
                        "boot": self.boot,
                        "config": json.loads(config_json),
                    }
                ),
                ts_ns=now,
            )
        ]
        start += [
            Entry("store", entries.to_json(recovery.store_record_body(key, state)), key, ts_ns=now)
            for key, state in self.stores.items()
        ]
        start += [
            Entry(
                "event",
                entries.to_json(
                    {
                        "event": "never_sent",
                        "record": record.seq,
                        "session": record.session,
                        "detail": "recorded, but quickfix never stored it: its MsgSeqNum "
                        "went to other content; sent again",
                    }
                ),
                record.session,
                record.order_id,
                record.cl_ord_id,
                now,
            )
            for record in never_sent
        ]
        self.audit.commit(start)
        # Orders and cancels for a venue wait for its logon: a venue session that is down refuses them.
        self._resend.update(_resent_id(command) for command in unsent)
        to_oms = [command for command in unsent if not isinstance(command, SendChild | CancelChild)]
        for command in unsent:
            if isinstance(command, SendChild | CancelChild):
                self._held.setdefault(command.venue, []).append(command)
        self._control_thread.start()
        self._timer_thread.start()
        if self._marks is not None:
            self._marks.start()
        start_acceptor(self._acceptor.start, {self.cfg.upstream.port: ("upstream.port", self.cfg.upstream.host)})
        self.pending_watch.start()
        self._listening = True
        self._initiator.start()
        if to_oms:
            # The OMS sessions persist what is sent before logon and deliver it on resend.
            self._step(lambda _: Outbox(commands=to_oms), None)
        log.info("gateway.started", upstream_port=self.cfg.upstream.port, venues=[v.name for v in self.cfg.venues])

    def _recover(self) -> tuple[list, list, list]:
        """Rebuild open orders from the audit trail of earlier runs (see gateway.recovery); return what to send
        again, the records of messages that were never sent, and those of messages stored but not on record."""
        reader = open_store(self.cfg.audit.url, self.cfg.audit.table)
        reader.open()
        stored = {
            key: StoredMessages(prefix, self.stores[key].next_sender) for key, prefix in self._store_prefixes.items()
        }
        try:
            result = recovery.replay(
                self.engine,
                reader.records(),
                set(self.upstream.sessions) | self._upstream_keys,
                self.downstream.venues,
                self.cfg.routing.default_urgency,
                self.stores,
                stored,
            )
        finally:
            reader.close()
            for messages in stored.values():
                messages.close()
        for record in result.recovered:
            log.warning(
                "recovery.recovered_from_store",
                session=record.session,
                cl_ord_id=record.cl_ord_id,
                detail="stored and sent by quickfix, its record lost with the process: taken from the store",
            )
        for record in result.never_sent:
            log.warning(
                "recovery.never_sent",
                record=record.seq,
                session=record.session,
                cl_ord_id=record.cl_ord_id,
                detail="on record but never stored by quickfix: sent again",
            )
        if result.records:
            log.warning(
                "gateway.recovered",
                records=result.records,
                parents=result.parents,
                open_parents=result.open_parents,
                resending=len(result.unsent),
            )
        return result.unsent, result.never_sent, result.recovered

    def _recovered_entry(self, record: Record) -> Entry:
        """The fix_out record of a message recovered from its store, with the order it belongs to."""
        msg = WireMessage(record.body)
        order_id = msg.getField(codec.ORDER_ID) if msg.isSetField(codec.ORDER_ID) else None
        if order_id is None and record.cl_ord_id is not None:  # a child order or cancel: the engine knows its parent
            child = msg.getField(codec.ORIG_CL_ORD_ID) if msg.isSetField(codec.ORIG_CL_ORD_ID) else record.cl_ord_id
            order_id = self.engine.parent_of_child(child)
        return Entry("fix_out", record.body, record.session, order_id, record.cl_ord_id, record.ts_ns)

    def stop(self) -> None:
        """Settle working orders (shutdown.working_orders), log out of every session and stop both engines."""
        if self.admin is not None:
            self.admin.stop()
        try:
            self._settle_working_orders()
        except Exception:
            log.exception("shutdown.settle_failed")
        self._stopping.set()  # no more timer steps: venues logging out now are not outages to report
        self.pending_watch.stop()
        shutdown(self._initiator, self.downstream.sessions.values())
        self.outbound.close(timeout=2)
        shutdown(self._acceptor, self.upstream.sessions.values())
        # quickfix keeps sessions in a process-wide registry keyed by SessionID. Dropping the
        # engines now (they form a reference cycle with their applications) destroys their
        # sessions here, rather than at a later garbage collection that would unregister a
        # newer engine's session of the same SessionID.
        self._initiator = self._acceptor = None
        self._listening = False
        self._stopping.set()
        self._control.put(None)
        self._control_thread.join(timeout=5)
        if self._timer_thread.is_alive():
            self._timer_thread.join(timeout=5)
        if self._marks is not None:
            self._marks.stop()
        self.audit.stop()
        if self.endpoint is not None:
            self.endpoint.stop()
        log.info("gateway.stopped")

    def _settle_working_orders(self) -> None:
        """With `cancel`, cancel every live child and wait (up to shutdown.cancel_timeout_ms) for the venues to
        answer; whatever still works at a venue then is logged loudly and reported to its OMS."""
        settings = self.cfg.shutdown
        open_parents, _ = self.inspect(_open_orders)
        if settings.working_orders == "cancel" and open_parents:
            log.warning("shutdown.canceling", parents=open_parents, timeout_ms=settings.cancel_timeout_ms)
            self._step(lambda _: self.engine.on_shutdown(SHUTDOWN_TEXT), None, self._event("shutdown", SHUTDOWN_TEXT))
            deadline = time.monotonic() + settings.cancel_timeout_ms / 1000
            while self.inspect(OrderEngine.working_children) and time.monotonic() < deadline:
                time.sleep(0.01)
        working = self.inspect(
            lambda e: [(c.parent_id, c.cl_ord_id, c.venue, c.leaves_qty) for c in e.working_children()]
        )
        if not working:
            if open_parents:
                log.info("shutdown.nothing_left_working")
            return
        listed = [f"{order_id} child {child} at {venue}: {qty}" for order_id, child, venue, qty in working]
        log.error(
            "shutdown.orders_left_working",
            mode=settings.working_orders,
            children=len(working),
            orders=listed[:LISTED_AT_MOST],
            more=max(len(listed) - LISTED_AT_MOST, 0) or None,
        )
        text = SHUTDOWN_TEXT if settings.working_orders == "leave" else f"{SHUTDOWN_TEXT}, cancels unanswered"
        self._step(lambda _: self.engine.on_left_working(text), None, self._event("left_working", text))

    def _event(self, event: str, text: str, session: str | None = None) -> Entry:
        """An event recovery replays (see gateway.recovery)."""
        return Entry("event", entries.to_json({"event": event, "text": text}), session, ts_ns=self.clock.now_ns())

    def halt(self, halt: Halt, resume: bool = False) -> None:
        """Put a kill switch in force (or lift it); on record, so it lasts across restarts until resumed."""
        event = "resume" if resume else "halt"
        log.warning(f"risk.{event}", scope=str(halt))
        entry = Entry(
            "event", entries.to_json(recovery.halt_body(event, halt)), halt.session, ts_ns=self.clock.now_ns()
        )
        self._step(self.engine.on_resume if resume else self.engine.on_halt, halt, entry)

    def wait_for_venues(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(info.connected for info in self.engine.venues.values()):
                return True
            time.sleep(0.02)
        return False

    def inspect(self, read: Callable[[OrderEngine], object]):
        """Run `read` against the engine while holding its lock (for tools, metrics and tests)."""
        with self._lock:
            return read(self.engine)

    def health_problems(self) -> dict[str, str]:
        """What keeps the process from being healthy: its engine or its threads not responding.

        Steps wait for the audit store, so while it refuses commits a blocked engine is that outage (which
        /readyz reports), not a hung process: restarting would not help.
        """
        problems = {}
        if not self._timer_thread.is_alive():
            problems["timer"] = "the engine timer thread is not running"
        if not self._control_thread.is_alive():
            problems["control"] = "the session control thread is not running"
        if not self.audit.writable:
            return problems
        if self._lock.acquire(timeout=2):
            self._lock.release()
        else:
            problems["engine"] = "the engine lock has been held for over 2 s"
        stalled = time.monotonic() - self._last_tick
        if stalled > max(2.0, 40 * self.cfg.routing.timer_ms / 1000):
            problems["timer"] = f"the engine timer last ran {stalled:.1f} s ago"
        return problems

    def readiness_problems(self) -> dict[str, str]:
        """What keeps the gateway from taking orders: the acceptor, every venue session, the audit store."""
        problems = {}
        if not self._listening:
            problems["upstream"] = f"the upstream acceptor is not listening on port {self.cfg.upstream.port}"
        if not any(up for key, up in self.sessions_up.items() if key.startswith("venue:")):
            problems["venues"] = "no venue session is logged on"
        if not self.audit.writable:
            problems["audit"] = "the audit store is not accepting commits"
        return problems

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """A venue's book from the market-data bus (on the bus thread); books of venues or symbols not configured
        are dropped, so no name published on the bus becomes a book or a metrics label."""
        if snapshot.venue not in self._venue_names:
            self._drop(snapshot, "unknown_venue")
        elif snapshot.symbol not in self._symbol_names:
            self._drop(snapshot, "unknown_symbol")
        else:
            self.observer.snapshot(snapshot.venue)
            self.market.update(snapshot)

    def on_trade(self, trade: Trade) -> None:
        """A venue's trade from the bus: on the trail for TCA (market VWAP, participation); unknown names dropped."""
        if not self.cfg.tca.record_trades:
            return
        if trade.venue not in self._venue_names:
            self._drop(trade, "unknown_venue")
        elif trade.symbol not in self._symbol_names:
            self._drop(trade, "unknown_symbol")
        else:
            self.audit.record(
                entries.trade(
                    trade.venue, trade.symbol, trade.qty, trade.price, trade.seq, trade.ts_ns, self.clock.now_ns()
                )
            )

    def _mark(self, due: list[tuple[tuple[str, str], int]]) -> None:
        """Markout horizons of fills (symbol, upstream ExecID) have come: the NBBO and every lit venue's touch now
        without our own resting children (what their prices did to the book is our doing, not the market's), on
        the trail. The market is read and recorded once per symbol for every mark due."""
        marked: dict[str, list[tuple[str, int]]] = {}
        for (symbol, exec_id), horizon_ms in due:
            marked.setdefault(symbol, []).append((exec_id, horizon_ms))
        venues = self.engine.venues
        books = {
            symbol: {
                name: book
                for name, info in venues.items()
                if info.kind is VenueKind.LIT and (book := self.market.book(name, symbol)) is not None
            }
            for symbol in marked
        }
        wanted = [symbol for symbol in marked if books[symbol]]
        ours = self.inspect(lambda engine: {symbol: _resting(engine, symbol) for symbol in wanted}) if wanted else {}
        now = self.clock.now_ns()
        records = []
        for symbol, marks in marked.items():
            touches = {
                name: tuple(
                    touch_without(((level.price, level.qty) for level in levels), ours[symbol].get((name, is_buy), {}))
                    for is_buy, levels in ((True, book.bids), (False, book.asks))
                )
                for name, book in books[symbol].items()
            }
            records.append(entries.marks(symbol, marks, self.market.nbbo(symbol, venues), touches, now))
        # No hurry: it goes with the next step's commit, or the writer's next look.
        self.audit.submit(records, wake=False)

    def _drop(self, snapshot: BookSnapshot | Trade, reason: str) -> None:
        self.observer.snapshot_dropped(reason)
        book = (snapshot.venue, snapshot.symbol)
        if book not in self._dropped and len(self._dropped) < DROPPED_LOGGED:
            self._dropped.add(book)
            log.warning("market_data.dropped", reason=reason, venue=snapshot.venue, symbol=snapshot.symbol)

    # --- events from the FIX threads --------------------------------------------------------

    def new_order(self, order: NewOrder | InvalidOrder, raw: str) -> None:
        arrival = Arrival(time.perf_counter_ns(), "order")
        self.observer.parent_received(order.session)
        if self._refused_unrecorded(order, raw):
            return
        inbound = self._inbound(order.session, raw, order.cl_ord_id, None)
        # Checked at its record's time, as a replay checks it.
        step = (
            self.engine.on_invalid_order
            if isinstance(order, InvalidOrder)
            else lambda o: self.engine.on_new_order(o, inbound.ts_ns)
        )
        self._step(step, order, inbound, arrival=arrival)

    def cancel(self, request: CancelRequest | InvalidChange, raw: str) -> None:
        if self._refused_unrecorded(request, raw):
            return
        self._step(self.engine.on_cancel, request, self._inbound_change(request, raw))

    def replace(self, request: ReplaceRequest | InvalidChange, raw: str) -> None:
        if self._refused_unrecorded(request, raw):
            return
        inbound = self._inbound_change(request, raw)
        self._step(lambda r: self.engine.on_replace(r, inbound.ts_ns), request, inbound)

    def status(self, request: StatusRequest, raw: str) -> None:
        order_id = self.engine.order_id_for(request.session, request.cl_ord_id)
        self._step(
            self.engine.on_status_request, request, self._inbound(request.session, raw, request.cl_ord_id, order_id)
        )

    def venue_report(self, report: VenueReport, raw: str) -> None:
        arrival = Arrival(time.perf_counter_ns(), "venue", report.liquidity)
        self._step(
            self.engine.on_venue_report,
            report,
            self._inbound_venue(report.venue, report.cl_ord_id, raw),
            arrival=arrival,
            child=report.cl_ord_id,
        )

    def child_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None:
        log.warning("venue.child_rejected", venue=venue, child=cl_ord_id, text=text)
        self.audit.record(self._inbound_venue(venue, cl_ord_id, raw))
        self._step(
            lambda _: self.engine.on_child_rejected(venue, cl_ord_id, text),
            None,
            self._child_rejected_entry(venue, cl_ord_id, text),
            child=cl_ord_id,
        )

    def child_cancel_rejected(self, venue: str, cl_ord_id: str, text: str, raw: str) -> None:
        # The child's own final report (fill or cancel) follows; nothing changes until then.
        log.info("venue.cancel_rejected", venue=venue, child=cl_ord_id, text=text)
        self.audit.record(self._inbound_venue(venue, cl_ord_id, raw))

    def session_status(self, role: str, session: str, up: bool) -> None:
        key = f"{role}:{session}"
        if self.sessions_up.get(key, False) == up:
            return  # quickfix reports a logout for every failed connection attempt too
        self.sessions_up[key] = up
        self.observer.session(role, session, up)
        log.info("session.logon" if up else "session.logout", role=role, session=session)
        record = Entry(
            "session",
            entries.to_json({"role": role, "event": "logon" if up else "logout"}),
            session,
            ts_ns=self.clock.now_ns(),
        )
        if role == "venue":

            def venue_status() -> None:
                held = self._held.pop(session, None) if up else None
                if held:  # what recovery found unsent, before the engine asks the venue where its children stand
                    self._step(lambda _: Outbox(commands=held), None)
                # On record inside the step it causes, so a replay applies it at the same point.
                self._step(lambda _: self.engine.on_venue_status(session, up), None, record)

            self._control.put(venue_status)
        else:
            self.audit.record(record)
            if not up and session in self._cancel_on_disconnect:
                self._control.put(
                    lambda: self._step(
                        lambda _: self.engine.on_oms_disconnect(session, DISCONNECT_TEXT),
                        None,
                        self._event("oms_disconnect", DISCONNECT_TEXT, session),
                    )
                )

    def logon_refused(self, session: str, reason: str, username: str | None) -> None:
        """An OMS Logon with missing or wrong credentials was refused (its Logon is on record, password masked)."""
        self.observer.logon_refused(session, reason)
        log.warning("upstream.logon_refused", session=session, reason=reason, username=username)
        self.audit.record(
            Entry(
                "event",
                entries.to_json({"event": "logon_refused", "reason": reason, "username": username}),
                session,
                ts_ns=self.clock.now_ns(),
            )
        )

    def _pending_closed(self, peer: str, reason: str, age_s: float) -> None:
        """The pending-connection watch closed a connection to the upstream port that had not logged on."""
        self.observer.pending_closed(reason)
        log.warning(
            "upstream.connection_closed",
            peer=peer,
            reason=reason,
            age_s=round(age_s, 3),
            logon_timeout_s=self.cfg.fix.logon_timeout_s,
            max_pending=self.cfg.upstream.max_pending_connections,
        )
        self.audit.record(
            Entry(
                "event",
                entries.to_json({"event": "connection_closed", "peer": peer, "reason": reason}),
                ts_ns=self.clock.now_ns(),
            )
        )

    # --- carrying out engine steps ----------------------------------------------------------

    def _run_control(self) -> None:
        while (task := self._control.get()) is not None:
            try:
                task()
            except Exception:
                log.exception("gateway.control_task_failed")

    def _run_timer(self) -> None:
        """Let the engine see time pass; a tick that changes nothing leaves no trace in the audit trail, and one
        before the engine's next deadline (read without its lock) does not step it at all."""
        interval = self.cfg.routing.timer_ms / 1000
        stepped = 0
        while not self._stopping.wait(interval):
            self._last_tick = time.monotonic()
            self._check_feeds()
            now = self.clock.now_ns()
            if not timer_due(now, self.engine.timer_due_ns, stepped):
                continue
            stepped = now
            try:
                self._step(self.engine.on_timer, now, functools.partial(_tick_entry, now), quiet=True)
            except Exception:
                log.exception("gateway.timer_failed")

    def _in_schedule(self) -> dict[tuple[str, str], bool]:
        """Per (session, role), whether its schedule says it should be up now (read at each scrape)."""
        now = datetime.fromtimestamp(self.clock.now_ns() / 1e9, timezone.utc)
        return {key: in_schedule(window, now) for key, window in self._windows.items()}

    def _quote_ages(self) -> dict[str, float]:
        """Per venue with a feed, the age in seconds of its newest book of any symbol (+Inf: none yet)."""
        ages = {}
        for venue in self._feeds:
            seen = [age for s in self.cfg.symbols if (age := self.market.age_ns(venue, s.symbol)) is not None]
            ages[venue] = min(seen) / 1e9 if seen else float("inf")
        return ages

    def _check_feeds(self) -> None:
        """Count each venue feed going stale (no book younger than routing.max_quote_age_ms)."""
        max_age_s = self.cfg.routing.max_quote_age_ms / 1000
        if not max_age_s:
            return
        for venue, age in self._quote_ages().items():
            if age > max_age_s and age != float("inf"):
                if venue not in self._stale:
                    self._stale.add(venue)
                    self.observer.stale(venue)
                    log.warning("market_data.stale", venue=venue, age_s=round(age, 3))
            elif venue in self._stale:
                self._stale.discard(venue)
                log.info("market_data.fresh", venue=venue)

    def _refused_unrecorded(
        self, request: NewOrder | InvalidOrder | CancelRequest | ReplaceRequest | InvalidChange, raw: str
    ) -> bool:
        """While the audit store refuses commits, hold an OMS request up to audit.max_hold_ms; past that, refuse
        it (True). The refusal is sent before it can be on record, and the engine never sees the request: no
        state, no engine lock (a step may hold it waiting for the store), ExecIDs of its own, and the request
        recorded as `fix_refused` so that recovery does not replay it."""
        hold_ms = self.cfg.audit.max_hold_ms
        if request.poss_dup and self.engine.order_id_for(request.session, request.cl_ord_id) is not None:
            return False  # a possible duplicate of a known order is never refused: it waits and gets its status
        if self.audit.wait_writable(hold_ms / 1000):
            return False
        text = f"audit trail unavailable for {hold_ms} ms: the gateway cannot record orders; send again later"
        command: CancelReject | ExecutionReport
        if isinstance(request, CancelRequest | ReplaceRequest | InvalidChange):
            order_id = self.engine.order_id_for(request.session, request.orig_cl_ord_id)  # a plain dict read
            parent = self.engine.parents.get(order_id) if order_id else None
            response_to = (
                request.response_to
                if isinstance(request, InvalidChange)
                else "2"
                if isinstance(request, ReplaceRequest)
                else "1"
            )
            command = CancelReject(
                request.session,
                order_id or "NONE",
                request.cl_ord_id,
                request.orig_cl_ord_id,
                parent.status if parent else OrdStatus.REJECTED,
                response_to,
                CxlRejReason.OTHER,
                text,
            )
            message = codec.cancel_reject(command, self.upstream.begin_string(request.session))
        else:
            order_id = "NONE"
            command = ExecutionReport(
                request.session,
                order_id,
                request.cl_ord_id,
                f"{self.boot}-R{next(self._refusals)}",
                ExecType.REJECTED,
                OrdStatus.REJECTED,
                request.symbol,
                request.side,
                max(request.qty, 0),
                getattr(request, "ord_type", None),
                getattr(request, "price", None),
                getattr(request, "tif", None),
                0,
                0,
                Decimal(0),
                ord_rej_reason=OrdRejReason.OTHER,
                text=text,
            )
            message = codec.execution_report(command, self.upstream.begin_string(request.session))
        now = self.clock.now_ns()
        self.audit.submit(
            [
                entries.fix_message("in", request.session, raw, now, order_id, request.cl_ord_id, kind="fix_refused"),
                *entries.for_outbox(Outbox(commands=[command]), now, {}),
            ]
        )
        self.observer.refused(isinstance(command, ExecutionReport))
        log.error("audit.request_refused", session=request.session, cl_ord_id=request.cl_ord_id, held_ms=hold_ms)
        self._sending.refusal = True  # its tap queues the report rather than wait for the store
        try:
            self.upstream.send(message, request.session)
        finally:
            self._sending.refusal = False
        return True

    def _inbound(self, session: str, raw: str, cl_ord_id: str | None, order_id: str | None) -> Entry:
        return entries.fix_message("in", session, raw, self.clock.now_ns(), order_id, cl_ord_id)

    def _inbound_change(self, request: CancelRequest | ReplaceRequest | InvalidChange, raw: str) -> Entry:
        order_id = self.engine.order_id_for(request.session, request.orig_cl_ord_id)
        return self._inbound(request.session, raw, request.cl_ord_id, order_id)

    def _inbound_venue(self, venue: str, cl_ord_id: str, raw: str) -> Entry:
        return self._inbound(self.downstream.session_of[venue], raw, cl_ord_id, self.engine.parent_of_child(cl_ord_id))

    def _child_rejected_entry(self, venue: str, cl_ord_id: str, text: str) -> Entry:
        return Entry(
            "event",
            entries.to_json({"event": "child_rejected", "venue": venue, "cl_ord_id": cl_ord_id, "text": text}),
            venue,
            self.engine.parent_of_child(cl_ord_id),
            cl_ord_id,
            self.clock.now_ns(),
        )

    def _tap(self, direction: str, session: str, message, msg_type: str) -> None:
        """Every message quickfix sends, and incoming admin messages, onto the audit trail.

        An outgoing application message on a session whose store recovery reads is queued: quickfix stores
        it next, and a record lost with the process is taken back from the store (see gateway.recovery). On
        any other session it is committed before quickfix stores and sends it, so recovery can tell what was
        never sent (not on record) from what may have been. Our Logout on a persistent session is committed
        with everything queued before it while the audit store takes commits: quickfix resets a store at the
        end of its session's schedule right after logging out.
        """
        try:
            raw = message.toString()
            order_id = getattr(self._sending, "order_id", None)
            cl_ord_id = message.getField(codec.CL_ORD_ID) if message.isSetField(codec.CL_ORD_ID) else None
            if order_id is None and message.isSetField(codec.ORDER_ID):
                order_id = message.getField(codec.ORDER_ID)
            entry = entries.fix_message(direction, session, raw, self.clock.now_ns(), order_id, cl_ord_id)
            if direction != "out" or getattr(self._sending, "refusal", False):
                self.audit.record(entry)
            elif msg_type in codec.ADMIN_MSG_TYPES:
                if msg_type == "5" and session in self._store_prefixes and self.audit.writable:
                    self.audit.commit([entry])  # quickfix may reset the store next (the end of its schedule)
                else:
                    self.audit.record(entry)
            elif session in self._store_prefixes:
                ticket = self.audit.submit([entry], wake=False)
                if faults.armed():
                    self._out_ticket = ticket
                    if faults.armed("recorded_out") or faults.armed(f"recorded_out.{msg_type}"):
                        self.audit.wait(ticket)  # the point is "on record, not stored yet"
                    faults.reached("recorded_out")
                    faults.reached(f"recorded_out.{msg_type}")
            else:
                self.audit.commit([entry])
                if faults.armed():
                    faults.reached("recorded_out")
                    faults.reached(f"recorded_out.{msg_type}")
        except Exception:
            log.exception("audit.tap_failed", session=session)

    def _mark_resent(self, message) -> None:
        """A message recovery sends again goes out PossResend=Y: the peer checks its ExecID/ClOrdID."""
        if not self._resend:
            return
        tag = codec.EXEC_ID if message.getHeader().getField(codec.MSG_TYPE) == "8" else codec.CL_ORD_ID
        if message.isSetField(tag) and message.getField(tag) in self._resend:
            self._resend.discard(message.getField(tag))
            message.getHeader().setField(codec.POSS_RESEND, "Y")

    def _step(
        self,
        step: Callable,
        event: object,
        inbound: Entry | Callable[[], Entry] | None = None,
        quiet: bool = False,
        arrival: Arrival | None = None,
        child: str | None = None,
    ) -> None:
        """One engine step: the message that caused it and what was decided are committed
        to the audit trail before anything the step produced is sent; a quiet step that
        produced nothing is not recorded (its `inbound` may be a function that makes the entry, called only when it
        is). `child`: the child order the step is about, watched for metrics.
        The OMS senders are woken once the lock is released: woken before, they would mostly wait for it."""
        try:
            self._locked_step(step, event, inbound, quiet, arrival, child)
        finally:
            self.outbound.wake()

    def _locked_step(
        self,
        step: Callable,
        event: object,
        inbound: Entry | Callable[[], Entry] | None,
        quiet: bool,
        arrival: Arrival | None,
        child: str | None,
    ) -> None:
        with self._lock:
            watched = self.engine.child(child) if child is not None else None
            if watched is not None:
                was_live, was_acked = watched.live, watched.acked
            out = step(event)
            if watched is not None:
                self.observer.child_stepped(watched, was_live, was_acked, self.clock.now_ns())
            if quiet and not out.commands and not out.decisions:
                return
            head = []
            if callable(inbound):
                inbound = inbound()
            if inbound is not None:
                if inbound.order_id is None:
                    inbound = dataclasses.replace(inbound, order_id=_first_order_id(out))
                head.append(inbound)
            pending = deque([(out, head)])
            while pending:
                out, head = pending.popleft()
                now = self.clock.now_ns()
                if faults.armed() and self.audit.committed < self._out_ticket:
                    faults.reached("stored_unrecorded")  # what quickfix stored and sent is queued, not on record
                self.audit.commit(head + entries.for_outbox(out, now, self._cl_ord_ids(out)) + self._quotes(out, now))
                if out.commands and faults.armed():
                    faults.reached("step_committed")
                pending.extend(self._carry_out(out, arrival))
                arrival = None  # follow-ups (a failed send) are the gateway's own doing

    def _quotes(self, out: Outbox, now: int) -> list[Entry]:
        """The market the step met: the books each routing decision read, for replay; the NBBO at each fill
        reported upstream and at each parent's end, for TCA (a resent report's NBBO would be today's, so it
        gets none)."""
        quotes = self._book_records(out, now)
        for command in out.commands:
            if not isinstance(command, ExecutionReport) or command.exec_id in self._resend:
                continue
            if command.last_qty or command.ord_status in TERMINAL:
                nbbo = self.market.nbbo(command.symbol, self.engine.venues)
                quotes.append(entries.quote(command, nbbo, now))
            if command.last_qty and self._marks is not None:
                self._marks.schedule((command.symbol, command.exec_id))
        return quotes

    def _cl_ord_ids(self, out: Outbox) -> dict[str, str]:
        parents = self.engine.parents
        return {
            d.order_id: parents[d.order_id].cl_ord_id
            for d in out.decisions
            if isinstance(d, RouteDecision) and d.order_id in parents
        }

    def _book_records(self, out: Outbox, now: int) -> list[Entry]:
        parents = self.engine.parents
        return [
            entries.books(d, parents[d.order_id].symbol, parents[d.order_id].cl_ord_id, now, self._books)
            for d in out.decisions
            if isinstance(d, RouteDecision) and d.order_id in parents
        ]

    def _carry_out(self, out: Outbox, arrival: Arrival | None) -> list[tuple[Outbox, list[Entry]]]:
        """Send what one engine step produced; steps it caused in turn (a failed send) come back
        with the audit entry that explains them."""
        follow_ups = []
        for item in out.decisions:
            self._log_decision(item)
        for command in out.commands:
            if isinstance(command, (ExecutionReport, CancelReject)) and command.risk_limit:
                log.warning(
                    "risk.reject",
                    session=command.session,
                    cl_ord_id=command.cl_ord_id,
                    limit=command.risk_limit,
                    text=command.text,
                )
            if isinstance(command, ExecutionReport):
                message = codec.execution_report(command, self.upstream.begin_string(command.session))
                self.observer.carried_out(command, arrival)  # counted before the OMS can see it
                self._send_upstream(message, command.session, command.cl_ord_id)
                level = logging.DEBUG if command.exec_type in ROUTINE_REPORTS else logging.INFO
                if log.is_enabled_for(level):
                    log.log(
                        level,
                        "upstream.report",
                        cl_ord_id=command.cl_ord_id,
                        order_id=command.order_id,
                        exec_type=command.exec_type.name,
                        ord_status=command.ord_status.name,
                        cum_qty=command.cum_qty,
                        leaves_qty=command.leaves_qty,
                        avg_px=str(command.avg_px),
                        last_qty=command.last_qty or None,
                        last_px=str(command.last_px) if command.last_px else None,
                        last_mkt=command.last_mkt,
                        text=command.text,
                    )
            elif isinstance(command, CancelReject):
                self.observer.carried_out(command, arrival)
                self._send_upstream(
                    codec.cancel_reject(command, self.upstream.begin_string(command.session)),
                    command.session,
                    command.cl_ord_id,
                )
                log.info(
                    "upstream.cancel_reject",
                    cl_ord_id=command.cl_ord_id,
                    order_id=command.order_id,
                    orig_cl_ord_id=command.orig_cl_ord_id,
                    text=command.text,
                )
            elif isinstance(command, SendChild):
                message = codec.new_order_single(command, self.downstream.venue_begin_string(command.venue))
                self._sending.order_id = command.parent_order_id
                sent = self.downstream.send_to_venue(message, command.venue)
                self._sending.order_id = None
                self.observer.carried_out(command, arrival, sent)
                level = logging.DEBUG if sent else logging.INFO
                if log.is_enabled_for(level):
                    log.log(
                        level,
                        "venue.child_sent",
                        order_id=command.parent_order_id,
                        cl_ord_id=self.engine.parents[command.parent_order_id].cl_ord_id,
                        child=command.cl_ord_id,
                        venue=command.venue,
                        qty=command.spec.qty,
                        price=str(command.spec.price) if command.spec.price is not None else None,
                        ord_type=command.spec.ord_type.name,
                        tif=command.spec.tif.name,
                        sent=sent,
                    )
                if not sent:
                    text = "venue session not logged on"
                    follow_ups.append(
                        (
                            self.engine.on_child_rejected(command.venue, command.cl_ord_id, text),
                            [self._child_rejected_entry(command.venue, command.cl_ord_id, text)],
                        )
                    )
            elif isinstance(command, CancelChild):
                message = codec.order_cancel_request(command, self.downstream.venue_begin_string(command.venue))
                parent_id = self.engine.parent_of_child(command.orig_cl_ord_id)
                self._sending.order_id = parent_id
                sent = self.downstream.send_to_venue(message, command.venue)
                self._sending.order_id = None
                log.log(
                    logging.DEBUG if sent else logging.INFO,
                    "venue.cancel_sent",
                    child=command.orig_cl_ord_id,
                    venue=command.venue,
                    sent=sent,
                )
                if not sent:
                    event = Entry(
                        "event",
                        entries.to_json(
                            {"event": "cancel_unsent", "venue": command.venue, "cl_ord_id": command.orig_cl_ord_id}
                        ),
                        command.venue,
                        parent_id,
                        command.orig_cl_ord_id,
                        self.clock.now_ns(),
                    )
                    follow_ups.append((self.engine.on_cancel_unsent(command.orig_cl_ord_id), [event]))
            elif isinstance(command, QueryChild):
                message = codec.order_status_request(command, self.downstream.venue_begin_string(command.venue))
                self._sending.order_id = self.engine.parent_of_child(command.cl_ord_id)
                sent = self.downstream.send_to_venue(message, command.venue)
                self._sending.order_id = None
                # Unsent, it is asked again at the next logon or timeout.
                log.info("venue.status_query", child=command.cl_ord_id, venue=command.venue, sent=sent)
        return follow_ups

    def _send_upstream(self, message, session: str, cl_ord_id: str) -> None:
        """Queue a report for its OMS session's sender thread: no socket send under the engine lock."""
        self.outbound.put(session, message, cl_ord_id, wake=False)

    def _log_decision(self, item: object) -> None:
        """At info one line per parent outcome (its final state); decisions and intermediate states at debug."""
        if isinstance(item, RouteDecision):
            if log.is_enabled_for(logging.DEBUG):
                log.debug(
                    "route.decision",
                    order_id=item.order_id,
                    cl_ord_id=self.engine.parents[item.order_id].cl_ord_id,
                    phase=item.phase,
                    reason=item.reason,
                    children=[
                        f"{c.venue}:{c.qty}@{c.price if c.price is not None else 'MKT'}/{c.tif.name}"
                        for c in item.children
                    ],
                    excluded={e.venue: e.reason for e in item.exclusions} or None,
                )
        elif isinstance(item, StateChange):
            level = logging.INFO if item.new in TERMINAL else logging.DEBUG
            if log.is_enabled_for(level):
                log.log(
                    level,
                    "order.state",
                    order_id=item.order_id,
                    cl_ord_id=item.cl_ord_id,
                    old=item.old.name if item.old else None,
                    new=item.new.name,
                    cum_qty=item.cum_qty,
                    leaves_qty=item.leaves_qty,
                )
        elif isinstance(item, Routine):
            log.info("engine.notice", text=item.text)
        elif isinstance(item, PriceReference):
            log.debug("risk.price_reference", cl_ord_id=item.cl_ord_id, symbol=item.symbol)
        elif isinstance(item, CircuitChange):
            self.metrics.circuit_state.labels(item.venue).set(item.new.level)
            if item.new is CircuitState.OPEN:
                self.metrics.circuit_opens.labels(item.venue).inc()
            (log.warning if item.new is CircuitState.OPEN else log.info)(
                "venue.circuit", venue=item.venue, old=str(item.old), new=str(item.new), reason=item.reason
            )
        else:
            log.warning("engine.notice", text=str(item))


def _tick_entry(now: int) -> Entry:
    return Entry("event", entries.to_json({"event": "timer", "now_ns": now}), ts_ns=now)


def timer_due(now_ns: int, deadline_ns: int, stepped_ns: int) -> bool:
    """Does the timer step the engine now? From its next deadline on, and at least once a second all the same
    (since the step at stepped_ns): a deadline some future step forgets to name is late by at most that."""
    return now_ns >= deadline_ns or now_ns - stepped_ns >= TIMER_STEP_AT_LEAST_NS


def _resent_id(command) -> str:
    return command.exec_id if isinstance(command, ExecutionReport) else command.cl_ord_id


def _first_order_id(out: Outbox) -> str | None:
    for command in out.commands:
        order_id = getattr(command, "order_id", None) or getattr(command, "parent_order_id", None)
        if order_id and order_id != "NONE":
            return order_id
    return None


def _floats(exposure: tuple[int, Decimal]) -> tuple[float, float]:
    qty, notional = exposure
    return float(qty), float(notional)


class _Timed:
    """A planner that reports how long each decision took."""

    def __init__(self, planner: Callable[..., RouteDecision], observe: Callable[[float], None]) -> None:
        self._planner, self._observe = planner, observe

    def __call__(self, *args) -> RouteDecision:
        start = time.perf_counter()
        try:
            return self._planner(*args)
        finally:
            self._observe(time.perf_counter() - start)


def _resting(engine: OrderEngine, symbol: str) -> dict[tuple[str, bool], dict[Decimal, int]]:
    """Our live priced children in `symbol`: (venue, is_buy) -> price -> the quantity still working there."""
    ours: dict[tuple[str, bool], dict[Decimal, int]] = {}
    for child in engine.working_children():
        if child.symbol == symbol and child.spec.price is not None and child.leaves_qty:
            prices = ours.setdefault((child.venue, child.side.is_buy), {})
            prices[child.spec.price] = prices.get(child.spec.price, 0) + child.leaves_qty
    return ours


def _open_orders(engine: OrderEngine) -> tuple[int, dict[str, int]]:
    children: dict[str, int] = dict.fromkeys(engine.venues, 0)
    parents = 0
    for parent in engine.parents.values():
        parents += parent.live
        for child in parent.live_children():
            children[child.venue] = children.get(child.venue, 0) + 1
    return parents, children


def _limits_in_force(engine: OrderEngine, sessions: list[str], symbols: list[str]) -> list[tuple[str, str, float]]:
    """Each session's session limits and each symbol's order limits, as they apply (defaults filled in)."""
    limits = engine.risk.limits
    rows = []
    for scope, names, effective in [(f"session {s}", SESSION_LIMITS, limits.effective(s, "")) for s in sessions] + [
        (f"symbol {s}", ORDER_KEYS, limits.effective("", s)) for s in symbols
    ]:
        rows += [(scope, name, float(value)) for name in names if (value := getattr(effective, name)) is not None]
    return rows


def _in_doubt(engine: OrderEngine) -> dict[str, int]:
    counts = dict.fromkeys(engine.venues, 0)
    for child in engine.in_doubt.values():
        counts[child.venue] += 1
    return counts


def _venue_quality(engine: OrderEngine) -> list[VenueQuality]:
    learning = engine.learning
    horizons = [h for h in learning.markouts.horizons_ns if h > 0]
    quality = []
    for venue, info in sorted(engine.venues.items()):
        score = learning.score(venue)
        dark = None
        if info.kind is VenueKind.DARK:
            tail = learning.dark.tail(venue)
            dark = tail[1] if len(tail) > 1 else None
        markouts = {}
        for horizon in horizons:
            stats = learning.markouts.stats(venue, horizon)
            if stats is not None:
                markouts[_horizon_label(horizon)] = stats.mean_bps
        quality.append(
            VenueQuality(venue, score.toxicity if score else None, score.fill_rate if score else None, dark, markouts)
        )
    return quality


def _horizon_label(ns: int) -> str:
    return f"{ns // 1_000_000_000}s" if ns % 1_000_000_000 == 0 else f"{ns // 1_000_000}ms"
