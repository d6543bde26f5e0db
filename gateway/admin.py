"""The admin endpoint: halt and resume trading (the kill switch) and list the halts in force, behind a bearer token."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import structlog

from gateway.core.risk import Halt
from gateway.endpoint import Served

log = structlog.get_logger("gateway.admin")

MAX_BODY = 4096
SCOPE_KEYS = ("session", "symbol", "venue")
ROUTES = {"/halt": "POST", "/resume": "POST", "/halts": "GET"}


class AdminError(Exception):
    """A request refused with an HTTP status and a sentence saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Scopes:
    """What a halt may name: OMS sessions (by session id or by the OMS's CompID), symbols and venues."""

    sessions: Mapping[str, str]  # a name an operator may use -> the engine's session id
    symbols: frozenset[str]
    venues: frozenset[str]

    def halt(self, body: object) -> Halt:
        """The Halt a request body names; AdminError 400 naming what is wrong."""
        if not isinstance(body, dict):
            raise AdminError(400, "the body must be a JSON object with session, symbol and/or venue")
        unknown = sorted(set(body) - set(SCOPE_KEYS))
        if unknown:
            raise AdminError(400, f"unknown scope key {', '.join(map(repr, unknown))} (session, symbol, venue)")
        for key, value in body.items():
            if value is not None and (not isinstance(value, str) or not value):
                raise AdminError(400, f"{key} must be a non-empty string, not {json.dumps(value)}")
        session, symbol, venue = (body.get(key) for key in SCOPE_KEYS)
        if venue is not None and (session is not None or symbol is not None):
            raise AdminError(400, "a venue halt takes no session or symbol: halt the venue on its own")
        if session is not None:
            if session not in self.sessions:
                raise AdminError(400, f"unknown session {session!r} (configured: {_listed(self.sessions)})")
            session = self.sessions[session]
        if symbol is not None and symbol not in self.symbols:
            raise AdminError(400, f"unknown symbol {symbol!r} (configured: {_listed(self.symbols)})")
        if venue is not None and venue not in self.venues:
            raise AdminError(400, f"unknown venue {venue!r} (configured: {_listed(self.venues)})")
        return Halt(session, symbol, venue)


def scopes(session_ids: Mapping[str, str], symbols: Iterable[str], venues: Iterable[str]) -> Scopes:
    """Scopes from each session id and its OMS CompID; a CompID two sessions share names neither (use the id)."""
    names = dict.fromkeys(session_ids.values(), 0)
    for comp_id in session_ids.values():
        names[comp_id] += 1
    sessions = {sid: sid for sid in session_ids}
    sessions.update({comp_id: sid for sid, comp_id in session_ids.items() if names[comp_id] == 1})
    return Scopes(sessions, frozenset(symbols), frozenset(venues))


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def halt_json(halt: Halt) -> dict:
    return {"session": halt.session, "symbol": halt.symbol, "venue": halt.venue, "text": str(halt)}


class AdminEndpoint(Served):
    """`halt(scope, resume)` puts a kill switch in force or lifts it; `halts()` lists those in force."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        scope: Scopes,
        halt: Callable[[Halt, bool], None],
        halts: Callable[[], Iterable[Halt]],
    ) -> None:
        self._token = token.encode()
        self._scopes, self._halt, self._halts = scope, halt, halts
        super().__init__(host, port, _handler(self), "sorgw-admin", "admin.port")

    def start(self) -> None:
        super().start()
        log.info("gateway.admin", url=self.url, paths=sorted(ROUTES))

    def authorize(self, header: str | None) -> None:
        """AdminError 401 unless the header is `Bearer <token>` (compared in constant time)."""
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AdminError(401, "missing bearer token (Authorization: Bearer <token>)")
        if not hmac.compare_digest(given.strip().encode(), self._token):
            raise AdminError(401, "wrong token")

    def answer(self, method: str, path: str, header: str | None, body: bytes) -> tuple[int, dict]:
        """Status and JSON for one request (AdminError turned into its status and message)."""
        try:
            self.authorize(header)
            route = ROUTES.get(path)
            if route is None:
                raise AdminError(404, f"not found: {path} (POST /halt, POST /resume, GET /halts)")
            if method != route:
                raise AdminError(405, f"{path} takes {route}")
            if path == "/halts":
                return 200, {"halts": self._listing()}
            return 200, self._apply(path == "/resume", _json(body))
        except AdminError as exc:
            return exc.status, {"error": str(exc)}

    def _apply(self, resume: bool, body: object) -> dict:
        halt = self._scopes.halt(body)
        in_force = set(self._halts())
        if resume and halt not in in_force:
            listed = ", ".join(h["text"] for h in self._listing()) or "none"
            raise AdminError(409, f"no {halt} in force (in force: {listed})")
        self._halt(halt, resume)
        result = f"{halt} lifted" if resume else f"{halt} in force" + (" (already)" if halt in in_force else "")
        return {"result": result, "halts": self._listing()}

    def _listing(self) -> list[dict]:
        return [
            halt_json(h) for h in sorted(self._halts(), key=lambda h: (h.session or "", h.symbol or "", h.venue or ""))
        ]


def _json(body: bytes) -> object:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminError(400, f"the body is not JSON: {exc}") from None


def _handler(admin: AdminEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a client may take to send its request: a stalled one does not keep its thread

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                status, answer = self._answer(path)
            except Exception as exc:  # a failing halt must answer, not hang the operator
                log.exception("admin.failed", path=path)
                status, answer = 500, {"error": f"{type(exc).__name__}: {exc}"}
            if status == 401:
                log.warning(
                    "admin.unauthorized",
                    client=self.client_address[0],
                    method=self.command,
                    path=path,
                    reason=answer["error"],
                )
            elif self.command == "POST" and status < 500:
                log.warning(
                    "admin.request",
                    client=self.client_address[0],
                    path=path,
                    status=status,
                    **({"error": answer["error"]} if status >= 400 else {"result": answer["result"]}),
                )
            payload = json.dumps(answer).encode() + b"\n"
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="sorgw-admin"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, path: str) -> tuple[int, dict]:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return 400, {"error": "Content-Length is not a number"}
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                return 413, {"error": f"the body is limited to {MAX_BODY} bytes"}
            body = self.rfile.read(length) if length else b""
            return admin.answer(self.command, path, self.headers.get("Authorization"), body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - admin.* lines say what matters
            pass

    return Handler
