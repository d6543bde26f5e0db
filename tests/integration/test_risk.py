"""Pre-trade limits over real FIX: the OMS sees the refusal, nothing reaches a venue, ops see a `risk` reject."""

from __future__ import annotations

import json

import pytest

from gateway.audit.stores import open_store
from gateway.core.risk import Halt
from gateway.fix import codec

pytestmark = pytest.mark.integration

RISK = {
    "defaults": {"max_order_qty": 1_000_000, "price_collar_bps": 500},
    "symbols": {"MSFT": {"market_orders": False}},
}


def test_limits_refuse_over_fix_and_let_the_rest_trade(make_stack):
    stack = make_stack(gateway_overrides={"risk": RISK})
    oms = stack.oms
    oms.new_order("BIG", "AAPL", "1", 5_000_000, price="190.00")
    oms.new_order("FAT", "AAPL", "1", 100, price="9999.00")
    oms.new_order("MKT", "MSFT", "1", 100, tif="3")
    oms.new_order("OK", "AAPL", "1", 200, price="190.04", urgency="H")
    finals = {cl: oms.wait_final(cl) for cl in ("BIG", "FAT", "MKT", "OK")}
    assert all(finals.values())
    big, fat, mkt = finals["BIG"], finals["FAT"], finals["MKT"]
    assert (big[codec.ORD_STATUS], big[codec.ORD_REJ_REASON]) == ("8", "3")
    assert big[codec.TEXT] == "OrderQty 5000000 exceeds max_order_qty 1000000 for AAPL"
    assert (fat[codec.ORD_STATUS], fat[codec.ORD_REJ_REASON]) == ("8", "3")
    assert fat[codec.TEXT].startswith("Price 9999.00 is above the collar ")
    assert "price_collar_bps 500" in fat[codec.TEXT]
    assert (mkt[codec.ORD_STATUS], mkt[codec.ORD_REJ_REASON]) == ("8", "0")
    assert finals["OK"][codec.ORD_STATUS] == "2"

    # A replace over the limit is refused with a cancel reject naming it; the order stays as it was.
    oms.new_order("REST", "AAPL", "2", 100, price="195.00")
    assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("REST")), 10)
    oms.replace("REST-2", "REST", "AAPL", "2", 2_000_000, price="195.00")
    assert oms.wait(lambda: any(m.msg_type == "9" for m in oms.reports("REST-2")), 10)
    [cxl] = [m for m in oms.reports("REST-2") if m.msg_type == "9"]
    assert cxl[codec.TEXT] == "OrderQty 2000000 exceeds max_order_qty 1000000 for AAPL"
    assert stack.gateway.inspect(lambda e: [p.qty for p in e.parents.values() if p.cl_ord_id == "REST"]) == [100]

    # Nothing refused reached a venue, and every refusal is counted and on the audit trail.
    sent = stack.gateway.inspect(lambda e: {p.cl_ord_id for p in e.parents.values()})
    assert sent == {"OK", "REST"}
    registry = stack.gateway.metrics.registry
    assert registry.get_sample_value("sorgw_rejects_total", {"reason": "risk"}) == 4
    assert registry.get_sample_value("sorgw_rejects_total", {"reason": "validation"}) == 0
    store = open_store(stack.gateway_cfg.audit.url)
    store.open()
    try:
        limits = {r.cl_ord_id: json.loads(r.body)["limit"] for r in store.records() if r.kind == "reject"}
        refs = [r.cl_ord_id for r in store.records() if r.kind == "risk_ref"]
    finally:
        store.close()
    assert limits == {
        "BIG": "max_order_qty",
        "FAT": "price_collar_bps",
        "MKT": "market_orders",
        "REST-2": "max_order_qty",
    }
    assert {"FAT", "OK", "REST"} <= set(refs)  # the collar's reference price, for a replay


def test_halt_cancels_what_rests_and_refuses_new_orders_until_resumed(make_stack):
    stack = make_stack()
    oms = stack.oms
    oms.new_order("REST", "AAPL", "2", 100, price="195.00")
    assert oms.wait(lambda: stack.gateway.inspect(lambda e: any(p.live_children() for p in e.parents.values())), 10)
    stack.gateway.halt(Halt(symbol="AAPL"))
    final = oms.wait_final("REST")
    assert (final[codec.ORD_STATUS], final[codec.TEXT]) == ("4", "canceled: halt (symbol AAPL)")
    oms.new_order("NEW", "AAPL", "2", 100, price="195.00")
    refused = oms.wait_final("NEW")
    assert refused[codec.ORD_STATUS] == "8"
    assert refused[codec.TEXT] == "refused: halt (symbol AAPL) in force until resumed"
    stack.gateway.halt(Halt(symbol="AAPL"), resume=True)
    oms.new_order("AFTER", "AAPL", "2", 100, price="195.00")
    assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("AFTER")), 10)
