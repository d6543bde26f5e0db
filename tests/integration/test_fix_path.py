"""OMS -> gateway -> venue simulators -> OMS over real FIX sockets on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import pytest
import quickfix as fix

from gateway import checks, topology
from gateway.audit.stores import open_store
from gateway.core.types import OrdType, Side, TimeInForce
from gateway.fix import codec
from gateway.simulator.venue import SimOrder
from gateway.stack import Stack

pytestmark = pytest.mark.integration


def assert_consistent(stack: Stack, cl_ord_id: str):
    """Reports are FIX-consistent, and the gateway's children add up to what the OMS was told."""
    reports = stack.oms.reports(cl_ord_id)
    assert stack.oms.rejects_sent == [], "the OMS refused a message the gateway sent"
    assert checks.order_problems([m for m in reports if m.msg_type == "8"]) == []
    order_ids = {m.get(codec.ORDER_ID) for m in reports} - {"NONE"}
    for order_id in order_ids:
        child_fills, parent_cum = stack.gateway.inspect(
            lambda e, order_id=order_id: (
                sum(c.cum_qty for c in e.parents[order_id].children.values()),
                e.parents[order_id].cum_qty,
            )
        )
        assert child_fills == parent_cum
        reported = sum(qty for _, qty, _ in checks.fills_of(reports))
        assert reported == parent_cum, "a fill was reported upstream twice or not at all"
    return reports


def test_marketable_buy_fills_across_several_venues(stack):
    stack.oms.new_order("B1", "AAPL", "1", 1500, price="190.04", urgency="H")
    final = stack.oms.wait_final("B1")
    assert final is not None and final[codec.ORD_STATUS] == "2"
    reports = assert_consistent(stack, "B1")
    venues = {venue for venue, _, _ in checks.fills_of(reports)}
    assert len(venues) >= 2 and venues <= {"LITA", "LITB", "LITC"}
    assert all(px <= Decimal("190.04") for _, _, px in checks.fills_of(reports))
    assert final[codec.CUM_QTY] == "1500" and final[codec.LEAVES_QTY] == "0"


def test_partial_fill_then_cancel(stack):
    oms = stack.oms
    oms.new_order("S1", "AAPL", "2", 3000, price="189.98", urgency="H")
    assert oms.wait(
        lambda: (
            any(m.get(codec.ORD_STATUS) == "1" for m in oms.reports("S1"))
            and stack.gateway.inspect(
                lambda e: any(c.spec.purpose == "post" for p in e.parents.values() for c in p.live_children())
            )
        ),
        10,
    )
    oms.cancel("S1-C", "S1", "AAPL", "2", 3000)
    final = oms.wait_final("S1-C")
    assert final[codec.ORD_STATUS] == "4" and final[codec.ORIG_CL_ORD_ID] == "S1"
    assert 0 < int(final[codec.CUM_QTY]) < 3000 and final[codec.LEAVES_QTY] == "0"
    assert_consistent(stack, "S1")
    assert stack.gateway.inspect(lambda e: all(not c.live for p in e.parents.values() for c in p.children.values()))


def test_cancel_replace_up_and_down(stack):
    oms = stack.oms
    oms.new_order("R1", "MSFT", "1", 500, price="409.50", urgency="H")
    assert oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "0" for m in oms.reports("R1")), 5)
    oms.replace("R2", "R1", "MSFT", "1", 900, price="409.55")
    assert oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "5" for m in oms.reports("R2")), 5)
    oms.replace("R3", "R2", "MSFT", "1", 200, price="409.55")
    assert oms.wait(lambda: sum(m.get(codec.EXEC_TYPE) == "5" for m in oms.reports("R1")) == 2, 5)
    replaced = [m for m in oms.reports("R1") if m.get(codec.EXEC_TYPE) == "5"]
    assert [
        (m[codec.CL_ORD_ID], m[codec.ORIG_CL_ORD_ID], m[codec.ORDER_QTY], m[codec.LEAVES_QTY]) for m in replaced
    ] == [("R2", "R1", "900", "900"), ("R3", "R2", "200", "200")]
    # The resting child was cut to the new size: what works at the venue never exceeds the parent.
    assert stack.gateway.inspect(
        lambda e: [sum(c.leaves_qty for c in p.live_children()) for p in e.parents.values()]
    ) == [200]
    # Replace up through the offer: the parent becomes marketable and fills.
    oms.replace("R4", "R3", "MSFT", "1", 400, price="410.05")
    final = oms.wait_final("R4")
    assert final[codec.ORD_STATUS] == "2" and final[codec.CUM_QTY] == "400"
    assert_consistent(stack, "R1")


