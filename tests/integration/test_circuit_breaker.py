"""A venue circuit breaker over real FIX: a venue that rejects every child leaves routing, the flow goes to the
other venue, and after the cooldown one probe child goes back and, answered, closes the breaker."""

from __future__ import annotations

import json

import pytest

from gateway import checks, config, topology
from gateway.audit.stores import open_store
from gateway.core.breaker import CircuitState
from gateway.fix import codec
from gateway.stack import Stack
from tests.integration.plain_exchange import PlainExchange, PlainVenue

pytestmark = pytest.mark.integration

FAILURES, COOLDOWN_S = 3, 1.0


@pytest.fixture
def breaker_stack(tmp_path):
    """LITA (simulated, its book well above the orders' limits) and two plain exchanges without market data:
    PLNA, the preferred one (lower latency), starts closed and rejects every order with 35=8; PLNB fills."""
    ports = topology.free_ports(2)
    exchange = PlainExchange(
        [PlainVenue("PLNA", ports[0], fill_qty=10_000, closed=True), PlainVenue("PLNB", ports[1], fill_qty=10_000)],
        tmp_path,
    )
    gateway_cfg, venues_cfg = topology.build(tmp_path, venues=[topology.VENUES[0]])
    raw = gateway_cfg.model_dump(mode="json", by_alias=True)
    plain = {"begin_string": "FIX.4.2", "order_types": ["limit"], "time_in_force": ["day"], "market_data": False}
    raw["venues"] += [
        {**plain, "name": "PLNA", "port": ports[0], "latency_us": 100},
        {**plain, "name": "PLNB", "port": ports[1], "latency_us": 200},
    ]
    raw["routing"].update(
        unquoted_remainders=True, breaker={"failures": FAILURES, "window_s": 60, "cooldown_s": COOLDOWN_S}
    )
    gateway_cfg = config.validate(raw, config.GatewayConfig, "test")
    exchange.start()
    try:
        with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
            yield stack, exchange
    finally:
        exchange.stop()


def _buy(stack, cl_ord_id: str, **kw):
    """An IOC buy of 100 AAPL at 189.00, below LITA's offers: it can only go to a plain exchange."""
    stack.oms.new_order(cl_ord_id, "AAPL", "1", 100, price="189.00", tif="3", strategy="sweep", **kw)
    final = stack.oms.wait_final(cl_ord_id)
    assert final is not None, f"{cl_ord_id} did not end"
    return final


def _state(stack, venue: str) -> CircuitState:
    return stack.gateway.inspect(lambda engine: engine.breakers.state(venue))


def test_a_venue_rejecting_every_child_leaves_routing_and_a_probe_brings_it_back(breaker_stack):
    stack, exchange = breaker_stack
    plna, plnb = exchange.venues["PLNA"], exchange.venues["PLNB"]
    registry = stack.gateway.metrics.registry

    def gauge(venue):
        return registry.get_sample_value("sorgw_venue_circuit_state", {"venue": venue})

    for n in range(FAILURES):
        final = _buy(stack, f"R{n}")
        assert final[codec.ORD_STATUS] == "C" and "PLNA rejected the child order: market closed" in final[codec.TEXT]
    assert len(plna.orders) == FAILURES and not plnb.orders
    assert _state(stack, "PLNA") is CircuitState.OPEN and gauge("PLNA") == 2
    assert registry.get_sample_value("sorgw_venue_circuit_opens_total", {"venue": "PLNA"}) == 1

    # Open: the flow goes to PLNB, and an order directed to PLNA is refused naming the breaker.
    assert _buy(stack, "B1")[codec.ORD_STATUS] == "2"
    assert {venue for venue, _, _ in checks.fills_of(stack.oms.reports("B1"))} == {"PLNB"}
    refused = _buy(stack, "D1", ex_destination="PLNA")
    assert (refused[codec.ORD_STATUS], refused[codec.ORD_REJ_REASON]) == ("8", "2")
    assert refused[codec.TEXT].startswith("refused: circuit breaker of PLNA is open")
    assert len(plna.orders) == FAILURES

    # The venue recovers; after the cooldown one probe child goes there and its ack and fill close the breaker.
    plna.closed = False
    assert stack.oms.wait(lambda: _state(stack, "PLNA") is CircuitState.HALF_OPEN, COOLDOWN_S + 5)
    assert gauge("PLNA") == 1
    assert _buy(stack, "P1")[codec.ORD_STATUS] == "2"
    assert {venue for venue, _, _ in checks.fills_of(stack.oms.reports("P1"))} == {"PLNA"}
    assert stack.oms.wait(lambda: _state(stack, "PLNA") is CircuitState.CLOSED, 5)
    assert gauge("PLNA") == 0 and gauge("PLNB") == 0
    assert _buy(stack, "A1", ex_destination="PLNA")[codec.ORD_STATUS] == "2"

    store = open_store(stack.gateway_cfg.audit.url)
    store.open()
    try:
        moves = [
            (json.loads(r.body)["old"], json.loads(r.body)["new"])
            for r in store.records()
            if r.kind == "breaker" and r.session == "PLNA"
        ]
    finally:
        store.close()
    assert moves == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
