"""`sorgw admin`: halt, resume and list halts through a running gateway's admin endpoint."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from gateway import config
from gateway.status import DEFAULT_CONFIG, error_reason, local_url

TIMEOUT_S = 10.0


class AdminCallError(Exception):
    """The endpoint could not be reached or refused the request: the message says which, `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings(path: Path | None) -> config.AdminConfig:
    """The `admin` section of the gateway config (an explicit path, else config/gateway.yaml when it exists)."""
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    return config.AdminConfig() if path is None else config.load(path, config.GatewayConfig).admin


def base_url(url: str | None, admin: config.AdminConfig) -> str:
    if url is None:
        if admin.port == 0:
            raise AdminCallError("admin.port is 0 (any free port): pass --url with the one the gateway logged", 2)
        return local_url(admin.host, admin.port)
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminCallError(f"--url {url}: expected http://HOST:PORT", 2)
    return f"{parts.scheme}://{parts.netloc}"


def call(url: str, token: str, path: str, scope: dict | None = None) -> dict:
    """POST the scope (or GET without one) and return the JSON answer; AdminCallError saying what went wrong."""
    data = None if scope is None else json.dumps(scope).encode()
    request = urllib.request.Request(
        url + path,
        data=data,
        method="GET" if data is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AdminCallError(_refusal(url, exc), 2 if exc.code == 400 else 1) from None
    except urllib.error.URLError as exc:
        raise AdminCallError(f"cannot reach the admin endpoint at {url}: {error_reason(exc.reason)}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise AdminCallError(f"cannot reach the admin endpoint at {url}: {error_reason(exc)}") from None


def _refusal(url: str, exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read())["error"]
    except (ValueError, KeyError, TypeError, OSError):
        message = exc.reason
    return f"{url} refused: HTTP {exc.code}: {message}"


def render(answer: dict) -> str:
    halts = answer.get("halts", [])
    lines = [answer["result"]] if "result" in answer else []
    lines += ["halts in force:", *(f"  {h['text']}" for h in halts)] if halts else ["no halts in force"]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    """`sorgw admin halt|resume|halts`: 0 done, 1 unreachable or refused, 2 usage (a bad scope, no token)."""
    try:
        admin = settings(args.config)
        url = base_url(args.url, admin)
        token = os.environ.get(admin.token_env)
        if not token:
            raise AdminCallError(
                f"the environment variable {admin.token_env} (admin.token_env) is not set: it holds the admin token", 2
            )
        if args.admin_command == "halts":
            answer = call(url, token, "/halts")
        else:
            scope = {key: value for key in ("session", "symbol", "venue") if (value := getattr(args, key)) is not None}
            answer = call(url, token, f"/{args.admin_command}", scope)
    except AdminCallError as exc:
        print(f"sorgw admin: {exc}", file=sys.stderr)
        return exc.code
    print(render(answer))
    return 0
