"""The Grafana dashboard and provisioning: structure, metric names from the real catalogue, compose mounts."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from gateway.metrics import Metrics
from tests.unit.test_compose import ROOT, load_compose, mounts, published

GRAFANA = ROOT / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sorgw.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
GRAFANA_10_SCHEMAS = (38, 39)  # 10.0-10.2 write 38, 10.3-10.4 write 39
Dashboard = dict[str, Any]

# What in a PromQL expression is not a metric name: strings, label matchers, ranges, grouping label lists.
NOT_NAMES = [
    re.compile(p)
    for p in (
        r'"(?:[^"\\]|\\.)*"',
        r"'(?:[^'\\]|\\.)*'",
        r"\{[^}]*\}",
        r"\[[^\]]*\]",
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
    )
]
# An identifier that is not part of a number or a longer name and is not called like a function.
IDENTIFIER = re.compile(r"(?<![\w$:.])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
RATE_OF = re.compile(r"\b(?:rate|irate|increase)\(\s*([A-Za-z_:][\w:]*)")


def exported() -> dict[str, str]:
    """Every series name the gateway exports -> its metric type, from a real registry."""
    names: dict[str, str] = {}
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names[family.name + "_total"] = "counter"
        elif family.type == "histogram":
            names.update({family.name + suffix: "histogram" for suffix in ("_bucket", "_sum", "_count")})
        else:
            names[family.name] = family.type
    return names


def seconds_histograms() -> set[str]:
    return {f.name for f in Metrics().registry.collect() if f.type == "histogram" and f.name.endswith("_seconds")}


def metric_names(expr: str) -> set[str]:
    for pattern in NOT_NAMES:
        expr = pattern.sub(" ", expr)
    return {name for name in IDENTIFIER.findall(expr) if name.lower() not in KEYWORDS}


def panels(dashboard: Dashboard) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels folded inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Dashboard) -> list[str]:
    return [t.get("expr", "") for p in panels(dashboard) for t in p.get("targets", [])]


def structure_problems(dashboard: Dashboard) -> list[str]:
    problems = []
    if dashboard.get("uid") != "sorgw":
        problems.append(f"uid is {dashboard.get('uid')!r}, not 'sorgw'")
    if dashboard.get("schemaVersion") not in GRAFANA_10_SCHEMAS:
        problems.append(f"schemaVersion {dashboard.get('schemaVersion')} is not Grafana 10's")
    if dashboard.get("templating", {}).get("list"):
        problems.append("template variables are defined")
    ids = [p.get("id") for p in panels(dashboard)]
    if len(set(ids)) != len(ids):
        problems.append(f"panel ids repeat: {ids}")
    for panel in panels(dashboard):
        title = panel.get("title")
        if not title:
            problems.append(f"panel {panel.get('id')} has no title")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{title}: datasource {panel.get('datasource')}")
        targets = panel.get("targets") or []
        if not any(t.get("expr") for t in targets):
            problems.append(f"{title}: no target with an expr")
        for target in targets:
            if not target.get("expr"):
                problems.append(f"{title}: target {target.get('refId')} has no expr")
            if target.get("datasource", DATASOURCE) != DATASOURCE:
                problems.append(f"{title}: target {target.get('refId')} datasource {target.get('datasource')}")
    return problems


def layout_problems(dashboard: Dashboard) -> list[str]:
    """Top-level panels fit the 24-column grid and do not overlap."""
    problems = []
    boxes = [(p.get("title"), p["gridPos"]) for p in dashboard.get("panels", [])]
    for i, (title, box) in enumerate(boxes):
        if box["x"] < 0 or box["x"] + box["w"] > 24:
            problems.append(f"{title}: outside the grid {box}")
        for other, obox in boxes[i + 1 :]:
            if (
                box["x"] < obox["x"] + obox["w"]
                and obox["x"] < box["x"] + box["w"]
                and box["y"] < obox["y"] + obox["h"]
                and obox["y"] < box["y"] + box["h"]
            ):
                problems.append(f"{title} overlaps {other}")
    return problems


def query_problems(dashboard: Dashboard, names: dict[str, str]) -> list[str]:
    problems = []
    for expr in queries(dashboard):
        for unknown in sorted(metric_names(expr) - names.keys()):
            problems.append(f"{unknown} is not exported by gateway.metrics: {expr}")
        for variable in re.findall(r"\$\{?(\w+)", expr):
            if variable != "__rate_interval":
                problems.append(f"${variable}: only $__rate_interval may be used: {expr}")
        for name in RATE_OF.findall(expr):
            if names.get(name) not in ("counter", "histogram"):
                problems.append(f"rate or increase of {name}, a {names.get(name)}: {expr}")
        if "histogram_quantile" in expr and not re.search(r"\bby\s*\([^)]*\ble\b", expr):
            problems.append(f"histogram_quantile without `by (le)`: {expr}")
    return problems


def coverage_problems(dashboard: Dashboard, names: dict[str, str], histograms: set[str]) -> list[str]:
    """p50 and p99 of every *_seconds histogram, and every sorgw_ series family somewhere."""
    problems = []
    exprs = queries(dashboard)
    for histogram in sorted(histograms):
        for q in ("0.5", "0.99"):
            wanted = re.compile(
                rf"histogram_quantile\(\s*{re.escape(q)}\s*,.*"
                rf"rate\(\s*{histogram}_bucket\[\$__rate_interval\]\)"
            )
            if not any(wanted.search(expr) for expr in exprs):
                problems.append(f"no p{q[2:].ljust(2, '0')} of {histogram} over rate(..._bucket[$__rate_interval])")
    used = set().union(*(metric_names(expr) for expr in exprs))
    families = {
        re.sub(r"_(?:total|bucket|sum|count)$", "", n) if names[n] in ("counter", "histogram") else n
        for n in names
        if n.startswith("sorgw_")
    }
    for family in sorted(families):
        if not any(re.sub(r"_(?:total|bucket|sum|count)$", "", n) == family for n in used):
            problems.append(f"{family} is on no panel")
    return problems


def provisioning_problems(root: Path) -> list[str]:
    """The datasource is the compose `prometheus` service; the provider reads the folder compose mounts."""
    problems = []
    compose = load_compose(root)
    services = compose["services"]
    grafana = {PurePosixPath(target): source for source, target in mounts(services["grafana"])}
    provisioning = grafana.get(PurePosixPath("/etc/grafana/provisioning"))
    if provisioning is None or (root / provisioning).resolve() != (root / "config/grafana/provisioning").resolve():
        problems.append(f"config/grafana/provisioning is not mounted on /etc/grafana/provisioning ({grafana})")

    datasources = yaml.safe_load((root / "config/grafana/provisioning/datasources/prometheus.yml").read_text())
    prometheus = [d for d in datasources.get("datasources", []) if d.get("uid") == DATASOURCE["uid"]]
    if len(prometheus) != 1 or prometheus[0].get("type") != "prometheus":
        return problems + [f"no single prometheus datasource with uid {DATASOURCE['uid']!r}"]
    match = re.fullmatch(r"http://([\w.-]+):(\d+)/?", prometheus[0].get("url", ""))
    if not match or match[1] not in services or int(match[2]) not in published(services[match[1]]):
        problems.append(f"datasource url {prometheus[0].get('url')} is not a compose service's published port")
    else:
        scrape = {PurePosixPath(t): s for s, t in mounts(services[match[1]])}.get(
            PurePosixPath("/etc/prometheus/prometheus.yml")
        )
        interval = scrape and yaml.safe_load((root / scrape).read_text()).get("global", {}).get("scrape_interval")
        if prometheus[0].get("jsonData", {}).get("timeInterval") != interval:
            problems.append(f"datasource timeInterval is not prometheus.yml's scrape_interval {interval}")

    providers = yaml.safe_load((root / "config/grafana/provisioning/dashboards/sorgw.yml").read_text())
    for provider in providers.get("providers", []):
        path = PurePosixPath(provider.get("options", {}).get("path", ""))
        source = grafana.get(path)
        if provider.get("type") != "file" or source is None:
            problems.append(f"dashboard provider {provider.get('name')}: {path} is not a folder compose mounts")
        elif not (root / source / "sorgw.json").is_file():
            problems.append(f"dashboard provider {provider.get('name')}: {source} has no sorgw.json")
    if not providers.get("providers"):
        problems.append("no dashboard provider")
    home = services["grafana"].get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home and not (
        PurePosixPath(home).parent in grafana
        and (root / grafana[PurePosixPath(home).parent] / PurePosixPath(home).name).is_file()
    ):
        problems.append(f"home dashboard {home} is not in a mounted folder")
    return problems


@pytest.fixture
def dashboard() -> Dashboard:
    return json.loads(DASHBOARD.read_text())


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (venue, le) (rate(sorgw_venue_ack_seconds_bucket{venue=~"LIT.*"}'
        "[$__rate_interval]))) / ignoring(le) sum(sorgw_open_parent_orders offset 5m) and on() up > 1e3"
    )
    assert metric_names(expr) == {"sorgw_venue_ack_seconds_bucket", "sorgw_open_parent_orders", "up"}


def test_catalogue_names_follow_the_exposition_format() -> None:
    names = exported()
    assert names["sorgw_fills_total"] == "counter" and "sorgw_fills" not in names
    assert {f"sorgw_venue_ack_seconds{suffix}" for suffix in ("_bucket", "_sum", "_count")} <= names.keys()
    assert names["sorgw_session_up"] == "gauge"
    assert not [n for n in names if n.endswith("_created")]


def test_dashboard_structure(dashboard: Dashboard) -> None:
    assert structure_problems(dashboard) == []
    assert layout_problems(dashboard) == []


def test_every_query_uses_exported_metrics(dashboard: Dashboard) -> None:
    assert query_problems(dashboard, exported()) == []


def test_dashboard_covers_the_catalogue(dashboard: Dashboard) -> None:
    assert coverage_problems(dashboard, exported(), seconds_histograms()) == []


def test_provisioning_points_at_what_compose_mounts() -> None:
    assert provisioning_problems(ROOT) == []


# Each check fails on a broken copy.


def _first(dashboard: Dashboard, title: str) -> dict[str, Any]:
    return next(p for p in panels(dashboard) if p.get("title") == title)


def _set(title: str, key: str, value: Any) -> Callable[[Dashboard], None]:
    def mutate(dashboard: Dashboard) -> None:
        _first(dashboard, title)[key] = value

    return mutate


def _expr(title: str, expr: str) -> Callable[[Dashboard], None]:
    def mutate(dashboard: Dashboard) -> None:
        _first(dashboard, title)["targets"][0]["expr"] = expr

    return mutate


def _drop(title: str) -> Callable[[Dashboard], None]:
    def mutate(dashboard: Dashboard) -> None:
        dashboard["panels"].remove(_first(dashboard, title))

    return mutate


def _top(key: str, value: Any) -> Callable[[Dashboard], None]:
    def mutate(dashboard: Dashboard) -> None:
        dashboard[key] = value

    return mutate


BROKEN = [
    ("wrong uid", structure_problems, _top("uid", "gateway")),
    ("old schema", structure_problems, _top("schemaVersion", 27)),
    ("template variable", structure_problems, _top("templating", {"list": [{"name": "venue", "type": "query"}]})),
    ("no title", structure_problems, _set("Open parent orders", "title", "")),
    ("no targets", structure_problems, _set("Audit queue depth", "targets", [])),
    ("empty expr", structure_problems, _expr("Audit queue depth", "")),
    ("other datasource", structure_problems, _set("Quote age by venue", "datasource", {"uid": "loki"})),
    ("overlap", layout_problems, _set("Open child orders", "gridPos", {"h": 4, "w": 4, "x": 2, "y": 1})),
    ("off the grid", layout_problems, _set("CPU", "gridPos", {"h": 8, "w": 12, "x": 20, "y": 500})),
    ("unknown metric", query_problems, _expr("Audit records /s", "sum(rate(sorgw_audit_rows_total[5m]))")),
    ("counter without _total", query_problems, _expr("Fills /s", "sum(rate(sorgw_fills[$__rate_interval]))")),
    ("_created series", query_problems, _expr("Fills /s", "max(sorgw_fills_created)")),
    ("rate of a gauge", query_problems, _expr("Audit queue depth", "rate(sorgw_audit_queue_depth[5m])")),
    ("own variable", query_problems, _expr("Fills /s", 'sum(rate(sorgw_fills_total{venue="$venue"}[5m]))')),
    (
        "quantile without le",
        query_problems,
        _expr("Routing decision", "histogram_quantile(0.99, sum(rate(sorgw_routing_decision_seconds_bucket[5m])))"),
    ),
    ("latency panel gone", coverage_problems, _drop("Venue acknowledgement by venue")),
    (
        "fixed range",
        coverage_problems,
        _expr(
            "Routing decision", "histogram_quantile(0.5, sum by (le) (rate(sorgw_routing_decision_seconds_bucket[1m])))"
        ),
    ),
    ("metric on no panel", coverage_problems, _drop("Dark fill probability")),
]


@pytest.mark.parametrize("check, mutate", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_checks_catch_a_broken_dashboard(
    dashboard: Dashboard, check: Callable[..., list[str]], mutate: Callable[[Dashboard], None]
) -> None:
    broken = copy.deepcopy(dashboard)
    mutate(broken)
    if check is query_problems:
        assert check(broken, exported())
    elif check is coverage_problems:
        assert check(broken, exported(), seconds_histograms())
    else:
        assert check(broken)


@pytest.mark.parametrize(
    "path, old, new",
    [
        ("config/grafana/provisioning/dashboards/sorgw.yml", "/var/lib/grafana/dashboards", "/dashboards"),
        ("config/grafana/provisioning/datasources/prometheus.yml", "uid: prometheus", "uid: prom"),
        ("config/grafana/provisioning/datasources/prometheus.yml", "prometheus:9090", "prometheus:9091"),
        ("config/grafana/provisioning/datasources/prometheus.yml", "prometheus:9090", "victoria:9090"),
        ("config/grafana/provisioning/datasources/prometheus.yml", "timeInterval: 15s", "timeInterval: 1m"),
        ("docker-compose.yml", "./config/grafana/dashboards:", "./config/grafana:"),
        ("docker-compose.yml", "./config/grafana/provisioning:", "./config/grafana/dashboards:"),
        (
            "docker-compose.yml",
            "DASHBOARD_PATH: /var/lib/grafana/dashboards/sorgw.json",
            "DASHBOARD_PATH: /var/lib/grafana/dashboards/home.json",
        ),
    ],
)
def test_checks_catch_broken_provisioning(tmp_path: Path, path: str, old: str, new: str) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    text = (tmp_path / path).read_text()
    assert old in text
    (tmp_path / path).write_text(text.replace(old, new, 1))
    assert provisioning_problems(tmp_path)
