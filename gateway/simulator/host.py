"""Simulated venues on FIX: one acceptor, one session per venue, each in front of a matching core."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import quickfix as fix
import structlog

from gateway.bus.inprocess import InProcessBus
from gateway.config import SimVenueConfig, VenuesConfig
from gateway.core.clock import WallClock
from gateway.core.market import MarketView, VenueInfo
from gateway.core.types import (
    ExecType,
    InvalidChange,
    InvalidOrder,
    Liquidity,
    OrdStatus,
    StatusRequest,
    Urgency,
    VenueKind,
)
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.sessions import SessionSpec, make_engine, session_id, session_key, shutdown
from gateway.listen import start_acceptor
from gateway.simulator.venue import SimOrder, SimReport, VenueCore

log = structlog.get_logger("gateway.simulator")

_LIQUIDITY_IND = {Liquidity.MAKER: "1", Liquidity.TAKER: "2", Liquidity.DARK: "1"}


class Scheduler:
    """Runs callables at a later monotonic time on one thread (venue latency, replenishment)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="venue-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), fn))
            self._cond.notify()

    def every(self, interval: float, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.call_later(interval, tick)

        self.call_later(interval, tick)

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if not self._running:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:
                log.exception("scheduler.task_failed")


def inbound_delay_ms(venue: SimVenueConfig) -> float:
    """How long a new order or cancel waits before it reaches the core: the speed bump, then the ack
    latency. Orders and cancels wait alike, so one session's messages reach the core in the order sent."""
    return venue.speed_bump_us / 1000 + venue.ack_latency_ms


def execution_report(report: SimReport, begin_string: str) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString(begin_string))
    msg.getHeader().setField(fix.MsgType("8"))
    exec_type = report.exec_type.value
    if begin_string == codec.FIX42:
        # 4.2 has no ExecType I: a status answer is ExecTransType 3 with the order's status as its ExecType.
        status = report.exec_type is ExecType.ORDER_STATUS
        msg.setField(codec.EXEC_TRANS_TYPE, "3" if status else "0")
        if status:
            exec_type = report.ord_status.value
        elif report.exec_type is ExecType.TRADE:
            exec_type = "2" if report.ord_status is OrdStatus.FILLED else "1"
    for tag, value in (
        (codec.ORDER_ID, report.order_id),
        (codec.CL_ORD_ID, report.cl_ord_id),
        (codec.ORIG_CL_ORD_ID, report.orig_cl_ord_id),
        (codec.EXEC_ID, report.exec_id),
        (codec.EXEC_TYPE, exec_type),
        (codec.ORD_STATUS, report.ord_status.value),
        (codec.SYMBOL, report.symbol),
        (codec.SIDE, report.side.value),
        (codec.ORDER_QTY, report.order_qty),
        (codec.CUM_QTY, report.cum_qty),
        (codec.LEAVES_QTY, report.leaves_qty),
        (codec.AVG_PX, codec.avg_px_text(report.avg_px)),
        (codec.TEXT, report.text),
    ):
        if value is not None:
            msg.setField(tag, str(value))
    if report.price is not None:
        msg.setField(codec.PRICE, codec.price_text(report.price))
    if report.last_qty:
        assert report.last_px is not None  # a fill has a price
        msg.setField(codec.LAST_QTY, str(report.last_qty))
        msg.setField(codec.LAST_PX, codec.price_text(report.last_px))
        if report.liquidity is not None and begin_string != codec.FIX42:
            msg.setField(codec.LAST_LIQUIDITY_IND, _LIQUIDITY_IND[report.liquidity])
    msg.setField(fix.TransactTime())
    return msg