def test_directed_order_goes_only_to_its_venue(stack):
    # LITC quotes a tick above the others, so its bid is the best: a directed sell trades there.
    stack.oms.new_order("D1", "MSFT", "2", 200, price="409.99", ex_destination="LITC", urgency="L")
    final = stack.oms.wait_final("D1")
    assert final[codec.ORD_STATUS] == "2"
    reports = assert_consistent(stack, "D1")
    assert {venue for venue, _, _ in checks.fills_of(reports)} == {"LITC"}


def test_directed_order_never_trades_through_a_better_quote(stack):
    # A directed buy to LITC, whose offer is a tick worse than LITA's: it may not pay more than 410.01.
    stack.oms.new_order("D2", "MSFT", "1", 300, price="410.05", ex_destination="LITC", urgency="H")
    assert stack.oms.wait(
        lambda: (
            stack.gateway.inspect(lambda e: [c.status.name for p in e.parents.values() for c in p.children.values()])
            == ["NEW"]
        ),
        5,
    )
    child = stack.gateway.inspect(lambda e: [c for p in e.parents.values() for c in p.children.values()][0])
    assert child.venue == "LITC" and child.spec.price == Decimal("410.01")
    assert checks.fills_of(stack.oms.reports("D2")) == []


def test_low_urgency_tries_dark_pools_first(stack):
    stack.oms.new_order("DK1", "AAPL", "1", 1200, price="190.05", urgency="L")
    final = stack.oms.wait_final("DK1")
    assert final[codec.ORD_STATUS] == "2"
    fills = checks.fills_of(assert_consistent(stack, "DK1"))
    assert fills[0][0].startswith("DRK") and fills[0][2] == Decimal("190.005")


def test_ioc_remainder_expires(stack):
    stack.oms.new_order("I1", "MSFT", "2", 5000, price="409.98", tif="3", urgency="H")
    final = stack.oms.wait_final("I1")
    assert final[codec.ORD_STATUS] == "C" and final[codec.EXEC_TYPE] == "C"
    assert 0 < int(final[codec.CUM_QTY]) < 5000 and final[codec.LEAVES_QTY] == "0"
    assert_consistent(stack, "I1")


def test_order_status_request(stack):
    stack.oms.new_order("Q1", "AAPL", "1", 100, price="189.50", urgency="H")
    stack.oms.wait(lambda: len(stack.oms.reports("Q1")) >= 1, 5)
    stack.oms.status("Q1", "AAPL", "1")
    assert stack.oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "I" for m in stack.oms.reports("Q1")), 5)
    status = [m for m in stack.oms.reports("Q1") if m.get(codec.EXEC_TYPE) == "I"][0]
    assert status[codec.ORD_STATUS] == "0" and status[codec.LEAVES_QTY] == "100"


@pytest.mark.parametrize(
    "fields, text",
    [
        ({codec.ORDER_QTY: 0}, "OrderQty"),
        ({codec.ORDER_QTY: -5}, "OrderQty"),
        ({codec.PRICE: "190.001"}, "tick"),
        ({codec.PRICE: "-1"}, "Price"),
        ({codec.SYMBOL: "ZZZZ"}, "unknown symbol"),
        ({codec.EX_DESTINATION: "NOWHERE"}, "ExDestination"),
        ({codec.SIDE: None}, "Side (54)"),
        ({codec.ORD_TYPE: None}, "OrdType (40)"),
        ({codec.ORDER_QTY: "10.5"}, "whole number"),
        ({codec.ORD_TYPE: "1"}, "market order"),
    ],
)
def test_validation_rejects_keep_the_session_up(stack, fields, text):
    base = {
        codec.CL_ORD_ID: "V1",
        codec.SYMBOL: "AAPL",
        codec.SIDE: "1",
        codec.ORDER_QTY: 100,
        codec.ORD_TYPE: "2",
        codec.PRICE: "190.00",
        codec.TIF: "0",
    }
    stack.oms.send_fields("D", {**base, **fields})
    final = stack.oms.wait_final("V1")
    assert final is not None and final[codec.ORD_STATUS] == "8" and final[codec.EXEC_TYPE] == "8"
    assert text in final[codec.TEXT]
    stack.oms.new_order("V2", "AAPL", "1", 100, price="190.05", urgency="H")
    assert stack.oms.wait_final("V2")[codec.ORD_STATUS] == "2"


