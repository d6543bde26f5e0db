"""`sorgw bench --e2e`: the same OMS against the gateway, a do-nothing pass-through and the venue directly, each
path its own processes on 127.0.0.1, in interleaved rounds; the figures are medians of the rounds."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import asyncpg
import yaml

from gateway import topology
from gateway.bus import codec
from gateway.bus.mqtt import parse_url
from gateway.e2e import load
from gateway.e2e.report import PATHS, latency, median_of, ratios
from gateway.passthrough import READY as PASSTHROUGH_READY
from gateway.soak import rss_bytes, wait_ready as wait_gateway_ready

SORGW = [sys.executable, "-m", "gateway.cli"]
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 30.0


class BenchError(Exception):
    """A process did not start or a round did not finish: the run has no figures."""


@dataclass
class Options:
    venues: int = 3
    split: int = 1  # venues each order reaches: 1 directed orders; k > 1 sweeps over MQTT-fed books
    mqtt: str = "mqtt://127.0.0.1:1883"  # with split > 1: carries the venues' books to the gateway
    audit: str = "sqlite"
    store: str = "file"  # quickfix's message store on every path (gateway, pass-through, venue): file or memory
    log_level: str = "info"
    rates: tuple[float, ...] = (500.0, 1000.0)
    duration: float = 5.0
    orders: int = 1000
    rounds: int = 3
    phase_timeout: float = 60.0  # fills of one phase (each order, when one at a time) overdue after this


@dataclass
class Route:
    """One path's processes: its venue simulator, and the gateway or pass-through in front of it (direct: none)."""

    name: str
    venue: subprocess.Popen
    venue_log: Path
    middle: subprocess.Popen | None = None
    middle_log: Path | None = None
    plan_sessions: list[dict] = field(default_factory=list)
    destinations: list[str] | None = None
    rounds: list[dict] = field(default_factory=list)
    cpu_per_order: list[float] = field(default_factory=list)


def _venues(n: int, split: int) -> list[dict]:
    """n lit venues that fill every marketable order at once: deep books that never run out, no latency. The
    first `split` quote the best price on both sides; the rest one tick worse, so a sweep reaches only those."""
    return [
        {
            "name": f"LIT{chr(65 + i)}",
            "kind": "lit",
            "maker_fee": "0",
            "taker_fee": "0",
            "latency_us": 100,
            "sim": {
                "depth": {
                    "levels": 1,
                    "qty_per_level": 10**12,
                    "spread_ticks": 1 if i < split else 2,
                    "replenish_ms": 0,
                }
            },
        }
        for i in range(n)
    ]


def _books(opts: Options, name: str) -> dict:
    """With split > 1 the gateway routes on the venues' books: over MQTT, never stale between rounds."""
    if opts.split == 1 or name != "gateway":
        return {}
    return {"mqtt": {"url": opts.mqtt, "prefix": _prefix()}, "routing": {"max_quote_age_ms": 0}}


def _prefix() -> str:
    return f"sorgw-e2e-{os.getpid()}"


def _check_broker(url: str) -> None:
    try:
        socket.create_connection(parse_url(url)[:2], timeout=2).close()
    except (OSError, ValueError) as exc:
        raise BenchError(f"--split needs an MQTT broker for the gateway's books at {url}: {exc}") from None


async def _clear_books(url: str, prefix: str, venues: list[str]) -> None:
    """Delete the retained books the gateway path's venues left on the broker."""
    host, port, _ = parse_url(url)
    async with aiomqtt.Client(host, port) as client:
        for venue in venues:
            for symbol in topology.SYMBOLS:
                await client.publish(codec.topic(prefix, venue, symbol["symbol"]), b"", qos=1, retain=True)


def _audit(opts: Options, work: Path) -> dict:
    if opts.audit == "sqlite":
        return {"url": f"sqlite:///{work / 'audit.db'}"}
    return {"url": _postgres_url(opts), "table": _table()}


def _postgres_url(opts: Options) -> str:
    return POSTGRES if opts.audit == "postgres" else opts.audit


def _table() -> str:
    return f"bench_e2e_{os.getpid()}"


