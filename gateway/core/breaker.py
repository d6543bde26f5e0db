"""Venue circuit breakers: a venue that keeps failing leaves routing until a half-open probe succeeds."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

_SECOND_NS = 1_000_000_000


class CircuitState(Enum):
    CLOSED = "closed"  # routable
    HALF_OPEN = "half-open"  # one probe child may go; its answer decides
    OPEN = "open"  # out of routing until the cooldown is over

    @property
    def level(self) -> int:
        """The metric's value: 0 closed, 1 half-open, 2 open."""
        return _LEVELS[self]

    def __str__(self) -> str:
        return self.value


_LEVELS = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """`failures` failures of one venue within `window_ns` open its breaker; `cooldown_ns` later it is half-open."""

    enabled: bool = True
    failures: int = 5
    window_ns: int = 10 * _SECOND_NS
    cooldown_ns: int = 30 * _SECOND_NS

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window_ns <= 0 or self.cooldown_ns <= 0:
            raise ValueError(f"breaker failures, window and cooldown must be positive: {self}")


DEFAULT_POLICY = BreakerPolicy()


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """A venue's breaker moved from one state to another, and why (a decision for the audit trail and logs)."""

    venue: str
    old: CircuitState
    new: CircuitState
    reason: str
    at_ns: int

    def __str__(self) -> str:
        return f"circuit breaker of {self.venue} {self.old} -> {self.new}: {self.reason}"


class Breaker:
    """One venue's breaker."""

    def __init__(self, venue: str, policy: BreakerPolicy) -> None:
        self.venue = venue
        self.policy = policy
        self.state = CircuitState.CLOSED
        self.opened_ns: int | None = None
        self.probe: str | None = None  # the child sent while half-open, awaiting its answer
        self._failures: deque[int] = deque()  # when each failure within the window happened

    @property
    def routable(self) -> bool:
        return self.state is CircuitState.CLOSED or (self.state is CircuitState.HALF_OPEN and self.probe is None)

    def failure(self, now_ns: int, reason: str) -> CircuitChange | None:
        """A child reject, a disconnect or a child timeout. Half-open, any failure opens it again."""
        if not self.policy.enabled or self.state is CircuitState.OPEN:
            return None
        if self.state is CircuitState.HALF_OPEN:
            return self._move(CircuitState.OPEN, now_ns, f"probe failed: {reason}")
        failures = self._failures
        failures.append(now_ns)
        while failures and failures[0] <= now_ns - self.policy.window_ns:
            failures.popleft()
        if len(failures) < self.policy.failures:
            return None
        window_s = self.policy.window_ns / _SECOND_NS
        return self._move(
            CircuitState.OPEN, now_ns, f"{len(failures)} failures within {window_s:g} s, the last: {reason}"
        )

    def success(self, now_ns: int, child: str) -> CircuitChange | None:
        """A child acknowledged or filled: the probe's answer closes the breaker."""
        if self.state is CircuitState.HALF_OPEN and child == self.probe:
            return self._move(CircuitState.CLOSED, now_ns, f"probe child {child} answered")
        return None

    def probe_sent(self, child: str) -> None:
        if self.state is CircuitState.HALF_OPEN and self.probe is None:
            self.probe = child

    def tick(self, now_ns: int) -> CircuitChange | None:
        """Open for `cooldown_ns`: half-open."""
        opened = self.opened_ns
        if self.state is not CircuitState.OPEN or opened is None or now_ns - opened < self.policy.cooldown_ns:
            return None
        cooldown_s = self.policy.cooldown_ns / _SECOND_NS
        return self._move(CircuitState.HALF_OPEN, now_ns, f"open for {cooldown_s:g} s: one probe child may go")

    def _move(self, new: CircuitState, now_ns: int, reason: str) -> CircuitChange:
        old, self.state, self.probe = self.state, new, None
        self._failures.clear()
        self.opened_ns = now_ns if new is CircuitState.OPEN else None
        return CircuitChange(self.venue, old, new, reason, now_ns)


class Breakers:
    """Every venue's breaker; unknown venues have none and are never refused."""

    def __init__(self, venues: Iterable[str], policy: BreakerPolicy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._by_venue = {venue: Breaker(venue, policy) for venue in venues}

    def reset(self) -> None:
        """Every breaker closed, as at a start: the venue sessions are new."""
        self._by_venue = {venue: Breaker(venue, self.policy) for venue in self._by_venue}

    def failure(self, venue: str, now_ns: int, reason: str) -> CircuitChange | None:
        breaker = self._by_venue.get(venue)
        return breaker.failure(now_ns, reason) if breaker else None

    def success(self, venue: str, now_ns: int, child: str) -> CircuitChange | None:
        breaker = self._by_venue.get(venue)
        return breaker.success(now_ns, child) if breaker else None

    def probe_sent(self, venue: str, child: str) -> None:
        breaker = self._by_venue.get(venue)
        if breaker:
            breaker.probe_sent(child)

    def tick(self, now_ns: int) -> list[CircuitChange]:
        return [change for breaker in self._by_venue.values() if (change := breaker.tick(now_ns))]

    def next_tick_ns(self) -> int | None:
        """When the first open breaker's cooldown ends (tick() moves it then); None: none is open."""
        return min(
            (
                b.opened_ns + b.policy.cooldown_ns
                for b in self._by_venue.values()
                if b.state is CircuitState.OPEN and b.opened_ns is not None
            ),
            default=None,
        )

    def state(self, venue: str) -> CircuitState:
        breaker = self._by_venue.get(venue)
        return breaker.state if breaker else CircuitState.CLOSED

    def states(self) -> dict[str, CircuitState]:
        return {venue: breaker.state for venue, breaker in self._by_venue.items()}

    def blocked(self) -> frozenset[str]:
        """Venues no new child may go to now: open, or half-open with the probe out."""
        return frozenset(venue for venue, breaker in self._by_venue.items() if not breaker.routable)

    def refusal(self, venue: str | None) -> str | None:
        """Why an order directed to `venue` cannot go there now, or None."""
        breaker = self._by_venue.get(venue) if venue is not None else None
        if breaker is None or breaker.routable:
            return None
        if breaker.state is CircuitState.OPEN:
            return f"refused: circuit breaker of {venue} is open (too many rejects, disconnects or timeouts)"
        return f"refused: circuit breaker of {venue} is half-open and its probe is still out"
