"""`sorgw status`: the gateway's /metrics endpoint read once, or every few seconds, and printed as a terminal table."""

from __future__ import annotations

import argparse
import http.client
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway import config
from gateway.metrics import PARENT_OUTCOMES, REJECT_REASONS, ROLES

DEFAULT_CONFIG = Path("config/gateway.yaml")
FETCH_TIMEOUT_S = 3.0
CLEAR = "\033[H\033[2J"  # cursor home, erase screen
KEY_WIDTH = 18


class StatusError(Exception):
    """The endpoint could not be read, or did not answer with the gateway's metrics; the message names the URL."""


@dataclass(frozen=True)
class Histogram:
    """One series of a histogram: its labels (without `le`) and its cumulative buckets, +Inf last."""

    name: str
    labels: dict[str, str]
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), sorted by bound

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0


class Snapshot:
    """The samples of one scrape by sample name (counters keep their `_total` suffix), and the *_seconds
    histograms."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.histograms: list[Histogram] = []
        for family in families:
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))
            if family.type == "histogram" and family.name.endswith("_seconds"):
                self.histograms.extend(_histograms(family))

    def total(self, name: str, **match: str) -> float | None:
        """The sum of the series whose labels match, None when there is no such series."""
        values = [
            value
            for labels, value in self.samples.get(name, [])
            if all(labels.get(key) == want for key, want in match.items())
        ]
        return sum(values) if values else None

    def by(self, name: str, label: str) -> dict[str, float]:
        """The series summed per value of one label."""
        sums: dict[str, float] = {}
        for labels, value in self.samples.get(name, []):
            if label in labels:
                sums[labels[label]] = sums.get(labels[label], 0.0) + value
        return sums

    def label_values(self, label: str) -> list[str]:
        return sorted(
            {
                labels[label]
                for name, series in self.samples.items()
                if name.startswith("sorgw_")
                for labels, _ in series
                if label in labels
            }
        )


def _histograms(family: Metric) -> list[Histogram]:
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for sample in family.samples:
        if sample.name == family.name + "_bucket":
            key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            series.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
    return [Histogram(family.name, dict(key), sorted(buckets)) for key, buckets in series.items()]


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative buckets (+Inf last), interpolated linearly inside the bucket it falls in, as
    Prometheus's histogram_quantile does; None for an empty histogram."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    if len(buckets) < 2 or buckets[-1][0] != math.inf or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:  # beyond the highest finite bound: that bound is all that is known
        return buckets[-2][0]
    upper, count = buckets[index]
    if index == 0 and upper <= 0:
        return upper
    lower, below = buckets[index - 1] if index > 0 else (0.0, 0.0)
    if count == below:  # only when rank is 0 and the bucket is empty
        return lower
    return lower + (upper - lower) * (rank - below) / (count - below)


def metrics_url(url: str) -> str:
    """The URL to fetch: http:// added when no scheme is given, /metrics when there is no path."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url {url}: expected http://HOST:PORT[/metrics]")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urllib.parse.urlunsplit(parts)


def url_from_config(path: Path | None) -> str:
    """The endpoint of the gateway config's `metrics` section (an explicit path, else config/gateway.yaml when it
    exists, else the defaults); a wildcard listen address is read on loopback."""
    path = _config_path(path)
    metrics = config.MetricsConfig() if path is None else config.load(path, config.GatewayConfig).metrics
    if metrics.port == 0:
        raise config.ConfigError(f"{path}: metrics.port is 0 (any free port): pass --url with the port it logged")
    return local_url(metrics.host, metrics.port) + "/metrics"


def stale_after_from_config(path: Path | None) -> float:
    """Seconds after which a quote is STALE: the config's routing.max_quote_age_ms (0: never), as the router uses."""
    path = _config_path(path)
    routing = config.RoutingConfig() if path is None else config.load(path, config.GatewayConfig).routing
    return routing.max_quote_age_ms / 1000 if routing.max_quote_age_ms else math.inf


def _config_path(path: Path | None) -> Path | None:
    """The explicit config, else config/gateway.yaml when it exists, else None (the defaults)."""
    return DEFAULT_CONFIG if path is None and DEFAULT_CONFIG.exists() else path


def local_url(host: str, port: int) -> str:
    """http://HOST:PORT of an endpoint listening on host:port, a wildcard listen address read on loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def fetch(url: str, timeout: float = FETCH_TIMEOUT_S) -> tuple[str, str]:
    """The body and Content-Type of a 2xx answer; StatusError for anything else."""
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode("utf-8"), response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise StatusError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise StatusError(f"cannot read {url}: {error_reason(exc.reason)}") from None
    except UnicodeDecodeError:
        raise StatusError(f"{url} did not answer with Prometheus metrics: the body is not UTF-8 text") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise StatusError(f"cannot read {url}: {error_reason(exc)}") from None


def error_reason(reason: object) -> str:
    """`Connection refused` rather than `[Errno 111] Connection refused`."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def parse(url: str, body: str, content_type: str) -> Snapshot:
    not_metrics = f"{url} did not answer with Prometheus metrics"
    if content_type == "text/html":
        raise StatusError(f"{not_metrics}: it sent an HTML page")
    try:
        families = list(text_string_to_metric_families(body))
    except (ValueError, KeyError, IndexError) as exc:
        raise StatusError(f"{not_metrics}: {exc}") from None
    if not any(family.name.startswith("sorgw_") for family in families):
        raise StatusError(f"{not_metrics}: no sorgw_ metrics in the answer")
    return Snapshot(families)


