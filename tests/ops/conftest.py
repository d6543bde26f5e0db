"""Ops test fixtures: promtool, a real Prometheus scraping a running gateway stack, and a known set of orders."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from gateway import checks, topology
from gateway.fix import codec
from gateway.fix.client import Received
from gateway.stack import Stack
from tests.unavailable import unavailable

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "alerts.yml"
SCRAPE_INTERVAL_S = 1
# The gateway's parent outcome for each final OrdStatus the OMS sees (canceled splits on CumQty).
OUTCOMES = {"2": "filled", "8": "rejected", "C": "expired", "3": "done_for_day"}

Result = list[dict]


def require_binary(name: str) -> str:
    """The path of a Prometheus tool; missing, it fails the test in CI and skips it elsewhere, saying why."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"`{name}` is not on PATH (Debian: apt-get install prometheus)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


class PromQLError(AssertionError):
    """Prometheus refused a query (bad syntax, unknown function, wrong types)."""


class Prometheus:
    """A Prometheus server of our own on a free port, scraping one target every second and evaluating alerts.yml."""

    def __init__(self, binary: str, work_dir: Path, target: str) -> None:
        self.port = topology.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work_dir / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
                "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
            },
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "sorgw", "static_configs": [{"targets": [target]}]}],
        }
        self.config_path = work_dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self._command = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, expr: str) -> Result:
        """An instant query's result as a list of {"metric": labels, "value": [ts, "text"]} (scalars included)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400 and 422 carry the reason as JSON
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PromQLError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(self, expr: str, predicate: Callable[[Result], bool], timeout: float = 15) -> Result:
        """Poll `expr` until predicate(result) holds; the last result is in the failure message."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr!r} did not satisfy the condition within {timeout}s; last: {result}")
            time.sleep(0.2)

    def wait_scrapes(self, count: int, timeout: float = 15) -> None:
        """Wait until `count` scrapes of the gateway have started after now (so they saw everything done so far)."""
        since = time.time()
        seen: set[float] = set()

        def enough(result: Result) -> bool:
            seen.update(ts for ts in values(result).values() if ts > since)
            return len(seen) >= count

        self.wait_for('timestamp(up{job="sorgw"})', enough, timeout)


def values(result: Result) -> dict[tuple[tuple[str, str], ...], float]:
    """A query result as {sorted label pairs: value}."""
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def by_label(result: Result, label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Venue simulators, the gateway (metrics on a free port) and an OMS, as tests/integration builds them.
    One stack at a time: quickfix registers sessions process-wide, and every stack has the same SessionIDs."""
    work_dir = tmp_path_factory.mktemp("stack")
    # Limits as a production gateway has them (config/gateway.yaml), so the risk panels have data to show.
    gateway_cfg, venues_cfg = topology.build(
        work_dir,
        gateway_overrides={
            "risk": {
                "defaults": {"max_order_qty": 1_000_000, "max_open_qty": 5_000_000, "max_open_notional": "250000000"}
            }
        },
    )
    with Stack(gateway_cfg, venues_cfg, work_dir) as stack:
        yield stack


@pytest.fixture(scope="module")
def prometheus(prometheus_binary: str, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the stack's gateway, once it has scraped it at least once."""
    url = stack.gateway.metrics_url
    assert url, "the gateway serves no metrics (metrics.enabled is off)"
    prometheus = Prometheus(prometheus_binary, tmp_path_factory.mktemp("prometheus"), urllib.parse.urlsplit(url).netloc)
    prometheus.start()
    try:
        # A scrape before any order gives rates over the orders a baseline.
        prometheus.wait_for('up{job="sorgw"}', lambda r: list(values(r).values()) == [1.0])
        yield prometheus
    finally:
        prometheus.stop()


@dataclass(frozen=True)
class Traded:
    """What the OMS saw of the orders it sent: the report that ended each parent, and every fill."""

    finals: dict[str, Received]  # parent ClOrdID -> its final report
    fills: list[tuple[str, int, Decimal]]  # (LastMkt, LastQty, LastPx) of every fill report

    def outcomes(self) -> Counter[str]:
        return Counter(outcome(m) for m in self.finals.values())

    def filled_shares(self) -> int:
        return sum(int(m[codec.CUM_QTY]) for m in self.finals.values())

    def filled_by_venue(self) -> dict[str, int]:
        shares: Counter[str] = Counter()
        for venue, qty, _ in self.fills:
            shares[venue] += qty
        return dict(shares)


def outcome(final: Received) -> str:
    status = final[codec.ORD_STATUS]
    if status == "4":
        return "partially_filled_canceled" if int(final[codec.CUM_QTY]) else "canceled"
    return OUTCOMES[status]


def trade(stack: Stack) -> Traded:
    """Orders that fill, expire, are rejected and are canceled; returns once every one of them is final."""
    oms = stack.oms
    oms.new_order("B1", "AAPL", "1", 1500, price="190.04", urgency="H")  # sweeps several lit venues
    oms.new_order("S1", "AAPL", "2", 300, price="189.98", urgency="H")
    oms.new_order("DK1", "MSFT", "1", 1200, price="410.05", urgency="L")  # tries the dark pools first
    oms.new_order("I1", "MSFT", "2", 5000, price="409.98", tif="3", urgency="H")  # IOC: fills part, the rest expires
    oms.new_order("Z1", "ZZZZ", "1", 100, price="10.00")  # unknown symbol: rejected by validation
    oms.new_order("R1", "AAPL", "1", 100, price="189.50", urgency="H")  # rests below the bid until canceled
    assert oms.wait(lambda: any(m.get(codec.EXEC_TYPE) == "0" for m in oms.reports("R1")), 10)
    oms.cancel("R1-C", "R1", "AAPL", "1", 100)
    finals = {}
    for cl_ord_id in ("B1", "S1", "DK1", "I1", "Z1", "R1"):
        final = oms.wait_final(cl_ord_id)
        assert final is not None, f"{cl_ord_id} did not end: {oms.reports(cl_ord_id)}"
        finals[cl_ord_id] = final
    traded = Traded(finals, checks.fills_of(oms.reports()))
    # The set the tests rely on: fills, a reject and a cancel.
    assert {"filled", "rejected", "canceled"} <= set(traded.outcomes()), traded.outcomes()
    return traded


@pytest.fixture(scope="module")
def traded(stack: Stack, prometheus: Prometheus) -> Traded:
    """The known orders, once Prometheus has scraped the gateway twice after the last of them ended."""
    result = trade(stack)
    prometheus.wait_scrapes(2)
    return result
