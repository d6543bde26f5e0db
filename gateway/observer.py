"""Turns what the gateway sees and does into metrics: FIX traffic, session changes, engine steps, market data."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from prometheus_client.metrics import MetricWrapperBase

from gateway.core.orders import ChildOrder
from gateway.core.types import CancelReject, ExecType, ExecutionReport, Liquidity, OrdStatus, SendChild
from gateway.metrics import (
    CHILD_OUTCOMES,
    DIRECTIONS,
    DROPPED_BOOKS,
    LOGON_REFUSALS,
    PARENT_OUTCOMES,
    PENDING_CLOSES,
    REJECT_REASONS,
    SLOW_CONSUMER_REASONS,
    Metrics,
)

_SECONDS = 1e-9
_LIQUIDITY: dict[Liquidity | None, str] = {
    Liquidity.TAKER: "taker",
    Liquidity.MAKER: "maker",
    Liquidity.DARK: "dark_midpoint",
}
_PARENT_ENDS = {ExecType.EXPIRED: "expired", ExecType.DONE_FOR_DAY: "done_for_day"}
_Metric = TypeVar("_Metric", bound=MetricWrapperBase)


@dataclass(frozen=True, slots=True)
class Arrival:
    """What started an engine step, for latencies: when its message arrived (perf_counter_ns) and from whom."""

    ns: int
    source: str  # "order" (a NewOrderSingle from the OMS) or "venue" (a venue's execution report)
    liquidity: Liquidity | None = None  # a venue report's LastLiquidityInd


class Observer:
    """Called from the thread that owns each piece of state: FIX threads for their traffic, the engine step (under
    the engine lock) for orders, the bus thread for books. Only counter, gauge and histogram calls: no locks of
    its own, no handoffs."""

    def __init__(self, metrics: Metrics, dark_venues: Iterable[str]) -> None:
        self.metrics = metrics
        self._dark = frozenset(dark_venues)
        self._arrived: dict[str, int] = {}  # parent OrderID -> arrival, until its first child is sent
        self._labelled: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}

    def _of(self, metric: _Metric, *labels: str) -> _Metric:
        """metric.labels(*labels), cached: the lookup costs three times the update."""
        key = (id(metric), labels)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(*labels)
        return cast(_Metric, child)  # the cache holds metric.labels(), of metric's own type

    # --- FIX sessions (quickfix threads) ---------------------------------------------------------------

    def message(self, role: str, session: str, direction: str, msg_type: str) -> None:
        m = self.metrics
        self._of(m.messages, session, role, direction, msg_type).inc()
        if msg_type == "2":
            self._of(m.resend_requests, session, role, direction).inc()
        elif msg_type == "4":
            self._of(m.sequence_resets, session, role, direction).inc()
        elif msg_type in ("3", "j") and (direction == "out" or role == "upstream"):
            # What a venue refuses of ours is counted once, as the child it ends (reason "venue").
            self._of(m.rejects, "session").inc()

    def declare(self, upstream_sessions: Iterable[str], venues: Iterable[str]) -> None:
        """Create every series the config makes possible, at 0, so the first event is a visible increase (rate()
        and increase() cannot see a series' first sample) and panels of events that never happened read 0."""
        m = self.metrics
        sessions = [("upstream", s) for s in upstream_sessions] + [("venue", v) for v in venues]
        metric: MetricWrapperBase
        for role, session in sessions:
            m.session_up.labels(session, role).set(0)
            for metric in (m.logons, m.disconnects):
                self._of(metric, session, role)
            for direction in DIRECTIONS:
                self._of(m.resend_requests, session, role, direction)
                self._of(m.sequence_resets, session, role, direction)
            if role == "upstream":
                self._of(m.parents_received, session)
                for reason in SLOW_CONSUMER_REASONS:
                    self._of(m.slow_consumers, session, reason)
                for reason in LOGON_REFUSALS:
                    self._of(m.logons_refused, session, reason)
            else:
                for metric in (m.children_sent, m.open_children, m.stale, m.circuit_opens, m.venue_connect_failures):
                    self._of(metric, session)
                m.circuit_state.labels(session).set(0)
                for outcome in CHILD_OUTCOMES:
                    self._of(m.children_done, session, outcome)
                for liquidity in ("dark_midpoint",) if session in self._dark else ("taker", "maker", "unknown"):
                    for metric in (m.fills, m.filled_shares, m.filled_notional):
                        self._of(metric, session, liquidity)
        for outcome in PARENT_OUTCOMES:
            self._of(m.parents_done, outcome)
        for reason in REJECT_REASONS:
            self._of(m.rejects, reason)
        for reason in PENDING_CLOSES:
            self._of(m.pending_closed, reason)
        for reason in DROPPED_BOOKS:
            self._of(m.snapshots_dropped, reason)

    def session(self, role: str, session: str, up: bool) -> None:
        """A session changed state (the gateway drops repeats)."""
        m = self.metrics
        m.session_up.labels(session, role).set(1 if up else 0)
        self._of(m.logons if up else m.disconnects, session, role).inc()

    def venue_connect_failed(self, venue: str) -> None:
        """An attempt to connect and log on to a venue failed (the initiator's thread)."""
        self._of(self.metrics.venue_connect_failures, venue).inc()

    def slow_consumer(self, session: str, reason: str) -> None:
        """An OMS session was cut off for falling behind (the send watchdog's thread)."""
        self._of(self.metrics.slow_consumers, session, reason).inc()

    def logon_refused(self, session: str, reason: str) -> None:
        """An OMS Logon was refused for its credentials (quickfix's thread for that connection)."""
        self._of(self.metrics.logons_refused, session, reason).inc()

    def pending_closed(self, reason: str) -> None:
        """A connection that had not logged on was closed (the pending-connection watch's thread)."""
        self._of(self.metrics.pending_closed, reason).inc()

    # --- market data (the bus thread, the timer thread) ------------------------------------------------

    def snapshot(self, venue: str) -> None:
        self._of(self.metrics.snapshots, venue).inc()

    def snapshot_dropped(self, reason: str) -> None:
        self._of(self.metrics.snapshots_dropped, reason).inc()

    def stale(self, venue: str) -> None:
        self._of(self.metrics.stale, venue).inc()

    # --- engine steps (under the engine lock) -----------------------------------------------------------

    def parent_received(self, session: str) -> None:
        self._of(self.metrics.parents_received, session).inc()

    def open_orders(self, parents: int, children: Mapping[str, int]) -> None:
        """The open orders recovery rebuilt, before any step."""
        self.metrics.open_parents.set(parents)
        for venue, count in children.items():
            self._of(self.metrics.open_children, venue).set(count)

    def child_stepped(self, child: ChildOrder, was_live: bool, was_acked: bool, now_ns: int) -> None:
        """After a step that could move this child: its first answer, its end."""
        m = self.metrics
        if child.acked and not was_acked:
            self._of(m.venue_ack_latency, child.venue).observe(max(now_ns - child.sent_ns, 0) * _SECONDS)
        if was_live and not child.live:
            self._child_ended(child.venue, _child_outcome(child))

    def carried_out(self, command: object, arrival: Arrival | None, sent: bool = True) -> None:
        """One command of an engine step, as it is sent."""
        if isinstance(command, ExecutionReport):
            self._report(command, arrival)
        elif isinstance(command, SendChild):
            m = self.metrics
            self._of(m.children_sent, command.venue).inc()
            self._of(m.open_children, command.venue).inc()
            arrived = self._arrived.pop(command.parent_order_id, None)
            if arrived is not None:
                m.first_child_latency.observe((time.perf_counter_ns() - arrived) * _SECONDS)
            if not sent:  # the venue session is down: the child ends here, refused
                self._of(m.rejects, "session").inc()
                self._child_ended(command.venue, "rejected", counted=True)
        elif isinstance(command, CancelReject):
            self._of(self.metrics.rejects, "risk" if command.risk_limit else "cancel_reject").inc()

    def refused(self, order: bool) -> None:
        """An OMS request refused while the audit store was down; `order`: a new order, which ends here."""
        self._of(self.metrics.rejects, "audit_outage").inc()
        if order:
            self._of(self.metrics.parents_done, "rejected").inc()

    def _report(self, report: ExecutionReport, arrival: Arrival | None) -> None:
        m = self.metrics
        exec_type = report.exec_type
        if exec_type is ExecType.NEW or exec_type is ExecType.REJECTED:
            if arrival is not None and arrival.source == "order":
                m.ack_latency.observe((time.perf_counter_ns() - arrival.ns) * _SECONDS)
            if exec_type is ExecType.NEW:
                m.open_parents.inc()
                if arrival is not None and arrival.source == "order":
                    self._arrived[report.order_id] = arrival.ns
            else:
                self._of(m.parents_done, "rejected").inc()
                self._of(m.rejects, "risk" if report.risk_limit else "validation").inc()
            return
        if exec_type is ExecType.TRADE:
            venue = report.last_mkt or "unknown"
            liquidity = (
                "dark_midpoint"
                if venue in self._dark
                else _LIQUIDITY.get(arrival.liquidity if arrival is not None else None, "unknown")
            )
            self._of(m.fills, venue, liquidity).inc()
            self._of(m.filled_shares, venue, liquidity).inc(report.last_qty)
            if report.last_px is not None:
                self._of(m.filled_notional, venue, liquidity).inc(float(report.last_px * report.last_qty))
            if arrival is not None and arrival.source == "venue":
                m.fill_report_latency.observe((time.perf_counter_ns() - arrival.ns) * _SECONDS)
            if report.ord_status is OrdStatus.FILLED:
                self._parent_ended(report.order_id, "filled")
        elif exec_type is ExecType.CANCELED:
            self._parent_ended(report.order_id, "partially_filled_canceled" if report.cum_qty else "canceled")
        elif exec_type in _PARENT_ENDS:
            self._parent_ended(report.order_id, _PARENT_ENDS[exec_type])

    def _parent_ended(self, order_id: str, outcome: str) -> None:
        self._of(self.metrics.parents_done, outcome).inc()
        self.metrics.open_parents.dec()
        self._arrived.pop(order_id, None)

    def _child_ended(self, venue: str, outcome: str, counted: bool = False) -> None:
        m = self.metrics
        self._of(m.children_done, venue, outcome).inc()
        self._of(m.open_children, venue).dec()
        if outcome == "rejected" and not counted:
            self._of(m.rejects, "venue").inc()


def _child_outcome(child: ChildOrder) -> str:
    if child.status is OrdStatus.FILLED:
        return "filled"
    if child.rejected:
        return "rejected"
    if child.cum_qty:
        return "partially_filled"
    return "expired" if child.status is OrdStatus.EXPIRED else "canceled"