def read(url: str) -> Snapshot:
    return parse(url, *fetch(url))


def seconds(value: float) -> str:
    """A duration with about three significant digits, in us, ms or s."""
    scale, unit = (1.0, "s") if value >= 1 else (1e-3, "ms") if value >= 1e-3 else (1e-6, "us")
    scaled = value / scale
    digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
    return f"{scaled:.{digits}f} {unit}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _age(age: float | None) -> str:
    return "-" if age is None else "never" if age == math.inf else seconds(age)  # +Inf: a feed that sent nothing


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Rows under a header, columns two spaces apart; the first `left` columns align left, the rest right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]


def _pairs(values: dict[str, float], order: Iterable[str] = ()) -> str:
    """`a 1, b 2` for the non-zero values, the known keys first in their order."""
    known = [key for key in order if key in values]
    keys = known + sorted(key for key in values if key not in known)
    return ", ".join(f"{key} {values[key]:,.0f}" for key in keys if values[key]) or "none"


def _sessions(snap: Snapshot) -> list[str]:
    rows = []
    for labels, up in sorted(snap.samples.get("sorgw_session_up", []), key=_session_order):
        ids = {"session": labels.get("session", ""), "role": labels.get("role", "")}
        rows.append(
            [
                ids["role"],
                ids["session"],
                "UP" if up >= 1 else "DOWN",
                _count(snap.total("sorgw_session_logons_total", **ids) or 0.0),
                _count(snap.total("sorgw_session_disconnects_total", **ids) or 0.0),
            ]
        )
    if not rows:
        return ["  no FIX session reported"]
    return _table(["role", "session", "state", "logons", "disconnects"], rows, left=3)


def _session_order(series: tuple[dict[str, str], float]) -> tuple[int, str]:
    role = series[0].get("role", "")
    return ROLES.index(role) if role in ROLES else len(ROLES), series[0].get("session", "")


def _orders(snap: Snapshot) -> list[str]:
    received = snap.by("sorgw_parent_orders_received_total", "session")
    per_session = f"  ({_pairs(received)})" if len(received) > 1 else ""
    lines = {
        "parents received": _count(snap.total("sorgw_parent_orders_received_total")) + per_session,
        "parents done": _pairs(snap.by("sorgw_parent_orders_total", "outcome"), PARENT_OUTCOMES),
        "open parents": _count(snap.total("sorgw_open_parent_orders")),
        "open children": _pairs(snap.by("sorgw_open_child_orders", "venue")),
        "rejects": _pairs(snap.by("sorgw_rejects_total", "reason"), REJECT_REASONS),
    }
    return [f"  {key.ljust(KEY_WIDTH)}{value}" for key, value in lines.items()]


def _venues(snap: Snapshot, stale_after: float) -> list[str]:
    rows = []
    for venue in snap.label_values("venue"):
        sent = snap.total("sorgw_child_orders_sent_total", venue=venue)
        ratio = snap.total("sorgw_venue_fill_ratio", venue=venue)
        if ratio is None and sent:  # no learnt ratio yet: children filled over children sent
            ratio = (snap.total("sorgw_child_orders_total", venue=venue, outcome="filled") or 0.0) / sent
        age = snap.total("sorgw_quote_age_seconds", venue=venue)
        rows.append(
            [
                venue,
                _count(sent),
                _count(snap.total("sorgw_fills_total", venue=venue)),
                _count(snap.total("sorgw_filled_shares_total", venue=venue)),
                _ratio(ratio),
                _ratio(snap.total("sorgw_venue_toxicity", venue=venue)),
                _circuit(snap.total("sorgw_venue_circuit_state", venue=venue)),
                _age(age),
                "STALE" if age is not None and age > stale_after else "",
            ]
        )
    if not rows:
        return ["  no venue reported"]
    return _table(
        ["venue", "sent", "fills", "filled shares", "fill ratio", "toxicity", "breaker", "quote age", ""], rows
    )


def _circuit(state: float | None) -> str:
    """A venue's circuit breaker (sorgw_venue_circuit_state): closed, half-open or OPEN (out of routing)."""
    return "-" if state is None else {0: "closed", 1: "half-open", 2: "OPEN"}.get(int(state), "?")


