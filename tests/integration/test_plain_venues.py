"""Venues that are not our simulator: a plain FIX 4.2 exchange (limit, Day, no market data, terse reports)
and sessions that refuse children with 35=3 or 35=j, next to the simulated lit venues."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway import checks, config, topology
from gateway.fix import codec
from gateway.stack import Stack
from tests.integration.plain_exchange import PlainExchange, PlainVenue, dictionary
from tests.integration.test_fix_path import assert_consistent

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-plnx"


@pytest.fixture
def plain_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("PLNX_PASSWORD", PASSWORD)
    ports = topology.free_ports(3)
    exchange = PlainExchange(
        [
            PlainVenue("PLNX", ports[0], fill_qty=600, password=PASSWORD),
            PlainVenue("PLN3", ports[1], answer="session_reject"),
            PlainVenue("PLNJ", ports[2], answer="business_reject"),
        ],
        tmp_path,
    )
    # LITA and LITB never replenish, so what is takeable is known.
    gateway_cfg, venues_cfg = topology.build(
        tmp_path,
        sim_overrides={
            name: {"depth": {"levels": 5, "qty_per_level": qty, "spread_ticks": 1, "replenish_ms": 0}}
            for name, qty in (("LITA", 300), ("LITB", 200))
        },
    )
    plain = {"begin_string": "FIX.4.2", "order_types": ["limit"], "time_in_force": ["day"], "market_data": False}
    raw = gateway_cfg.model_dump(mode="json", by_alias=True)
    raw["venues"] += [
        {
            **plain,
            "name": "PLNX",
            "port": ports[0],
            "latency_us": 100,
            "tick": "0.05",
            "lot": 100,
            "heartbeat_interval": 5,
            "sequence_reset": "logon",
            "data_dictionary": str(dictionary(tmp_path)),
            "username": "sorgw",
            "password_env": "PLNX_PASSWORD",
        },
        {**plain, "name": "PLN3", "port": ports[1]},
        {**plain, "name": "PLNJ", "port": ports[2]},
    ]
    raw["routing"]["unquoted_remainders"] = True
    gateway_cfg = config.validate(raw, config.GatewayConfig, "test")
    exchange.start()
    try:
        with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
            yield stack, exchange
    finally:
        exchange.stop()


def plnx_fills(reports):
    return [(qty, px) for venue, qty, px in checks.fills_of(reports) if venue == "PLNX"]


def test_directed_order_is_fitted_to_the_plain_exchange_and_survives_its_unsolicited_cancel(plain_stack, tmp_path):
    stack, exchange = plain_stack
    plnx = exchange.venues["PLNX"]
    # Capped at the best other offer (190.01), then onto PLNX's 0.05 tick in the buyer's favour: 190.00.
    stack.oms.new_order("PD1", "AAPL", "1", 1000, price="190.03", ex_destination="PLNX", urgency="H")
    assert exchange.wait(lambda: plnx.resting)
    assert exchange.unsolicited("PLNX", "4") == 1  # the exchange cancels the resting 400 on its own
    final = stack.oms.wait_final("PD1")
    assert final[codec.ORD_STATUS] == "2" and final[codec.CUM_QTY] == "1000" and final[codec.LEAVES_QTY] == "0"
    assert Decimal(final[codec.AVG_PX]) == Decimal("190.00")
    reports = assert_consistent(stack, "PD1")
    assert sum(qty for qty, _ in plnx_fills(reports)) == 1000
    assert [(o[40], o[59], o[44], o[38]) for o in plnx.orders] == [("2", "0", "190", "1000"), ("2", "0", "190", "400")]
    audit = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    assert b"35=A" in audit and PASSWORD.encode() not in audit  # the Logon is on record, the password is not


def test_routed_ioc_remainder_goes_to_the_unquoted_venue_as_day_then_cancel(plain_stack):
    stack, exchange = plain_stack
    plnx = exchange.venues["PLNX"]
    # LITA and LITB show about 500 at 190.01; the rest, in PLNX's lots of 100, goes to PLNX, which has no
    # IOC: sent Day at 190.00 (its tick, in the buyer's favour), 600 fill at once, the cancel sent on the ack
    # ends the rest, and what was left of the parent expires.
    stack.oms.new_order("PR1", "AAPL", "1", 1500, price="190.01", tif="3", urgency="H")
    final = stack.oms.wait_final("PR1")
    reports = assert_consistent(stack, "PR1")
    lit = sum(qty for venue, qty, _ in checks.fills_of(reports) if venue != "PLNX")
    assert 0 < lit < 1000
    assert final[codec.ORD_STATUS] == "C" and final[codec.CUM_QTY] == str(lit + 600)
    assert plnx_fills(reports) == [(300, Decimal(190)), (300, Decimal(190))]
    assert [(o[40], o[59], o[44], o[38]) for o in plnx.orders] == [("2", "0", "190", str((1500 - lit) // 100 * 100))]
    assert [c[codec.ORIG_CL_ORD_ID] for c in plnx.cancels] == [plnx.orders[0][codec.CL_ORD_ID]]


@pytest.mark.parametrize("venue, text", [("PLN3", "session reject"), ("PLNJ", "business reject")])
def test_a_child_refused_by_session_or_business_reject_ends_the_parent_with_the_reason(plain_stack, venue, text):
    stack, exchange = plain_stack
    stack.oms.new_order("RJ1", "AAPL", "1", 200, price="190.00", ex_destination=venue, urgency="H")
    final = stack.oms.wait_final("RJ1")
    assert final[codec.ORD_STATUS] == "4" and final[codec.CUM_QTY] == "0" and text in final[codec.TEXT]
    assert len(exchange.venues[venue].orders) == 1
    assert_consistent(stack, "RJ1")
    stack.oms.new_order("RJ2", "AAPL", "1", 100, price="190.05", urgency="H")  # the gateway trades on
    assert stack.oms.wait_final("RJ2")[codec.ORD_STATUS] == "2"


def test_done_for_day_returns_the_remainder_and_a_closed_venue_ends_it(plain_stack):
    stack, exchange = plain_stack
    plnx = exchange.venues["PLNX"]
    stack.oms.new_order("DF1", "AAPL", "2", 1000, price="190.10", ex_destination="PLNX", urgency="H")
    assert exchange.wait(lambda: plnx.resting)
    exchange.unsolicited("PLNX", "3")  # Done for Day; the exchange then refuses new orders
    final = stack.oms.wait_final("DF1")
    assert final[codec.ORD_STATUS] == "4" and final[codec.CUM_QTY] == "600" and final[codec.LEAVES_QTY] == "0"
    assert "market closed" in final[codec.TEXT]
    assert plnx_fills(assert_consistent(stack, "DF1")) == [(300, Decimal("190.1")), (300, Decimal("190.1"))]
