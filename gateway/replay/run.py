"""One counterfactual: a recorded parent worked again by the real engine and router, no sockets, against the
market it met (the books on record at each decision) and the venue simulators' matching cores seeded with it.

Round k of the replay reads the books recorded at the parent's decision k, with the venues that were
disconnected then left out, at that decision's time; a round past the recorded ones reads the last recorded
books less what the replay itself took. Each child fills against its venue's matching core seeded with the
books that round read; a dark pool holds, hidden, what the recorded parent got there (a lower bound: more may
have been there). The OMS's cancels reach the engine at their recorded times.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.analytics.learning import VenueLearning
from gateway.analytics.tca import Fill, ParentTrail, Quote
from gateway.config import DepthProfile, GatewayConfig, SimVenueConfig
from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, MarketView, VenueInfo
from gateway.core.routing import PlanRequest, RouteDecision, RoutingPolicy
from gateway.core.routing.venue_planner import VenuePlanner, VenuePolicy
from gateway.core.types import (
    TERMINAL,
    CancelChild,
    ExecType,
    ExecutionReport,
    Liquidity,
    Outbox,
    QueryChild,
    SendChild,
    Strategy,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument
from gateway.policy import breaker_policy, learning_config
from gateway.replay.trail import RecordedOrder
from gateway.service import venue_infos
from gateway.simulation.world import venue_report
from gateway.simulator.venue import SimOrder, VenueCore

OWNER = "SORGW"
_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Round:
    """One routing decision of the replay."""

    ts_ns: int
    phase: str
    reason: str
    children: tuple
    recorded_market: bool  # it read the books on record (else the last ones less the replay's own takes)


@dataclass(slots=True)
class Outcome:
    """What the alternative did: its decisions, fills, and how the parent ended."""

    rounds: list[Round] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    cum_qty: int = 0
    status: str = "new"
    end_ns: int | None = None
    end_text: str | None = None  # the engine's Text on the report that ended the parent
    resting: int = 0  # shares still resting at venues when the replay ran out of events
    notes: list[str] = field(default_factory=list)


class Counterfactual:
    def __init__(
        self, recorded: RecordedOrder, strategy: Strategy, policy: RoutingPolicy, cfg: GatewayConfig | None = None
    ) -> None:
        if not recorded.decisions:
            raise ValueError(f"order {recorded.order_id} was never routed: nothing to replay")
        self.recorded = recorded
        cfg = cfg or recorded.config
        self.clock = ManualClock(recorded.decisions[0].ts_ns)
        self._max_age_ns = cfg.routing.max_quote_age_ms * _MS
        instruments = {s.symbol: Instrument(s.symbol, s.tick, s.lot) for s in cfg.symbols}
        venues = {name: dataclasses.replace(info, connected=True) for name, info in venue_infos(cfg).items()}
        self.engine = OrderEngine(
            instruments,
            venues,
            MarketView(self.clock, self._max_age_ns),
            IdSource("REPLAY"),
            self.clock,
            policy=policy,
            max_rounds=cfg.routing.max_sweeps,
            max_venue_rejects=cfg.routing.max_venue_rejects,
            learning=learning_config(cfg.routing),
            venue_down_timeout_ns=cfg.routing.venue_down_timeout_ms * _MS,
            breaker=breaker_policy(cfg.routing),
        )
        self._inner = VenuePlanner(
            {v.name: v.rules() for v in cfg.venues},
            instruments,
            VenuePolicy(cfg.routing.market_protection_bps, cfg.routing.unquoted_remainders),
        )
        self.engine.planner = self._plan
        self.cores = {
            v.name: VenueCore(
                SimVenueConfig(
                    name=v.name,
                    kind=v.kind,
                    port=1,
                    maker_fee=v.maker_fee,
                    taker_fee=v.taker_fee,
                    min_qty=v.min_qty,
                    depth=DepthProfile(levels=1),
                ),
                cfg.symbols,
                0,
                self.clock,
                publish=self._published,
                nbbo=self._nbbo,
            )
            for v in cfg.venues
        }
        self.strategy = strategy
        self.outcome = Outcome()
        self._symbol = recorded.order.symbol
        self._reports: deque[VenueReport] = deque()
        self._route = Quote(None, None)  # the NBBO the current round was planned on
        self._seed_dark()

    def run(self) -> Outcome:
        order = dataclasses.replace(self.recorded.order, strategy=self.strategy, poss_dup=False)
        self._carry_out(self.engine.on_new_order(order, self.clock.now_ns()))
        cancels = deque(self.recorded.cancels)
        woken: int | None = None
        while True:
            while self._reports:
                self._carry_out(self.engine.on_venue_report(self._reports.popleft()))
            parent = self._parent()
            if parent is None or not parent.live:
                break
            resting_dark = any(c.live and c.spec.purpose == "dark" for c in parent.live_children())
            due = [
                t
                for t in (parent.dark_deadline_ns if resting_dark else None, cancels[0][0] if cancels else None)
                if t is not None
            ]
            if not due:
                break
            at = max(min(due), self.clock.now_ns())
            if at == woken and not cancels:
                break  # the timer changed nothing at this time: nothing else will happen
            woken = at
            self.clock.advance(at - self.clock.now_ns())
            if cancels and cancels[0][0] <= at:
                request = cancels.popleft()[1]
                self._carry_out(self.engine.on_cancel(dataclasses.replace(request, poss_dup=False)))
            self._carry_out(self.engine.on_timer(at))
        parent = self._parent()
        if parent is not None:
            self.outcome.resting = sum(c.leaves_qty for c in parent.live_children())
            if self.outcome.resting:
                self.outcome.notes.append(
                    f"{self.outcome.resting} shares still resting at venues when the recorded "
                    f"events ran out: what they would have filled passively is unknown"
                )
        rejected = sum(c.rejected for c in self.recorded.trail.children) if self.recorded.trail else 0
        if rejected:
            self.outcome.notes.append(
                f"{rejected} recorded child order(s) were rejected by their venue: the replay's venues reject nothing"
            )
        if self.recorded.replaced:
            self.outcome.notes.append("the OMS replaced this order: the replay works the order as first sent")
        return self.outcome

    def trail(self, recorded: ParentTrail) -> ParentTrail:
        """The replay as TCA reads a parent: arrival and end quotes are the recorded ones."""
        out = dataclasses.replace(
            recorded,
            status=self.outcome.status,
            end_ns=self.outcome.end_ns,
            children=[],
            fills=list(self.outcome.fills),
        )
        return out

    # --- the engine's side ---------------------------------------------------------------------

    def _parent(self):
        return next(iter(self.engine.parents.values()), None)

    def _plan(
        self,
        order: PlanRequest,
        market: MarketView,
        venues: Mapping[str, VenueInfo],
        policy: RoutingPolicy,
        stats: VenueLearning | None = None,
    ) -> RouteDecision:
        index = len(self.outcome.rounds)
        decisions = self.recorded.decisions
        recorded = index < len(decisions)
        if recorded:
            decision = decisions[index]
            if decision.ts_ns > self.clock.now_ns():
                self.clock.advance(decision.ts_ns - self.clock.now_ns())
            self._lay(decision.books)
            venues = {
                name: dataclasses.replace(info, connected=info.connected and name not in decision.disconnected)
                for name, info in venues.items()
            }
        planned = self._inner(order, self.engine.market, venues, policy, stats)
        self._route = Quote(planned.nbbo.bid, planned.nbbo.ask)
        self.outcome.rounds.append(
            Round(self.clock.now_ns(), planned.phase, planned.reason, planned.children, recorded)
        )
        return planned

    def _lay(self, books: tuple[BookSnapshot, ...]) -> None:
        """The market on record at a decision: the router's view, and every lit core seeded with it."""
        market = MarketView(self.clock, self._max_age_ns)
        shown = {book.venue: book for book in books if book.symbol == self._symbol}
        for name, core in self.cores.items():
            if core.kind is VenueKind.LIT:
                book = shown.get(name)
                core.seed(self._symbol, book.bids if book else (), book.asks if book else ())
        for book in books:
            market.update(book)
        self.engine.market = market

    def _seed_dark(self) -> None:
        """Each dark pool holds, on the parent's contra side, what the recorded parent got there."""
        trail = self.recorded.trail
        buy = self.recorded.order.side.is_buy
        for name, core in self.cores.items():
            if core.kind is VenueKind.DARK:
                got = sum(f.qty for f in trail.fills if f.venue == name) if trail else 0
                core.seed(self._symbol, hidden=(0, got) if buy else (got, 0))

    def _carry_out(self, out: Outbox) -> None:
        for command in out.commands:
            if isinstance(command, SendChild):
                spec = command.spec
                self._from_venue(
                    command.venue,
                    self.cores[command.venue].submit(
                        SimOrder(
                            OWNER,
                            command.cl_ord_id,
                            command.symbol,
                            command.side,
                            spec.qty,
                            spec.ord_type,
                            spec.price,
                            spec.tif,
                        )
                    ),
                )
            elif isinstance(command, CancelChild):
                result = self.cores[command.venue].cancel(OWNER, command.cl_ord_id, command.orig_cl_ord_id)
                self._from_venue(command.venue, result.reports)
            elif isinstance(command, QueryChild):
                report = self.cores[command.venue].status(OWNER, command.cl_ord_id)
                self._from_venue(command.venue, [report] if report else [])
            elif isinstance(command, ExecutionReport) and command.order_id != "NONE":
                self.outcome.cum_qty = command.cum_qty
                self.outcome.status = command.ord_status.name.lower()
                if command.ord_status in TERMINAL and self.outcome.end_ns is None:
                    self.outcome.end_ns = self.clock.now_ns()
                    self.outcome.end_text = command.text
            elif isinstance(command, ExecutionReport):
                self.outcome.status = "rejected"
                self.outcome.notes.append(f"the engine rejected the order in the replay: {command.text}")

    def _from_venue(self, venue: str, reports) -> None:
        for report in reports:
            parsed = venue_report(venue, report)
            if parsed.exec_type is ExecType.TRADE and parsed.last_qty and parsed.last_px is not None:
                self.outcome.fills.append(
                    Fill(
                        self.clock.now_ns(),
                        venue,
                        parsed.last_qty,
                        parsed.last_px,
                        parsed.liquidity is Liquidity.MAKER,
                        None,
                        self._route,
                    )
                )
            self._reports.append(parsed)

    # --- the venues' side ----------------------------------------------------------------------

    def _published(self, snapshot: BookSnapshot) -> None:
        self.engine.market.update(snapshot)

    def _nbbo(self, symbol: str):
        return self.engine.market.nbbo(symbol, self.engine.venues)


def recorded_market_note(outcome: Outcome) -> str | None:
    past = sum(not r.recorded_market for r in outcome.rounds)
    if not past:
        return None
    return (
        f"{past} round(s) of the replay came after the last recorded decision: they read the last recorded "
        f"books less what the replay took, with no replenishment"
    )
