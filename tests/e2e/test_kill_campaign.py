"""A kill -9 campaign: orders, fills, cancels and replaces keep flowing while the gateway is killed again and again.

Half the kills land on crash points (a report or child order on record but not stored by quickfix, a step on
record with nothing sent, messages quickfix stored and sent whose records were still queued), half at random
moments. After each kill the audit chain must verify; at the end every
execution the venues sent must have reached the OMS exactly once, at its own price, no order may be stuck, over-
filled, or rejected after a fill. SORGW_KILLS sets the kills per audit store (default 15: 30 in all).
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from gateway import checks
from gateway.fix import codec
from gateway.fix.client import OmsClient
from tests.e2e.harness import Processes

KILLS = int(os.environ.get("SORGW_KILLS", "15"))
CRASH_POINTS = [
    "recorded_out.8",
    "recorded_out.D",
    "recorded_out.F",
    "step_committed",
    "recorded_out",
    "stored_unrecorded",
]
# Fills arrive a while after each child, so kills land between a venue's fill and the report upstream.
SIM = {"LITA": {"fill_latency_ms": 20}, "LITB": {"fill_latency_ms": 150}, "LITC": {"fill_latency_ms": 400}}


class Flow:
    """An OMS that keeps sending: sweeps, directed orders, resting orders it later cancels or replaces."""

    def __init__(self, oms: OmsClient, seed: int) -> None:
        self.oms = oms
        self.rng = random.Random(seed)
        self.orders: list[str] = []  # original ClOrdIDs
        self.resting: list[tuple[str, str]] = []  # (original ClOrdID, current ClOrdID) of orders that may rest
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.count = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.rng.uniform(0.02, 0.08)):
                self.step()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def step(self) -> None:
        self.count += 1
        n, rng = self.count, self.rng
        roll = rng.random()
        if roll < 0.45:  # a marketable sweep across the lit venues
            self._new(f"S{n}", "AAPL", "1", rng.choice([300, 700, 1200]), "190.05", urgency="H")
        elif roll < 0.6:  # a directed order
            self._new(f"R{n}", "MSFT", "2", rng.choice([100, 250]), "409.97", ex_destination=rng.choice(list(SIM)))
        elif roll < 0.8 or not self.resting:  # a resting order, below the market
            self._new(f"P{n}", "AAPL", "1", rng.choice([200, 500]), "189.50", urgency="H")
            self.resting.append((f"P{n}", f"P{n}"))
        elif roll < 0.9:  # cancel one that rests
            original, current = self.resting.pop(rng.randrange(len(self.resting)))
            self.oms.cancel(f"X{n}", current, "AAPL", "1", 0)
        else:  # replace one that rests (up or down)
            i = rng.randrange(len(self.resting))
            original, current = self.resting[i]
            self.oms.replace(f"G{n}", current, "AAPL", "1", rng.choice([150, 600]), "189.55")
            self.resting[i] = (original, f"G{n}")

    def _new(self, cl_ord_id: str, symbol: str, side: str, qty: int, price: str, **kw) -> None:
        self.oms.new_order(cl_ord_id, symbol, side, qty, price=price, **kw)
        self.orders.append(cl_ord_id)


def venue_executions(log_dir: Path) -> list[tuple[str, str, int, Decimal]]:
    """(venue, ExecID, LastQty, LastPx) of every fill a venue sent, from the venues' own quickfix message logs."""
    seen: dict[tuple[str, str], tuple[str, str, int, Decimal]] = {}
    for path in log_dir.glob("*.messages.current.log"):
        for line in path.read_bytes().split(b"\n"):
            fields = dict(f.split(b"=", 1) for f in line.partition(b" : ")[2].split(b"\x01") if b"=" in f)
            if fields.get(b"35") == b"8" and fields.get(b"150") == b"F" and fields.get(b"56") == b"SORGW":
                venue = fields[b"49"].decode()
                seen[(venue, fields[b"17"].decode())] = (
                    venue,
                    fields[b"17"].decode(),
                    int(fields[b"32"]),
                    Decimal(fields[b"31"].decode()),
                )
    return list(seen.values())


def _story(oms: OmsClient, cl_ord_id: str) -> str:
    """Every report the OMS got for an order, one line each with the fields that tell what happened (pytest
    would cut a repr of the messages short)."""
    tags = (35, 34, 43, 11, 41, 37, 17, 150, 39, 14, 151, 32, 31, 434, 102, 58)
    lines = [" ".join(f"{tag}={m.fields[tag]}" for tag in tags if tag in m.fields) for m in oms.reports(cl_ord_id)]
    return f"{cl_ord_id} is stuck; its reports:\n  " + "\n  ".join(lines)