async def _drop_table(url: str, table: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        await conn.close()


def _spawn(args: list[str], log: Path, stdout=None) -> subprocess.Popen:
    return subprocess.Popen(
        args, stdout=stdout or log.open("w"), stderr=log.open("a") if stdout else subprocess.STDOUT, text=True
    )


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the venue simulator exited with status {process.returncode}:\n{_tail(log)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"the venue simulator did not listen on {port} within {START_TIMEOUT:g} s:\n{_tail(log)}")


def _wait_line(process: subprocess.Popen, line: str, log: Path, what: str) -> None:
    """Wait for `line` on the process's stdout (a pipe), within START_TIMEOUT."""
    stdout = process.stdout
    if stdout is None:
        raise ValueError(f"{what}: started without a stdout pipe")
    sel = selectors.DefaultSelector()
    sel.register(stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if sel.select(remaining) and (got := stdout.readline()):
                if got.strip() == line:
                    return
                continue
            if process.poll() is not None:
                raise BenchError(f"{what} exited with status {process.returncode}:\n{_tail(log)}")
        raise BenchError(f"{what} was not ready within {START_TIMEOUT:g} s:\n{_tail(log)}")
    finally:
        sel.close()


def _start_path(name: str, opts: Options, work: Path, paths: list[Route]) -> None:
    """Start the path's processes, each in `paths` as soon as it runs, so a failure further on stops them too."""
    home = work / name
    home.mkdir(parents=True)
    gateway_cfg, venues_cfg = topology.build(
        home,
        _venues(opts.venues, opts.split),
        gateway_overrides={
            "metrics": {"port": topology.free_port()},
            "audit": _audit(opts, home),
            "logging": {"level": opts.log_level},
            "fix": {
                "store": opts.store,
                "store_path": str(home / "gateway-store"),
                "heartbeat_interval": 5,
                "reconnect_interval": 1,
            },
            **_books(opts, name),
        },
    )
    venues_cfg = venues_cfg.model_copy(
        update={"mqtt": gateway_cfg.mqtt, "fix": venues_cfg.fix.model_copy(update={"store": opts.store})}
    )
    (home / "venues.yaml").write_text(yaml.safe_dump(venues_cfg.model_dump(mode="json", by_alias=True)))
    (home / "gateway.yaml").write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
    venue_log = home / "venues.log"
    venue = _spawn(
        [
            *SORGW,
            "venue",
            "--config",
            str(home / "venues.yaml"),
            "--work-dir",
            str(home / "venue-work"),
            "--log-level",
            "warning",
        ],
        venue_log,
    )
    path = Route(name, venue, venue_log)
    paths.append(path)
    for v in venues_cfg.venues:
        _wait_port(v.port, venue, venue_log)
    fix_spec = {"begin_string": "FIX.4.4", "host": "127.0.0.1"}
    if name == "direct":
        path.plan_sessions = [
            {**fix_spec, "sender": v.target_comp_id, "target": v.comp_id, "port": v.port} for v in venues_cfg.venues
        ]
        return
    up = gateway_cfg.upstream
    path.plan_sessions = [
        {**fix_spec, "sender": up.sessions[0].target_comp_id, "target": up.sessions[0].sender_comp_id, "port": up.port}
    ]
    path.destinations = [v.name for v in gateway_cfg.venues] if opts.split == 1 else None
    path.middle_log = home / f"{name}.log"
    if name == "gateway":
        path.middle = _spawn(
            [
                *SORGW,
                "run",
                "--config",
                str(home / "gateway.yaml"),
                "--work-dir",
                str(home / "gateway-work"),
                "--log-level",
                opts.log_level,
            ],
            path.middle_log,
        )
        try:
            wait_gateway_ready(gateway_cfg, path.middle, START_TIMEOUT)
        except (RuntimeError, TimeoutError) as exc:
            raise BenchError(f"the gateway did not start: {exc}:\n{_tail(path.middle_log)}") from None
    else:
        path.middle = _spawn(
            [
                sys.executable,
                "-m",
                "gateway.passthrough",
                "--config",
                str(home / "gateway.yaml"),
                "--work-dir",
                str(home / "passthrough-work"),
                "--split",
                str(opts.split),
            ],
            path.middle_log,
            stdout=subprocess.PIPE,
        )
        _wait_line(path.middle, PASSTHROUGH_READY, path.middle_log, "the pass-through")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14 and 15 of the whole line


def _round(path: Route, opts: Options, work: Path, number: int) -> None:
    plan = {
        "sessions": path.plan_sessions,
        "destinations": path.destinations,
        "split": opts.split,
        "round": number,
        "orders": opts.orders,
        "rates": list(opts.rates),
        "duration": opts.duration,
        "timeout": opts.phase_timeout,
        "logon_timeout": START_TIMEOUT,
        "fix": {"heartbeat_interval": 5, "reconnect_interval": 1},
    }
    log = work / path.name / f"oms-round{number}.log"
    oms = _spawn([sys.executable, "-m", "gateway.e2e.load", json.dumps(plan)], log, stdout=subprocess.PIPE)
    what = f"round {number} on the {path.name} path"
    try:
        _wait_line(oms, load.READY, log, f"the OMS of {what}")
        cpu_before = cpu_seconds(path.middle.pid) if path.middle else 0.0
        # Every phase's own limit (warm-up, ping, each rate, burst), and each rate's sending and draining time.
        budget = START_TIMEOUT + opts.phase_timeout * (3 + len(opts.rates)) + 3 * opts.duration * len(opts.rates)
        out, _ = oms.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} timed out:\n{_tail(log)}") from None
    finally:
        if oms.poll() is None:
            oms.kill()
            oms.wait()
    if oms.returncode != 0:
        raise BenchError(f"{what} failed:\n{_tail(log)}")
    result = json.loads(out.strip().splitlines()[-1])
    path.rounds.append(result)
    if path.middle:
        if path.middle.poll() is not None:
            raise BenchError(f"the {path.name} exited with status {path.middle.returncode}:\n{_tail(path.middle_log)}")
        orders = result["fills"] + load.WARMUP  # the CPU window covers the warm-up too
        path.cpu_per_order.append((cpu_seconds(path.middle.pid) - cpu_before) / orders)


def _stop(paths: list[Route]) -> None:
    procs = [p for path in paths for p in (path.middle, path.venue) if p is not None]
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarise(path: Route) -> dict:
    """Per path: medians over rounds of each round's percentiles, the burst rate, fills, CPU and peak RSS."""
    out: dict = {
        "fills": sum(r["fills"] for r in path.rounds),
        "ping": median_of([latency(r["ping"]) for r in path.rounds]),
        "rates": {
            rate: median_of([latency(r["rates"][rate]) for r in path.rounds]) for rate in path.rounds[0]["rates"]
        },
        "burst_per_s": statistics.median(r["burst"]["orders"] / r["burst"]["seconds"] for r in path.rounds),
    }
    if path.middle:
        out["cpu_ms_per_order"] = statistics.median(path.cpu_per_order) * 1e3
        out["peak_rss_mib"] = rss_bytes(path.middle.pid, "VmHWM") / 2**20
    return out


def run(opts: Options, work_dir: Path | None = None) -> dict:
    """Start every path, run the interleaved rounds, stop everything; the figures as a dict."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="sorgw-e2e-"))
    paths: list[Route] = []
    if opts.split > 1:
        _check_broker(opts.mqtt)
    try:
        for name in PATHS:
            _start_path(name, opts, work, paths)
        for number in range(1, opts.rounds + 1):
            shift = (number - 1) % len(paths)
            for path in paths[shift:] + paths[:shift]:
                _round(path, opts, work, number)
        figures = {path.name: summarise(path) for path in paths}
    finally:
        _stop(paths)
        if opts.audit != "sqlite":
            try:
                asyncio.run(_drop_table(_postgres_url(opts), _table()))
            except (asyncpg.PostgresError, OSError) as exc:
                print(f"sorgw bench --e2e: audit table {_table()} left in the database: {exc}", file=sys.stderr)
        if opts.split > 1:
            try:
                asyncio.run(_clear_books(opts.mqtt, _prefix(), [v["name"] for v in _venues(opts.venues, 1)]))
            except (aiomqtt.MqttError, OSError) as exc:
                print(
                    f"sorgw bench --e2e: retained books under {_prefix()}/ left on {opts.mqtt}: {exc}", file=sys.stderr
                )
    books = {"mqtt": opts.mqtt, "mqtt_prefix": _prefix()} if opts.split > 1 else {}
    table = {"audit_table": _table()} if opts.audit != "sqlite" else {}
    return {
        "options": {
            **books,
            **table,
            "venues": opts.venues,
            "split": opts.split,
            "audit": opts.audit,
            "store": opts.store,
            "log_level": opts.log_level,
            "rates": list(opts.rates),
            "duration": opts.duration,
            "orders": opts.orders,
            "rounds": opts.rounds,
        },
        "work_dir": str(work),
        "paths": figures,
        "gateway_over_passthrough": ratios(figures["gateway"], figures["passthrough"]),
        "passthrough_over_direct": ratios(figures["passthrough"], figures["direct"]),
    }