def test_duplicate_cl_ord_id_is_rejected(stack):
    stack.oms.new_order("DUP", "AAPL", "1", 100, price="190.05", urgency="H")
    assert stack.oms.wait_final("DUP")[codec.ORD_STATUS] == "2"
    stack.oms.new_order("DUP", "AAPL", "1", 100, price="190.05", urgency="H")
    assert stack.oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "8" for m in stack.oms.reports("DUP")), 5)
    reject = [m for m in stack.oms.reports("DUP") if m.get(codec.ORD_STATUS) == "8"][0]
    assert reject[codec.ORD_REJ_REASON] == "6"


def test_cancel_of_unknown_and_filled_orders_gets_cancel_reject(stack):
    stack.oms.cancel("X-C", "NO-SUCH", "AAPL", "1", 100)
    assert stack.oms.wait(lambda: any(m.msg_type == "9" for m in stack.oms.reports()), 5)
    stack.oms.new_order("F1", "AAPL", "1", 100, price="190.05", urgency="H")
    assert stack.oms.wait_final("F1")[codec.ORD_STATUS] == "2"
    stack.oms.cancel("F1-C", "F1", "AAPL", "1", 100)
    assert stack.oms.wait(lambda: sum(m.msg_type == "9" for m in stack.oms.reports()) == 2, 5)
    rejects = [m for m in stack.oms.reports() if m.msg_type == "9"]
    assert [m[codec.CXL_REJ_REASON] for m in rejects] == ["1", "0"]


def test_venue_rejecting_children_is_routed_around(make_stack):
    stack = make_stack(sim_overrides={"LITB": {"reject_rate": 1.0}})
    stack.oms.new_order("VR1", "AAPL", "1", 700, price="190.03", urgency="H")
    final = stack.oms.wait_final("VR1")
    assert final[codec.ORD_STATUS] == "2"
    reports = assert_consistent(stack, "VR1")
    assert "LITB" not in {venue for venue, _, _ in checks.fills_of(reports)}
    rejected = stack.gateway.inspect(
        lambda e: [c.venue for p in e.parents.values() for c in p.children.values() if c.status.name == "REJECTED"]
    )
    assert rejected == ["LITB"]


def test_malformed_message_gets_session_reject_and_session_still_trades(stack):
    stack.oms.send_fields(
        "D",
        {
            codec.CL_ORD_ID: "M1",
            codec.SYMBOL: "AAPL",
            codec.SIDE: "1",
            codec.ORDER_QTY: "abc",
            codec.ORD_TYPE: "2",
            codec.PRICE: "190.00",
        },
    )
    assert stack.oms.wait(lambda: stack.oms.session_rejects(), 5)
    reject = stack.oms.session_rejects()[0]
    assert reject.msg_type == "3" and reject.get(371) == "38"  # RefTagID names OrderQty
    stack.oms.new_order("M2", "AAPL", "1", 200, price="190.05", urgency="H")
    assert stack.oms.wait_final("M2")[codec.ORD_STATUS] == "2"
    assert_consistent(stack, "M2")


def test_missing_cl_ord_id_is_a_session_reject(stack):
    stack.oms.send_fields(
        "D", {codec.SYMBOL: "AAPL", codec.SIDE: "1", codec.ORDER_QTY: 100, codec.ORD_TYPE: "2", codec.PRICE: "190.00"}
    )
    assert stack.oms.wait(lambda: stack.oms.session_rejects(), 5)
    assert stack.oms.session_rejects()[0].get(371) == "11"


