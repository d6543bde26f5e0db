"""The router's plan made sendable: children fitted to each venue's rules, and remainders for venues with
no market-data feed when the routing policy allows it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from gateway.analytics.learning import VenueLearning
from gateway.core.market import BookSnapshot, MarketView, Nbbo, VenueInfo
from gateway.core.routing.decision import PlanRequest, RouteDecision
from gateway.core.routing.policy import RoutingPolicy
from gateway.core.routing.router import plan
from gateway.core.routing.survey import withheld_by
from gateway.core.routing.trade_through import trade_through_violations
from gateway.core.routing.venue_rules import VenueRules, fit
from gateway.core.types import ChildSpec, OrdType, TimeInForce, VenueKind
from gateway.core.validation import Instrument

Planner = Callable[
    [PlanRequest, MarketView, Mapping[str, VenueInfo], RoutingPolicy, VenueLearning | None], RouteDecision
]
DEFAULT_RULES = VenueRules()


@dataclass(frozen=True, slots=True)
class VenuePolicy:
    protection_bps: int = 50  # how far beyond the far touch a market order's protective limit goes
    unquoted_remainders: bool = False  # venues without a feed may take what the plan leaves unplaced


class _FeedView:
    """The market as routing may see it: venues without a market-data feed show no book."""

    def __init__(self, market: MarketView, blind: frozenset[str]) -> None:
        self._market = market
        self._blind = blind

    def book(self, venue: str, symbol: str) -> BookSnapshot | None:
        return None if venue in self._blind else self._market.book(venue, symbol)

    def books(self, symbol: str) -> Mapping[str, BookSnapshot]:
        blind = self._blind
        return {venue: book for venue, book in tuple(self._market.books(symbol).items()) if venue not in blind}

    def now_ns(self) -> int | None:
        return self._market.now_ns()


class VenuePlanner:
    """A planner (the engine's `planner`) that wraps `plan` with the venues' own rules."""

    def __init__(
        self,
        rules: Mapping[str, VenueRules],
        instruments: Mapping[str, Instrument],
        policy: VenuePolicy = VenuePolicy(),
        inner: Planner = plan,
    ) -> None:
        self._rules = dict(rules)
        self._instruments = dict(instruments)
        self._policy = policy
        self._inner = inner
        self._blind = frozenset(name for name, r in rules.items() if not r.market_data)
        self._plain = all(r == DEFAULT_RULES for r in rules.values())
        # Parents that already sent a remainder to an unquoted venue: it gets one chance per parent.
        self._probed: set[str] = set()

    def __call__(
        self,
        request: PlanRequest,
        market: MarketView,
        venues: Mapping[str, VenueInfo],
        policy: RoutingPolicy,
        stats: VenueLearning | None = None,
    ) -> RouteDecision:
        if self._plain:
            return self._inner(request, market, venues, policy, stats)
        view = _FeedView(market, self._blind) if self._blind else market
        decision = self._inner(request, view, venues, policy, stats)  # type: ignore[arg-type]
        children, notes = self._fit(request, decision.children, decision.nbbo, view)
        phase = decision.phase
        extra = self._remainder(request, decision, children, venues, view)
        if extra is not None:
            child, note = extra
            notes.append(note)
            if child is not None:
                children.append(child)
                phase = "unquoted" if phase == "none" else phase
        if not notes and tuple(children) == decision.children:
            return decision
        reason = "; ".join([decision.reason, *notes])
        fitted = replace(decision, phase=phase if children else "none", children=tuple(children), reason=reason)
        violations = trade_through_violations(fitted, request.side, request.symbol, view, venues, request.lot)  # type: ignore[arg-type]
        if violations:
            raise AssertionError(f"venue rules made {request.order_id} trade through: {'; '.join(violations)}")
        return fitted

    def _fit(
        self, request: PlanRequest, children: tuple[ChildSpec, ...], nbbo: Nbbo, view: MarketView | _FeedView
    ) -> tuple[list[ChildSpec], list[str]]:
        instrument = self._instruments[request.symbol]
        buy = request.side.is_buy
        fitted, notes = [], []
        for child in children:
            rules = self._rules.get(child.venue, DEFAULT_RULES)
            result = fit(
                child,
                rules,
                instrument.tick,
                instrument.lot,
                buy,
                _far_touch(nbbo, view, child.venue, request.symbol, buy),
                self._policy.protection_bps,
            )
            if result.child is not None:
                fitted.append(result.child)
            if result.note:
                notes.append(result.note)
        return fitted, notes

    def _remainder(
        self,
        request: PlanRequest,
        decision: RouteDecision,
        children: list[ChildSpec],
        venues: Mapping[str, VenueInfo],
        view: MarketView | _FeedView,
    ) -> tuple[ChildSpec | None, str] | None:
        """What the plan left unplaced, sent once per parent to the preferred venue without a feed."""
        if (
            not self._policy.unquoted_remainders
            or request.ex_destination is not None
            or request.tif is TimeInForce.FOK
            or decision.phase not in ("take", "none")
            or request.order_id in self._probed
        ):
            return None
        left = request.qty - sum(child.qty for child in children)
        usable = sorted(
            (info.taker_fee, info.latency_us, name)
            for name, info in venues.items()
            if name in self._blind
            and info.connected
            and info.kind is VenueKind.LIT
            and withheld_by(request, name) is None
        )
        if left <= 0 or not usable:
            return None
        venue = usable[0][2]
        buy = request.side.is_buy
        touch = decision.nbbo.ask if buy else decision.nbbo.bid
        price = request.limit
        if touch is not None and (price is None or (touch < price if buy else touch > price)):
            price = touch  # never through the best protected quote seen elsewhere
        if price is None:
            return None, f"{venue} (no market data) not used: no limit and no quote to price {left} at"
        resting = decision.phase == "none" and request.tif is TimeInForce.DAY and request.ord_type is OrdType.LIMIT
        self._probed.add(request.order_id)
        child = ChildSpec(
            venue, left, price, OrdType.LIMIT, TimeInForce.DAY if resting else TimeInForce.IOC, "unquoted"
        )
        fitted, notes = self._fit(request, (child,), decision.nbbo, view)
        sent = fitted[0] if fitted else None
        what = f"{sent.qty} at {sent.price}" if sent else "nothing"
        return sent, "; ".join([f"remainder {left} to {venue} (no market data): {what}", *notes])


def _far_touch(nbbo: Nbbo, view: MarketView | _FeedView, venue: str, symbol: str, buy: bool) -> Decimal | None:
    """The best far-side price seen: the NBBO, else the venue's own (unprotected) book."""
    touch = nbbo.ask if buy else nbbo.bid
    if touch is None:
        book = view.book(venue, symbol)
        level = None if book is None else book.best_ask if buy else book.best_bid
        touch = None if level is None else level.price
    return touch
