"""`sorgw status` against a real prometheus_client registry served over HTTP on 127.0.0.1, and its quantile maths."""

from __future__ import annotations

import math
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.cli import main
from gateway.metrics import LATENCY_BUCKETS, Metrics, VenueQuality
from gateway.status import CLEAR, StatusError, fetch, metrics_url, quantile, seconds, url_from_config

INF = math.inf
ROOT = Path(__file__).resolve().parents[2]


def _populated() -> Metrics:
    m = Metrics()
    for session, role, up, logons, disconnects in (
        ("OMS", "upstream", 1, 1, 0),
        ("LITA", "venue", 1, 2, 1),
        ("DARKX", "venue", 0, 3, 3),
    ):
        m.session_up.labels(session, role).set(up)
        m.logons.labels(session, role).inc(logons)
        m.disconnects.labels(session, role).inc(disconnects)
    m.parents_received.labels("OMS").inc(12)
    m.parents_done.labels("filled").inc(7)
    m.parents_done.labels("canceled").inc(2)
    m.parents_done.labels("rejected").inc(1)
    m.rejects.labels("validation").inc(1)
    m.open_parents.set(2)
    m.open_children.labels("LITA").set(3)
    m.open_children.labels("DARKX").set(1)
    m.children_sent.labels("LITA").inc(10)
    m.children_sent.labels("DARKX").inc(4)
    m.children_done.labels("DARKX", "filled").inc(1)
    m.fills.labels("LITA", "taker").inc(6)
    m.fills.labels("LITA", "maker").inc(2)
    m.filled_shares.labels("LITA", "taker").inc(600)
    m.filled_shares.labels("LITA", "maker").inc(650)
    m.fills.labels("DARKX", "dark_midpoint").inc(1)
    m.filled_shares.labels("DARKX", "dark_midpoint").inc(100)
    # DARKX has no learnt ratio (1 filled child of 4 sent); DARKY's feed has published nothing.
    m.venue_quality = lambda: [VenueQuality("LITA", 0.12, 0.8, None, {}), VenueQuality("DARKX", None, None, 0.4, {})]
    m.quote_ages = lambda: {"LITA": 0.35, "DARKX": 5.0, "DARKY": math.inf}
    m.circuit_state.labels("LITA").set(0)
    m.circuit_state.labels("DARKX").set(2)
    m.market_data_connected.set(1)
    m.audit_queue_depth = lambda: 3
    m.audit_records.inc(1234)
    # 50 in (250 us, 500 us] and 50 in (2.5 ms, 5 ms]: p50 is the first bucket's top, p99 = 2.5 + 2.5 * 49/50 ms.
    for value in [0.0003] * 50 + [0.003] * 50:
        m.ack_latency.observe(value)
    for _ in range(10):  # all in (10 ms, 25 ms]: p50 = 10 + 15 * 0.5 ms, p99 = 10 + 15 * 0.99 ms
        m.venue_ack_latency.labels("LITA").observe(0.02)
    return m


class _Handler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def do_GET(self) -> None:
        status, content_type, body = self.pages.get(self.path, (404, "text/plain", b"not found\n"))
        if self.path == "/metrics":
            body = generate_latest(self.server.metrics.registry)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


_Handler.pages = {
    "/metrics": (200, CONTENT_TYPE_LATEST, b""),
    "/html": (200, "text/html; charset=utf-8", b"<!DOCTYPE html>\n<html><body>Grafana</body></html>\n"),
    "/html-as-text": (200, "text/plain", b"<html>\n<body>login</body>\n</html>\n"),
    "/other-exporter": (200, CONTENT_TYPE_LATEST, b"# TYPE up gauge\nup 1\n"),
    "/broken": (500, "text/plain", b"boom\n"),
}


