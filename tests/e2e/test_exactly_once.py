"""Every execution a venue reports reaches the OMS once, at its own price, whatever was killed when."""

from __future__ import annotations

import quickfix as fix

from gateway import checks
from gateway.fix import codec
from tests.e2e.harness import Processes

# Each venue fills its child after its own delay, so the fills of one sweep arrive one by one.
FILL_DELAYS = {"LITA": 50, "LITB": 600, "LITC": 1200}


def _sweep_fills_exactly_once(oms, cl_ord_id: str, qty: int) -> None:
    final = oms.wait_final(cl_ord_id, 30)
    reports = oms.reports(cl_ord_id)
    assert final is not None and final[codec.ORD_STATUS] == "2", [m.fields for m in reports]
    assert checks.order_problems([m for m in reports if m.msg_type == "8"]) == []
    assert sum(q for _, q, _ in checks.fills_of(reports)) == qty
    assert all(px * 100 == int(px * 100) for _, _, px in checks.fills_of(reports))  # prices that traded: on tick


def test_a_fill_report_on_record_but_never_stored_by_quickfix_reaches_the_oms_after_a_restart(tmp_path, prefix):
    """The crash lands after the first fill report is on the audit trail and before quickfix stores it: its
    MsgSeqNum goes to other content after the restart, so only recovery can still deliver it."""
    procs = Processes(tmp_path, prefix, sim_overrides={v: {"fill_latency_ms": d} for v, d in FILL_DELAYS.items()})
    oms = None
    try:
        oms = procs.start(FILL_DELAYS, crash_at="recorded_out.8:2")  # report 1 acks the order, 2 is its first fill
        oms.new_order("K1", "AAPL", "1", 1500, price="190.04", urgency="H")
        assert procs.wait_gateway_exit(20) == -9
        assert not any(checks.is_fill(m) for m in oms.reports("K1"))
        assert procs.trail_break() is None

        procs.start_gateway()
        _sweep_fills_exactly_once(oms, "K1", 1500)
        assert "recovery.never_sent" in procs.gateway_log.read_text()
        # The report on record but never stored goes out again marked PossResend (so may others that were still
        # queued for the OMS when the process died).
        resent = [m for m in oms.reports("K1") if m.get(codec.POSS_RESEND) == "Y"]
        assert any(checks.is_fill(m) for m in resent)
    finally:
        if oms is not None:
            oms.stop()
        procs.stop()
    assert procs.trail_break() is None


def test_a_possible_duplicate_of_a_filled_order_is_answered_with_its_status(tmp_path, prefix):
    procs = Processes(tmp_path, prefix)
    oms = None
    try:
        oms = procs.start(["LITC"])
        oms.new_order("D1", "MSFT", "2", 100, price="409.99", ex_destination="LITC")
        assert oms.wait_final("D1", 10)[codec.ORD_STATUS] == "2"
        # The OMS lost track of what it sent and sends the order again, flagged as a possible resend (quickfix
        # strips PossDupFlag from what an application sends; the gateway treats 43=Y and 97=Y alike).
        again = fix.Message()
        header = again.getHeader()
        header.setField(fix.BeginString("FIX.4.4"))
        header.setField(fix.MsgType("D"))
        header.setField(codec.POSS_RESEND, "Y")
        for tag, value in {
            codec.CL_ORD_ID: "D1",
            codec.SYMBOL: "MSFT",
            codec.SIDE: "2",
            codec.ORDER_QTY: "100",
            codec.ORD_TYPE: "2",
            codec.PRICE: "409.99",
            codec.EX_DESTINATION: "LITC",
        }.items():
            again.setField(tag, value)
        again.setField(fix.TransactTime())
        assert fix.Session.sendToTarget(again, oms.sessions[oms.session])
        assert oms.wait(lambda: len(oms.reports("D1")) > 2 and oms.reports("D1")[-1][codec.EXEC_TYPE] == "I", 10)
        answer = oms.reports("D1")[-1]
        assert (answer[codec.ORD_STATUS], answer[codec.CUM_QTY]) == ("2", "100")
        assert not [m for m in oms.reports("D1") if m.get(codec.ORD_STATUS) == "8"]
    finally:
        if oms is not None:
            oms.stop()
        procs.stop()
