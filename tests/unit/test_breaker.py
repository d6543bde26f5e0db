"""Venue circuit breakers: the state machine driven through time, and the engine routing around an open venue."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from gateway import config
from gateway.core.breaker import Breaker, BreakerPolicy, Breakers, CircuitChange, CircuitState
from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import MarketView, VenueInfo
from gateway.core.routing import RouteDecision
from gateway.core.types import ExecType, OrdRejReason, OrdStatus, QueryChild, VenueKind, VenueReport
from gateway.core.validation import Instrument
from gateway.policy import breaker_policy
from tests.unit.test_engine import book, children, order, reports

S = 1_000_000_000
ROOT = Path(__file__).resolve().parents[2]
POLICY = BreakerPolicy(failures=3, window_ns=10 * S, cooldown_ns=30 * S)
CLOSED, HALF_OPEN, OPEN = CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN


def test_opens_after_n_failures_within_the_window_only():
    breaker = Breaker("LITB", POLICY)
    assert breaker.failure(0, "r1") is None and breaker.failure(5 * S, "r2") is None
    assert breaker.failure(10 * S, "r3") is None  # the first fell out of the 10 s window
    change = breaker.failure(11 * S, "rejected child C9: no")
    assert change == CircuitChange(
        "LITB", CLOSED, OPEN, "3 failures within 10 s, the last: rejected child C9: no", 11 * S
    )
    assert breaker.state is OPEN and not breaker.routable
    assert breaker.failure(12 * S, "more") is None  # already open: no second change


def test_half_open_after_the_cooldown_lets_one_probe_and_its_answer_closes():
    breaker = Breaker("LITB", POLICY)
    for t in range(3):
        breaker.failure(t, "r")
    assert breaker.tick(2 + 30 * S - 1) is None
    change = breaker.tick(2 + 30 * S)
    assert (change.old, change.new) == (OPEN, HALF_OPEN) and breaker.routable
    breaker.probe_sent("C1")
    breaker.probe_sent("C2")  # bounded: the first child is the probe, and the venue is out until it answers
    assert breaker.probe == "C1" and not breaker.routable
    assert breaker.success(31 * S, "C2") is None  # an older child's ack proves nothing about new flow
    change = breaker.success(31 * S, "C1")
    assert (change.old, change.new, change.reason) == (HALF_OPEN, CLOSED, "probe child C1 answered")
    assert breaker.routable and breaker.probe is None
    assert [breaker.failure(32 * S + t, "r") for t in range(2)] == [None, None]  # the count started afresh


@pytest.mark.parametrize("why", ["rejected child C1: no", "child C1 unanswered for 5000 ms", "session disconnected"])
def test_a_failure_while_half_open_opens_it_again_for_another_cooldown(why):
    breaker = Breaker("LITB", POLICY)
    for t in range(3):
        breaker.failure(t, "r")
    breaker.tick(40 * S)
    breaker.probe_sent("C1")
    change = breaker.failure(41 * S, why)
    assert (change.old, change.new, change.reason) == (HALF_OPEN, OPEN, f"probe failed: {why}")
    assert breaker.tick(41 * S + 30 * S - 1) is None and breaker.tick(71 * S).new is HALF_OPEN


def test_disabled_never_opens_and_bad_settings_are_refused():
    breaker = Breaker("LITB", BreakerPolicy(enabled=False, failures=1))
    assert breaker.failure(0, "r") is None and breaker.state is CLOSED
    for bad in ({"failures": 0}, {"window_ns": 0}, {"cooldown_ns": -1}):
        with pytest.raises(ValueError):
            BreakerPolicy(**bad)


def test_breakers_block_open_and_probing_venues_and_ignore_unknown_ones():
    breakers = Breakers(["LITA", "LITB"], BreakerPolicy(failures=1, cooldown_ns=S))
    assert breakers.failure("NOPE", 0, "r") is None and breakers.refusal("NOPE") is None
    breakers.failure("LITB", 0, "r")
    assert breakers.blocked() == {"LITB"} and "circuit breaker of LITB is open" in breakers.refusal("LITB")
    assert [c.venue for c in breakers.tick(S)] == ["LITB"] and breakers.blocked() == frozenset()
    breakers.probe_sent("LITB", "C1")
    assert breakers.blocked() == {"LITB"} and "probe is still out" in breakers.refusal("LITB")
    assert breakers.states() == {"LITA": CLOSED, "LITB": HALF_OPEN}


# --- the engine ---------------------------------------------------------------------------------------------


@pytest.fixture
def gate() -> OrderEngine:
    market = MarketView()
    market.update(book("LITA", [("99.99", 300)], [("100.01", 300), ("100.02", 300)]))
    market.update(book("LITB", [("99.99", 200)], [("100.01", 200), ("100.03", 500)]))
    venues = {
        "LITA": VenueInfo("LITA", VenueKind.LIT, D("-0.002"), D("0.003"), 300, True),
        "LITB": VenueInfo("LITB", VenueKind.LIT, D("0.0015"), D("-0.001"), 400, True),
    }
    return OrderEngine(
        {"AAPL": Instrument("AAPL", D("0.01"))},
        venues,
        market,
        IdSource("t"),
        ManualClock(),
        child_timeout_ns=5 * S,
        breaker=BreakerPolicy(failures=2, window_ns=10 * S, cooldown_ns=30 * S),
    )


def _changes(out) -> list[tuple[str, CircuitState, CircuitState]]:
    return [(d.venue, d.old, d.new) for d in out.decisions if isinstance(d, CircuitChange)]


def _reject(child, exec_id: str) -> VenueReport:
    return VenueReport(child.venue, child.cl_ord_id, exec_id, ExecType.REJECTED, OrdStatus.REJECTED, text="halted")


def _at(out, venue: str):
    return [c for c in children(out) if c.venue == venue]


def _send(engine: OrderEngine, cl_ord_id: str, **kw):
    """A new order; LITA acknowledges its children there at once."""
    out = engine.on_new_order(order(cl_ord_id, **kw))
    for child in _at(out, "LITA"):
        engine.on_venue_report(
            VenueReport("LITA", child.cl_ord_id, f"ack-{child.cl_ord_id}", ExecType.NEW, OrdStatus.NEW)
        )
    return out


def _open_litb(engine: OrderEngine):
    """Two orders whose LITB children LITB rejects: the second reject opens LITB's breaker."""
    outs = []
    for n in (1, 2):
        (child,) = _at(_send(engine, f"P{n}", qty=500), "LITB")
        outs.append(engine.on_venue_report(_reject(child, f"r{n}")))
    return outs


