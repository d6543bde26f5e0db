"""The load-generating OMS of `sorgw bench --e2e`: a quickfix initiator, run as its own process for one round.

`python -m gateway.e2e.load PLAN_JSON` logs on, prints `ready`, then sends directed marketable orders: one at a
time (ping), open-loop at each rate (each order sent on its schedule, its round trip counted from the scheduled
time, so queueing anywhere shows) and all at once (burst); it prints one JSON line of round trips (ns) and exits 0,
or names what failed on stderr and exits 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import quickfix as fix

from gateway.config import FixConfig
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.client import wait_for
from gateway.fix.sessions import SessionSpec, make_engine, session_id, session_key, shutdown

READY = "ready"
QTY = 10  # per venue an order reaches
WARMUP = 20  # untimed orders first: connections, caches and (with --split) the gateway's books warm
LIQUIDITY = "liquidity"  # SorStrategy that splits the best price tier pro rata across the venues showing it
BUY_PX, SELL_PX = "190.10", "189.90"  # through the simulator's quotes around 190.00: every order fills at once


_TRADES = frozenset({"F", "1", "2"})  # ExecType of a fill: FIX 4.4, and FIX 4.2's partial and full fills


class LoadFailed(Exception):
    """The round could not complete: a logon, a reject or fills that did not come in time."""


class LoadOms(GuardedApplication):
    """Sends orders and times each one until fills for its whole quantity have come back.

    split 1: each order goes whole to one session (or one destination), in turn. split k > 1 with one session:
    one order of k x QTY for the gateway or pass-through to split; with k sessions (the venues directly): k
    orders of QTY, one per venue, named ORDER.LEG, the order done when every leg has filled."""

    role = "bench-oms"

    def __init__(
        self, specs: list[SessionSpec], destinations: list[str] | None, split: int, fix_cfg: FixConfig, work_dir: Path
    ) -> None:
        super().__init__()
        self.specs = specs
        self.destinations = destinations
        self.split = split
        self.legs = split if split > 1 and len(specs) > 1 else 1  # messages per order
        self._filled: dict[str, int] = {}  # order -> quantity filled so far
        self.keys = [session_key(session_id(s)) for s in specs]
        self._cond = threading.Condition()
        self._logged_on: set[str] = set()
        self.done: dict[str, int] = {}  # ClOrdID -> perf_counter_ns of its fill report
        self.rejected: dict[str, str] = {}  # ClOrdID -> the reject's text
        self._engine = make_engine("initiator", self, specs, fix_cfg, work_dir)

    def start(self, timeout: float) -> None:
        self._engine.start()
        if not self.wait(lambda: len(self._logged_on) == len(self.keys), timeout):
            raise LoadFailed(
                f"not logged on within {timeout:g} s: {', '.join(sorted(set(self.keys) - self._logged_on))}"
            )

    def stop(self) -> None:
        shutdown(self._engine, self.sessions.values())
        self._engine = None

    def on_logon(self, session: str) -> None:
        with self._cond:
            self._logged_on.add(session)
            self._cond.notify_all()

    def on_logout(self, session: str) -> None:
        with self._cond:
            self._logged_on.discard(session)
            self._cond.notify_all()

    def on_app(self, message: codec.Readable, session: str) -> None:
        now = time.perf_counter_ns()
        if message.getHeader().getField(codec.MSG_TYPE) != "8":
            return
        status = message.getField(codec.ORD_STATUS)
        order = message.getField(codec.CL_ORD_ID).partition(".")[0]
        if message.getField(codec.EXEC_TYPE) in _TRADES:
            with self._cond:
                filled = self._filled.get(order, 0) + int(message.getField(codec.LAST_QTY))
                self._filled[order] = filled
                if filled >= QTY * self.split:
                    self.done[order] = now
                    self._cond.notify_all()
        elif status in ("4", "8", "C"):
            text = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else f"OrdStatus {status}"
            with self._cond:
                self.rejected[message.getField(codec.CL_ORD_ID)] = text
                self._cond.notify_all()

    def wait(self, predicate, timeout: float) -> bool:
        return wait_for(self._cond, predicate, timeout)

    def send_order(self, n: int, cl_ord_id: str) -> None:
        """Order n: a buy (n even) or a sell of AAPL through the venues' quotes."""
        if self.legs > 1:
            for leg in range(self.legs):
                self._send(leg, f"{cl_ord_id}.{leg}", n % 2 == 0, QTY)
        else:
            self._send(
                (n // 2) % len(self.keys),
                cl_ord_id,
                n % 2 == 0,
                QTY * self.split,
                self.destinations[(n // 2) % len(self.destinations)] if self.destinations else None,
            )

    def _send(self, session: int, cl_ord_id: str, buy: bool, qty: int, destination: str | None = None) -> None:
        msg = fix.Message()
        msg.getHeader().setField(fix.BeginString(self.specs[session].begin_string))
        msg.getHeader().setField(fix.MsgType("D"))
        for tag, value in (
            (codec.CL_ORD_ID, cl_ord_id),
            (codec.SYMBOL, "AAPL"),
            (codec.SIDE, "1" if buy else "2"),
            (codec.ORDER_QTY, str(qty)),
            (codec.ORD_TYPE, "2"),
            (codec.PRICE, BUY_PX if buy else SELL_PX),
            (codec.TIF, "0"),
        ):
            msg.setField(tag, value)
        if destination is not None:
            msg.setField(codec.EX_DESTINATION, destination)
        elif self.split > 1 and self.legs == 1:
            msg.setField(codec.SOR_STRATEGY, LIQUIDITY)
        msg.setField(fix.TransactTime())
        if not fix.Session.sendToTarget(msg, self.sessions[self.keys[session]]):
            raise LoadFailed(f"session {self.keys[session]} is not logged on")

    def wait_filled(self, total: int, timeout: float, what: str) -> None:
        """Wait until `total` orders have been filled since the start (ClOrdIDs never repeat)."""
        if not self.wait(lambda: self.rejected or len(self.done) >= total, timeout):
            raise LoadFailed(f"{what}: {total - len(self.done)} orders not filled within {timeout:g} s")
        if self.rejected:
            cl_ord_id, text = next(iter(self.rejected.items()))
            raise LoadFailed(f"{what}: order {cl_ord_id} was not filled: {text}")


def run_plan(plan: dict, oms: LoadOms) -> dict:
    """Warm-up, ping, each rate, burst; round trips in ns, the burst's orders and seconds, orders filled."""
    timeout = plan["timeout"]
    result: dict = {}
    counter = iter(range(10**9))

    def ids(prefix: str, count: int) -> list[tuple[int, str]]:
        # ClOrdIDs unique across rounds: each path's venue outlives the rounds and refuses a repeated one.
        return [(n, f"{plan['round']}{prefix}{n}") for n in (next(counter) for _ in range(count))]

    for n, cl_ord_id in ids("W", WARMUP):
        oms.send_order(n, cl_ord_id)
        oms.wait_filled(n + 1, timeout, "warm-up")

    pings = []
    for n, cl_ord_id in ids("P", plan["orders"]):
        sent = time.perf_counter_ns()
        oms.send_order(n, cl_ord_id)
        oms.wait_filled(n + 1, timeout, "ping")
        pings.append(oms.done[cl_ord_id] - sent)
    result["ping"] = pings
    result["rates"] = {}
    for rate in plan["rates"]:
        orders = ids(f"R{rate:g}-", max(1, round(rate * plan["duration"])))
        scheduled: dict[str, int] = {}
        interval = 1e9 / rate
        start = time.perf_counter_ns()
        for i, (n, cl_ord_id) in enumerate(orders):
            due = start + int(i * interval)
            while (ahead := due - time.perf_counter_ns()) > 0:
                time.sleep(ahead / 1e9)
            scheduled[cl_ord_id] = due
            oms.send_order(n, cl_ord_id)
        # A path slower than the rate has a queue to drain: up to the phase's length again, and more.
        oms.wait_filled(orders[-1][0] + 1, timeout + 2 * plan["duration"], f"{rate:g}/s")
        result["rates"][f"{rate:g}"] = [oms.done[c] - due for c, due in scheduled.items()]
    burst = ids("B", plan["orders"])
    start = time.perf_counter_ns()
    for n, cl_ord_id in burst:
        oms.send_order(n, cl_ord_id)
    oms.wait_filled(burst[-1][0] + 1, timeout, "burst")
    result["burst"] = {"orders": len(burst), "seconds": (max(oms.done[c] for _, c in burst) - start) / 1e9}
    result["fills"] = len(oms.done) - WARMUP
    return result


def main(argv: list[str] | None = None) -> int:
    plan = json.loads((argv or sys.argv[1:])[0])
    specs = [SessionSpec(**s) for s in plan["sessions"]]
    oms = None
    try:
        with tempfile.TemporaryDirectory(prefix="sorgw-load-") as work:
            fix_cfg = FixConfig(**plan["fix"], store_path=Path(work) / "store")
            oms = LoadOms(specs, plan.get("destinations"), plan["split"], fix_cfg, Path(work))
            oms.start(plan["logon_timeout"])
            print(READY, flush=True)
            result = run_plan(plan, oms)
            oms.stop()
            oms = None
    except LoadFailed as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    finally:
        if oms is not None:
            oms.stop()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
