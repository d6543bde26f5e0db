"""Consistency checks over the execution reports an OMS received, used by the demo and the tests."""

from __future__ import annotations

from decimal import Decimal

from gateway.fix import codec
from gateway.fix.client import Received

LIVE = {"0", "1", "6", "E", "A"}


def is_fill(m: Received) -> bool:
    return (
        m.msg_type == "8" and m.get(codec.EXEC_TYPE) in ("F", "1", "2") and int(m.fields.get(codec.LAST_QTY, "0")) > 0
    )


def order_problems(reports: list[Received]) -> list[str]:
    """Everything wrong with one order's report stream: each message names the ExecID at fault."""
    problems: list[str] = []
    exec_ids = [m[codec.EXEC_ID] for m in reports if m.msg_type == "8"]
    if len(exec_ids) != len(set(exec_ids)):
        problems.append(f"duplicate ExecIDs: {sorted(e for e in exec_ids if exec_ids.count(e) > 1)}")
    cum = 0
    notional = Decimal(0)
    for m in reports:
        if m.msg_type != "8" or m.get(codec.EXEC_TYPE) == "I":
            continue
        exec_id = m[codec.EXEC_ID]
        if is_fill(m):
            cum += int(m[codec.LAST_QTY])
            notional += Decimal(m[codec.LAST_PX]) * int(m[codec.LAST_QTY])
            if not m.get(codec.LAST_MKT):
                problems.append(f"{exec_id}: fill without LastMkt")
        order_qty = int(m[codec.ORDER_QTY])
        reported_cum = int(m[codec.CUM_QTY])
        leaves = int(m[codec.LEAVES_QTY])
        status = m[codec.ORD_STATUS]
        if reported_cum != cum:
            problems.append(f"{exec_id}: CumQty {reported_cum} but fills so far sum to {cum}")
        if reported_cum > order_qty:
            problems.append(f"{exec_id}: CumQty {reported_cum} exceeds OrderQty {order_qty}")
        if status in LIVE and leaves != order_qty - reported_cum:
            problems.append(f"{exec_id}: LeavesQty {leaves} != OrderQty {order_qty} - CumQty {reported_cum}")
        if status not in LIVE and leaves != 0:
            problems.append(f"{exec_id}: LeavesQty {leaves} on a done order (OrdStatus {status})")
        if status == "2" and reported_cum != order_qty:
            problems.append(f"{exec_id}: OrdStatus filled with CumQty {reported_cum} of {order_qty}")
        if cum:
            expected = notional / cum
            if abs(Decimal(m[codec.AVG_PX]) - expected) > Decimal("0.000001"):
                problems.append(f"{exec_id}: AvgPx {m[codec.AVG_PX]} but fills give {expected:.8f}")
    return problems


def fills_of(reports: list[Received]) -> list[tuple[str, int, Decimal]]:
    """(LastMkt, LastQty, LastPx) of every fill report."""
    return [
        (m.fields.get(codec.LAST_MKT, "?"), int(m[codec.LAST_QTY]), Decimal(m[codec.LAST_PX]))
        for m in reports
        if is_fill(m)
    ]
