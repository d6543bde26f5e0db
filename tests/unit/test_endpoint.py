"""The ops endpoint on a real socket: /metrics through prometheus_client's exposition (HEAD, gzip, OpenMetrics)."""

from __future__ import annotations

import gzip
import http.client
import json

import pytest
from prometheus_client import CollectorRegistry, Counter

from gateway.endpoint import Endpoint


@pytest.fixture
def endpoint():
    registry = CollectorRegistry()
    Counter("sorgw_test_orders", "orders", ["venue"], registry=registry).labels("LITA").inc(3)
    Counter("sorgw_test_fills", "fills", registry=registry).inc()
    problems: dict[str, str] = {}
    served = Endpoint("127.0.0.1", 0, registry, lambda: problems, lambda: {"venues": "LITA down"})
    served.start()
    try:
        yield served, problems
    finally:
        served.stop()


def _request(endpoint: Endpoint, method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    host, port = endpoint.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_metrics_get_is_prometheus_text(endpoint):
    status, headers, body = _request(endpoint[0], "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'sorgw_test_orders_total{venue="LITA"} 3.0' in body
    assert int(headers["content-length"]) == len(body)


def test_metrics_head_has_the_headers_of_get_and_no_body(endpoint):
    _, get_headers, get_body = _request(endpoint[0], "GET", "/metrics")
    status, headers, body = _request(endpoint[0], "HEAD", "/metrics")
    assert status == 200 and body == b""
    assert headers["content-type"] == get_headers["content-type"]
    assert int(headers["content-length"]) == len(get_body)


def test_metrics_are_gzipped_when_the_scraper_accepts_it(endpoint):
    status, headers, body = _request(endpoint[0], "GET", "/metrics", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert b'sorgw_test_orders_total{venue="LITA"} 3.0' in gzip.decompress(body)


def test_metrics_speak_openmetrics_when_asked(endpoint):
    status, headers, body = _request(
        endpoint[0], "GET", "/metrics", Accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n") and b'sorgw_test_orders_total{venue="LITA"} 3.0' in body


def test_metrics_filter_by_name(endpoint):
    _, _, body = _request(endpoint[0], "GET", "/metrics?name[]=sorgw_test_orders_total")
    assert b"sorgw_test_orders_total" in body and b"sorgw_test_fills" not in body


def test_health_and_readiness_answer_get_and_head(endpoint):
    served, problems = endpoint
    assert _request(served, "GET", "/healthz")[::2] == (200, b'{"status": "ok"}')
    problems["audit"] = "store refuses commits"
    status, _, body = _request(served, "GET", "/healthz")
    assert status == 503 and json.loads(body)["problems"] == {"audit": "store refuses commits"}
    status, headers, body = _request(served, "HEAD", "/readyz")
    assert status == 503 and body == b"" and headers["content-type"] == "application/json"
    assert _request(served, "GET", "/nowhere")[0] == 404
