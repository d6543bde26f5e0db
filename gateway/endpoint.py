"""The gateway's HTTP endpoint for ops: /metrics for Prometheus, /healthz and /readyz for orchestrators."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

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
        # shutdown() waits for serve_forever to look at its flag, once per poll_interval (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address: (host, port)
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Endpoint(Served):
    """/metrics (prometheus_client's own exposition: OpenMetrics when asked, gzip when accepted), /healthz and
    /readyz; each answers GET and HEAD."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Check, readiness: Check) -> None:
        routes = {"/metrics": self._metrics, "/healthz": self._healthz, "/readyz": self._readyz}
        self._app = make_wsgi_app(registry)
        self._health, self._readiness = health, readiness
        super().__init__(host, port, _handler(routes), "sorgw-endpoint", "metrics.port")

    def start(self) -> None:
        super().start()
        log.info("gateway.metrics", url=self.url, paths=["/metrics", "/healthz", "/readyz"])

    def _metrics(self, request: BaseHTTPRequestHandler) -> Response:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": urlsplit(request.path).query}
        for header, key in (("Accept", "HTTP_ACCEPT"), ("Accept-Encoding", "HTTP_ACCEPT_ENCODING")):
            if header in request.headers:
                environ[key] = request.headers[header]
        answer: list = []
        body = b"".join(self._app(environ, lambda status, headers: answer.extend((status, headers))))
        return int(answer[0].split(" ", 1)[0]), answer[1], body

    def _healthz(self, _request: BaseHTTPRequestHandler) -> Response:
        return _verdict(self._health(), "ok", "unhealthy")

    def _readyz(self, _request: BaseHTTPRequestHandler) -> Response:
        return _verdict(self._readiness(), "ready", "not ready")


# status, headers (Content-Length is added), body
Response = tuple[int, list[tuple[str, str]], bytes]


def _verdict(problems: Mapping[str, str], good: str, bad: str) -> Response:
    body = {"status": bad, "problems": dict(problems)} if problems else {"status": good}
    return (503 if problems else 200), [("Content-Type", "application/json")], json.dumps(body).encode()


def _handler(routes: Mapping[str, Callable[[BaseHTTPRequestHandler], Response]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(head=False)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            route = routes.get(urlsplit(self.path).path)
            if route is None:
                status, headers, body = (
                    404,
                    [("Content-Type", "text/plain")],
                    b"not found: try /metrics, /healthz or /readyz\n",
                )
            else:
                try:
                    status, headers, body = route(self)
                except Exception as exc:  # a failing check must answer, not hang the probe
                    log.exception("endpoint.failed", path=self.path)
                    status, headers, body = (
                        500,
                        [("Content-Type", "text/plain")],
                        f"{type(exc).__name__}: {exc}\n".encode(),
                    )
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
            pass

    return Handler