def test_rejects_open_the_breaker_and_new_flow_routes_around_the_venue(gate):
    first, second = _open_litb(gate)
    assert _changes(first) == [] and _changes(second) == [("LITB", CLOSED, OPEN)]
    assert gate.breakers.state("LITB") is OPEN
    out = _send(gate, "P3", qty=500)
    assert {c.venue for c in children(out)} == {"LITA"}
    decision = next(d for d in out.decisions if isinstance(d, RouteDecision))
    assert "circuit breaker keeps out LITB" in decision.reason
    assert ("LITB", "tripped its circuit breaker") in {(e.venue, e.reason) for e in decision.exclusions}
    assert {c.venue for c in decision.candidates} == {"LITA"}  # still built on first read, from the plan's own


def test_a_directed_order_or_replace_to_an_open_venue_is_refused_naming_the_breaker(gate):
    _open_litb(gate)
    (er,) = reports(gate.on_new_order(order("D1", qty=100, price="100.01", ex_destination="LITB")))
    assert (er.ord_status, er.ord_rej_reason, er.risk_limit) == (
        OrdStatus.REJECTED,
        OrdRejReason.EXCHANGE_CLOSED,
        "circuit_breaker",
    )
    assert er.text.startswith("refused: circuit breaker of LITB is open")


def test_after_the_cooldown_one_probe_goes_and_its_ack_closes_the_breaker(gate):
    _open_litb(gate)
    gate.clock.advance(29 * S)
    assert _changes(gate.on_timer(gate.clock.now_ns())) == []
    gate.clock.advance(S)
    assert _changes(gate.on_timer(gate.clock.now_ns())) == [("LITB", OPEN, HALF_OPEN)]
    (probe,) = _at(_send(gate, "P3", qty=500), "LITB")
    assert _at(_send(gate, "P4", qty=500), "LITB") == []  # one probe at a time
    ack = VenueReport("LITB", probe.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW)
    assert _changes(gate.on_venue_report(ack)) == [("LITB", HALF_OPEN, CLOSED)]
    assert _at(_send(gate, "P5", qty=500), "LITB")


