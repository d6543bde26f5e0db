"""Round trip of one directed order at a time (NewOrderSingle to its fill report) with reports sent upstream
through the per-session send queue, against sending them directly under the engine lock (the old path).

    .venv/bin/python scripts/send_path_latency.py [--orders 300] [--rounds 4]

One stack (venue simulators, gateway, OMS) on free ports; rounds alternate between the two send paths so
load on the machine hits both alike. Prints p50 and p90 per mode (median over rounds) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gateway import topology
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.logs import configure
from gateway.stack import Stack


def use(gateway, mode: str) -> None:
    """mode "direct": the send path before the send queues, straight to quickfix from the engine step."""
    if mode == "direct":
        gateway._send_upstream = lambda message, session, cl_ord_id: gateway.upstream.send(message, session)
    else:
        gateway.__dict__.pop("_send_upstream", None)


class Timed(OmsClient):
    """An OMS that notes when each order's fill report arrives (OmsClient.wait_final scans every report)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.filled: dict[str, threading.Event] = {}

    def on_app(self, message, session: str) -> None:
        if message.getField(codec.EXEC_TYPE) == "F":
            self.filled[message.getField(codec.CL_ORD_ID)].set()


def round_trips(oms: Timed, prefix: str, orders: int) -> list[float]:
    out = []
    for n in range(orders):
        cl_ord_id = f"{prefix}-{n}"
        filled = oms.filled[cl_ord_id] = threading.Event()
        start = time.perf_counter()
        oms.new_order(cl_ord_id, "AAPL", "1", 1, price="190.04", tif="3", ex_destination="LITA", urgency="H")
        if not filled.wait(10):
            raise SystemExit(f"{cl_ord_id} did not fill within 10 s")
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per mode per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    configure(level="warning")
    modes = ("direct", "queued")
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        gateway_cfg, venues_cfg = topology.build(Path(tmp))
        with Stack(gateway_cfg, venues_cfg, Path(tmp)) as stack:
            stack.oms.stop()
            up = gateway_cfg.upstream
            stack.oms = oms = Timed(
                SessionSpec("FIX.4.4", "OMS", "SORGW", up.host, up.port), gateway_cfg.fix, Path(tmp) / "timed-oms"
            )
            oms.start()
            for mode in modes:
                use(stack.gateway, mode)
                round_trips(oms, f"warm-{mode}", 50)
            for r in range(args.rounds):
                for mode in modes if r % 2 == 0 else reversed(modes):
                    use(stack.gateway, mode)
                    times = sorted(round_trips(oms, f"{mode}-{r}", args.orders))
                    results[mode].append((times[len(times) // 2], times[int(len(times) * 0.9)]))
    p50 = {mode: statistics.median(p for p, _ in rounds) * 1e3 for mode, rounds in results.items()}
    p90 = {mode: statistics.median(p for _, p in rounds) * 1e3 for mode, rounds in results.items()}
    for mode in results:
        print(
            f"{mode:7} p50 {p50[mode]:.3f} ms  p90 {p90[mode]:.3f} ms  "
            f"(rounds' p50: {', '.join(f'{p * 1e3:.3f}' for p, _ in results[mode])})"
        )
    print(f"queued / direct p50: {p50['queued'] / p50['direct']:.2f}x")


if __name__ == "__main__":
    main()
