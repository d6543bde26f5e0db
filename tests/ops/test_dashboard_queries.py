"""Every query of the Grafana dashboard parses and returns data from a real Prometheus scraping a live gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT, Prometheus, Traded

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "sorgw.json"
# Grafana's own interval variables, as it would fill them in for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "15s", "${__interval}": "15s"}


def panels(items: list[dict]) -> Iterator[dict]:
    """Every panel, rows' panels included (collapsed rows keep theirs nested)."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def targets(path: Path) -> list[tuple[str, str]]:
    """(panel title and refId, PromQL) of every query the dashboard runs."""
    if not path.exists():
        return []
    dashboard = json.loads(path.read_text())
    return [
        (f"{panel.get('title', '?')} [{target.get('refId', '?')}]", target["expr"])
        for panel in panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def grafana_expanded(expr: str) -> str:
    # Longest names first, so $__interval does not eat the start of $__interval_ms and the like.
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    return expr


TARGETS = targets(DASHBOARD)


def test_the_dashboard_has_queries():
    assert DASHBOARD.exists(), f"{DASHBOARD.relative_to(ROOT)} is missing"
    assert TARGETS, f"{DASHBOARD.relative_to(ROOT)} has no panel with a PromQL target"
    unknown = [(name, expr) for name, expr in TARGETS if "$" in grafana_expanded(expr)]
    assert unknown == [], "queries use dashboard variables this test does not know how to fill in"


@pytest.mark.parametrize("expr", [expr for _, expr in TARGETS], ids=[name for name, _ in TARGETS])
def test_panel_query_returns_data(prometheus: Prometheus, traded: Traded, expr: str):
    result = prometheus.query(grafana_expanded(expr))
    assert result, f"no data for {expr!r}"
