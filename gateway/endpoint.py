"""The gateway's HTTP endpoint for ops: /metrics for Prometheus, /healthz and /readyz for orchestrators."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.listen import PortInUse

log = structlog.get_logger("gateway.endpoint")

# A check returns what is wrong, by component: empty when all is well.
Check = Callable[[], Mapping[str, str]]


class Served:
    """An HTTP server on its own threads (one per request): a slow client never holds up the order path."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str, key: str) -> None:
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise PortInUse(key, host, port, exc.strerror or str(exc)) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Endpoint(Served):
    """/metrics, /healthz and /readyz."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Check, readiness: Check) -> None:
        routes = {"/metrics": self._metrics, "/healthz": self._healthz, "/readyz": self._readyz}
        self._registry, self._health, self._readiness = registry, health, readiness
        super().__init__(host, port, _handler(routes), "sorgw-endpoint", "metrics.port")

    def start(self) -> None:
        super().start()
        log.info("gateway.metrics", url=self.url, paths=["/metrics", "/healthz", "/readyz"])

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    def _healthz(self) -> tuple[int, str, bytes]:
        return _verdict(self._health(), "ok", "unhealthy")

    def _readyz(self) -> tuple[int, str, bytes]:
        return _verdict(self._readiness(), "ready", "not ready")


def _verdict(problems: Mapping[str, str], good: str, bad: str) -> tuple[int, str, bytes]:
    body = {"status": bad, "problems": dict(problems)} if problems else {"status": good}
    return (503 if problems else 200), "application/json", json.dumps(body).encode()


def _handler(routes: Mapping[str, Callable[[], tuple[int, str, bytes]]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                status, content_type, body = 404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n"
            else:
                try:
                    status, content_type, body = route()
                except Exception as exc:  # a failing check must answer, not hang the probe
                    log.exception("endpoint.failed", path=self.path)
                    status, content_type, body = 500, "text/plain", f"{type(exc).__name__}: {exc}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
            pass

    return Handler
