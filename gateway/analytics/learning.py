"""What the engine learns from its own children: venue statistics, markouts and dark-pool liquidity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.analytics.dark_allocation import DarkAllocator
from gateway.analytics.markouts import MarkoutTracker
from gateway.analytics.venue_stats import VenueScore, VenueStats, VenueStatsConfig
from gateway.core.types import Side


@dataclass(frozen=True, slots=True)
class LearningConfig:
    markout_horizons_ns: tuple[int, ...] = (100_000_000, 1_000_000_000, 5_000_000_000)
    stats: VenueStatsConfig = VenueStatsConfig()
    dark_unit: int = 100  # dark allocation unit in shares
    dark_max_units: int = 1000  # most units allocated to one pool, whatever was learnt (100,000 shares)
    dark_exploration: float = 1.5
    dark_half_life: float | None = None  # dark child outcomes after which one counts half; None: never forget
    # CUSUM of a pool's surprise fill share that is a regime change; None: off
    dark_change_threshold: float | None = None
    dark_change_slack: float = 0.2  # surprise per outcome the CUSUM forgives


class VenueLearning:
    """Feeds VenueStats, MarkoutTracker and DarkAllocator from the engine's events; the router reads it.

    `enabled` is off while recovery replays an earlier run, whose timings this process never saw.
    """

    def __init__(self, lit: Iterable[str], dark: Sequence[str], config: LearningConfig = LearningConfig()) -> None:
        # Horizon 0 (marked to the mid when the child was sent) lets toxicity count only the move after a fill,
        # not the spread paid.
        horizons = tuple(sorted({0, *config.markout_horizons_ns, config.stats.toxicity_horizon_ns}))
        self.markouts = MarkoutTracker(horizons)
        self.stats = VenueStats(self.markouts, config.stats, [*lit, *dark])
        self.dark = DarkAllocator(
            dark,
            config.dark_unit,
            config.dark_max_units,
            config.dark_exploration,
            config.dark_half_life,
            config.dark_change_threshold,
            config.dark_change_slack,
        )
        self._dark_pools = frozenset(dark)
        self._parents = 0  # cost-strategy parents routed so far
        self._last_parent: dict[str, int] = {}  # venue -> the number of the last of them that used it
        self.enabled = True

    def score(self, venue: str) -> VenueScore | None:
        return self.stats.score(venue)

    def risks(self, venue: str) -> tuple[float, float, float | None] | None:
        """score(venue)'s toxicity, fill_rate and latency_us, cheaper (see VenueStats.risks)."""
        return self.stats.risks(venue)

    def parents_since(self, venue: str) -> int:
        """Cost-strategy parents routed since one last used this venue (all of them if none ever did)."""
        return self._parents - self._last_parent.get(venue, 0)

    def routed(self, venues: Iterable[str], new_parent: bool) -> None:
        """A cost-strategy take went to these venues; new_parent: it is its parent's first."""
        if self.enabled:
            self._parents += new_parent
            for venue in venues:
                self._last_parent[venue] = self._parents

    def child_sent(self, venue: str, qty: int, now_ns: int) -> None:
        if self.enabled:
            self.stats.on_child_sent(venue, qty, now_ns)

    def child_acked(self, venue: str, now_ns: int, sent_ns: int) -> None:
        if self.enabled:
            self.stats.on_ack(venue, now_ns, sent_ns)

    def child_filled(
        self, market: str, venue: str, side: Side, qty: int, price: Decimal, now_ns: int, mid: Decimal | None
    ) -> None:
        """A fill, to be marked against the mids fed under `market` (see `mid`)."""
        if self.enabled:
            self.stats.on_fill(venue, qty, now_ns)
            for markout in self.markouts.on_fill(market, venue, side, qty, price, now_ns, mid):
                self.stats.on_markout(markout)

    def child_done(self, venue: str, sent_qty: int, filled_qty: int, found_liquidity: bool) -> None:
        """A child ended; `found_liquidity`: it ended for lack of liquidity or filled, not by a reject."""
        if not self.enabled:
            return
        self.stats.on_child_done(venue, sent_qty, filled_qty)
        if found_liquidity and venue in self._dark_pools:
            self.dark.observe(venue, sent_qty, filled_qty)

    def mid(self, market: str, now_ns: int, mid: Decimal) -> None:
        """The mid of one market fills are marked to (the engine keys them by venue and symbol)."""
        if self.enabled:
            for markout in self.markouts.on_mid(market, now_ns, mid):
                self.stats.on_markout(markout)
