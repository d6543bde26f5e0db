"""One simulated run: the real order engine and router, the real matching cores, a discrete-event clock.

Everything happens on one heap of (time, seq, action). A child the engine sends at t reaches its venue at
t + the venue's latency (+ its speed bump), the venue's reports come back after the same latency, and
every book snapshot a venue publishes reaches the gateway's MarketView after it too, so the router can
act on stale quotes and find the liquidity gone. Dark pools and markouts read the true market: every
lit venue's book as it is now; markouts read it without our resting children and with the levels the
parent's own takes consumed put back (gateway.analytics.markouts), so a strategy's own impact is not
counted as a gain.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from decimal import Decimal
from functools import partial

from gateway.analytics.markouts import OwnTake, Touch, impact_free_mid, touch_without
from gateway.config import Toxicity
from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, MarketView, Nbbo
from gateway.core.types import (
    TERMINAL,
    CancelChild,
    CancelReject,
    CancelRequest,
    ExecType,
    ExecutionReport,
    Liquidity,
    NewOrder,
    Outbox,
    QueryChild,
    SendChild,
    Strategy,
    VenueKind,
    VenueReport,
)
from gateway.core.validation import Instrument
from gateway.policy import breaker_policy, learning_config, routing_policy
from gateway.simulation.metrics import Fill, ParentOutcome
from gateway.simulation.scenarios import Scenario, SimulationConfig, SimulationError
from gateway.simulator.venue import SimOrder, SimReport, VenueCore

START_NS = 1_700_000_000_000_000_000
OWNER = "SORGW"  # the gateway's session at every venue
SESSION = "OMS"  # the OMS's session at the gateway
MAX_TIMER_MS = 10  # the engine's timer runs at least this often in simulated time, whatever routing.timer_ms says
DRAIN_LIMIT_NS = 60_000_000_000  # a parent not done this long after its horizon is a harness or engine bug
_MS = 1_000_000
# What the gateway reads from a venue's LastLiquidityInd (host.py sends a dark fill as "added liquidity").
_LIQUIDITY = {Liquidity.MAKER: Liquidity.MAKER, Liquidity.TAKER: Liquidity.TAKER, Liquidity.DARK: Liquidity.MAKER}


_AVG_PX_PLACES = Decimal("0.00000001")  # AvgPx as the FIX message carries it


def venue_report(venue: str, report: SimReport) -> VenueReport:
    """A venue's report as the gateway parses it from the FIX message host.py builds (FIX 4.4)."""
    return VenueReport(
        venue=venue,
        cl_ord_id=report.cl_ord_id,
        exec_id=report.exec_id,
        exec_type=report.exec_type,
        ord_status=report.ord_status,
        last_qty=report.last_qty,
        last_px=report.last_px if report.last_qty else None,
        leaves_qty=report.leaves_qty,
        cum_qty=report.cum_qty,
        avg_px=report.avg_px.quantize(_AVG_PX_PLACES),
        venue_order_id=report.order_id,
        liquidity=_LIQUIDITY[report.liquidity] if report.last_qty and report.liquidity else None,
        text=report.text,
    )


class _Parent:
    """A parent order in flight: its spec, arrival, and the fills the OMS has been told of."""

    def __init__(self, cl_ord_id: str, order: NewOrder, arrival_ns: int, arrival_mid: Decimal) -> None:
        self.cl_ord_id = cl_ord_id
        self.order = order
        self.arrival_ns = arrival_ns
        self.arrival_mid = arrival_mid
        # (LastMkt, LastQty, LastPx, ts, fee, took lit liquidity)
        self.fills: list[tuple[str, int, Decimal, int, Decimal, bool]] = []
        self.end_ns: int | None = None


