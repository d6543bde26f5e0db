"""What the audit trail costs an engine step: steps timed with and without the commit, in the same run."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, chain
from gateway.audit.sqlite import SqliteStore
from gateway.audit.writer import AuditWriter
from gateway.core.clock import WallClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.types import NewOrder, OrdType, Side, TimeInForce, Urgency, VenueKind
from gateway.core.validation import Instrument

SESSION = "FIX.4.4:SORGW->OMS"
RAW = "8=FIX.4.4|9=120|35=D|34=2|49=OMS|56=SORGW|11={}|38=100|40=2|44=99.00|54=1|55=AAPL|59=0|10=000|"
BENCH_KEY = b"bench-key-bench-key-bench-key-32"


def bench_engine() -> OrderEngine:
    """One lit venue with a deep book: every buy below the offer is acked and rests as one child."""
    market = MarketView()
    market.update(
        BookSnapshot("LITA", "AAPL", (Level(Decimal("99.99"), 10**9),), (Level(Decimal("100.01"), 10**9),), 1, 0)
    )
    venues = {"LITA": VenueInfo("LITA", VenueKind.LIT, Decimal("-0.002"), Decimal("0.003"), 300, True)}
    return OrderEngine({"AAPL": Instrument("AAPL", Decimal("0.01"))}, venues, market, IdSource("bench"), WallClock())


def _steps(n: int, writer: AuditWriter | None, prefix: str) -> list[float]:
    """Time n engine steps (a resting buy: ack plus one child), each committed first when writer is given."""
    engine = bench_engine()
    times = []
    for i in range(n):
        cl_ord_id = f"{prefix}{i}"
        started = time.perf_counter_ns()
        out = engine.on_new_order(
            NewOrder(
                SESSION,
                cl_ord_id,
                "AAPL",
                Side.BUY,
                100,
                OrdType.LIMIT,
                Decimal("99.00"),
                TimeInForce.DAY,
                urgency=Urgency.HIGH,
            )
        )
        if writer is not None:
            head = [entries.fix_message("in", SESSION, RAW.format(cl_ord_id), time.time_ns(), None, cl_ord_id)]
            writer.commit(head + entries.for_outbox(out, time.time_ns(), {}))
        times.append((time.perf_counter_ns() - started) / 1000)
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _hashing_us(key: bytes | None, records: int = 20000) -> float:
    """Microseconds to number and chain one record (a FIX message's size) plainly or keyed."""
    batch = [
        Entry("fix_in", RAW.format(f"H{i}").replace("|", "\x01").encode(), SESSION, None, f"H{i}", i)
        for i in range(records)
    ]
    started = time.perf_counter()
    chain(batch, 1, GENESIS, key)
    return (time.perf_counter() - started) / records * 1e6


def audit_bench(steps: int = 2000, concurrent: int = 2) -> dict:
    """Per-step latency without audit, with an SQLite commit per step (plain and keyed chain), and with
    `concurrent` threads committing at once (group commit); microseconds."""
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _steps(steps, None, "B")
        writer = AuditWriter(SqliteStore(Path(tmp) / "bench.db"))
        keyed = AuditWriter(SqliteStore(Path(tmp) / "keyed.db"), key=BENCH_KEY)
        writer.start()
        keyed.start()
        _steps(200, writer, "W")  # warm-up
        _steps(200, keyed, "W")
        single, single_keyed = [], []
        for part in range(4):  # interleaved, so a slower moment of the machine hits both alike
            single += _steps(steps // 4, writer, f"S{part}-")
            single_keyed += _steps(steps // 4, keyed, f"K{part}-")
        keyed.stop()
        batches_before = writer.batches
        results: list[list[float]] = []
        threads = [
            threading.Thread(target=lambda k=k: results.append(_steps(steps // concurrent, writer, f"C{k}-")))
            for k in range(concurrent)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        grouped = [x for r in results for x in r]
        committed = writer.batches - batches_before
        writer.stop()
    report = {}
    for name, values in (
        ("no audit", baseline),
        ("audit, one writer", single),
        ("audit, keyed (HMAC)", single_keyed),
        (f"audit, {concurrent} threads", grouped),
    ):
        report[name] = {
            "p50": _percentile(values, 0.5),
            "p99": _percentile(values, 0.99),
            "mean": statistics.fmean(values),
        }
    report["group commit"] = {
        "steps_per_commit": len(grouped) / max(committed, 1),
        "steps_per_second": len(grouped) / elapsed,
    }
    report["hashing"] = {"sha256_us": _hashing_us(None), "hmac_us": _hashing_us(BENCH_KEY)}
    return report


def print_report(report: dict) -> None:
    base = report["no audit"]["p50"]
    print("audit cost per engine step (SQLite WAL, synchronous=NORMAL), microseconds")
    print(f"{'':<22}{'p50':>10}{'p99':>10}{'mean':>10}{'p50 / no audit':>16}")
    for name in list(report)[:4]:
        row = report[name]
        print(f"{name:<22}{row['p50']:>10.1f}{row['p99']:>10.1f}{row['mean']:>10.1f}{row['p50'] / base:>15.1f}x")
    group = report["group commit"]
    print(
        f"group commit: {group['steps_per_commit']:.1f} steps per commit, "
        f"{group['steps_per_second']:.0f} steps/s with concurrent submitters"
    )
    hashing = report["hashing"]
    print(f"chaining one record: SHA-256 {hashing['sha256_us']:.2f} us, HMAC-SHA256 {hashing['hmac_us']:.2f} us")