class VenueHost(GuardedApplication):
    """Every configured simulated venue behind one acceptor."""

    role = "venue-sim"

    def __init__(self, cfg: VenuesConfig, work_dir: Path, bus: InProcessBus) -> None:
        super().__init__()
        self.cfg = cfg
        self.bus = bus
        self._lock = threading.Lock()
        self._scheduler: Scheduler | None = None
        self.market = MarketView()
        bus.subscribe(self.market.update)
        lit = {
            v.name: VenueInfo(v.name, v.kind, v.maker_fee, v.taker_fee, 0, True)
            for v in cfg.venues
            if v.kind is VenueKind.LIT
        }
        clock = WallClock()
        self.cores: dict[str, VenueCore] = {}
        self.configs: dict[str, SimVenueConfig] = {}
        specs = []
        for venue in cfg.venues:
            spec = SessionSpec(venue.begin_string, venue.comp_id, venue.target_comp_id, venue.host, venue.port)
            key = session_key(session_id(spec))
            self.cores[key] = VenueCore(
                venue,
                cfg.symbols,
                cfg.seed,
                clock,
                publish=bus.publish,
                nbbo=lambda symbol: self.market.nbbo(symbol, lit),
                trade=bus.publish_trade,
            )
            self.configs[key] = venue
            specs.append(spec)
        self._acceptor = make_engine("acceptor", self, specs, cfg.fix, work_dir)

    def start(self) -> None:
        self._scheduler = Scheduler()
        with self._lock:
            for core in self.cores.values():
                for symbol in self.cfg.symbols:
                    self.bus.publish(core.snapshot(symbol.symbol))
        for key, venue in self.configs.items():
            if venue.depth.replenish_ms:
                self._scheduler.every(venue.depth.replenish_ms / 1000, partial(self._replenish, key))
        start_acceptor(self._acceptor.start, {v.port: (f"venues.{v.name}.port", v.host) for v in self.cfg.venues})
        log.info("venues.started", venues={v.name: v.port for v in self.cfg.venues})

    def stop(self) -> None:
        if self._acceptor is None:
            return  # stopped already
        shutdown(self._acceptor, self.sessions.values())
        self._acceptor = None  # destroy its sessions now: see Gateway.stop
        if self._scheduler:
            self._scheduler.stop()
        log.info("venues.stopped")

    def on_logon(self, session: str) -> None:
        log.info("venue.client_logon", venue=self.configs[session].name)

    def on_logout(self, session: str) -> None:
        log.info("venue.client_logout", venue=self.configs[session].name)

    def on_app(self, message: codec.Readable, session: str) -> None:
        msg_type = message.getHeader().getField(codec.MSG_TYPE)
        if msg_type == "D":
            self._new_order(message, session)
        elif msg_type == "F":
            cancel = codec.parse_cancel(message, session)
            if isinstance(cancel, InvalidChange):
                raise ValueError(cancel.text)  # answered as any message the venue cannot process
            self._later(inbound_delay_ms(self.configs[session]), lambda: self._cancel(session, cancel))
        elif msg_type == "H":
            # Behind whatever arrived before it, as a venue answers in the order it receives.
            request = codec.parse_status_request(message, session)
            self._later(inbound_delay_ms(self.configs[session]), lambda: self._status(request))
        else:
            raise fix.UnsupportedMessageType()

    def _new_order(self, message: codec.Readable, session: str) -> None:
        parsed = codec.parse_new_order(message, session, Urgency.MEDIUM)
        core = self.cores[session]
        if parsed.poss_dup:
            with self._lock:
                known = core.status(session, parsed.cl_ord_id)
            if known is not None:  # sent before: where it stands, not a second order
                self._send([known])
                return
        if isinstance(parsed, InvalidOrder):
            self._send_rejected(session, parsed)
            return
        order = SimOrder(
            session, parsed.cl_ord_id, parsed.symbol, parsed.side, parsed.qty, parsed.ord_type, parsed.price, parsed.tif
        )
        venue = self.configs[session]

        def process() -> None:
            with self._lock:
                reports = core.submit(order)
            acks = [r for r in reports if r.exec_type in (ExecType.NEW, ExecType.REJECTED)]
            rest = [r for r in reports if r.exec_type not in (ExecType.NEW, ExecType.REJECTED)]
            self._send(acks)
            self._later(venue.fill_latency_ms, lambda: self._send(rest))

        self._later(inbound_delay_ms(venue), process)

    def _cancel(self, session: str, cancel) -> None:
        with self._lock:
            result = self.cores[session].cancel(session, cancel.cl_ord_id, cancel.orig_cl_ord_id)
        if result.reject_reason is None:
            self._send(result.reports)
            return
        msg = fix.Message()
        msg.getHeader().setField(fix.BeginString(self.begin_string(session)))
        msg.getHeader().setField(fix.MsgType("9"))
        msg.setField(codec.ORDER_ID, "NONE")
        msg.setField(codec.CL_ORD_ID, cancel.cl_ord_id)
        msg.setField(codec.ORIG_CL_ORD_ID, cancel.orig_cl_ord_id)
        msg.setField(codec.ORD_STATUS, OrdStatus.REJECTED.value)
        msg.setField(codec.CXL_REJ_RESPONSE_TO, "1")
        msg.setField(codec.CXL_REJ_REASON, "1" if "unknown" in result.reject_reason else "0")
        msg.setField(codec.TEXT, result.reject_reason)
        self.send(msg, session)

    def _status(self, request: StatusRequest) -> None:
        with self._lock:
            report = self.cores[request.session].status(request.session, request.cl_ord_id)
        if report is not None:
            self._send([report])
            return
        msg = fix.Message()
        fix42 = self.begin_string(request.session) == codec.FIX42
        msg.getHeader().setField(fix.BeginString(self.begin_string(request.session)))
        msg.getHeader().setField(fix.MsgType("8"))
        venue = self.configs[request.session].name
        for tag, value in (
            (codec.ORDER_ID, "NONE"),
            (codec.CL_ORD_ID, request.cl_ord_id),
            (codec.EXEC_ID, f"{venue}-status-{request.cl_ord_id}-{time.time_ns()}"),
            (codec.EXEC_TYPE, OrdStatus.REJECTED.value if fix42 else ExecType.ORDER_STATUS.value),
            (codec.ORD_STATUS, OrdStatus.REJECTED.value),
            (codec.ORD_REJ_REASON, "5"),
            (codec.SYMBOL, request.symbol),
            (codec.SIDE, request.side.value),
            (codec.LEAVES_QTY, "0"),
            (codec.CUM_QTY, "0"),
            (codec.AVG_PX, "0"),
            (codec.TEXT, f"unknown order {request.cl_ord_id}"),
        ):
            msg.setField(tag, value)
        if fix42:
            msg.setField(codec.EXEC_TRANS_TYPE, "3")  # status
        self.send(msg, request.session)

    def _send_rejected(self, session: str, invalid: InvalidOrder) -> None:
        msg = fix.Message()
        msg.getHeader().setField(fix.BeginString(self.begin_string(session)))
        msg.getHeader().setField(fix.MsgType("8"))
        for tag, value in (
            (codec.ORDER_ID, "NONE"),
            (codec.CL_ORD_ID, invalid.cl_ord_id),
            (codec.EXEC_ID, f"{self.configs[session].name}-rej-{invalid.cl_ord_id}"),
            (codec.EXEC_TYPE, "8"),
            (codec.ORD_STATUS, "8"),
            (codec.SYMBOL, invalid.symbol or "?"),
            (codec.SIDE, invalid.side.value if invalid.side else "1"),
            (codec.LEAVES_QTY, "0"),
            (codec.CUM_QTY, "0"),
            (codec.AVG_PX, "0"),
            (codec.TEXT, invalid.text),
        ):
            msg.setField(tag, value)
        if self.begin_string(session) == codec.FIX42:
            msg.setField(codec.EXEC_TRANS_TYPE, "0")
        self.send(msg, session)

    def _replenish(self, session: str) -> None:
        with self._lock:
            reports = self.cores[session].replenish()
        self._send(reports)

    def _send(self, reports: list[SimReport]) -> None:
        """Each report to the session that owns its order (a maker fill may belong to another client)."""
        for report in reports:
            if not self.send(execution_report(report, self.begin_string(report.owner)), report.owner):
                log.warning("venue.report_not_sent", venue=self.configs[report.owner].name, cl_ord_id=report.cl_ord_id)

    def _later(self, delay_ms: float, fn: Callable[[], None]) -> None:
        if delay_ms and self._scheduler is not None:
            self._scheduler.call_later(delay_ms / 1000, fn)
        else:
            fn()