def test_fix42_oms_gets_fix42_reports(make_stack):
    upstream = {"port": topology.free_port(), "sessions": [{"begin_string": "FIX.4.2"}]}
    stack = make_stack(gateway_overrides={"upstream": upstream})
    stack.oms.new_order("F42", "AAPL", "1", 800, price="190.04", urgency="H")
    final = stack.oms.wait_final("F42")
    assert final[codec.ORD_STATUS] == "2" and final[8] == "FIX.4.2"
    reports = assert_consistent(stack, "F42")
    # FIX 4.2: ExecTransType on every report, ExecType 1/2 for partial fill/fill, never F.
    assert all(m.get(codec.EXEC_TRANS_TYPE) == "0" for m in reports)
    assert [m[codec.EXEC_TYPE] for m in reports if checks.is_fill(m)][-1] == "2"
    assert "F" not in {m[codec.EXEC_TYPE] for m in reports}


def test_fok_fills_whole_at_one_venue_or_expires_untouched(stack):
    stack.oms.new_order("FOK1", "AAPL", "1", 150, price="190.02", tif="4", urgency="H")
    filled = stack.oms.wait_final("FOK1")
    assert filled[codec.ORD_STATUS] == "2" and filled[codec.CUM_QTY] == "150"
    assert len({venue for venue, _, _ in checks.fills_of(assert_consistent(stack, "FOK1"))}) == 1
    # More than any single venue shows within the limit: nothing may trade.
    stack.oms.new_order("FOK2", "AAPL", "1", 50_000, price="190.02", tif="4", urgency="H")
    expired = stack.oms.wait_final("FOK2")
    assert expired[codec.ORD_STATUS] == "C" and expired[codec.CUM_QTY] == "0"
    assert checks.fills_of(assert_consistent(stack, "FOK2")) == []


def test_fills_lost_while_a_venue_session_was_down_are_recovered_by_a_status_query(stack):
    oms = stack.oms
    oms.new_order("Q1", "AAPL", "2", 300, price="190.05", urgency="H")

    def resting():
        return stack.gateway.inspect(
            lambda e: [(c.venue, c.cl_ord_id) for p in e.parents.values() for c in p.live_children() if c.acked]
        )

    assert oms.wait(lambda: bool(resting()), 10)
    ((venue, child_id),) = resting()
    key = next(k for k, cfg in stack.venues.configs.items() if cfg.name == venue)
    fix.Session.lookupSession(stack.venues.sessions[key]).disconnect()
    assert oms.wait(lambda: not stack.gateway.inspect(lambda e: e.venues[venue].connected), 10)
    # Someone else lifts the resting child while the session is down: its fill report cannot be delivered,
    # and the session's sequence numbers reset on the next logon, so that report is gone.
    with stack.venues._lock:
        reports = stack.venues.cores[key].submit(
            SimOrder("someone-else", "X1", "AAPL", Side.BUY, 100_000, OrdType.LIMIT, Decimal("190.05"), TimeInForce.IOC)
        )
    lost = [r for r in reports if r.owner == key]
    assert [r.last_qty for r in lost] == [300]
    stack.venues._send(lost)

    final = oms.wait_final("Q1", timeout=20)
    assert final is not None and final[codec.ORD_STATUS] == "2"
    assert (final[codec.CUM_QTY], final[codec.LAST_MKT], final[codec.LAST_PX]) == ("300", venue, "190.05")
    assert_consistent(stack, "Q1")
    assert stack.gateway.inspect(lambda e: not e._children[child_id].live)
    store = open_store(stack.gateway_cfg.audit.url, stack.gateway_cfg.audit.table)
    store.open()
    try:
        trail = list(store.records())
    finally:
        store.close()
    assert any(
        r.kind == "fix_out" and b"\x0135=H\x01" in r.body and f"\x0111={child_id}\x01".encode() in r.body for r in trail
    )
    assert any(r.kind == "notice" and b"no execution report told us of" in r.body for r in trail)
