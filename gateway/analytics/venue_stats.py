"""Online per-venue statistics from our own child orders: fill rate, ack latency and toxicity."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.analytics.markouts import Markout, MarkoutTracker


@dataclass(frozen=True, slots=True)
class VenueScore:
    """What the router reads about one venue; None latency: no ack seen yet (fall back to configuration)."""

    venue: str
    fill_rate: float  # smoothed share of sent quantity that filled, in (0, 1)
    latency_us: float | None  # exponentially weighted mean ack latency
    latency_p99_us: float | None  # over the last `latency_window` acks
    toxicity: float  # 0: no adverse selection, 1: severe
    fills: int
    children: int  # child orders sent
    working_qty: int  # live at the venue: sent on children not done yet, less their fills
    last_sent_ns: int | None  # when the last child went out: how fresh these numbers are
    last_fill_ns: int | None


@dataclass(frozen=True, slots=True)
class VenueStatsConfig:
    prior_fills: float = 1.0  # Beta(prior_fills, prior_misses) prior on the fill rate, counted in children
    prior_misses: float = 1.0
    latency_alpha: float = 0.1  # weight of the newest ack in the latency mean
    latency_window: int = 1000  # acks kept for the p99
    toxicity_horizon_ns: int = 100_000_000  # the markout horizon toxicity is read at
    toxicity_scale_bps: float = 2.0  # a shrunk adverse move of scale bps scores tanh(1) = 0.76
    toxicity_prior_fills: float = 5.0  # fills' worth of shrinkage toward "no adverse selection"
    toxicity_half_life: float | None = None  # a venue's markouts after which one counts half; None: never forget


class _Latency:
    """Exponentially weighted mean and a nearest-rank p99 over a sliding window, in microseconds."""

    __slots__ = ("_sorted", "_window", "alpha", "mean")

    def __init__(self, alpha: float, window: int) -> None:
        self.alpha = alpha
        self.mean: float | None = None
        self._window: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []

    def add(self, us: float) -> None:
        self.mean = us if self.mean is None else self.mean + self.alpha * (us - self.mean)
        if len(self._window) == self._window.maxlen:
            del self._sorted[bisect_left(self._sorted, self._window[0])]
        self._window.append(us)
        insort(self._sorted, us)

    @property
    def p99(self) -> float | None:
        if not self._sorted:
            return None
        return self._sorted[math.ceil(0.99 * len(self._sorted)) - 1]


class _Marked:
    """Discounted markouts of one venue at one horizon: fills counted, their quantity, quantity x bps."""

    __slots__ = ("bps", "count", "qty")

    def __init__(self) -> None:
        self.count = self.qty = self.bps = 0.0

    def add(self, qty: int, bps: float, keep: float) -> None:
        """Add a markout after scaling what was there by keep (1: nothing forgotten)."""
        self.count = self.count * keep + 1
        self.qty = self.qty * keep + qty
        self.bps = self.bps * keep + qty * bps


class _Venue:
    __slots__ = (
        "children",
        "done",
        "done_filled",
        "done_sent",
        "fills",
        "last_fill_ns",
        "last_sent_ns",
        "latency",
        "marked",
        "working_qty",
    )

    def __init__(self, config: VenueStatsConfig) -> None:
        self.children = self.working_qty = self.done = self.done_sent = self.done_filled = self.fills = 0
        self.latency = _Latency(config.latency_alpha, config.latency_window)
        self.marked: dict[int, _Marked] = {}  # horizon -> markouts read by toxicity
        self.last_sent_ns: int | None = None
        self.last_fill_ns: int | None = None


class VenueStats:
    """Per-venue statistics, fed by the engine (the one writer) and read by the router as snapshots."""

    def __init__(
        self, markouts: MarkoutTracker, config: VenueStatsConfig = VenueStatsConfig(), venues: Iterable[str] = ()
    ) -> None:
        if config.prior_fills <= 0 or config.prior_misses <= 0:
            raise ValueError("the fill-rate prior needs positive weights, so no venue starts at 0 or 1")
        if config.toxicity_horizon_ns not in markouts.horizons_ns:
            raise ValueError(f"the markout tracker has no {config.toxicity_horizon_ns} ns horizon for toxicity")
        if config.toxicity_half_life is not None and config.toxicity_half_life <= 0:
            raise ValueError("toxicity_half_life must be positive")
        self._config = config
        # Toxicity reads the reference horizon, less the move already there at the fill (horizon 0) if tracked.
        self._toxic_horizons = frozenset({config.toxicity_horizon_ns} | ({0} & set(markouts.horizons_ns)))
        self._keep = 1.0 if config.toxicity_half_life is None else 0.5 ** (1 / config.toxicity_half_life)
        self._venues: dict[str, _Venue] = {}
        self._risks: dict[str, tuple[float, float, float | None]] = {}  # venue -> risks(venue), until it changes
        for venue in venues:
            self._venue(venue)

    def on_child_sent(self, venue: str, qty: int, ts_ns: int) -> None:
        state = self._venue(venue)
        state.children += 1
        state.working_qty += qty
        state.last_sent_ns = ts_ns

    def on_ack(self, venue: str, ts_ns: int, sent_ts_ns: int) -> None:
        if ts_ns >= sent_ts_ns:  # an ack before its send is clock skew, not a latency
            self._venue(venue).latency.add((ts_ns - sent_ts_ns) / 1000)
            self._risks.pop(venue, None)

    def on_fill(self, venue: str, qty: int, ts_ns: int) -> None:
        state = self._venue(venue)
        state.fills += 1
        state.working_qty = max(0, state.working_qty - qty)
        state.last_fill_ns = ts_ns

    def on_child_done(self, venue: str, sent_qty: int, filled_qty: int) -> None:
        """A child reached a final state; only done children count toward the fill rate (live ones may still fill)."""
        if sent_qty <= 0 or not 0 <= filled_qty <= sent_qty:
            raise ValueError(f"a done child needs 0 <= filled <= sent and sent > 0, got {filled_qty}/{sent_qty}")
        state = self._venue(venue)
        state.working_qty = max(0, state.working_qty - (sent_qty - filled_qty))  # its fills came off already
        state.done += 1
        state.done_sent += sent_qty
        state.done_filled += filled_qty
        self._risks.pop(venue, None)

    def on_markout(self, markout: Markout) -> None:
        """A fill marked at one horizon (what the MarkoutTracker resolved); toxicity reads them."""
        horizon = markout.horizon_ns
        if horizon in self._toxic_horizons:
            marked = self._venue(markout.venue).marked
            sums = marked.get(horizon)
            if sums is None:
                sums = marked[horizon] = _Marked()
            sums.add(markout.qty, markout.bps, self._keep)
            self._risks.pop(markout.venue, None)

    def fill_rate(self, venue: str) -> float:
        """Filled over sent quantity, under a Beta prior counted in children: (n * rate + a) / (n + a + b)."""
        config = self._config
        state = self._venues.get(venue)
        n, observed = (state.done, state.done_filled / state.done_sent) if state and state.done else (0, 0.0)
        return (n * observed + config.prior_fills) / (n + config.prior_fills + config.prior_misses)

    def toxicity(self, venue: str) -> float:
        """tanh of how far the mid moved against the venue's fills by the reference horizon (bps), shrunk toward 0
        for few fills. With a horizon-0 markout on record the spread paid at the fill is taken out, so only
        the move after it counts. With a half-life, older markouts count less (in the mean and in the count the
        shrinkage reads), so a venue that cleans up sheds its score once its new fills are marked.

        tanh(x) = 2 * logistic(2x) - 1: a logistic folded so that zero or favourable moves score 0.
        """
        config = self._config
        state = self._venues.get(venue)
        stats = None if state is None else state.marked.get(config.toxicity_horizon_ns)
        if stats is None or not stats.qty:
            return 0.0
        moved = stats.bps / stats.qty
        if config.toxicity_horizon_ns and (at_fill := state.marked.get(0)) is not None and at_fill.qty:  # type: ignore[union-attr]
            moved -= at_fill.bps / at_fill.qty
        shrunk = moved * stats.count / (stats.count + config.toxicity_prior_fills)
        return max(0.0, math.tanh(-shrunk / config.toxicity_scale_bps))

    def score(self, venue: str) -> VenueScore | None:
        """One venue's immutable score; None for a venue never named or seen."""
        state = self._venues.get(venue)
        if state is None:
            return None
        return VenueScore(
            venue,
            self.fill_rate(venue),
            state.latency.mean,
            state.latency.p99,
            self.toxicity(venue),
            state.fills,
            state.children,
            state.working_qty,
            state.last_sent_ns,
            state.last_fill_ns,
        )

    def risks(self, venue: str) -> tuple[float, float, float | None] | None:
        """The score's toxicity, fill_rate and latency_us, kept until an ack, a done child or a markout changes
        them (the cost strategy reads them for every venue on every plan); None for a venue never named or seen."""
        risks = self._risks.get(venue)
        if risks is None:
            state = self._venues.get(venue)
            if state is None:
                return None
            risks = self._risks[venue] = (self.toxicity(venue), self.fill_rate(venue), state.latency.mean)
        return risks

    def snapshot(self) -> dict[str, VenueScore]:
        """Every venue named at construction or seen in an event, as immutable scores."""
        return {name: score for name in self._venues if (score := self.score(name)) is not None}

    def _venue(self, venue: str) -> _Venue:
        state = self._venues.get(venue)
        if state is None:
            state = self._venues[venue] = _Venue(self._config)
        return state
