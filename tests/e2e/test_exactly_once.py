"""Every execution a venue reports reaches the OMS once, at its own price, whatever was killed when."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import quickfix as fix

from gateway import checks
from gateway.fix import codec
from gateway.fix.wire import WireMessage
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


def test_messages_quickfix_stored_and_sent_whose_records_were_still_queued_are_recovered_not_sent_again(
    tmp_path, prefix
):
    """The crash lands at the first step that finds an outgoing message's record still queued, though quickfix
    stored and sent the message (child orders, the OMS's acknowledgement). After the restart the stores give
    them back to the trail: no venue gets a child again, the OMS gets every fill once and nothing twice, and
    the trail verifies and shows them."""
    procs = Processes(tmp_path, prefix, sim_overrides={v: {"fill_latency_ms": d} for v, d in FILL_DELAYS.items()})
    oms = None
    try:
        oms = procs.start(FILL_DELAYS, crash_at="stored_unrecorded:1")
        oms.new_order("K2", "AAPL", "1", 1500, price="190.04", urgency="H")
        assert procs.wait_gateway_exit(20) == -9
        assert procs.trail_break() is None
        last_before = procs.trail()[-1].seq

        procs.start_gateway()
        _sweep_fills_exactly_once(oms, "K2", 1500)
        assert "recovery.recovered_from_store" in procs.gateway_log.read_text()
        # Nothing the OMS already had came again as a new message (a FIX resend repeats its MsgSeqNum, 43=Y).
        first_sent = Counter(m[codec.EXEC_ID] for m in oms.reports("K2") if m.get(codec.POSS_DUP_FLAG) != "Y")
        assert max(first_sent.values()) == 1, first_sent
    finally:
        if oms is not None:
            oms.stop()
        procs.stop()
    trail = procs.trail()
    children = _children(trail)
    assert len(children) == len({r.cl_ord_id for r in children}) >= 2  # each child on record once
    assert not [r for r in children if WireMessage(r.body).isSetField(codec.POSS_RESEND)]  # none sent again
    events = [json.loads(r.body) for r in trail if r.kind == "event" and b'"recovered_from_store"' in r.body]
    assert events
    by_seq = {r.seq: r for r in trail}
    for event in events:
        record = by_seq[event["record"]]
        assert (record.kind, record.session) == ("fix_out", event["session"]) and record.seq > last_before
        assert WireMessage(record.body).getField(codec.MSG_SEQ_NUM) == str(event["msg_seq_num"])
    url = procs.gateway_cfg.audit.url
    assert _audit(url, "verify").returncode == 0
    shown = _audit(url, "show", "K2").stdout
    assert "recovered_from_store" in shown
    assert all(f"#{event['record']:<7} -> {event['session']} " in shown for event in events), shown


def _children(trail: list) -> list:
    return [r for r in trail if r.kind == "fix_out" and WireMessage(r.body).getField(codec.MSG_TYPE) == "D"]


def _audit(url: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gateway.cli", "audit", "--url", url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


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
