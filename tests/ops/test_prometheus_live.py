"""A real Prometheus scrapes a running gateway (venue simulators, FIX on 127.0.0.1) and sees what the OMS saw."""

from __future__ import annotations

import math

import pytest
import quickfix as fix

from gateway.stack import Stack
from tests.ops.conftest import Prometheus, Traded, by_label, values

pytestmark = pytest.mark.integration

VENUES = {"LITA", "LITB", "LITC", "DRKA", "DRKB"}
# Alerts a healthy stack must not even have pending (the order mix trips the reject ratio, and may trip venue fills).
HEALTH_ALERTS = (
    "SorgwGatewayDown",
    "SorgwSessionDown",
    "SorgwMarketDataStale",
    "SorgwMarketDataDisconnected",
    "SorgwAuditQueueGrowing",
    "SorgwAuditCommitErrors",
    "SorgwVenueCircuitOpen",
)


def test_every_session_is_up(prometheus: Prometheus, traded: Traded):
    up = prometheus.query("sorgw_session_up")
    assert by_label([r for r in up if r["metric"]["role"] == "venue"], "session") == dict.fromkeys(VENUES, 1.0)
    upstream = [r for r in up if r["metric"]["role"] == "upstream"]
    assert len(upstream) == 1 and float(upstream[0]["value"][1]) == 1.0, upstream
    # No schedules in this stack: every session is in schedule, so SorgwSessionDown would fire for any of them.
    in_schedule = prometheus.query("sorgw_session_in_schedule")
    assert by_label([r for r in in_schedule if r["metric"]["role"] == "venue"], "session") == dict.fromkeys(VENUES, 1.0)
    assert [float(r["value"][1]) for r in in_schedule if r["metric"]["role"] == "upstream"] == [1.0]


def test_parent_outcomes_match_what_the_oms_was_told(prometheus: Prometheus, traded: Traded):
    counted = by_label(prometheus.query("sum by (outcome) (sorgw_parent_orders_total)"), "outcome")
    assert {o: n for o, n in counted.items() if n} == traded.outcomes()


def test_filled_shares_match_the_oms_cum_qty_in_total_and_per_venue(prometheus: Prometheus, traded: Traded):
    assert traded.filled_shares() > 0
    (total,) = values(prometheus.query("sum(sorgw_filled_shares_total)")).values()
    assert total == traded.filled_shares()
    per_venue = by_label(prometheus.query("sum by (venue) (sorgw_filled_shares_total)"), "venue")
    assert {v: n for v, n in per_venue.items() if n} == traded.filled_by_venue()


def test_parent_ack_p99_is_a_finite_latency(prometheus: Prometheus, traded: Traded):
    result = prometheus.query("histogram_quantile(0.99, sum by (le) (rate(sorgw_parent_ack_seconds_bucket[1m])))")
    (p99,) = values(result).values()
    assert math.isfinite(p99) and 0 < p99 <= 2.0


def test_a_healthy_stack_raises_no_health_alert(prometheus: Prometheus, traded: Traded):
    active = prometheus.query("ALERTS")
    assert [r["metric"] for r in active if r["metric"]["alertname"] in HEALTH_ALERTS] == []


def test_the_reject_ratio_alert_sees_the_first_reject(prometheus: Prometheus, traded: Traded):
    # increase() cannot see a series' first value: the rule counts the first reject only if the gateway exported
    # the received and rejected counters (at 0) before any order arrived.
    assert traded.outcomes()["rejected"] / len(traded.finals) > 0.05
    (pending,) = prometheus.wait_for('ALERTS{alertname="SorgwRejectRatioHigh"}', bool, timeout=5)
    assert pending["metric"]["alertstate"] == "pending"


def test_a_venue_that_logs_out_shows_down_and_its_alert_goes_pending(
    stack: Stack, prometheus: Prometheus, traded: Traded
):
    lita = 'sorgw_session_up{role="venue", session="LITA"}'
    alert = 'ALERTS{alertname="SorgwSessionDown", session="LITA", role="venue"}'
    key = next(k for k, cfg in stack.venues.configs.items() if cfg.name == "LITA")
    session = fix.Session.lookupSession(stack.venues.sessions[key])
    prometheus.wait_for(lita, lambda r: list(values(r).values()) == [1.0])
    # The venue ends its session and, logged out, refuses the gateway's reconnects until it logs on again.
    session.logout("venue closed by the test")
    try:
        prometheus.wait_for(lita, lambda r: list(values(r).values()) == [0.0])
        still_up = by_label(prometheus.query('sorgw_session_up{role="venue"} == 1'), "session")
        assert set(still_up) == VENUES - {"LITA"}
        (pending,) = prometheus.wait_for(alert, bool)
        assert pending["metric"]["alertstate"] == "pending" and pending["metric"]["severity"] == "critical"
    finally:
        # Left as found, for the tests of this module that run later.
        session.logon()
        prometheus.wait_for(lita, lambda r: list(values(r).values()) == [1.0])
        prometheus.wait_for(alert, lambda r: not r)
