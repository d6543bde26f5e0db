"""The order book of record: turns OMS requests and venue reports into commands, one step at a time.

The engine does no I/O. Each `on_*` call returns an Outbox of commands (children to send or
cancel, reports for the OMS) that the caller carries out in order. The caller serialises calls:
the engine has exactly one writer.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

from gateway.analytics.learning import LearningConfig, VenueLearning
from gateway.core.breaker import DEFAULT_POLICY, BreakerPolicy, Breakers, CircuitChange, CircuitState
from gateway.core.clock import Clock
from gateway.core.finished import FinalStates
from gateway.core.market import MarketView, VenueInfo
from gateway.core.orders import ZERO, ChildOrder, ParentOrder
from gateway.core.risk import Halt, PriceReference, Reference, Refusal, RiskGate, RiskLimits, Ticket, market_reference
from gateway.core.routing import PlanRequest, RouteDecision, RoutingPolicy, plan
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
    OrdType,
    Outbox,
    QueryChild,
    ReplaceRequest,
    SendChild,
    StatusRequest,
    Strategy,
    TimeInForce,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument, validate_new, validate_replace

_LAST_PX_PLACES = Decimal("0.00000001")
_SWEEP_NS = 1_000_000_000  # finished parents leave memory in batches at most this far apart
_NEVER_NS = 2**63 - 1
# A child waits for its first answer up to this many child timeouts while the venue is still answering children
# sent before it (its answer is then queued behind theirs); then it is queried all the same.
QUEUE_PATIENCE = 6


@dataclasses.dataclass(frozen=True, slots=True)
class Routine:
    """A notice of ordinary engine housekeeping (plain string notices are anomalies worth a warning)."""

    text: str

    def __str__(self) -> str:
        return self.text


class IdSource:
    """OrderIDs, ExecIDs and child ClOrdIDs, unique across restarts through a per-boot prefix."""

    def __init__(self, boot: str) -> None:
        self._boot = boot
        self._orders = itertools.count(1)
        self._execs = itertools.count(1)
        self._children = itertools.count(1)

    def order_id(self) -> str:
        return f"{self._boot}-O{next(self._orders)}"

    def exec_id(self) -> str:
        return f"{self._boot}-E{next(self._execs)}"

    def child_id(self) -> str:
        return f"{self._boot}-C{next(self._children)}"


@dataclasses.dataclass(frozen=True, slots=True)
class StateChange:
    """A parent order moved from one OrdStatus to another (for logs and the audit trail)."""

    order_id: str
    cl_ord_id: str
    old: OrdStatus | None
    new: OrdStatus
    cum_qty: int
    leaves_qty: int


class OrderEngine:
    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        venues: Mapping[str, VenueInfo],
        market: MarketView,
        ids: IdSource,
        clock: Clock,
        policy: RoutingPolicy = RoutingPolicy(),
        max_rounds: int = 20,
        max_venue_rejects: int = 1,
        learning: LearningConfig = LearningConfig(),
        child_timeout_ns: int = 5_000_000_000,
        status_waits: int = 3,
        retain_finished_ns: int = 30_000_000_000,
        final_states_kept: int = 10_000,
        venue_down_timeout_ns: int = 30_000_000_000,
        risk: RiskLimits = RiskLimits(),
        breaker: BreakerPolicy = DEFAULT_POLICY,
    ) -> None:
        self.instruments = dict(instruments)
        self.venues: dict[str, VenueInfo] = dict(venues)
        self.market = market
        self.ids = ids
        self.clock = clock
        self.policy = policy
        self.max_rounds = max_rounds
        self.max_venue_rejects = max_venue_rejects
        self.child_timeout_ns = child_timeout_ns  # a child the venue has not answered that long is queried
        # A venue that resends what we missed gets this many status answers ahead of its reports before the
        # difference is booked from the answer alone.
        self.status_waits = status_waits
        self.retain_finished_ns = retain_finished_ns  # how long a finished parent stays for late venue reports
        self.venue_down_timeout_ns = venue_down_timeout_ns  # then a down venue's children are held as in doubt
        self.planner: Callable[..., RouteDecision] = plan  # recovery replays recorded decisions in its place
        self.risk = RiskGate(risk, {symbol: i.tick for symbol, i in self.instruments.items()})
        self.reference = self.market_reference  # recovery replays recorded references in its place
        self.learning = VenueLearning(
            [n for n, v in venues.items() if v.kind is VenueKind.LIT],
            [n for n, v in venues.items() if v.kind is VenueKind.DARK],
            learning,
        )
        self.parents: dict[str, ParentOrder] = {}
        self._by_cl_ord_id: dict[tuple[str, str], ParentOrder] = {}
        self._children: dict[str, ChildOrder] = {}
        self._resting_dark: list[ParentOrder] = []  # parents with a dark deadline set
        self._unanswered: dict[str, ChildOrder] = {}  # children the venue has not reported on yet
        self._reports_behind: dict[str, ChildOrder] = {}  # children whose status showed fills not yet reported
        self.finished = FinalStates(final_states_kept)  # orders that left memory, for status and duplicates
        self._finished: deque[ParentOrder] = deque()  # parents final with no child live, oldest first
        self._unsettled: dict[str, ParentOrder] = {}  # the others: every parent live or with a child live
        self._down_since: dict[str, int | None] = {}  # venue -> when it went down (None: its children are held)
        self.in_doubt: dict[str, ChildOrder] = {}  # children held at a venue that stayed down
        self.closing: str | None = None  # the gateway is stopping: every parent ends once its children are out
        self.halts: set[Halt] = set()  # kill switches in force until resumed
        self.breakers = Breakers(venues, breaker)  # venues that keep failing leave routing for a while
        self._heard_ns: dict[str, int] = {}  # venue -> when its last execution report was stepped
        self._answered_sent_ns: dict[str, int] = {}  # venue -> the newest sent_ns of a child it has answered
        self._patient_until: dict[str, int] = {}  # unanswered child -> when to look again (it is in a queue)
        # No on_timer before this can change anything: every step that sets a deadline lowers it, on_timer sets it
        # again from what is left. Read without the caller's lock, so a tick reads it at most one step late.
        self.timer_due_ns = 0

    def order_id_for(self, session: str, cl_ord_id: str) -> str | None:
        """The OrderID of the parent any of whose ClOrdIDs this is, if known."""
        parent = self._by_cl_ord_id.get((session, cl_ord_id)) or self.finished.get(session, cl_ord_id)
        return parent.order_id if parent else None

    def child(self, cl_ord_id: str) -> ChildOrder | None:
        return self._children.get(cl_ord_id)

    def parent_of_child(self, cl_ord_id: str) -> str | None:
        """The OrderID of the parent a child ClOrdID (or a child cancel's ClOrdID) belongs to."""
        child = self._children.get(cl_ord_id)
        return child.parent_id if child else None

    # --- OMS requests -------------------------------------------------------------------

    def on_new_order(self, order: NewOrder, now_ns: int | None = None) -> Outbox:
        """`now_ns`: when the order arrived (its record's time, so a replay checks the throttle alike)."""
        out = Outbox()
        if self._answer_possible_duplicate(order, out):
            return out
        key = (order.session, order.cl_ord_id)
        rejection = validate_new(
            order, self.instruments, self.venues, key in self._by_cl_ord_id or key in self.finished
        )
        if rejection:
            out.add(
                self._reject_report(
                    order.session,
                    order.cl_ord_id,
                    order.symbol,
                    order.side,
                    order.qty,
                    rejection.reason,
                    rejection.text,
                    order,
                )
            )
            return out
        ticket = Ticket(
            order.session,
            order.symbol,
            order.side,
            order.qty,
            order.qty,
            order.ord_type,
            order.price,
            self.clock.now_ns() if now_ns is None else now_ns,
        )
        lookup = _Lookup(self, order.session, order.cl_ord_id, order.symbol, order.side, out)
        refusal = (
            self._halted(order.session, order.symbol, order.ex_destination)
            or self._tripped(order.ex_destination)
            or self.risk.check(ticket, lambda: self._exposure(order.session, None), lookup)
        )
        if refusal:
            out.add(
                self._reject_report(
                    order.session,
                    order.cl_ord_id,
                    order.symbol,
                    order.side,
                    order.qty,
                    refusal.reason,
                    refusal.text,
                    order,
                    refusal.limit,
                )
            )
            return out
        self.risk.accepted(ticket)
        parent = ParentOrder.accept(self.ids.order_id(), order)
        parent.risk_px = lookup.unit(order.price)
        self.parents[parent.order_id] = parent
        self._unsettled[parent.order_id] = parent
        self._by_cl_ord_id[(order.session, order.cl_ord_id)] = parent
        out.decisions.append(StateChange(parent.order_id, parent.cl_ord_id, None, OrdStatus.NEW, 0, parent.qty))
        out.add(self._report(parent, ExecType.NEW))
        self._work(parent, out)
        return out

    def on_invalid_order(self, invalid: InvalidOrder) -> Outbox:
        out = Outbox()
        if self._answer_possible_duplicate(invalid, out):
            return out
        out.add(
            self._reject_report(
                invalid.session,
                invalid.cl_ord_id,
                invalid.symbol,
                invalid.side,
                invalid.qty,
                invalid.reason,
                invalid.text,
                None,
            )
        )
        return out

    def on_cancel(self, request: CancelRequest | InvalidChange) -> Outbox:
        out = Outbox()
        if isinstance(request, InvalidChange):
            return self._invalid_change(request, out)
        parent = self._find_for_change(request, "1", out)
        if parent is None:
            return out
        if request.symbol != parent.symbol or request.side is not parent.side:
            out.add(
                self._cancel_reject(
                    parent, request, "1", CxlRejReason.OTHER, "a cancel must name the order's Symbol and Side"
                )
            )
            return out
        self._begin_change(parent, request, out)
        return out

    def on_replace(self, request: ReplaceRequest | InvalidChange, now_ns: int | None = None) -> Outbox:
        """A replace is checked against the pre-trade limits as the new order it would make."""
        out = Outbox()
        if isinstance(request, InvalidChange):
            return self._invalid_change(request, out)
        parent = self._find_for_change(request, "2", out)
        if parent is None:
            return out
        if request.symbol != parent.symbol or request.side is not parent.side:
            out.add(
                self._cancel_reject(parent, request, "2", CxlRejReason.OTHER, "a replace cannot change Symbol or Side")
            )
            return out
        rejection = validate_replace(request, self.instruments[parent.symbol], parent.cum_qty)
        if rejection:
            out.add(self._cancel_reject(parent, request, "2", CxlRejReason.OTHER, rejection.text))
            return out
        ticket = Ticket(
            request.session,
            parent.symbol,
            parent.side,
            request.qty,
            request.qty - parent.cum_qty,
            request.ord_type,
            request.price,
            self.clock.now_ns() if now_ns is None else now_ns,
            replace=True,
        )
        lookup = _Lookup(self, request.session, request.cl_ord_id, parent.symbol, parent.side, out)
        refusal = (
            self._halted(request.session, parent.symbol, parent.ex_destination)
            or self._tripped(parent.ex_destination)
            or self.risk.check(ticket, lambda: self._exposure(request.session, parent), lookup)
        )
        if refusal:
            out.add(self._cancel_reject(parent, request, "2", CxlRejReason.OTHER, refusal.text, refusal.limit))
            return out
        self.risk.accepted(ticket)
        parent.replace_risk_px = lookup.unit(request.price)
        self._begin_change(parent, request, out)
        return out

    def on_status_request(self, request: StatusRequest) -> Outbox:
        out = Outbox()
        parent = self._by_cl_ord_id.get((request.session, request.cl_ord_id))
        final = self.finished.get(request.session, request.cl_ord_id) if parent is None else None
        if final is not None:
            out.add(dataclasses.replace(final, cl_ord_id=request.cl_ord_id, exec_id=self.ids.exec_id()))
        elif parent is None:
            out.add(
                ExecutionReport(
                    session=request.session,
                    order_id="NONE",
                    cl_ord_id=request.cl_ord_id,
                    exec_id=self.ids.exec_id(),
                    exec_type=ExecType.ORDER_STATUS,
                    ord_status=OrdStatus.REJECTED,
                    symbol=request.symbol,
                    side=request.side,
                    order_qty=0,
                    ord_type=None,
                    price=None,
                    tif=None,
                    cum_qty=0,
                    leaves_qty=0,
                    avg_px=Decimal(0),
                    ord_rej_reason=OrdRejReason.UNKNOWN_ORDER,
                    text=f"unknown order ClOrdID {request.cl_ord_id}",
                )
            )
        else:
            out.add(self._report(parent, ExecType.ORDER_STATUS, cl_ord_id=request.cl_ord_id))
        return out

    # --- venue events -------------------------------------------------------------------

    def on_venue_report(self, report: VenueReport) -> Outbox:
        out = Outbox()
        self._heard_ns[report.venue] = self.clock.now_ns()
        child = self._children.get(report.cl_ord_id)
        if child is None or child.venue != report.venue:
            out.decisions.append(f"ignored report for unknown child {report.cl_ord_id} from {report.venue}")
            return out
        if report.exec_id in child.exec_ids:
            return out
        child.exec_ids.append(report.exec_id)
        parent = self.parents[child.parent_id]
        now = self.clock.now_ns()
        if report.exec_type is ExecType.REJECTED:
            self._breaker(
                self.breakers.failure(
                    child.venue, now, f"rejected child {child.cl_ord_id}: {report.text or 'no reason given'}"
                ),
                out,
            )
        elif not child.acked or report.exec_type is ExecType.TRADE:
            self._breaker(self.breakers.success(child.venue, now, child.cl_ord_id), out)
        if not child.acked:
            child.acked = True
            self._unanswered.pop(child.cl_ord_id, None)
            self._patient_until.pop(child.cl_ord_id, None)
            if child.sent_ns > self._answered_sent_ns.get(child.venue, -1):
                self._answered_sent_ns[child.venue] = child.sent_ns
            self.learning.child_acked(child.venue, now, child.sent_ns)
        if report.exec_type is ExecType.TRADE and report.last_qty > 0 and report.last_px is not None:
            self._fill(parent, child, report, out)
        if report.exec_type is ExecType.ORDER_STATUS and self._reconcile(parent, child, report, out):
            return out  # its reports are behind its status: the child stays as it is until they arrive
        if report.exec_type is ExecType.REJECTED:
            self._child_rejected(parent, child, report.text or "rejected by venue")
        elif report.ord_status in TERMINAL or report.exec_type in (
            ExecType.CANCELED,
            ExecType.EXPIRED,
            ExecType.DONE_FOR_DAY,
        ):
            child.status = report.ord_status if report.ord_status in TERMINAL else OrdStatus.CANCELED
        elif child.status is OrdStatus.PENDING_NEW:
            child.status = OrdStatus.NEW
        if child.cum_qty >= child.spec.qty:
            child.status = OrdStatus.FILLED
        if child.spec.cancel_on_ack and child.live:
            self._cancel_child(child, out)  # an emulated IOC: it ends when the venue acks this cancel
        if child.in_doubt:
            self._resolve_doubt(parent, child, out)
        if not child.live:
            self._child_done(child)
            self._work(parent, out)
        return out

    def on_child_rejected(self, venue: str, cl_ord_id: str, text: str) -> Outbox:
        """A child refused before any execution report: session reject, business reject, send failure."""
        out = Outbox()
        child = self._children.get(cl_ord_id)
        if child is None or child.venue != venue or not child.live:
            return out
        parent = self.parents[child.parent_id]
        self._breaker(self.breakers.failure(venue, self.clock.now_ns(), f"refused child {cl_ord_id}: {text}"), out)
        self._child_rejected(parent, child, text)
        if child.in_doubt:
            self._resolve_doubt(parent, child, out)
        self._child_done(child)
        self._work(parent, out)
        return out

    def on_venue_status(self, venue: str, connected: bool) -> Outbox:
        out = Outbox()
        info = self.venues.get(venue)
        if info is None or info.connected == connected:
            return out
        self.venues[venue] = dataclasses.replace(info, connected=connected)
        if connected:
            self._down_since.pop(venue, None)
        else:
            self._down_since[venue] = down = self.clock.now_ns()
            self._due(down + self.venue_down_timeout_ns)
            if self.closing is None:  # the gateway's own stop logs every venue out
                self._breaker(self.breakers.failure(venue, self.clock.now_ns(), "session disconnected"), out)
        if connected:
            # Reports sent while the session was down may be lost (sequence numbers reset on logon).
            now = self.clock.now_ns()
            for parent in self.parents.values():
                for child in parent.live_children():
                    if child.venue == venue:
                        self._query(child, now, out)
            for parent in list(self.parents.values()):
                if not parent.live:
                    continue
                if parent.pending is None and not parent.live_children():
                    self._work(parent, out)
                elif parent.pending is not None:
                    self._cancel_children(parent, out)  # cancels that could not be sent while it was down
        return out

    def on_timer(self, now_ns: int) -> Outbox:
        """Time passing: mark fills to the current mids, pull dark children whose resting time is up, and
        query children a venue has not answered within child_timeout_ns."""
        out = Outbox()
        for symbol in self.instruments:
            nbbo_mid = self.market.nbbo(symbol, self.venues).mid
            for venue in self.venues:
                mid = self._venue_mid(venue, symbol, nbbo_mid)
                if mid is not None:
                    self.learning.mid(f"{venue}/{symbol}", now_ns, mid)
        for parent in self._resting_dark:
            if parent.dark_deadline_ns > now_ns:  # type: ignore[operator]
                continue
            due = [
                child for child in _live_dark(parent) if not child.cancel_sent and self.venues[child.venue].connected
            ]
            if due:
                out.decisions.append(
                    Routine(
                        f"dark resting time is up for {parent.order_id}: canceling "
                        f"{len(due)} dark child(ren); what is left goes to lit venues"
                    )
                )
                for child in due:
                    self._cancel_child(child, out)
        self._resting_dark = [p for p in self._resting_dark if _live_dark(p)]
        for child in list(self._reports_behind.values()):
            if not child.live:
                del self._reports_behind[child.cl_ord_id]
            elif now_ns - (child.queried_ns or 0) >= self.child_timeout_ns and self.venues[child.venue].connected:
                self._query(child, now_ns, out)
        for child in list(self._unanswered.values()):
            if not child.live or child.acked:
                del self._unanswered[child.cl_ord_id]
                self._patient_until.pop(child.cl_ord_id, None)
            elif (
                now_ns - (child.queried_ns or child.sent_ns) >= self.child_timeout_ns
                and self.venues[child.venue].connected
                and not self._queued(child, now_ns)
            ):
                waited = f"{(now_ns - child.sent_ns) // 1_000_000} ms"
                out.decisions.append(
                    f"{child.venue} has not answered child {child.cl_ord_id} for {waited}: asking where it stands"
                )
                # A silent child counts once, and only against a venue silent since it went out: reports still
                # coming in from it mean a queue (a burst, ours or the venue's), not a venue that stopped answering.
                if child.queried_ns is None and self._heard_ns.get(child.venue, -1) < child.sent_ns:
                    self._breaker(
                        self.breakers.failure(child.venue, now_ns, f"child {child.cl_ord_id} unanswered for {waited}"),
                        out,
                    )
                self._query(child, now_ns, out)
        for change in self.breakers.tick(now_ns):
            self._breaker(change, out)
        self._hold_in_doubt(now_ns, out)
        self._forget_finished(now_ns, out)
        self.timer_due_ns = self._next_timer_ns()
        return out

    def _queued(self, child: ChildOrder, now_ns: int) -> bool:
        """Is this unanswered child's answer most likely queued behind others (a burst, ours or the venue's)? If so,
        note when to look at it again.

        So when the venue has answered within the last timeout, but no child sent at or after this one: a venue
        answers one session's orders in the order it got them. Asking it then would only add to the queue, so
        the child is looked at again a fifth of a timeout later, for up to QUEUE_PATIENCE timeouts. A venue that
        went silent, or that answered a later child, is asked at once."""
        timeout = self.child_timeout_ns
        if (
            child.queried_ns is not None
            or now_ns - child.sent_ns >= QUEUE_PATIENCE * timeout
            or self._heard_ns.get(child.venue, -1) <= now_ns - timeout
            or self._answered_sent_ns.get(child.venue, -1) >= child.sent_ns
        ):
            self._patient_until.pop(child.cl_ord_id, None)
            return False
        self._patient_until[child.cl_ord_id] = now_ns + max(timeout // 5, 1)
        return True

    def _next_timer_ns(self) -> int:
        """The earliest time on_timer can do anything with the state as it is (far in the future: nothing)."""
        timeout = self.child_timeout_ns
        due = [
            *(p.dark_deadline_ns for p in self._resting_dark if p.dark_deadline_ns is not None),
            *((c.queried_ns or 0) + timeout for c in self._reports_behind.values()),
            *(
                max((c.queried_ns or c.sent_ns) + timeout, self._patient_until.get(c.cl_ord_id, 0))
                for c in self._unanswered.values()
            ),
            *(since + self.venue_down_timeout_ns for since in self._down_since.values() if since is not None),
        ]
        if self._finished:
            due.append(self._finished[0].finished_ns + self._retained_ns())  # type: ignore[operator]
        for later in (self.breakers.next_tick_ns(), self.learning.markouts.next_due_ns()):
            if later is not None:
                due.append(later)
        return min(due, default=_NEVER_NS)

    def _due(self, at_ns: int) -> None:
        """on_timer has something to do from `at_ns` on."""
        if at_ns < self.timer_due_ns:
            self.timer_due_ns = at_ns

    def on_cancel_unsent(self, cl_ord_id: str) -> Outbox:
        """A child cancel could not be sent (venue session down): send it again when the venue is back."""
        child = self._children.get(cl_ord_id)
        if child is not None:
            child.cancel_sent = False
        return Outbox()

    # --- stopping -----------------------------------------------------------------------------

    def on_shutdown(self, text: str) -> Outbox:
        """The gateway is stopping: cancel every live child; each parent ends Canceled with `text` once its
        children are out, and so does any order that arrives meanwhile."""
        self.closing = text
        out = Outbox()
        for parent in list(self.parents.values()):
            if parent.live:
                parent.close_reason = text
                self._cancel_children(parent, out)
                self._work(parent, out)
        return out

    def on_halt(self, halt: Halt) -> Outbox:
        """A kill switch: new orders in scope are refused until resumed; orders in scope end Canceled once their
        children are canceled (a venue halt: children there are canceled and the rest routes elsewhere)."""
        out = Outbox()
        if halt in self.halts:
            return out
        self.halts.add(halt)
        out.decisions.append(f"{halt} in force")
        text = f"canceled: {halt}"
        for parent in list(self.parents.values()):
            if not parent.live:
                continue
            if halt.venue is not None:
                for child in parent.live_children():
                    if child.venue == halt.venue:
                        self._cancel_child(child, out)
            elif halt.covers(parent.session, parent.symbol):
                parent.close_reason = text
                self._cancel_children(parent, out)
                self._work(parent, out)
        return out

    def on_resume(self, halt: Halt) -> Outbox:
        """Lift a kill switch (the one with exactly this scope)."""
        out = Outbox()
        if halt in self.halts:
            self.halts.discard(halt)
            out.decisions.append(f"{halt} lifted")
        return out

    def on_oms_disconnect(self, session: str, text: str) -> Outbox:
        """An OMS session with cancel-on-disconnect went away: its open orders are canceled as at a shutdown."""
        out = Outbox()
        for parent in list(self.parents.values()):
            if parent.live and parent.session == session:
                parent.close_reason = text
                self._cancel_children(parent, out)
                self._work(parent, out)
        return out

    def market_reference(self, symbol: str, side) -> Reference | None:
        """What a price collar and a market order's notional are measured from, now."""
        nbbo = self.market.nbbo(symbol, self.venues)
        return market_reference(nbbo.bid, nbbo.ask, self.risk.limits.reference_prices.get(symbol), symbol, side)

    def exposure(self, session: str) -> tuple[int, Decimal]:
        """The session's open quantity and open notional (its live orders' LeavesQty, valued as checked)."""
        return self._exposure(session, None)

    def working_children(self) -> list[ChildOrder]:
        """Every child still live at a venue."""
        return [child for parent in self._unsettled.values() for child in parent.live_children()]

    def on_left_working(self, text: str) -> Outbox:
        """The gateway stops with children still working: tell each parent's OMS what stays where."""
        out = Outbox()
        for parent in self.parents.values():
            live = parent.live_children()
            if live:
                where = ", ".join(f"{c.leaves_qty} at {c.venue} (child {c.cl_ord_id})" for c in live)
                out.add(self._report(parent, ExecType.ORDER_STATUS, text=f"{text}: still working {where}"))
                out.decisions.append(f"{parent.order_id} ({parent.cl_ord_id}) left working: {where}")
        return out

    # --- internals ------------------------------------------------------------------------

    def _halted(self, session: str, symbol: str, ex_destination: str | None) -> Refusal | None:
        for halt in self.halts:
            if halt.covers(session, symbol) or (ex_destination is not None and halt.venue == ex_destination):
                return Refusal("halt", OrdRejReason.BROKER_OPTION, f"refused: {halt} in force until resumed")
        return None

    def _tripped(self, ex_destination: str | None) -> Refusal | None:
        text = self.breakers.refusal(ex_destination)
        return Refusal("circuit_breaker", OrdRejReason.EXCHANGE_CLOSED, text) if text else None

    def _breaker(self, change: CircuitChange | None, out: Outbox) -> None:
        """Put a breaker's move on record; a venue coming back (half-open, closed) is offered to idle parents."""
        if change is None:
            return
        out.decisions.append(change)
        if change.new is CircuitState.OPEN:
            self._due(change.at_ns + self.breakers.policy.cooldown_ns)
        else:
            for parent in list(self.parents.values()):
                if parent.live and parent.pending is None and not parent.live_children():
                    self._work(parent, out)

    def _fit_breakers(self, decision: RouteDecision, tripped: frozenset[str]) -> RouteDecision:
        """Name the venues left out by their breakers, and send a half-open venue one child only: any further child
        of the plan there is dropped (its quantity is routed again once the parent's children are done)."""
        kept, probes = [], set()
        for spec in decision.children:
            if self.breakers.state(spec.venue) is CircuitState.HALF_OPEN:
                if spec.venue in probes:
                    continue
                probes.add(spec.venue)
            kept.append(spec)
        if not tripped and len(kept) == len(decision.children):
            return decision
        notes = [decision.reason]
        if tripped:
            notes.append(f"circuit breaker keeps out {', '.join(sorted(tripped))}")
        if len(kept) < len(decision.children):
            notes.append("one probe child per half-open venue")
        # Candidates passed on as they are: replace() would otherwise build them (they are built on first read).
        return dataclasses.replace(
            decision, children=tuple(kept), reason="; ".join(notes), candidates=decision.__dict__["_candidates"]
        )

    def _exposure(self, session: str, skip: ParentOrder | None) -> tuple[int, Decimal]:
        qty, notional = 0, ZERO
        for parent in self._unsettled.values():
            if parent.session == session and parent.live and parent is not skip:
                leaves, unit = parent.leaves_qty, parent.risk_px or ZERO
                if isinstance(parent.pending, ReplaceRequest):  # either may stand: the larger counts
                    leaves = max(leaves, parent.pending.qty - parent.cum_qty)
                    unit = max(unit, parent.replace_risk_px or ZERO)
                qty += leaves
                notional += unit * leaves
        return qty, notional

    def _answer_possible_duplicate(
        self, request: NewOrder | InvalidOrder | CancelRequest | ReplaceRequest | InvalidChange, out: Outbox
    ) -> bool:
        """A PossDup/PossResend request whose ClOrdID we already know was seen before (the OMS resent it after a
        restart or a lost sequence number): answer with the order's current status, never act on it twice and
        never reject the order it names."""
        if not request.poss_dup:
            return False
        text = "possible duplicate of a known order: its current status"
        parent = self._by_cl_ord_id.get((request.session, request.cl_ord_id))
        final = self.finished.get(request.session, request.cl_ord_id) if parent is None else None
        if final is not None:
            report = dataclasses.replace(final, cl_ord_id=request.cl_ord_id, exec_id=self.ids.exec_id(), text=text)
        elif parent is not None:
            report = self._report(parent, ExecType.ORDER_STATUS, cl_ord_id=request.cl_ord_id, text=text)
        else:
            return False
        out.decisions.append(
            Routine(
                f"possible duplicate {request.cl_ord_id} from {request.session}: "
                f"answered with the status of {report.order_id}"
            )
        )
        out.add(report)
        return True

    def _invalid_change(self, invalid: InvalidChange, out: Outbox) -> Outbox:
        """A cancel or replace that could not be parsed: a cancel reject with the order's status, if it names one."""
        if self._answer_possible_duplicate(invalid, out):
            return out
        parent = self._by_cl_ord_id.get((invalid.session, invalid.orig_cl_ord_id))
        final = self.finished.get(invalid.session, invalid.orig_cl_ord_id) if parent is None else None
        order_id, status = (
            (parent.order_id, parent.status)
            if parent
            else (final.order_id, final.ord_status)
            if final
            else ("NONE", OrdStatus.REJECTED)
        )
        out.add(
            CancelReject(
                invalid.session,
                order_id,
                invalid.cl_ord_id,
                invalid.orig_cl_ord_id,
                status,
                invalid.response_to,
                CxlRejReason.OTHER,
                invalid.text,
            )
        )
        return out

    def _find_for_change(
        self, request: CancelRequest | ReplaceRequest, response_to: str, out: Outbox
    ) -> ParentOrder | None:
        if self._answer_possible_duplicate(request, out):
            return None
        parent = self._by_cl_ord_id.get((request.session, request.orig_cl_ord_id))
        final = self.finished.get(request.session, request.orig_cl_ord_id) if parent is None else None
        if final is not None:
            out.add(
                CancelReject(
                    request.session,
                    final.order_id,
                    request.cl_ord_id,
                    request.orig_cl_ord_id,
                    final.ord_status,
                    response_to,
                    CxlRejReason.TOO_LATE,
                    f"too late: order is already {final.ord_status.name.lower()}",
                )
            )
            return None
        if parent is None:
            out.add(
                CancelReject(
                    request.session,
                    "NONE",
                    request.cl_ord_id,
                    request.orig_cl_ord_id,
                    OrdStatus.REJECTED,
                    response_to,
                    CxlRejReason.UNKNOWN_ORDER,
                    f"unknown order OrigClOrdID {request.orig_cl_ord_id}",
                )
            )
            return None
        if (request.session, request.cl_ord_id) in self._by_cl_ord_id:
            out.add(
                self._cancel_reject(
                    parent, request, response_to, CxlRejReason.OTHER, f"duplicate ClOrdID {request.cl_ord_id}"
                )
            )
            return None
        if not parent.live:
            out.add(
                self._cancel_reject(
                    parent,
                    request,
                    response_to,
                    CxlRejReason.TOO_LATE,
                    f"too late: order is already {parent.status.name.lower()}",
                )
            )
            return None
        if parent.pending is not None:
            out.add(
                self._cancel_reject(
                    parent,
                    request,
                    response_to,
                    CxlRejReason.PENDING,
                    "a cancel or replace is already pending for this order",
                )
            )
            return None
        return parent

    def _begin_change(self, parent: ParentOrder, request: CancelRequest | ReplaceRequest, out: Outbox) -> None:
        """Accept a cancel or replace: act now if nothing works at a venue, else pull the children first."""
        self._by_cl_ord_id[(request.session, request.cl_ord_id)] = parent
        parent.cl_ord_ids.append(request.cl_ord_id)
        parent.pending = request
        if not parent.live_children():
            self._work(parent, out)
            return
        cancel = isinstance(request, CancelRequest)
        self._set_status(parent, OrdStatus.PENDING_CANCEL if cancel else OrdStatus.PENDING_REPLACE, out)
        out.add(
            self._report(
                parent,
                ExecType.PENDING_CANCEL if cancel else ExecType.PENDING_REPLACE,
                cl_ord_id=request.cl_ord_id,
                orig_cl_ord_id=request.orig_cl_ord_id,
                text=self._pending_in_doubt(parent),
            )
        )
        self._cancel_children(parent, out)

    def _fill(self, parent: ParentOrder, child: ChildOrder, report: VenueReport, out: Outbox) -> None:
        assert report.last_px is not None
        qty = min(report.last_qty, parent.qty - parent.cum_qty)
        if qty < report.last_qty:
            out.decisions.append(
                f"OVERFILL from {child.venue}: child {child.cl_ord_id} filled {report.last_qty}, "
                f"parent {parent.order_id} had {parent.qty - parent.cum_qty} left"
            )
        if qty <= 0:
            return
        child.cum_qty += qty
        child.notional += report.last_px * qty
        self.learning.child_filled(
            f"{child.venue}/{parent.symbol}",
            child.venue,
            parent.side,
            qty,
            report.last_px,
            self.clock.now_ns(),
            child.sent_mid,
        )
        horizons = self.learning.markouts.horizons_ns  # horizon 0 is marked at once to the mid at sending, if known
        self._due(self.clock.now_ns() + horizons[1 if child.sent_mid is not None and len(horizons) > 1 else 0])
        old = parent.status
        parent.apply_fill(qty, report.last_px)
        if parent.status is not old:
            out.decisions.append(self._change(parent, old))
        out.add(self._report(parent, ExecType.TRADE, last_qty=qty, last_px=report.last_px, last_mkt=child.venue))

    def _reconcile(self, parent: ParentOrder, child: ChildOrder, report: VenueReport, out: Outbox) -> bool:
        """An answer to a status query. Fills it shows that no report told us of are booked now, unless the venue
        resends missed reports: then they are waited for (True), since booking them from the answer would report
        one execution at the venue's average price instead of each one as it happened."""
        child.queried_ns = None
        unknown = report.ord_status is OrdStatus.REJECTED
        missing = (report.cum_qty or 0) - child.cum_qty
        if not unknown and missing <= 0:
            child.status_ahead = 0
            self._reports_behind.pop(child.cl_ord_id, None)
            return False
        if self.venues[child.venue].resends and child.status_ahead < self.status_waits:
            # The order or its reports may still be on their way (a resend after a reconnect): the child keeps
            # its quantity, which is never routed again while it may still fill.
            child.status_ahead += 1
            child.queried_ns = self.clock.now_ns()  # asked again child_timeout_ns from now
            self._reports_behind[child.cl_ord_id] = child
            self._due(child.queried_ns + self.child_timeout_ns)
            what = "does not know it yet" if unknown else f"shows {missing} more filled than its reports"
            out.decisions.append(
                Routine(
                    f"{child.venue} {what} on child {child.cl_ord_id}: waiting "
                    f"({child.status_ahead} of {self.status_waits})"
                )
            )
            return True
        self._reports_behind.pop(child.cl_ord_id, None)
        if unknown:  # the venue does not know it: ended below, and
            child.rejected = True  # no lesson about the venue's liquidity
            out.decisions.append(
                f"{child.venue} does not know child {child.cl_ord_id}: it never arrived; "
                f"its {child.leaves_qty} go back to the parent"
            )
            return False
        price = child.spec.price
        if report.avg_px is not None and report.cum_qty is not None:
            price = ((report.avg_px * report.cum_qty - child.notional) / missing).quantize(_LAST_PX_PLACES)
        if price is None:
            out.decisions.append(
                f"{child.venue} reports {missing} more filled on child {child.cl_ord_id} with no price to book them at"
            )
            return False
        out.decisions.append(
            f"{child.venue} reports {missing} filled on child {child.cl_ord_id} that no "
            f"execution report told us of: booked at {price}, the venue's average for them"
        )
        self._fill(parent, child, dataclasses.replace(report, last_qty=missing, last_px=price), out)
        return False

    def _child_rejected(self, parent: ParentOrder, child: ChildOrder, text: str) -> None:
        child.status = OrdStatus.REJECTED
        child.rejected = True
        count = parent.venue_rejects.get(child.venue, 0) + 1
        parent.venue_rejects[child.venue] = count
        parent.last_reject = f"{child.venue} rejected the child order: {text}"

    def _work(self, parent: ParentOrder, out: Outbox) -> None:
        """Move a parent on once nothing of it is working at a venue."""
        if parent.live_children():
            return
        if isinstance(parent.pending, CancelRequest):
            self._finish_cancel(parent, out)
            return
        if isinstance(parent.pending, ReplaceRequest):
            self._finish_replace(parent, out)
            return
        if parent.leaves_qty == 0:
            self._settle(parent)
            return
        reason = parent.close_reason or self.closing
        if reason is not None:
            self._close(parent, out, reason)
            return
        if parent.rounds >= self.max_rounds:
            self._end(parent, out, f"routing stopped after {parent.rounds} rounds")
            return
        if parent.ex_destination is not None and parent.tif is not TimeInForce.DAY and parent.rounds:
            # The OMS chose the venue and asked for an immediate answer: that venue's answer is final.
            self._end(
                parent,
                out,
                parent.last_reject
                or f"{parent.ex_destination} filled {parent.cum_qty} of {parent.qty} {parent.tif.name}",
            )
            return
        instrument = self.instruments[parent.symbol]
        tripped = self.breakers.blocked()
        request = PlanRequest(
            order_id=parent.order_id,
            symbol=parent.symbol,
            side=parent.side,
            qty=parent.leaves_qty,
            ord_type=parent.ord_type,
            limit=parent.price,
            tif=parent.tif,
            urgency=parent.urgency,
            ex_destination=parent.ex_destination,
            dark_done=parent.dark_done,
            dark_again=self._dark_again(parent),
            excluded=frozenset(v for v, n in parent.venue_rejects.items() if n >= self.max_venue_rejects),
            halted=frozenset(h.venue for h in self.halts if h.venue is not None),
            tripped=tripped,
            lot=instrument.lot,
            strategy=parent.strategy or self.policy.default_strategy,
        )
        decision = self._fit_breakers(
            self.planner(request, self.market, self.venues, self.policy, self.learning), tripped
        )
        out.decisions.append(decision)
        if decision.strategy is Strategy.COST and decision.phase == "take":
            self.learning.routed([spec.venue for spec in decision.children], parent.rounds == 0)
        if not decision.children:
            if parent.last_reject is not None or parent.tif is not TimeInForce.DAY or parent.ord_type is OrdType.MARKET:
                self._end(parent, out, parent.last_reject or decision.reason)
            # A day limit order with nowhere to go waits for a venue to connect.
            return
        now = self.clock.now_ns()
        if decision.phase == "dark":
            if any(spec.tif is TimeInForce.DAY for spec in decision.children):
                if not parent.dark_done:  # a pool tried again rests only until the first round's time is up
                    parent.dark_deadline_ns = now + self.policy.dark_timeout_ns
                if parent not in self._resting_dark:
                    self._resting_dark.append(parent)
                if parent.dark_deadline_ns is not None:
                    self._due(parent.dark_deadline_ns)
            parent.dark_done = True
        parent.rounds += 1
        nbbo_mid = decision.nbbo.mid
        for spec in decision.children:
            child = ChildOrder(
                self.ids.child_id(),
                parent.order_id,
                spec.venue,
                parent.symbol,
                parent.side,
                spec,
                sent_ns=now,
                sent_mid=self._venue_mid(spec.venue, parent.symbol, nbbo_mid),
            )
            parent.children[child.cl_ord_id] = child
            self._children[child.cl_ord_id] = child
            self._unanswered[child.cl_ord_id] = child
            self._due(now + self.child_timeout_ns)
            self.learning.child_sent(spec.venue, spec.qty, now)
            self.breakers.probe_sent(spec.venue, child.cl_ord_id)
            out.add(SendChild(spec.venue, child.cl_ord_id, parent.order_id, parent.symbol, parent.side, spec))

    def _dark_again(self, parent: ParentOrder) -> frozenset[str]:
        """The pools of the parent's last resting dark round that filled all they were sent, while its resting
        time is not up: they may hold more, so the rest is offered to them before it goes lit."""
        deadline = parent.dark_deadline_ns
        if deadline is None or self.clock.now_ns() >= deadline:
            return frozenset()
        dark = [child for child in parent.children.values() if child.spec.purpose == "dark"]
        last = max(child.sent_ns for child in dark)
        return frozenset(child.venue for child in dark if child.sent_ns == last and child.cum_qty >= child.spec.qty)

    def _venue_mid(self, venue: str, symbol: str, nbbo_mid: Decimal | None) -> Decimal | None:
        """What fills at this venue are marked to: a lit venue's own mid (the venue whose quotes move first
        after a fill is the one that selected against it), the NBBO mid for a dark pool or a venue with no
        two-sided book."""
        if self.venues[venue].kind is not VenueKind.LIT:
            return nbbo_mid
        book = self.market.book(venue, symbol)
        if book is None or not book.bids or not book.asks:
            return nbbo_mid
        return (book.bids[0].price + book.asks[0].price) / 2

    def _query(self, child: ChildOrder, now_ns: int, out: Outbox) -> None:
        child.queried_ns = now_ns
        self._due(now_ns + self.child_timeout_ns)
        out.add(QueryChild(child.venue, child.cl_ord_id, child.symbol, child.side))

    def _settle(self, parent: ParentOrder) -> None:
        """Queue a parent to leave memory once it is final and no child of it is live."""
        if parent.finished_ns is None and not parent.live and not parent.live_children():
            parent.finished_ns = self.clock.now_ns()
            self._finished.append(parent)
            self._due(parent.finished_ns + self._retained_ns())
            del self._unsettled[parent.order_id]

    def _forget_finished(self, now_ns: int, out: Outbox) -> None:
        """Drop parents finished over retain_finished_ns ago, with their children; their final states stay
        in the bounded cache. Swept in batches (the oldest due a second or more) to keep notices few."""
        due = now_ns - self.retain_finished_ns
        queue = self._finished
        if not queue or queue[0].finished_ns > due - min(self.retain_finished_ns, _SWEEP_NS):  # type: ignore[operator]
            return
        forgotten = []
        while queue and queue[0].finished_ns <= due:  # type: ignore[operator]
            forgotten.append(self._forget(queue.popleft()))
        out.decisions.append(
            Routine(
                f"{len(forgotten)} finished order(s) left memory ({forgotten[0]} .. "
                f"{forgotten[-1]}); status requests are answered from their final state"
            )
        )

    def _retained_ns(self) -> int:
        """How long after it finished a parent is swept from memory at the latest (see _forget_finished)."""
        return self.retain_finished_ns + min(self.retain_finished_ns, _SWEEP_NS)

    def _forget(self, parent: ParentOrder) -> str:
        del self.parents[parent.order_id]
        for cl_ord_id in parent.cl_ord_ids:
            self._by_cl_ord_id.pop((parent.session, cl_ord_id), None)
        for child in parent.children.values():
            self._children.pop(child.cl_ord_id, None)
            self._unanswered.pop(child.cl_ord_id, None)
            self._patient_until.pop(child.cl_ord_id, None)
            self._reports_behind.pop(child.cl_ord_id, None)
            for cancel_id in child.cancel_ids:
                self._children.pop(cancel_id, None)
        # The ExecID is set when a status request is answered from it.
        self.finished.add(self._report(parent, ExecType.ORDER_STATUS, exec_id=""), tuple(parent.cl_ord_ids))
        return parent.order_id

    def _hold_in_doubt(self, now_ns: int, out: Outbox) -> None:
        """Children at a venue down past venue_down_timeout_ns may still fill there: hold them (they keep
        their parent's quantity, so nothing re-routes it) and tell the OMS, once per outage."""
        for venue, since in self._down_since.items():
            if since is None or now_ns - since < self.venue_down_timeout_ns:
                continue
            self._down_since[venue] = None
            for parent in self.parents.values():
                held = [child for child in parent.live_children() if child.venue == venue]
                if not held:
                    continue
                for child in held:
                    child.in_doubt = True
                    self.in_doubt[child.cl_ord_id] = child
                qty = sum(child.leaves_qty for child in held)
                text = (
                    f"{venue} down for {(now_ns - since) // 1_000_000} ms: {qty} in doubt there "
                    f"(child {', '.join(c.cl_ord_id for c in held)}), held until {venue} answers"
                )
                out.decisions.append(f"{parent.order_id}: {text}")
                out.add(self._report(parent, ExecType.ORDER_STATUS, text=text))

    def _resolve_doubt(self, parent: ParentOrder, child: ChildOrder, out: Outbox) -> None:
        """The venue answered for a child held in doubt."""
        child.in_doubt = False
        del self.in_doubt[child.cl_ord_id]
        text = (
            f"{child.venue} answered for child {child.cl_ord_id}: {child.status.name.lower()}, filled "
            f"{child.cum_qty} of {child.spec.qty}; nothing there is in doubt any more"
        )
        out.decisions.append(f"{parent.order_id}: {text}")
        out.add(self._report(parent, ExecType.ORDER_STATUS, text=text))

    def _pending_in_doubt(self, parent: ParentOrder) -> str | None:
        held = [child for child in parent.live_children() if child.in_doubt]
        if not held:
            return None
        venues = ", ".join(sorted({child.venue for child in held}))
        return (
            f"pending until {venues} answers: {sum(child.leaves_qty for child in held)} in doubt "
            f"at a venue that is down"
        )

    def _close(self, parent: ParentOrder, out: Outbox, text: str) -> None:
        """End a parent whose children are all out, because the gateway stops or its OMS went away."""
        old = parent.status
        parent.status = OrdStatus.CANCELED
        out.decisions.append(self._change(parent, old))
        out.add(self._report(parent, ExecType.CANCELED, text=text))
        self._settle(parent)

    def _child_done(self, child: ChildOrder) -> None:
        self.learning.child_done(child.venue, child.spec.qty, min(child.cum_qty, child.spec.qty), not child.rejected)
        self._settle(self.parents[child.parent_id])

    def _end(self, parent: ParentOrder, out: Outbox, text: str) -> None:
        """Close the unfilled remainder: Expired for IOC/FOK/market, Canceled for a day order."""
        old = parent.status
        expire = parent.tif is not TimeInForce.DAY or parent.ord_type is OrdType.MARKET
        parent.status = OrdStatus.EXPIRED if expire else OrdStatus.CANCELED
        out.decisions.append(self._change(parent, old))
        out.add(self._report(parent, ExecType.EXPIRED if expire else ExecType.CANCELED, text=text))
        self._settle(parent)

    def _cancel_children(self, parent: ParentOrder, out: Outbox) -> None:
        for child in parent.live_children():
            self._cancel_child(child, out)

    def _cancel_child(self, child: ChildOrder, out: Outbox) -> None:
        if child.cancel_sent:
            return
        child.cancel_sent = True
        cancel_id = self.ids.child_id()
        # The venue's Canceled report carries the cancel's ClOrdID, so it must find the child too.
        self._children[cancel_id] = child
        child.cancel_ids += (cancel_id,)
        out.add(CancelChild(child.venue, cancel_id, child.cl_ord_id, child.symbol, child.side, child.spec.qty))

    def _finish_cancel(self, parent: ParentOrder, out: Outbox) -> None:
        request = parent.pending
        assert isinstance(request, CancelRequest)
        parent.pending = None
        if parent.cum_qty >= parent.qty:
            parent.status = OrdStatus.FILLED
            out.add(self._cancel_reject(parent, request, "1", CxlRejReason.TOO_LATE, "too late: order filled"))
            self._settle(parent)
            return
        old = parent.status
        parent.status = OrdStatus.CANCELED
        out.decisions.append(self._change(parent, old))
        out.add(
            self._report(parent, ExecType.CANCELED, cl_ord_id=request.cl_ord_id, orig_cl_ord_id=request.orig_cl_ord_id)
        )
        parent.cl_ord_id = request.cl_ord_id
        self._settle(parent)

    def _finish_replace(self, parent: ParentOrder, out: Outbox) -> None:
        request = parent.pending
        assert isinstance(request, ReplaceRequest)
        parent.pending = None
        if request.qty <= parent.cum_qty or parent.cum_qty >= parent.qty:
            parent.status = parent.working_status()
            out.add(
                self._cancel_reject(
                    parent, request, "2", CxlRejReason.TOO_LATE, f"too late: {parent.cum_qty} already filled"
                )
            )
            self._work(parent, out)
            return
        old = parent.status
        parent.apply_replace(request)
        out.decisions.append(self._change(parent, old))
        out.add(self._report(parent, ExecType.REPLACED, orig_cl_ord_id=request.orig_cl_ord_id))
        self._work(parent, out)

    def _set_status(self, parent: ParentOrder, status: OrdStatus, out: Outbox) -> None:
        old = parent.status
        parent.status = status
        out.decisions.append(self._change(parent, old))

    def _change(self, parent: ParentOrder, old: OrdStatus | None) -> StateChange:
        return StateChange(parent.order_id, parent.cl_ord_id, old, parent.status, parent.cum_qty, parent.leaves_qty)

    def _report(
        self,
        parent: ParentOrder,
        exec_type: ExecType,
        *,
        cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None,
        last_qty: int = 0,
        last_px: Decimal | None = None,
        last_mkt: str | None = None,
        text: str | None = None,
        exec_id: str | None = None,
    ) -> ExecutionReport:
        return ExecutionReport(
            session=parent.session,
            order_id=parent.order_id,
            cl_ord_id=cl_ord_id or parent.cl_ord_id,
            exec_id=self.ids.exec_id() if exec_id is None else exec_id,
            exec_type=exec_type,
            ord_status=parent.status,
            symbol=parent.symbol,
            side=parent.side,
            order_qty=parent.qty,
            ord_type=parent.ord_type,
            price=parent.price,
            tif=parent.tif,
            cum_qty=parent.cum_qty,
            leaves_qty=parent.leaves_qty,
            avg_px=parent.avg_px,
            orig_cl_ord_id=orig_cl_ord_id,
            last_qty=last_qty,
            last_px=last_px,
            last_mkt=last_mkt,
            text=text,
        )

    def _reject_report(
        self,
        session: str,
        cl_ord_id: str,
        symbol: str,
        side,
        qty: int,
        reason: OrdRejReason,
        text: str,
        order: NewOrder | None,
        risk_limit: str | None = None,
    ) -> ExecutionReport:
        return ExecutionReport(
            session=session,
            order_id="NONE",
            cl_ord_id=cl_ord_id,
            exec_id=self.ids.exec_id(),
            exec_type=ExecType.REJECTED,
            ord_status=OrdStatus.REJECTED,
            symbol=symbol,
            side=side,
            order_qty=max(qty, 0),
            ord_type=order.ord_type if order else None,
            price=order.price if order else None,
            tif=order.tif if order else None,
            cum_qty=0,
            leaves_qty=0,
            avg_px=Decimal(0),
            ord_rej_reason=reason,
            text=text,
            risk_limit=risk_limit,
        )

    def _cancel_reject(
        self,
        parent: ParentOrder,
        request: CancelRequest | ReplaceRequest,
        response_to: str,
        reason: CxlRejReason,
        text: str,
        risk_limit: str | None = None,
    ) -> CancelReject:
        return CancelReject(
            request.session,
            parent.order_id,
            request.cl_ord_id,
            request.orig_cl_ord_id,
            parent.status,
            response_to,
            reason,
            text,
            risk_limit,
        )


class _Lookup:
    """The engine's reference price for one order, looked up at most once and put on record when it is."""

    def __init__(self, engine: OrderEngine, session: str, cl_ord_id: str, symbol: str, side, out: Outbox) -> None:
        self._engine, self._session, self._cl_ord_id, self._symbol, self._side = (
            engine,
            session,
            cl_ord_id,
            symbol,
            side,
        )
        self._out = out
        self._done = False
        self.found: Reference | None = None

    def __call__(self) -> Reference | None:
        if not self._done:
            self._done = True
            self.found = self._engine.reference(self._symbol, self._side)
            self._out.decisions.append(PriceReference(self._session, self._cl_ord_id, self._symbol, self.found))
        return self.found

    def unit(self, price: Decimal | None) -> Decimal | None:
        """What one share counts for in open notional: the limit price, else the reference if one was used."""
        if price is not None:
            return price
        return self.found.price if self.found is not None else None


def _live_dark(parent: ParentOrder) -> list[ChildOrder]:
    return [child for child in parent.live_children() if child.spec.purpose == "dark"]
