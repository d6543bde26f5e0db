"""`sorgw demo`: simulators, gateway and a scripted OMS on 127.0.0.1, a handful of parents, checked end to end."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from gateway import checks, topology
from gateway.fix import codec
from gateway.fix.client import OmsClient, Received
from gateway.service import Gateway
from gateway.stack import Stack

STATUS = {
    "0": "New",
    "1": "PartiallyFilled",
    "2": "Filled",
    "4": "Canceled",
    "6": "PendingCancel",
    "8": "Rejected",
    "C": "Expired",
    "E": "PendingReplace",
    "3": "DoneForDay",
}


@dataclass
class Scenario:
    title: str
    cl_ord_id: str
    expect: Callable[[Received, list[Received]], list[str]]
    notes: list[str] = field(default_factory=list)


def _final_status(*statuses: str) -> Callable[[Received, list[Received]], list[str]]:
    def check(final: Received, _reports: list[Received]) -> list[str]:
        got = final.fields.get(codec.ORD_STATUS, "missing")
        return (
            []
            if got in statuses
            else [f"OrdStatus {STATUS.get(got, got)}, expected " + " or ".join(STATUS[s] for s in statuses)]
        )

    return check


def _venues_at_least(n: int) -> Callable[[Received, list[Received]], list[str]]:
    def check(final: Received, reports: list[Received]) -> list[str]:
        venues = {venue for venue, _, _ in checks.fills_of(reports)}
        problems = _final_status("2")(final, reports)
        if len(venues) < n:
            problems.append(f"filled on {sorted(venues)}, expected at least {n} venues")
        return problems

    return check


def _only_venue(venue: str) -> Callable[[Received, list[Received]], list[str]]:
    def check(final: Received, reports: list[Received]) -> list[str]:
        venues = {v for v, _, _ in checks.fills_of(reports)}
        problems = _final_status("2")(final, reports)
        if venues != {venue}:
            problems.append(f"fills from {sorted(venues)}, expected only {venue}")
        return problems

    return check


def _rejected_with(text: str) -> Callable[[Received, list[Received]], list[str]]:
    def check(final: Received, reports: list[Received]) -> list[str]:
        problems = _final_status("8")(final, reports)
        if text not in (final.get(codec.TEXT) or ""):
            problems.append(f"reject Text {final.get(codec.TEXT)!r} does not mention {text!r}")
        return problems

    return check


def _run_script(gateway: Gateway, oms: OmsClient) -> list[Scenario]:
    scenarios: list[Scenario] = []
    # 1. A marketable buy, urgent, larger than any one venue's top levels: sweeps several venues.
    oms.new_order("SWEEP-1", "AAPL", "1", 1500, price="190.04", urgency="H")
    scenarios.append(Scenario("marketable buy sweeping lit venues (urgency H)", "SWEEP-1", _venues_at_least(2)))
    oms.wait_final("SWEEP-1")

    # 2. A limit sell bigger than the bids down to its limit: takes what is there, rests the rest.
    oms.new_order("REST-1", "AAPL", "2", 6000, price="189.98", urgency="H")
    oms.wait(
        lambda: (
            any(
                m.get(codec.CUM_QTY) not in (None, "0") and m.get(codec.ORD_STATUS) == "1"
                for m in oms.reports("REST-1")
            )
            and _resting(gateway, "REST-1")
        ),
        10,
    )
    scenarios.append(Scenario("limit sell that rests partly, then canceled", "CXL-1", _final_status("4")))

    # 3. Cancel the resting remainder.
    oms.cancel("CXL-1", "REST-1", "AAPL", "2", 6000)
    oms.wait_final("CXL-1")

    # 4. A passive buy, replaced up in size and price, then down, then canceled.
    oms.new_order("RPL-1", "MSFT", "1", 500, price="409.50", urgency="H")
    oms.wait(lambda: _resting(gateway, "RPL-1"), 10)
    oms.replace("RPL-2", "RPL-1", "MSFT", "1", 800, price="409.60")
    oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "5" for m in oms.reports("RPL-2")), 10)
    oms.replace("RPL-3", "RPL-2", "MSFT", "1", 300, price="409.60")
    oms.wait(lambda: sum(m.get(codec.EXEC_TYPE) == "5" for m in oms.reports("RPL-1")) >= 2, 10)
    oms.cancel("RPL-4", "RPL-3", "MSFT", "1", 300)
    oms.wait_final("RPL-4")
    scenarios.append(Scenario("cancel/replace up then down, then cancel", "RPL-4", _replaced_twice))

    # 5. A directed order: ExDestination sends the whole parent to one venue.
    oms.new_order("DIR-1", "MSFT", "2", 200, price="409.99", ex_destination="LITC", urgency="H")
    scenarios.append(Scenario("directed to LITC (ExDestination)", "DIR-1", _only_venue("LITC")))
    oms.wait_final("DIR-1")

    # 6. Low urgency: the dark pools are tried first at the midpoint, the rest sweeps lit.
    oms.new_order("DARK-1", "AAPL", "1", 1200, price="190.05", urgency="L")
    scenarios.append(Scenario("low urgency buy: dark midpoint first", "DARK-1", _dark_then_filled))
    oms.wait_final("DARK-1")

    # 7. IOC beyond the visible depth within its limit: the remainder expires.
    oms.new_order("IOC-1", "MSFT", "2", 5000, price="409.98", tif="3", urgency="H")
    scenarios.append(Scenario("IOC sell larger than the book: remainder expires", "IOC-1", _final_status("C")))
    oms.wait_final("IOC-1")

    # 8. Invalid orders: each rejected with a reason, the session stays up.
    oms.new_order("BAD-1", "AAPL", "1", 0, price="190.00")
    scenarios.append(Scenario("invalid: zero quantity", "BAD-1", _rejected_with("OrderQty")))
    oms.new_order("BAD-2", "ZZZZ", "1", 100, price="10.00")
    scenarios.append(Scenario("invalid: unknown symbol", "BAD-2", _rejected_with("unknown symbol")))
    oms.new_order("BAD-3", "AAPL", "1", 100, price="190.001")
    scenarios.append(Scenario("invalid: price off the tick", "BAD-3", _rejected_with("tick")))
    for s in scenarios[-3:]:
        oms.wait_final(s.cl_ord_id)
    return scenarios


def _resting(gateway: Gateway, cl_ord_id: str) -> bool:
    """The parent has a child resting at a venue (read from the gateway's order book of record)."""

    def resting(engine) -> bool:
        return any(
            c.spec.purpose == "post" and c.status.value in ("0", "1")
            for p in engine.parents.values()
            if p.cl_ord_id == cl_ord_id
            for c in p.live_children()
        )

    return gateway.inspect(resting)


def _replaced_twice(final: Received, reports: list[Received]) -> list[str]:
    problems = _final_status("4")(final, reports)
    replaced = [m for m in reports if m.get(codec.EXEC_TYPE) == "5"]
    if [m.get(codec.ORDER_QTY) for m in replaced] != ["800", "300"]:
        problems.append(f"replaced quantities {[m.get(codec.ORDER_QTY) for m in replaced]}, expected 800 then 300")
    return problems


def _dark_then_filled(final: Received, reports: list[Received]) -> list[str]:
    problems = _final_status("2")(final, reports)
    venues = [venue for venue, _, _ in checks.fills_of(reports)]
    if not any(v.startswith("DRK") for v in venues):
        problems.append(f"no dark fill (fills from {venues})")
    return problems


def _children(gateway: Gateway, reports: list[Received]) -> list[str]:
    order_ids = {m.get(codec.ORDER_ID) for m in reports} - {"NONE", None}

    def describe(engine) -> list[str]:
        lines = []
        for order_id in order_ids:
            for child in engine.parents[order_id].children.values():
                spec = child.spec
                price = spec.price if spec.price is not None else "MKT"
                lines.append(
                    f"{child.venue:<5} {spec.qty:>5} @ {price} {spec.ord_type.name} {spec.tif.name} "
                    f"({spec.purpose}) -> {child.status.name} filled {child.cum_qty}"
                )
        return lines

    return gateway.inspect(describe)


def _print(gateway: Gateway, oms: OmsClient, scenario: Scenario) -> list[str]:
    reports = oms.reports(scenario.cl_ord_id)
    final = oms.wait_final(scenario.cl_ord_id, timeout=1)
    print(f"\n== {scenario.title}  [{scenario.cl_ord_id}]")
    for line in _children(gateway, reports):
        print(f"   child  {line}")
    executions: dict[tuple[str, Decimal], list[int]] = {}
    for venue, qty, px in checks.fills_of(reports):
        executions.setdefault((venue, px), []).append(qty)
    for (venue, px), qtys in executions.items():
        print(f"   fill   {sum(qtys):>5} @ {px} on {venue} ({len(qtys)} execution{'s' if len(qtys) > 1 else ''})")
    for m in reports:
        if m.msg_type == "9":
            print(f"   cancel reject: {m.get(codec.TEXT)}")
    problems = checks.order_problems([m for m in reports if m.msg_type == "8"])
    if final is None:
        problems.append("no final execution report")
    else:
        status = STATUS.get(final[codec.ORD_STATUS], final[codec.ORD_STATUS])
        print(
            f"   final  OrdStatus={status} CumQty={final[codec.CUM_QTY]} AvgPx={final[codec.AVG_PX]} "
            f"LeavesQty={final[codec.LEAVES_QTY]}"
        )
        if final[codec.ORD_STATUS] == "8":
            print(f"   reject reason: {final.get(codec.TEXT)}")
        elif final.get(codec.TEXT):
            print(f"   text: {final.get(codec.TEXT)}")
        problems += scenario.expect(final, reports)
    for problem in problems:
        print(f"   EXPECTATION FAILED: {problem}")
    return problems


def run_demo(work_dir: Path) -> int:
    shutil.rmtree(work_dir, ignore_errors=True)
    gateway_cfg, venues_cfg = topology.build(work_dir)
    with Stack(gateway_cfg, venues_cfg, work_dir) as stack:
        gateway, oms = stack.gateway, stack.oms
        assert gateway is not None and oms is not None  # entering the stack started both
        scenarios = _run_script(gateway, oms)
        failures = sum(bool(_print(gateway, oms, s)) for s in scenarios)
        rejects = oms.session_rejects() + oms.rejects_sent
        if rejects:
            failures += 1
            print(f"\nunexpected session-level rejects: {[m.get(codec.TEXT) for m in rejects]}")
    total = len(scenarios)
    print(
        f"\n{total - failures} of {total} scenarios met every expectation"
        + ("" if failures else "; every report consistent (CumQty, LeavesQty, AvgPx, unique ExecIDs)")
    )
    return 1 if failures else 0