def _serve(metrics: Metrics, port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.metrics = metrics  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def served() -> Iterator[tuple[str, Metrics]]:
    metrics = _populated()
    server = _serve(metrics)
    yield f"http://127.0.0.1:{server.server_address[1]}", metrics
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _row(out: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first`."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [first]]
    assert len(rows) == 1, f"{first!r} rows: {rows}\n{out}"
    return rows[0]


def _status(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["status", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the table ------------------------------------------------------------------------------------------------------


def test_table_shows_sessions_orders_venues_latency_and_audit(served, capsys):
    base, _ = served
    code, out, err = _status(capsys, "--url", base + "/metrics")
    assert (code, err) == (0, "")
    assert out.startswith(f"sorgw status  {base}/metrics  ")
    assert max(len(line) for line in out.splitlines()) <= 100
    lines = out.splitlines()

    roles = [line.split()[:2] for line in lines[lines.index("SESSIONS") + 1 : lines.index("ORDERS") - 1]]
    assert roles == [["role", "session"], ["upstream", "OMS"], ["venue", "DARKX"], ["venue", "LITA"]]
    assert _row(out, "upstream") == ["upstream", "OMS", "UP", "1", "0"]
    assert ["venue", "DARKX", "DOWN", "3", "3"] in [line.split() for line in lines]
    assert ["venue", "LITA", "UP", "2", "1"] in [line.split() for line in lines]

    assert "  parents received  12" in lines
    assert "  parents done      filled 7, canceled 2, rejected 1" in lines
    assert "  open parents      2" in lines
    assert "  open children     DARKX 1, LITA 3" in lines
    assert "  rejects           validation 1" in lines

    assert _row(out, "LITA") == ["LITA", "10", "8", "1,250", "0.80", "0.12", "closed", "350", "ms"]
    assert _row(out, "DARKX") == ["DARKX", "4", "1", "100", "0.25", "-", "OPEN", "5.00", "s", "STALE"]
    assert _row(out, "DARKY") == ["DARKY", "-", "-", "-", "-", "-", "-", "never", "STALE"]

    assert _row(out, "parent_ack") == ["parent_ack", "100", "500", "us", "4.95", "ms"]
    assert _row(out, "venue_ack") == ["venue_ack", "LITA", "10", "17.5", "ms", "24.9", "ms"]
    assert _row(out, "routing_decision") == ["routing_decision", "0", "n/a", "n/a"]
    assert "audit_commit_batch_size" not in out  # not a latency

    assert "MARKET DATA       connected" in lines
    assert "AUDIT             queue 3, written 1,234, commit errors 0" in lines


def test_columns_line_up(served, capsys):
    base, _ = served
    _, out, _ = _status(capsys, "--url", base)
    lines = out.splitlines()
    venues = lines[lines.index("VENUES") + 1 : lines.index("LATENCY") - 1]
    header = venues[0]
    for column in ("sent", "fills", "filled shares", "fill ratio", "toxicity", "quote age"):
        end = header.index(column) + len(column)  # numbers align right under their heading
        assert all(row[end - 1] != " " and (len(row) == end or row[end] == " ") for row in venues[1:]), column


def test_stale_threshold_and_live_values_are_read_at_each_call(served, capsys):
    base, metrics = served
    metrics.session_up.labels("DARKX", "venue").set(1)
    metrics.market_data_connected.set(0)
    metrics.quote_ages = lambda: {"LITA": 0.6, "DARKX": 0.1}
    metrics.parents_received.labels("OMS2").inc(3)
    _, out, _ = _status(capsys, "--url", base, "--stale-after", "0.5")
    assert ["venue", "DARKX", "UP", "3", "3"] in [line.split() for line in out.splitlines()]
    assert _row(out, "LITA")[-3:] == ["600", "ms", "STALE"]
    assert _row(out, "DARKX")[-2:] == ["100", "ms"]
    assert "MARKET DATA       DISCONNECTED" in out.splitlines()
    assert "  parents received  15  (OMS 12, OMS2 3)" in out.splitlines()


def test_a_fresh_gateway_prints_without_failing(capsys):
    server = _serve(Metrics())
    try:
        code, out, err = _status(capsys, "--url", f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert (code, err) == (0, "")
    assert "  no FIX session reported" in out and "  no venue reported" in out
    assert _row(out, "parent_ack") == ["parent_ack", "0", "n/a", "n/a"]
    assert "MARKET DATA       DISCONNECTED" in out.splitlines()
    assert "AUDIT             queue 0, written 0, commit errors 0" in out.splitlines()


# -- failures -------------------------------------------------------------------------------------------------------


def test_unreachable_url_exits_1_naming_it(capsys):
    url = f"http://127.0.0.1:{_free_port()}/metrics"
    code, out, err = _status(capsys, "--url", url)
    assert (code, out) == (1, "")
    assert err == f"sorgw status: cannot read {url}: Connection refused\n"


def test_an_endpoint_that_never_answers_times_out():
    with socket.socket() as listener:  # the kernel completes the handshake; nobody ever reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        started = time.monotonic()
        with pytest.raises(StatusError, match=f"^cannot read {url}: timed out$"):
            fetch(url, timeout=0.3)
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/broken", "cannot read {url}: HTTP 500"),
        ("/nowhere", "cannot read {url}: HTTP 404"),
        ("/html", "{url} did not answer with Prometheus metrics: it sent an HTML page"),
        ("/html-as-text", "{url} did not answer with Prometheus metrics: "),
        ("/other-exporter", "{url} did not answer with Prometheus metrics: no sorgw_ metrics"),
    ],
)
def test_an_answer_that_is_not_the_gateways_metrics_exits_1(served, capsys, path, reason):
    url = served[0] + path
    code, out, err = _status(capsys, "--url", url)
    assert (code, out) == (1, "")
    assert err.startswith("sorgw status: " + reason.format(url=url)), err


@pytest.mark.parametrize(
    "args",
    [
        ["--watch", "0"],
        ["--watch", "-1"],
        ["--watch", "nan"],
        ["--stale-after", "-1"],
        ["--url", "ftp://127.0.0.1/metrics"],
    ],
)
def test_bad_options_exit_2(capsys, args):
    code, out, err = _status(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith("sorgw status: ") and err.count("\n") == 1


def test_watch_value_must_be_a_number(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["status", "--watch", "soon"])
    assert exc.value.code == 2
    assert "invalid float value" in capsys.readouterr().err


# -- --watch, as a process ------------------------------------------------------------------------------------------


def _read_until(proc: subprocess.Popen, done, timeout: float = 20.0) -> str:
    """stdout of the process until done(text) holds; fails on timeout or when the process ends first."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    text, deadline = "", time.monotonic() + timeout
    while not done(text):
        assert time.monotonic() < deadline, f"timed out; output so far:\n{text}"
        if selector.select(timeout=0.5):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"the process ended ({proc.wait()}); output:\n{text}\n{proc.stderr.read()}"
            text += chunk.decode()
    return text


def _watch(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "status", "--watch", "0.2", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, proc.stderr.read().decode()


def test_watch_redraws_until_ctrl_c_then_exits_0(served):
    base, metrics = served
    proc = _watch(base)
    try:
        first = _read_until(proc, lambda text: text.count(CLEAR) >= 3)
        metrics.parents_received.labels("OMS").inc(30)  # a later redraw shows it
        _read_until(proc, lambda text: "parents received  42" in text)
    finally:
        code, err = _interrupt(proc)
    assert (code, err) == (0, "")
    screens = first.split(CLEAR)[1:-1]  # the last one may be cut short
    assert len(screens) >= 2
    assert all(
        screen.startswith(f"sorgw status  {base}/metrics  ")
        and "every 0.2 s, Ctrl-C to stop" in screen
        and "parents received  12" in screen
        and screen.rstrip().endswith("commit errors 0")
        for screen in screens
    ), screens


def test_watch_shows_a_failed_read_and_keeps_trying(served):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = _watch(url)
    server = None
    try:
        failed = _read_until(proc, lambda text: text.count(CLEAR) >= 3)
        server = _serve(served[1], port)
        recovered = _read_until(proc, lambda text: "AUDIT " in text)
    finally:
        code, err = _interrupt(proc)
        if server is not None:
            server.shutdown()
            server.server_close()
    assert (code, err) == (0, "")
    assert all(f"cannot read {url}: " in screen for screen in failed.split(CLEAR)[1:-1])
    assert re.search(r"upstream\s+OMS\s+UP", recovered.split(CLEAR)[-1])


# -- quantiles, URLs, units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q, expected",
    [
        (0.5, 0.15),  # rank 5 of 10, all in (0.1, 0.2]: halfway
        (0.99, 0.199),
        (1.0, 0.2),
        (0.0, 0.0),  # rank 0 is reached in the first bucket, which is empty: its lower edge
    ],
)
def test_quantile_interpolates_inside_the_bucket(q, expected):
    assert quantile(q, [(0.1, 0), (0.2, 10), (0.5, 10), (INF, 10)]) == pytest.approx(expected)


def test_quantile_hand_computed_cases():
    first = [(1.0, 4), (2.0, 8), (INF, 8)]
    assert quantile(0.25, first) == pytest.approx(0.5)  # rank 2 of 4 in [0, 1]: lower edge 0
    assert quantile(0.5, first) == pytest.approx(1.0)
    assert quantile(0.75, first) == pytest.approx(1.5)  # rank 6: 2 of 4 into (1, 2]
    gaps = [(1.0, 2), (2.0, 2), (3.0, 4), (INF, 4)]
    assert quantile(0.5, gaps) == pytest.approx(1.0)  # rank 2 reached in the first bucket already
    assert quantile(0.75, gaps) == pytest.approx(2.5)  # skips the empty (1, 2], halfway into (2, 3]
    assert quantile(0.5, [(1.0, 1), (INF, 10)]) == 1.0  # in +Inf: the highest finite bound, as Prometheus does


@pytest.mark.parametrize("buckets", [[], [(INF, 5)], [(1.0, 0), (INF, 0)]])
def test_quantile_is_none_without_observations_or_finite_buckets(buckets):
    assert quantile(0.5, buckets) is None


def test_quantile_rejects_q_outside_0_1():
    with pytest.raises(ValueError):
        quantile(1.5, [(1.0, 1), (INF, 1)])


def test_quantile_matches_a_real_histogram_bucket():
    metrics = Metrics()
    for value in (0.00007, 0.0002, 0.0002, 0.0007, 0.004):
        metrics.routing_latency.observe(value)
    buckets = []
    for sample in next(iter(metrics.routing_latency.collect())).samples:
        if sample.name.endswith("_bucket"):
            buckets.append((float(sample.labels["le"]), sample.value))
    assert [bound for bound, _ in buckets] == [*LATENCY_BUCKETS, INF]
    assert quantile(0.5, buckets) == pytest.approx(0.0001 + 0.00015 * (2.5 - 1) / 2)  # rank 2.5 in (100, 250] us
    assert 0.0025 < quantile(0.99, buckets) <= 0.005


@pytest.mark.parametrize(
    "given, url",
    [
        ("http://127.0.0.1:9464", "http://127.0.0.1:9464/metrics"),
        ("http://127.0.0.1:9464/", "http://127.0.0.1:9464/metrics"),
        ("127.0.0.1:9464", "http://127.0.0.1:9464/metrics"),
        ("https://gw.example:443/metrics", "https://gw.example:443/metrics"),
        ("http://127.0.0.1:9464/custom/path", "http://127.0.0.1:9464/custom/path"),
    ],
)
def test_metrics_url(given, url):
    assert metrics_url(given) == url


def test_url_from_config(tmp_path, monkeypatch):
    gateway = yaml.safe_load((ROOT / "config/gateway.yaml").read_text())
    gateway["metrics"] = {"host": "0.0.0.0", "port": 9999}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway))
    monkeypatch.delenv("SORGW__METRICS__PORT", raising=False)
    assert url_from_config(path) == "http://127.0.0.1:9999/metrics"
    monkeypatch.setenv("SORGW__METRICS__PORT", "9100")
    assert url_from_config(path) == "http://127.0.0.1:9100/metrics"
    monkeypatch.chdir(tmp_path)  # no config/gateway.yaml here: the defaults
    assert url_from_config(None) == "http://127.0.0.1:9464/metrics"
    (tmp_path / "config").mkdir()
    path.rename(tmp_path / "config/gateway.yaml")  # now there is: it is read
    assert url_from_config(None) == "http://127.0.0.1:9100/metrics"


def test_config_with_port_0_exits_2(tmp_path, capsys):
    gateway = yaml.safe_load((ROOT / "config/gateway.yaml").read_text())
    gateway["metrics"] = {"port": 0}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway))
    code, _, err = _status(capsys, "--config", str(path))
    assert code == 2 and "metrics.port is 0" in err


@pytest.mark.parametrize(
    "value, text",
    [
        (0.00005, "50.0 us"),
        (0.0005, "500 us"),
        (0.00495, "4.95 ms"),
        (0.0175, "17.5 ms"),
        (0.35, "350 ms"),
        (2.0, "2.00 s"),
        (0.0, "0.00 us"),
    ],
)
def test_seconds_are_readable(value, text):
    assert seconds(value) == text


@pytest.mark.parametrize("max_age_ms, stale", [(500, {"LITA"}), (100, {"LITA", "DARKX"}), (0, set())])
def test_stale_after_defaults_to_the_configs_max_quote_age(served, tmp_path, capsys, max_age_ms, stale):
    base, metrics = served
    metrics.quote_ages = lambda: {"LITA": 0.6, "DARKX": 0.4}
    gateway = yaml.safe_load((ROOT / "config/gateway.yaml").read_text())
    gateway.setdefault("routing", {})["max_quote_age_ms"] = max_age_ms
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway))
    code, out, _ = _status(capsys, "--url", base, "--config", str(path))
    assert code == 0
    assert {venue for venue in ("LITA", "DARKX") if _row(out, venue)[-1] == "STALE"} == stale