def test_a_rejected_probe_reopens_and_a_silent_child_and_a_disconnect_count_as_failures(gate):
    _open_litb(gate)
    gate.clock.advance(30 * S)
    gate.on_timer(gate.clock.now_ns())
    (probe,) = _at(_send(gate, "P3", qty=500), "LITB")
    assert _changes(gate.on_venue_report(_reject(probe, "r3"))) == [("LITB", HALF_OPEN, OPEN)]
    gate.clock.advance(30 * S)
    gate.on_timer(gate.clock.now_ns())
    (probe,) = _at(_send(gate, "P4", qty=500), "LITB")
    gate.clock.advance(5 * S)  # the probe is not answered within child_timeout_ns
    assert _changes(gate.on_timer(gate.clock.now_ns())) == [("LITB", HALF_OPEN, OPEN)]
    # LITA: a silent child counts once however often it is queried, a disconnect once more opens it.
    (_silent,) = _at(gate.on_new_order(order("P5", qty=100, price="100.01", ex_destination="LITA")), "LITA")
    for _ in range(3):
        gate.clock.advance(5 * S)
        assert _changes(gate.on_timer(gate.clock.now_ns())) == []
    assert gate.breakers.state("LITA") is CLOSED
    assert _changes(gate.on_venue_status("LITA", False)) == []  # the first failure fell out of the window
    gate.on_venue_status("LITA", True)
    assert _changes(gate.on_venue_status("LITA", False)) == [("LITA", CLOSED, OPEN)]


def test_a_late_child_at_a_venue_still_reporting_is_a_queue_not_a_failure(gate):
    """A burst: the venue's reports on other children keep coming while one child waits past child_timeout_ns."""
    (late,) = _at(gate.on_new_order(order("P1", qty=100, price="100.01", ex_destination="LITB")), "LITB")
    (other,) = _at(gate.on_new_order(order("P2", qty=100, price="100.01", ex_destination="LITB")), "LITB")
    gate.clock.advance(4 * S)
    gate.on_venue_report(VenueReport("LITB", other.cl_ord_id, "a2", ExecType.NEW, OrdStatus.NEW))
    gate.clock.advance(S)
    out = gate.on_timer(gate.clock.now_ns())
    assert any(isinstance(c, QueryChild) and c.cl_ord_id == late.cl_ord_id for c in out.commands)  # still asked
    (_silent,) = _at(gate.on_new_order(order("P3", qty=100, price="100.01", ex_destination="LITB")), "LITB")
    gate.clock.advance(5 * S)  # nothing from LITB since P3's child went out: that one counts
    gate.on_timer(gate.clock.now_ns())
    assert gate.breakers.state("LITB") is CLOSED  # one failure of the two that open it
    assert _changes(gate.on_venue_status("LITB", False)) == [("LITB", CLOSED, OPEN)]


def test_a_day_order_waiting_for_a_venue_is_routed_when_the_breaker_goes_half_open(gate):
    _open_litb(gate)
    gate.on_venue_status("LITA", False)
    out = gate.on_new_order(order("W1", qty=100, price="100.01"))
    assert children(out) == [] and reports(out)[0].ord_status is OrdStatus.NEW  # nowhere to go: it waits
    gate.clock.advance(30 * S)
    out = gate.on_timer(gate.clock.now_ns())
    assert _changes(out) == [("LITB", OPEN, HALF_OPEN)]
    assert [(c.venue, c.spec.qty) for c in children(out)] == [("LITB", 100)]


# --- configuration ------------------------------------------------------------------------------------------


def test_routing_breaker_config_is_validated_and_reaches_the_engine():
    shipped = config.load(ROOT / "config/gateway.yaml", config.GatewayConfig, {})
    assert breaker_policy(shipped.routing) == BreakerPolicy(True, 5, 10 * S, 30 * S)
    tuned = config.load(
        ROOT / "config/gateway.yaml",
        config.GatewayConfig,
        {"SORGW__ROUTING__BREAKER__COOLDOWN_S": "0.25", "SORGW__ROUTING__BREAKER__FAILURES": "2"},
    )
    assert breaker_policy(tuned.routing) == BreakerPolicy(True, 2, 10 * S, S // 4)
    for key, value in (
        ("FAILURES", "0"),
        ("WINDOW_S", "0"),
        ("COOLDOWN_S", "-1"),
        ("WINDOW_S", "inf"),
        ("COOLDOWN_S", "nan"),
        ("ENABLED", "maybe"),
    ):
        with pytest.raises(config.ConfigError, match=f"routing.breaker.{key.lower()}"):
            config.load(ROOT / "config/gateway.yaml", config.GatewayConfig, {f"SORGW__ROUTING__BREAKER__{key}": value})


def test_the_gateways_own_stop_is_no_venue_failure(gate):
    gate.breakers = Breakers(gate.venues, BreakerPolicy(failures=1))
    gate.on_shutdown("gateway stopping")
    assert _changes(gate.on_venue_status("LITA", False)) == [] and gate.breakers.state("LITA") is CLOSED
