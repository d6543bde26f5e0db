"""The gateway's Prometheus metrics: one registry, each metric with its HELP text and bounded labels."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # no *_created series: they double the series count and no dashboard reads them

# 50 us to 2 s: a routing decision takes tens of microseconds, a venue round trip milliseconds.
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

# Label values, all bounded: venue and session names come from the config, the rest are listed here.
PARENT_OUTCOMES = ("filled", "partially_filled_canceled", "canceled", "rejected", "expired", "done_for_day")
CHILD_OUTCOMES = ("filled", "partially_filled", "canceled", "rejected", "expired")
REJECT_REASONS = ("validation", "venue", "session", "cancel_reject", "audit_outage", "risk")
ROLES = ("upstream", "venue")
SLOW_CONSUMER_REASONS = ("queue", "send_timeout")
LOGON_REFUSALS = ("missing_credentials", "wrong_username", "wrong_password")  # gateway.fix.logon.REFUSALS
PENDING_CLOSES = ("logon_timeout", "too_many_pending")
DROPPED_BOOKS = ("unknown_venue", "unknown_symbol")
DIRECTIONS = ("in", "out")


@dataclass(frozen=True, slots=True)
class VenueQuality:
    """What the engine has learnt about one venue, read when Prometheus scrapes."""

    venue: str
    toxicity: float | None
    fill_ratio: float | None
    dark_fill_probability: float | None  # dark pools only
    markouts_bps: Mapping[str, float]  # horizon ("100ms", "1s") -> mean markout


class _Sampled(Collector):
    """Metric families read from live state at scrape time, not updated on the order path."""

    def __init__(self, read: Callable[[], Iterator[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from self._read()


class Metrics:
    """Every metric the gateway exports, registered on its own registry (so tests and several gateways in one
    process do not share counters). Updates are plain calls from the thread that owns the state."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        # Order flow.
        self.parents_received = Counter(
            "sorgw_parent_orders_received",
            "Parent orders (NewOrderSingle) received from the OMS.",
            ["session"],
            registry=r,
        )
        self.parents_done = Counter(
            "sorgw_parent_orders",
            "Parent orders that reached a final state, by outcome "
            "(filled, partially_filled_canceled, canceled, rejected, expired, done_for_day).",
            ["outcome"],
            registry=r,
        )
        self.children_sent = Counter("sorgw_child_orders_sent", "Child orders sent to a venue.", ["venue"], registry=r)
        self.children_done = Counter(
            "sorgw_child_orders",
            "Child orders that reached a final state, by venue and outcome "
            "(filled, partially_filled, canceled, rejected, expired).",
            ["venue", "outcome"],
            registry=r,
        )
        self.fills = Counter(
            "sorgw_fills",
            "Fills reported by venues, by venue and liquidity (taker, maker, dark_midpoint, unknown).",
            ["venue", "liquidity"],
            registry=r,
        )
        self.filled_shares = Counter(
            "sorgw_filled_shares", "Shares filled, by venue and liquidity.", ["venue", "liquidity"], registry=r
        )
        self.filled_notional = Counter(
            "sorgw_filled_notional",
            "Notional filled (shares times price, in the instrument's currency), by venue and liquidity.",
            ["venue", "liquidity"],
            registry=r,
        )
        self.rejects = Counter(
            "sorgw_rejects",
            "Rejects, by reason: validation (a parent refused), venue (a child refused), "
            "session (FIX session or business rejects sent or received), cancel_reject (a cancel or replace "
            "refused upstream), audit_outage (an order, cancel or replace refused while the audit store was "
            "down), risk (an order or replace refused by a pre-trade limit).",
            ["reason"],
            registry=r,
        )
        self.open_parents = Gauge("sorgw_open_parent_orders", "Parent orders not yet in a final state.", registry=r)
        self.open_children = Gauge(
            "sorgw_open_child_orders", "Child orders working at each venue.", ["venue"], registry=r
        )

        # Latency.
        self.first_child_latency = Histogram(
            "sorgw_parent_first_child_seconds",
            "From a parent order's arrival to its first child sent.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ack_latency = Histogram(
            "sorgw_parent_ack_seconds",
            "From a parent order's arrival to its acknowledgement (or reject) sent upstream.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.venue_ack_latency = Histogram(
            "sorgw_venue_ack_seconds",
            "From a child sent to the venue's first answer.",
            ["venue"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fill_report_latency = Histogram(
            "sorgw_fill_report_seconds",
            "From a venue fill's arrival to the parent's fill report sent upstream.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.routing_latency = Histogram(
            "sorgw_routing_decision_seconds", "Time to make one routing decision.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.audit_commit_latency = Histogram(
            "sorgw_audit_commit_seconds",
            "Time to commit one batch to the audit store.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        # FIX sessions.
        self.session_up = Gauge(
            "sorgw_session_up", "1 while the FIX session is logged on, else 0.", ["session", "role"], registry=r
        )
        self.logons = Counter("sorgw_session_logons", "FIX logons completed.", ["session", "role"], registry=r)
        self.disconnects = Counter(
            "sorgw_session_disconnects", "FIX sessions lost after a logon.", ["session", "role"], registry=r
        )
        self.venue_connect_failures = Counter(
            "sorgw_venue_connect_failures",
            "Attempts to connect and log on to a venue that failed (connection "
            "refused or unreachable, a socket error such as the venue closing it, logon timeout, a Logout instead of "
            "a Logon).",
            ["venue"],
            registry=r,
        )
        self.resend_requests = Counter(
            "sorgw_session_resend_requests",
            "ResendRequests (35=2), by direction.",
            ["session", "role", "direction"],
            registry=r,
        )
        self.sequence_resets = Counter(
            "sorgw_session_sequence_resets",
            "SequenceResets (35=4), by direction.",
            ["session", "role", "direction"],
            registry=r,
        )
        self.messages = Counter(
            "sorgw_fix_messages",
            "FIX messages, by direction and MsgType (35).",
            ["session", "role", "direction", "msg_type"],
            registry=r,
        )
        self.slow_consumers = Counter(
            "sorgw_upstream_slow_consumer_disconnects",
            "OMS sessions cut off for falling behind, by reason: queue "
            "(over upstream.max_send_queue reports waiting) or send_timeout (a send blocked over "
            "upstream.send_timeout_ms).",
            ["session", "reason"],
            registry=r,
        )

        self.logons_refused = Counter(
            "sorgw_upstream_logons_refused",
            "OMS Logons refused, by reason: missing_credentials (no Username or "
            "Password), wrong_username, wrong_password.",
            ["session", "reason"],
            registry=r,
        )
        self.pending_closed = Counter(
            "sorgw_upstream_connections_closed",
            "Connections to the upstream port closed before they logged on, "
            "by reason: logon_timeout (not logged on within fix.logon_timeout_s) or too_many_pending (over "
            "upstream.max_pending_connections).",
            ["reason"],
            registry=r,
        )
        self.pending = Gauge(
            "sorgw_upstream_pending_connections", "Connections to the upstream port not (yet) logged on.", registry=r
        )

        # Venue circuit breakers (routing.breaker).
        self.circuit_state = Gauge(
            "sorgw_venue_circuit_state",
            "A venue's circuit breaker: 0 closed (routable), 1 half-open (one probe "
            "child may go), 2 open (out of routing after too many child rejects, disconnects or timeouts).",
            ["venue"],
            registry=r,
        )
        self.circuit_opens = Counter(
            "sorgw_venue_circuit_opens",
            "Times a venue's circuit breaker opened (from closed, or again after a failed probe).",
            ["venue"],
            registry=r,
        )

        # Market data.
        self.market_data_connected = Gauge(
            "sorgw_market_data_connected", "1 while the market-data bus is connected, else 0.", registry=r
        )
        self.snapshots = Counter("sorgw_market_data_snapshots", "Book snapshots received.", ["venue"], registry=r)
        self.snapshots_dropped = Counter(
            "sorgw_market_data_dropped",
            "Book snapshots dropped, by reason: unknown_venue or unknown_symbol (not in the config).",
            ["reason"],
            registry=r,
        )
        self.stale = Counter(
            "sorgw_market_data_stale",
            "Times a venue's book went stale (older than routing.max_quote_age_ms).",
            ["venue"],
            registry=r,
        )

        # Audit trail.
        self.audit_records = Counter("sorgw_audit_records_written", "Audit records committed.", registry=r)
        self.audit_batch = Histogram(
            "sorgw_audit_commit_batch_size", "Records per audit commit.", buckets=BATCH_BUCKETS, registry=r
        )
        self.audit_errors = Counter(
            "sorgw_audit_commit_errors", "Audit commits that failed (each is retried until it succeeds).", registry=r
        )
        self.audit_reconnects = Counter(
            "sorgw_audit_reconnects", "Times the audit store was reopened after a failed commit.", registry=r
        )
        self.audit_unstorable = Counter(
            "sorgw_audit_unstorable_entries",
            "Audit entries that could not be stored as given (an `unstorable` record names each).",
            registry=r,
        )
        self.audit_checkpoint_seq = Gauge(
            "sorgw_audit_checkpoint_seq",
            "Seq of the last audit record signed onto the checkpoint file (0: none yet, or checkpoints off).",
            registry=r,
        )

        # Read at scrape time from the market view, the engine's learning, the bus and the audit writer; the
        # gateway points these at its live state.
        self.quote_ages: Callable[[], Mapping[str, float]] = dict
        self.venue_quality: Callable[[], Sequence[VenueQuality]] = tuple
        self.malformed_payloads: Callable[[], int] = int
        self.audit_queue_depth: Callable[[], int] = int
        self.send_queues: Callable[[], Mapping[str, int]] = dict
        self.children_in_doubt: Callable[[], Mapping[str, int]] = dict
        self.halts: Callable[[], Sequence[str]] = tuple  # each halt in force, as its text
        self.open_exposure: Callable[[], Mapping[str, tuple[float, float]]] = dict  # session -> qty, notional
        self.risk_limits: Callable[[], Sequence[tuple[str, str, float]]] = tuple  # (scope, limit, value)
        self.sessions_in_schedule: Callable[[], Mapping[tuple[str, str], bool]] = dict  # (session, role) -> in
        r.register(_Sampled(self._sampled))

    def _risk(self) -> Iterator[Metric]:
        halts = GaugeMetricFamily("sorgw_halt", "1 for each halt (kill switch) in force.", labels=["scope"])
        for text in sorted(self.halts()):
            halts.add_metric([text], 1)
        open_qty = GaugeMetricFamily(
            "sorgw_session_open_qty",
            "LeavesQty of the OMS session's live orders (as risk.max_open_qty counts it).",
            labels=["session"],
        )
        open_notional = GaugeMetricFamily(
            "sorgw_session_open_notional",
            "Notional of the OMS session's live orders (as risk.max_open_notional counts it).",
            labels=["session"],
        )
        for session, (qty, notional) in sorted(self.open_exposure().items()):
            open_qty.add_metric([session], qty)
            open_notional.add_metric([session], notional)
        limits = GaugeMetricFamily(
            "sorgw_risk_limit",
            "A pre-trade limit in force: per OMS session (its session limits) or per symbol (its order limits).",
            labels=["scope", "limit"],
        )
        for scope, limit, value in self.risk_limits():
            limits.add_metric([scope, limit], value)
        yield from (halts, open_qty, open_notional, limits)

    def _sampled(self) -> Iterator[Metric]:
        ages = GaugeMetricFamily(
            "sorgw_quote_age_seconds",
            "Age of the venue's newest quote (any symbol), by its venue timestamp; "
            "+Inf for a venue with a feed that has published nothing.",
            labels=["venue"],
        )
        for venue, age in sorted(self.quote_ages().items()):
            ages.add_metric([venue], age)
        yield ages
        yield CounterMetricFamily(
            "sorgw_market_data_malformed",
            "Market-data payloads that could not be decoded.",
            value=self.malformed_payloads(),
        )
        in_doubt = GaugeMetricFamily(
            "sorgw_children_in_doubt",
            "Child orders held at a venue that stayed down past "
            "routing.venue_down_timeout_ms: they may still fill there, so their quantity is not re-routed.",
            labels=["venue"],
        )
        for venue, count in sorted(self.children_in_doubt().items()):
            in_doubt.add_metric([venue], count)
        yield in_doubt
        in_schedule = GaugeMetricFamily(
            "sorgw_session_in_schedule",
            "1 while the FIX session's configured schedule (start and end time, days, "
            "time zone) says it should be up, else 0; always 1 without a schedule.",
            labels=["session", "role"],
        )
        for (session, role), up in sorted(self.sessions_in_schedule().items()):
            in_schedule.add_metric([session, role], 1 if up else 0)
        yield in_schedule
        yield from self._risk()
        yield GaugeMetricFamily(
            "sorgw_audit_queue_depth", "Audit entries waiting to be committed.", value=self.audit_queue_depth()
        )
        queued = GaugeMetricFamily(
            "sorgw_upstream_send_queue", "Reports waiting in an OMS session's send queue.", labels=["session"]
        )
        for session, depth in sorted(self.send_queues().items()):
            queued.add_metric([session], depth)
        yield queued
        toxicity = GaugeMetricFamily(
            "sorgw_venue_toxicity",
            "Venue toxicity score, 0 (benign) to 1 (the mid runs away after our fills).",
            labels=["venue"],
        )
        fill_ratio = GaugeMetricFamily(
            "sorgw_venue_fill_ratio", "Shares filled over shares sent to the venue (with a prior).", labels=["venue"]
        )
        dark = GaugeMetricFamily(
            "sorgw_dark_fill_probability",
            "Dark pool: estimated probability that one more allocation unit fills.",
            labels=["venue"],
        )
        markout = GaugeMetricFamily(
            "sorgw_venue_markout_bps",
            "Mean markout of the venue's fills at each horizon, in basis points (positive: the price moved our way).",
            labels=["venue", "horizon"],
        )
        for quality in self.venue_quality():
            if quality.toxicity is not None:
                toxicity.add_metric([quality.venue], quality.toxicity)
            if quality.fill_ratio is not None:
                fill_ratio.add_metric([quality.venue], quality.fill_ratio)
            if quality.dark_fill_probability is not None:
                dark.add_metric([quality.venue], quality.dark_fill_probability)
            for horizon, bps in sorted(quality.markouts_bps.items()):
                markout.add_metric([quality.venue, horizon], bps)
        yield from (toxicity, fill_ratio, dark, markout)