class World:
    """One run of one strategy in one scenario, from fresh venue cores seeded with `seed`."""

    def __init__(self, scenario: Scenario, strategy: Strategy, seed: int, settings: SimulationConfig) -> None:
        self.scenario = scenario
        self.strategy = strategy
        self.settings = settings
        self.clock = ManualClock(START_NS)
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._latency_ns = {v.name: v.latency_us * 1000 for v in scenario.venues}
        self._inbound_ns = {v.name: (v.latency_us + v.speed_bump_us) * 1000 for v in scenario.venues}
        infos = {v.name: v.info() for v in scenario.venues}
        self._lit = {name: info for name, info in infos.items() if info.kind is VenueKind.LIT}
        self.truth = MarketView()  # every lit book as it is now
        # Per symbol: when a lit book changed, and every lit venue's touch from then on.
        self._tape: dict[str, tuple[list[int], list[dict[str, Touch]]]] = {s.symbol: ([], []) for s in scenario.symbols}
        self.market = MarketView(self.clock, settings.routing.max_quote_age_ms * _MS)  # the gateway's view
        self.cores = {
            v.name: VenueCore(
                v.core_config(),
                scenario.symbols,
                seed,
                self.clock,
                publish=partial(self._published, v.name),
                nbbo=self._true_nbbo,
            )
            for v in scenario.venues
        }
        routing = settings.routing
        self.engine = OrderEngine(  # as the running gateway builds it (service.py)
            instruments={s.symbol: Instrument(s.symbol, s.tick, s.lot) for s in scenario.symbols},
            venues=infos,
            market=self.market,
            ids=IdSource("SIM"),
            clock=self.clock,
            policy=routing_policy(routing),
            max_rounds=routing.max_sweeps,
            max_venue_rejects=routing.max_venue_rejects,
            learning=learning_config(routing),
            breaker=breaker_policy(routing),
        )
        self._timer_ns = min(routing.timer_ms, MAX_TIMER_MS) * _MS
        self._parents: dict[str, _Parent] = {}  # by ClOrdID
        self._by_order_id: dict[str, _Parent] = {}
        self._ended = 0  # parents done
        self._marked_ns = 0  # when the last fill's markout horizon has passed

    # --- the run --------------------------------------------------------------------------

    def run(self) -> list[ParentOutcome]:
        """Warm up, send the parents, work them to the end, and wait out the last fill's markout horizon."""
        for name, core in self.cores.items():
            for symbol in self.scenario.symbols:
                self._published(name, core.snapshot(symbol.symbol))
        for venue in self.scenario.venues:
            if venue.depth.replenish_ms:
                self._every(venue.depth.replenish_ms * _MS, partial(self._replenish, venue.name))
        self._every(self._timer_ns, lambda: None)  # time moves, and the engine's timer runs
        arrival = START_NS + self.scenario.warmup_ms * _MS
        for venue in self.scenario.venues:
            if venue.clean_after_ms is not None:
                self._at(arrival + venue.clean_after_ms * _MS, partial(self._clean, venue.name))
        for i, spec in enumerate(self.scenario.parents):
            self._at(arrival + spec.at_ms * _MS, partial(self._send_parent, i))
        last_arrival = arrival + max(p.at_ms for p in self.scenario.parents) * _MS
        deadline = last_arrival + self.scenario.horizon_ms * _MS + DRAIN_LIMIT_NS
        while not self._finished():
            now, _, action = heapq.heappop(self._heap)
            if now > deadline:
                raise SimulationError(
                    f"scenario {self.scenario.name}: a parent was still working "
                    f"{DRAIN_LIMIT_NS // 1_000_000_000} s after its horizon"
                )
            if now > self.clock.now_ns():
                self.clock.advance(now - self.clock.now_ns())
                self._carry_out(self.engine.on_timer(now))
            action()
        return [self._outcome(p) for p in self._parents.values()]

    def _clean(self, venue: str) -> None:
        """The venue's counterparties stop selecting against takers (its clean_after_ms)."""
        core = self.cores[venue]
        core.config = core.config.model_copy(update={"toxicity": Toxicity()})

    def _finished(self) -> bool:
        return self._ended == len(self.scenario.parents) and self.clock.now_ns() >= self._marked_ns

    def _outcome(self, parent: _Parent) -> ParentOutcome:
        horizon = self.settings.markout_ms * _MS
        symbol = parent.order.symbol
        sign = 1 if parent.order.side.is_buy else -1
        takes = [(ts, OwnTake(venue, sign, price)) for venue, _, price, ts, _, took in parent.fills if took]
        fills = tuple(
            Fill(
                venue,
                qty,
                price,
                fee,
                ts,
                self._impact_free_mid(symbol, ts, takes, before=True),
                self._impact_free_mid(symbol, ts + horizon, takes, before=False),
            )
            for venue, qty, price, ts, fee, _ in parent.fills
        )
        assert parent.end_ns is not None
        end_mid = self._impact_free_mid(symbol, parent.end_ns, [], before=False) or parent.arrival_mid
        return ParentOutcome(
            parent.order.qty,
            1 if parent.order.side.is_buy else -1,
            parent.arrival_ns,
            parent.arrival_mid,
            parent.end_ns,
            end_mid,
            fills,
        )

    # --- the OMS and the gateway ------------------------------------------------------------

    def _send_parent(self, index: int) -> None:
        spec = self.scenario.parents[index]
        symbol = self.scenario.symbol(spec.symbol)
        mid = self._true_nbbo(spec.symbol).mid
        if mid is None:
            raise SimulationError(f"scenario {self.scenario.name}: no two-sided market for {spec.symbol} at arrival")
        cl_ord_id = f"P{index + 1}"
        order = NewOrder(
            session=SESSION,
            cl_ord_id=cl_ord_id,
            symbol=spec.symbol,
            side=spec.side_enum,
            qty=spec.qty,
            ord_type=spec.ord_type,
            price=spec.limit(mid, symbol.tick),
            tif=spec.tif_enum,
            urgency=spec.urgency,
            strategy=self.strategy,
        )
        self._parents[cl_ord_id] = _Parent(cl_ord_id, order, self.clock.now_ns(), mid)
        self._carry_out(self.engine.on_new_order(order))
        self._at(self.clock.now_ns() + self.scenario.horizon_ms * _MS, lambda: self._horizon(cl_ord_id))

    def _horizon(self, cl_ord_id: str) -> None:
        parent = self._parents[cl_ord_id]
        if parent.end_ns is None:
            order = parent.order
            self._carry_out(
                self.engine.on_cancel(CancelRequest(SESSION, f"{cl_ord_id}-X", cl_ord_id, order.symbol, order.side))
            )

    def _carry_out(self, out: Outbox, fill: tuple[int, Decimal, bool] | None = None) -> None:
        """Do what an engine step asks; `fill` is the venue's side of the one fill the step may report."""
        for command in out.commands:
            if isinstance(command, SendChild):
                self._at(self.clock.now_ns() + self._inbound_ns[command.venue], partial(self._child_arrives, command))
            elif isinstance(command, CancelChild):
                self._at(self.clock.now_ns() + self._inbound_ns[command.venue], partial(self._cancel_arrives, command))
            elif isinstance(command, QueryChild):
                self._at(self.clock.now_ns() + self._inbound_ns[command.venue], partial(self._query_arrives, command))
            elif isinstance(command, ExecutionReport):
                self._upstream(command, fill)
            elif not isinstance(command, CancelReject):  # a horizon cancel the fills overtook: the parent is done
                raise SimulationError(f"the simulation cannot carry out {type(command).__name__} yet")

    def _upstream(self, report: ExecutionReport, fill: tuple[int, Decimal, bool] | None) -> None:
        if report.order_id == "NONE":
            raise SimulationError(
                f"scenario {self.scenario.name}: the gateway rejected parent {report.cl_ord_id}: {report.text}"
            )
        parent = self._by_order_id.get(report.order_id)
        if parent is None:
            parent = self._by_order_id[report.order_id] = self._parents[report.cl_ord_id]
        if report.exec_type is ExecType.TRADE:
            assert fill is not None, "a parent fill comes only from a venue fill"
            if report.last_mkt is None or report.last_px is None:
                raise SimulationError(f"parent fill {report.exec_id} has no LastMkt or LastPx")
            ts, fee, took = fill
            parent.fills.append((report.last_mkt, report.last_qty, report.last_px, ts, fee, took))
            self._marked_ns = max(self._marked_ns, ts + self.settings.markout_ms * _MS)
        if report.ord_status in TERMINAL and parent.end_ns is None:
            parent.end_ns = self.clock.now_ns()
            self._ended += 1

    # --- the venues -------------------------------------------------------------------------

    def _child_arrives(self, command: SendChild) -> None:
        core = self.cores[command.venue]
        spec = command.spec
        centre = self._centre(core, command.symbol)
        reports = core.submit(
            SimOrder(
                OWNER, command.cl_ord_id, command.symbol, command.side, spec.qty, spec.ord_type, spec.price, spec.tif
            )
        )
        self._to_gateway(command.venue, reports)
        if centre is not None and core.centre(command.symbol) != centre:
            self._follow(command.venue, command.symbol, core.centre(command.symbol) - centre)

    def _cancel_arrives(self, command: CancelChild) -> None:
        # A cancel that is too late is refused (35=9) and the gateway waits for the child's own final report.
        result = self.cores[command.venue].cancel(OWNER, command.cl_ord_id, command.orig_cl_ord_id)
        self._to_gateway(command.venue, result.reports)

    def _query_arrives(self, command: QueryChild) -> None:
        report = self.cores[command.venue].status(OWNER, command.cl_ord_id)
        if report is None:
            raise SimulationError(f"{command.venue} lost child {command.cl_ord_id}: a simulated venue forgets nothing")
        self._to_gateway(command.venue, [report])

    def _replenish(self, venue: str) -> None:
        for report in self.cores[venue].replenish():
            self._to_gateway(venue, [report])

    def _to_gateway(self, venue: str, reports: list[SimReport]) -> None:
        now = self.clock.now_ns()
        for report in reports:
            parsed = venue_report(venue, report)
            took = report.liquidity is Liquidity.TAKER
            fill = (now, report.fee, took) if report.exec_type is ExecType.TRADE else None
            self._at(now + self._latency_ns[venue], partial(self._report_arrives, parsed, fill))

    def _report_arrives(self, report: VenueReport, fill: tuple[int, Decimal, bool] | None) -> None:
        self._carry_out(self.engine.on_venue_report(report), fill)

    def _follow(self, venue: str, symbol: str, move: Decimal) -> None:
        """A toxic move is news: the other lit venues move their quotes the same way `follow_ms` later."""
        if self.scenario.follow_ms is None:
            return
        ticks = int(move / self.scenario.symbol(symbol).tick)
        others = [name for name in self._lit if name != venue]
        self._at(self.clock.now_ns() + self.scenario.follow_ms * _MS, partial(self._shift, others, symbol, ticks))

    def _shift(self, venues: list[str], symbol: str, ticks: int) -> None:
        for name in venues:
            self.cores[name].shift(symbol, ticks)

    def _centre(self, core: VenueCore, symbol: str) -> Decimal | None:
        """The venue's quote centre when a toxic move there could move the rest of the market, else None."""
        if core.kind is VenueKind.LIT and self.scenario.follow_ms is not None and core.config.toxicity.probability:
            return core.centre(symbol)
        return None

    # --- market data ------------------------------------------------------------------------

    def _published(self, venue: str, snapshot: BookSnapshot) -> None:
        self.truth.update(snapshot)
        if venue in self._lit:
            times, touches = self._tape[snapshot.symbol]
            times.append(self.clock.now_ns())
            touches.append(
                {
                    name: self._touch_without_ours(name, book)
                    for name in self._lit
                    if (book := self.truth.book(name, snapshot.symbol)) is not None
                }
            )
        self._at(self.clock.now_ns() + self._latency_ns[venue], lambda: self.market.update(snapshot))

    def _touch_without_ours(self, venue: str, book: BookSnapshot) -> Touch:
        """The venue's (bid, ask) with our own resting children taken out, as the gateway records it for TCA."""
        ours: dict[bool, dict[Decimal, int]] = {True: {}, False: {}}
        for report in self.cores[venue].open_orders(OWNER):
            if report.symbol == book.symbol and report.price is not None:
                prices = ours[report.side.is_buy]
                prices[report.price] = prices.get(report.price, 0) + report.leaves_qty
        return (
            touch_without([(level.price, level.qty) for level in book.bids], ours[True]),
            touch_without([(level.price, level.qty) for level in book.asks], ours[False]),
        )

    def _true_nbbo(self, symbol: str) -> Nbbo:
        return self.truth.nbbo(symbol, self._lit)

    def _impact_free_mid(
        self, symbol: str, ts_ns: int, takes: list[tuple[int, OwnTake]], before: bool
    ) -> Decimal | None:
        """The true mid with the levels `takes` consumed put back: as it stood just before ts_ns (before, with the
        takes before it) or after everything that happened at ts_ns (with the takes up to it)."""
        times, touches = self._tape[symbol]
        i = bisect_left(times, ts_ns) if before else bisect_right(times, ts_ns)
        if not i:
            return None
        return impact_free_mid(
            touches[i - 1], [take for ts, take in takes if ts < ts_ns or (not before and ts == ts_ns)]
        )

    # --- the event heap ---------------------------------------------------------------------

    def _at(self, ts_ns: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (ts_ns, next(self._seq), action))

    def _every(self, period_ns: int, action: Callable[[], None]) -> None:
        def tick() -> None:
            action()
            self._at(self.clock.now_ns() + period_ns, tick)

        self._at(self.clock.now_ns() + period_ns, tick)
