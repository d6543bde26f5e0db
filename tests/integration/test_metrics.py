"""The gateway's /metrics, /healthz and /readyz, read over HTTP while real FIX orders flow."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import checks, topology
from gateway.fix import codec
from gateway.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    with Stack(gateway_cfg, venues_cfg, tmp_path) as running:
        yield running


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(stack: Stack) -> dict[str, dict[tuple, float]]:
    """Sample name -> {sorted label items: value}."""
    status, body = get(stack.gateway.metrics_url + "/metrics")
    assert status == 200
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return sum(value for key, value in samples[name].items() if set(labels.items()) <= set(key))


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_metrics_count_what_the_oms_sent_and_what_it_was_told(stack):
    oms = stack.oms
    oms.new_order("M1", "AAPL", "1", 1500, price="190.04", urgency="H")  # marketable: fills across venues
    oms.new_order("M2", "AAPL", "2", 500, price="195.00", urgency="H")  # rests away from the market
    oms.new_order("M3", "NOPE", "1", 100, price="10.00")  # unknown symbol: rejected
    oms.new_order("M4", "AAPL", "1", 300, price="190.10", urgency="L")  # rests in dark pools first
    assert oms.wait_final("M1")[codec.ORD_STATUS] == "2"
    assert oms.wait_final("M3")[codec.ORD_STATUS] == "8"
    assert oms.wait_final("M4")[codec.ORD_STATUS] == "2"
    assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("M2")), 10)
    oms.cancel("M2-C", "M2", "AAPL", "2", 500)
    assert oms.wait_final("M2-C")[codec.ORD_STATUS] == "4"
    oms.cancel("M9-C", "M9", "AAPL", "1", 100)  # no such order: a cancel reject
    assert oms.wait(lambda: any(m.msg_type == "9" for m in oms.reports()), 10)

    samples = scrape(stack)
    session = stack.gateway_cfg.upstream.sessions[0]
    assert total(samples, "sorgw_parent_orders_received_total") == 4
    assert total(samples, "sorgw_parent_orders_total", outcome="filled") == 2
    assert total(samples, "sorgw_parent_orders_total", outcome="canceled") == 1
    assert total(samples, "sorgw_parent_orders_total", outcome="rejected") == 1
    assert total(samples, "sorgw_parent_orders_total") == 4
    assert total(samples, "sorgw_rejects_total", reason="validation") == 1
    assert total(samples, "sorgw_rejects_total", reason="cancel_reject") == 1
    assert total(samples, "sorgw_open_parent_orders") == 0

    fills = checks.fills_of(oms.reports("M1")) + checks.fills_of(oms.reports("M4"))
    assert total(samples, "sorgw_filled_shares_total") == sum(qty for _, qty, _ in fills) == 1800
    for venue in {venue for venue, _, _ in fills}:
        assert total(samples, "sorgw_filled_shares_total", venue=venue) == sum(qty for v, qty, _ in fills if v == venue)
        liquidity = "dark_midpoint" if venue.startswith("DRK") else "taker"
        assert total(samples, "sorgw_fills_total", venue=venue, liquidity=liquidity) >= 1
    assert any(venue.startswith("DRK") for venue, _, _ in fills)
    assert total(samples, "sorgw_filled_notional_total") == pytest.approx(float(sum(q * px for _, q, px in fills)))

    sent, ended, live = stack.gateway.inspect(
        lambda e: (
            sum(len(p.children) for p in e.parents.values()),
            sum(not c.live for p in e.parents.values() for c in p.children.values()),
            sum(c.live for p in e.parents.values() for c in p.children.values()),
        )
    )
    assert total(samples, "sorgw_child_orders_sent_total") == sent > 0
    assert total(samples, "sorgw_child_orders_total") == ended
    assert total(samples, "sorgw_open_child_orders") == live == 0

    venues = [v.name for v in stack.gateway_cfg.venues]
    for name in venues:
        assert samples["sorgw_session_up"][(("role", "venue"), ("session", name))] == 1
    upstream = [key for key in samples["sorgw_session_up"] if ("role", "upstream") in key]
    assert len(upstream) == 1 and samples["sorgw_session_up"][upstream[0]] == 1
    assert total(samples, "sorgw_session_logons_total") == len(venues) + 1
    assert total(samples, "sorgw_fix_messages_total", role="upstream", direction="in", msg_type="D") == 4
    assert (
        total(samples, "sorgw_fix_messages_total", role="upstream", direction="in", msg_type="A") == 1
    )  # the OMS's Logon
    assert session.begin_string in upstream[0][1][1]

    assert total(samples, "sorgw_parent_ack_seconds_count") == 4
    assert total(samples, "sorgw_parent_first_child_seconds_count") == 3
    assert total(samples, "sorgw_fill_report_seconds_count") == len(fills)
    assert total(samples, "sorgw_venue_ack_seconds_count") >= 1
    assert total(samples, "sorgw_routing_decision_seconds_count") >= 2
    assert 0 < total(samples, "sorgw_routing_decision_seconds_sum") < 1
    assert total(samples, "sorgw_audit_records_written_total") > 0
    assert total(samples, "sorgw_audit_commit_seconds_count") == total(samples, "sorgw_audit_commit_batch_size_count")

    lit = [v.name for v in stack.gateway_cfg.venues if v.kind.value == "lit"]
    for name in lit:
        assert total(samples, "sorgw_market_data_snapshots_total", venue=name) > 0
        assert 0 <= total(samples, "sorgw_quote_age_seconds", venue=name) < 2
    assert total(samples, "sorgw_market_data_connected") == 1
    used = {venue for venue, _, _ in fills if not venue.startswith("DRK")}
    for name in used:
        assert 0 < total(samples, "sorgw_venue_fill_ratio", venue=name) < 1
        assert 0 <= total(samples, "sorgw_venue_toxicity", venue=name) <= 1
    assert "process_cpu_seconds_total" in samples and "python_gc_collections_total" in samples
    assert not any(name.endswith("_created") for name in samples)


def test_health_and_readiness_follow_the_venues_and_the_audit_store(stack, tmp_path):
    base = stack.gateway.metrics_url
    assert get(base + "/healthz") == (200, b'{"status": "ok"}')
    assert get(base + "/readyz") == (200, b'{"status": "ready"}')
    assert get(base + "/nothing-here")[0] == 404

    # The audit store refuses commits: the gateway is no longer ready, and says why; the order waits.
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("ALTER TABLE audit RENAME TO audit_away")
    try:
        threading.Thread(
            target=stack.oms.new_order, args=("H1", "AAPL", "1", 100, "190.04", "0", None, "H"), daemon=True
        ).start()
        assert wait_for(lambda: get(base + "/readyz")[0] == 503)
        status, body = get(base + "/readyz")
        assert json.loads(body)["problems"] == {"audit": "the audit store is not accepting commits"}
        assert get(base + "/healthz")[0] == 200  # alive, just not ready
    finally:
        db.execute("ALTER TABLE audit_away RENAME TO audit")
    assert stack.oms.wait_final("H1") is not None
    assert wait_for(lambda: get(base + "/readyz")[0] == 200)
    assert total(scrape(stack), "sorgw_audit_commit_errors_total") >= 1

    # Every venue goes away: not ready, each venue's session shows down.
    stack.venues.stop()
    assert wait_for(lambda: get(base + "/readyz")[0] == 503)
    assert json.loads(get(base + "/readyz")[1])["problems"] == {"venues": "no venue session is logged on"}
    samples = scrape(stack)
    for venue in stack.gateway_cfg.venues:
        assert samples["sorgw_session_up"][(("role", "venue"), ("session", venue.name))] == 0
        assert total(samples, "sorgw_session_disconnects_total", session=venue.name) == 1
    # Their books stop too: each lit feed goes stale once routing.max_quote_age_ms (2 s) has passed.
    lit = [v.name for v in stack.gateway_cfg.venues if v.kind.value == "lit"]
    assert all(total(samples, "sorgw_market_data_stale_total", venue=name) == 0 for name in lit)
    assert wait_for(
        lambda: all(total(scrape(stack), "sorgw_market_data_stale_total", venue=name) == 1 for name in lit), timeout=6
    )
    assert all(total(scrape(stack), "sorgw_quote_age_seconds", venue=name) > 2 for name in lit)


def test_no_endpoint_when_metrics_are_off(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides={"metrics": {"enabled": False}})
    with Stack(gateway_cfg, venues_cfg, tmp_path) as running:
        assert running.gateway.metrics_url is None and running.gateway.endpoint is None
        running.oms.new_order("N1", "AAPL", "1", 100, price="190.04", urgency="H")
        assert running.oms.wait_final("N1")[codec.ORD_STATUS] == "2"
        registry = running.gateway.metrics.registry
        assert registry.get_sample_value("sorgw_parent_orders_total", {"outcome": "filled"}) == 1