def run_campaign(tmp_path: Path, prefix: str, audit: dict, seed: int) -> None:
    procs = Processes(
        tmp_path,
        prefix,
        sim_overrides=SIM,
        gateway_overrides={"audit": audit},
        venue_fix={"log_path": tmp_path / "venue-fixlog"},
    )
    rng = random.Random(seed)
    oms = flow = None
    crashed = 0  # kills that landed on their crash point
    try:
        oms = procs.start(SIM)
        flow = Flow(oms, seed)
        flow.start()
        time.sleep(1)
        procs.kill_gateway()
        for kill in range(KILLS):
            if kill % 2 == 0:
                point = f"{rng.choice(CRASH_POINTS)}:{rng.randint(1, 6)}"
                procs.start_gateway(crash_at=point, wait=False)
                try:
                    procs.wait_gateway_exit(8)  # the crash point is reached while orders flow
                    crashed += 1
                except subprocess.TimeoutExpired:
                    procs.kill_gateway()  # it was not reached in time: kill it anyway
            else:
                procs.start_gateway(wait=False)
                time.sleep(rng.uniform(0.3, 2.0))
                procs.kill_gateway()
            assert procs.trail_break() is None, f"after kill {kill + 1}"
        procs.start_gateway()
        flow.stop()
        # Whatever still rests is canceled, so every order ends (again if a replace was pending the first time).
        for attempt in range(3):
            time.sleep(3)
            for i, cl_ord_id in enumerate(flow.orders):
                if oms.wait_final(cl_ord_id, 0.01) is None:
                    replaced = [m for m in oms.reports(cl_ord_id) if m.msg_type == "8" and m[codec.EXEC_TYPE] == "5"]
                    latest = replaced[-1][codec.CL_ORD_ID] if replaced else cl_ord_id
                    oms.cancel(
                        f"END{attempt}-{i}",
                        latest,
                        "MSFT" if cl_ord_id[0] == "R" else "AAPL",
                        "2" if cl_ord_id[0] == "R" else "1",
                        0,
                    )
        stuck = [c for c in flow.orders if oms.wait_final(c, 30) is None]
        assert stuck == [], "\n".join(_story(oms, c) for c in stuck[:3])
        time.sleep(1)  # late duplicates, if any, would arrive now
    finally:
        if flow is not None and not flow._stop.is_set():
            flow.stop()
        if oms is not None:
            oms.stop()
        procs.stop()
    assert procs.trail_break() is None
    assert crashed >= KILLS // 4, f"only {crashed} of {KILLS} kills landed on a crash point"

    upstream = {}
    for m in oms.received:
        if checks.is_fill(m):
            exec_id = m[codec.EXEC_ID]
            content = (m[codec.LAST_MKT], int(m[codec.LAST_QTY]), Decimal(m[codec.LAST_PX]), m[codec.ORDER_ID])
            assert upstream.setdefault(exec_id, content) == content, f"ExecID {exec_id} reused for other content"
            if m.get(43) != "Y":  # quickfix's own resends repeat a message; anything else arriving twice is a bug
                assert sum(1 for r in oms.received if r.get(codec.EXEC_ID) == exec_id and r.get(43) != "Y") == 1
    venue_side = Counter((v, q, p) for v, _, q, p in venue_executions(tmp_path / "venue-fixlog"))
    oms_side = Counter((v, q, p) for v, q, p, _ in upstream.values())
    assert venue_side == oms_side, (venue_side - oms_side, oms_side - venue_side)
    assert sum(venue_side.values()) > KILLS  # the campaign traded
    for cl_ord_id in flow.orders:
        reports = list({m[codec.EXEC_ID]: m for m in oms.reports(cl_ord_id) if m.msg_type == "8"}.values())
        assert checks.order_problems(reports) == [], cl_ord_id
        filled = any(checks.is_fill(m) for m in reports)
        assert not (filled and any(m[codec.ORD_STATUS] == "8" for m in reports)), f"{cl_ord_id} rejected after a fill"


def test_kill_campaign_sqlite(tmp_path, prefix):
    run_campaign(tmp_path, prefix, {"url": f"sqlite:///{tmp_path / 'audit.db'}"}, seed=16)


def test_kill_campaign_postgres(tmp_path, prefix, postgres_url, postgres_table):
    run_campaign(tmp_path, prefix, {"url": postgres_url, "table": postgres_table}, seed=61)


pytestmark = pytest.mark.integration