def _risk(snap: Snapshot) -> list[str]:
    halts = sorted(labels.get("scope", "") for labels, value in snap.samples.get("sorgw_halt", []) if value)
    limits: dict[str, dict[str, float]] = {}
    for labels, value in snap.samples.get("sorgw_risk_limit", []):
        limits.setdefault(labels.get("scope", ""), {})[labels.get("limit", "")] = value
    rows = []
    for session in sorted(snap.by("sorgw_session_open_qty", "session")):
        own = limits.get(f"session {session}", {})
        rows.append(
            [
                session,
                _against(snap.total("sorgw_session_open_qty", session=session), own.get("max_open_qty")),
                _against(
                    snap.total("sorgw_session_open_notional", session=session), own.get("max_open_notional"), ",.2f"
                ),
                _count(own.get("max_orders_per_s")),
            ]
        )
    lines = [f"  {'halts'.ljust(KEY_WIDTH)}{', '.join(halts) or 'none'}"]
    if rows:
        lines += _table(["session", "open qty / max", "open notional / max", "max orders/s"], rows)
    for scope, values in sorted(limits.items()):
        if scope.startswith("symbol "):
            listed = ", ".join(f"{name} {value:,.10g}" for name, value in sorted(values.items()))
            lines.append(f"  {scope.ljust(KEY_WIDTH)}{listed}")
    return lines


def _against(value: float | None, limit: float | None, spec: str = ",.0f") -> str:
    """`1,000 / 5,000 (20%)`: an exposure against its limit."""
    shown = "-" if value is None else format(value, spec)
    if limit is None:
        return f"{shown} / -"
    used = f" ({value / limit:.0%})" if value is not None and limit else ""
    return f"{shown} / {format(limit, spec)}{used}"


def _latency(snap: Snapshot) -> list[str]:
    rows = []
    for hist in snap.histograms:
        name = hist.name.removeprefix("sorgw_").removesuffix("_seconds")
        label = " ".join(value for _, value in sorted(hist.labels.items()))
        p50, p99 = quantile(0.5, hist.buckets), quantile(0.99, hist.buckets)
        rows.append(
            [
                f"{name} {label}".strip(),
                _count(hist.count),
                "n/a" if p50 is None else seconds(p50),
                "n/a" if p99 is None else seconds(p99),
            ]
        )
    if not rows:
        return ["  no latency histogram reported"]
    return _table(["", "count", "p50", "p99"], rows)


def render(snap: Snapshot, url: str, stale_after: float, note: str = "") -> str:
    """The whole screen for one scrape."""
    connected = snap.total("sorgw_market_data_connected")
    market = "-" if connected is None else "connected" if connected >= 1 else "DISCONNECTED"
    audit = (
        f"queue {_count(snap.total('sorgw_audit_queue_depth'))}, "
        f"written {_count(snap.total('sorgw_audit_records_written_total'))}, "
        f"commit errors {_count(snap.total('sorgw_audit_commit_errors_total'))}"
    )
    lines = [
        _header(url, note),
        "",
        "SESSIONS",
        *_sessions(snap),
        "",
        "ORDERS",
        *_orders(snap),
        "",
        "RISK",
        *_risk(snap),
        "",
        "VENUES",
        *_venues(snap, stale_after),
        "",
        "LATENCY",
        *_latency(snap),
        "",
        f"{'MARKET DATA'.ljust(KEY_WIDTH)}{market}",
        f"{'AUDIT'.ljust(KEY_WIDTH)}{audit}",
    ]
    return "\n".join(lines)


def _header(url: str, note: str) -> str:
    return f"sorgw status  {url}  {datetime.now(UTC):%H:%M:%S} UTC{note}"


def watch(url: str, interval: float, stale_after: float, out: TextIO) -> int:
    """Redraw every `interval` seconds until Ctrl-C (exit 0); a failed read is shown and retried."""
    note = f"  every {interval:g} s, Ctrl-C to stop"
    try:
        while True:
            try:
                screen = render(read(url), url, stale_after, note)
            except StatusError as exc:
                screen = f"{_header(url, note)}\n\n{exc}"
            out.write(CLEAR + screen + "\n")
            out.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def command(args: argparse.Namespace) -> int:
    """`sorgw status`: 0 when the table was printed (or the watch stopped), 1 when the endpoint failed, 2 on usage."""
    if args.watch is not None and not (math.isfinite(args.watch) and args.watch > 0):
        return _usage(f"--watch takes a number of seconds above 0, not {args.watch:g}")
    if args.stale_after is not None and not (math.isfinite(args.stale_after) and args.stale_after >= 0):
        return _usage(f"--stale-after takes a number of seconds, 0 or more, not {args.stale_after:g}")
    try:
        url = metrics_url(args.url) if args.url else url_from_config(args.config)
    except ValueError as exc:
        return _usage(str(exc))
    stale_after = stale_after_from_config(args.config) if args.stale_after is None else args.stale_after
    if args.watch is not None:
        return watch(url, args.watch, stale_after, sys.stdout)
    try:
        snap = read(url)
    except StatusError as exc:
        print(f"sorgw status: {exc}", file=sys.stderr)
        return 1
    print(render(snap, url, stale_after))
    return 0


def _usage(message: str) -> int:
    print(f"sorgw status: {message}", file=sys.stderr)
    return 2
