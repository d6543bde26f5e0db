"""Two OMS sessions at once, FIX 4.2 and FIX 4.4, using the same ClOrdIDs: each gets only its own reports,
in its own version of FIX."""

from __future__ import annotations

import threading

import pytest

from gateway import checks, topology
from gateway.fix import codec
from gateway.stack import Stack

pytestmark = pytest.mark.integration

FIX42_EXEC_TYPES = set("0123456789ABCDE")  # FIX 4.2 ExecType (150): no F (trade) and no I (status)


@pytest.fixture
def two_oms(tmp_path):
    upstream = {
        "port": topology.free_port(),
        "sessions": [
            {"target_comp_id": "OMS42", "begin_string": "FIX.4.2"},
            {"target_comp_id": "OMS44", "begin_string": "FIX.4.4"},
        ],
    }
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides={"upstream": upstream})
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        oms44 = stack.connect_oms(1)
        try:
            yield stack, stack.oms, oms44
        finally:
            oms44.stop()


def assert_own_and_versioned(oms, side: str, begin_string: str) -> None:
    reports = oms.reports()
    assert reports and oms.rejects_sent == []
    assert all(m[8] == begin_string for m in reports)
    assert all(m.get(codec.SIDE) == side for m in reports if m.msg_type == "8")
    if begin_string == "FIX.4.2":
        assert all(m.get(codec.EXEC_TRANS_TYPE) in ("0", "3") for m in reports if m.msg_type == "8")
        assert {m[codec.EXEC_TYPE] for m in reports if m.msg_type == "8"} <= FIX42_EXEC_TYPES
    else:
        assert all(m.get(codec.EXEC_TRANS_TYPE) is None for m in reports)
        assert all(m[codec.EXEC_TYPE] == "F" for m in reports if checks.is_fill(m))


def test_same_cl_ord_id_from_two_sessions_gets_each_only_its_own_reports(two_oms):
    stack, oms42, oms44 = two_oms
    start = threading.Barrier(2)

    def send(oms, side, qty, price):
        start.wait()
        oms.new_order("SAME", "AAPL", side, qty, price=price, urgency="H")

    senders = [
        threading.Thread(target=send, args=(oms42, "1", 700, "190.04")),
        threading.Thread(target=send, args=(oms44, "2", 400, "189.96")),
    ]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    buy, sell = oms42.wait_final("SAME"), oms44.wait_final("SAME")
    assert (buy[codec.ORD_STATUS], buy[codec.CUM_QTY], buy[codec.ORDER_QTY]) == ("2", "700", "700")
    assert (sell[codec.ORD_STATUS], sell[codec.CUM_QTY], sell[codec.ORDER_QTY]) == ("2", "400", "400")
    assert buy[codec.ORDER_ID] != sell[codec.ORDER_ID]
    for oms in (oms42, oms44):
        assert checks.order_problems([m for m in oms.reports("SAME") if m.msg_type == "8"]) == []
    assert buy[codec.EXEC_TYPE] == "2" and sell[codec.EXEC_TYPE] == "F"

    # Resting orders under one ClOrdID again: a replace and a status request on one session, a cancel on
    # the other, each acting on its own session's order only.
    oms42.new_order("REST", "MSFT", "1", 100, price="405.00", urgency="H")
    oms44.new_order("REST", "MSFT", "2", 100, price="415.00", urgency="H")
    assert oms42.wait(lambda: any(m.get(codec.EXEC_TYPE) == "0" for m in oms42.reports("REST")), 5)
    assert oms44.wait(lambda: any(m.get(codec.EXEC_TYPE) == "0" for m in oms44.reports("REST")), 5)
    oms42.replace("REST2", "REST", "MSFT", "1", 300, price="405.00")
    oms44.cancel("REST-C", "REST", "MSFT", "2", 100)
    canceled = oms44.wait_final("REST-C")
    assert canceled[codec.ORD_STATUS] == "4" and canceled[codec.ORIG_CL_ORD_ID] == "REST"
    assert oms42.wait(lambda: any(m.get(codec.EXEC_TYPE) == "5" for m in oms42.reports("REST2")), 5)
    oms42.status("REST2", "MSFT", "1")
    assert oms42.wait(lambda: any(m.get(codec.EXEC_TRANS_TYPE) == "3" for m in oms42.reports("REST2")), 5)
    status = next(m for m in oms42.reports("REST2") if m.get(codec.EXEC_TRANS_TYPE) == "3")
    assert (status[codec.EXEC_TYPE], status[codec.ORD_STATUS], status[codec.ORDER_QTY]) == ("0", "0", "300")
    assert not any(m.get(codec.CL_ORD_ID) == "REST2" or m.get(codec.ORDER_QTY) == "300" for m in oms44.reports())
    assert not any(m.get(codec.CL_ORD_ID) == "REST-C" or m.get(codec.ORD_STATUS) == "4" for m in oms42.reports())
    assert_own_and_versioned(oms42, "1", "FIX.4.2")
    assert_own_and_versioned(oms44, "2", "FIX.4.4")
    live = stack.gateway.inspect(
        lambda e: sorted((p.session, p.cl_ord_id, p.qty) for p in e.parents.values() if p.live)
    )
    assert live == [(oms42_session(stack), "REST2", 300)]


def oms42_session(stack: Stack) -> str:
    return next(key for key in stack.gateway.upstream.sessions if "OMS42" in key)
