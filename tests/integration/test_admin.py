"""The admin endpoint over real HTTP in front of a real gateway: the token, the scopes, and `sorgw admin` against it."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from gateway import cli
from gateway.core.risk import Halt
from gateway.fix import codec

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-the-admin-endpoint-tests"


@pytest.fixture
def admin_stack(make_stack, monkeypatch):
    monkeypatch.setenv("SORGW_TEST_ADMIN_TOKEN", TOKEN)
    return make_stack(gateway_overrides={"admin": {"enabled": True, "port": 0, "token_env": "SORGW_TEST_ADMIN_TOKEN"}})


def _request(
    url: str,
    method: str,
    path: str,
    body: object = None,
    auth: str | None = f"Bearer {TOKEN}",
    raw: bytes | None = None,
) -> tuple[int, dict, dict]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Authorization": auth} if auth is not None else {}
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def test_every_path_needs_the_token_compared_whole(admin_stack):
    url = admin_stack.gateway.admin.url
    for path, method in (("/halts", "GET"), ("/halt", "POST"), ("/resume", "POST"), ("/nowhere", "GET")):
        status, headers, answer = _request(url, method, path, {"symbol": "AAPL"}, auth=None)
        assert (status, answer["error"]) == (401, "missing bearer token (Authorization: Bearer <token>)"), path
        assert headers["WWW-Authenticate"].startswith("Bearer")
    for auth in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer x", f"Basic {TOKEN}", TOKEN, "Bearer "):
        status, _, answer = _request(url, "POST", "/halt", {"symbol": "AAPL"}, auth=auth)
        assert status == 401, auth
    # Nothing an unauthorized request asked for happened.
    assert admin_stack.gateway.inspect(lambda e: set(e.halts)) == set()
    assert _request(url, "GET", "/halts")[::2] == (200, {"halts": []})


def test_bad_scopes_are_refused_naming_what_is_wrong(admin_stack):
    url = admin_stack.gateway.admin.url
    cases = [
        ({"symbol": "NOPE"}, "unknown symbol 'NOPE' (configured: AAPL, MSFT)"),
        ({"venue": "NYSE"}, "unknown venue 'NYSE' (configured: DRKA, DRKB, LITA, LITB, LITC)"),
        ({"session": "OMS9"}, "unknown session 'OMS9' (configured: FIX.4.4:SORGW->OMS, OMS)"),
        ({"venue": "LITA", "symbol": "AAPL"}, "a venue halt takes no session or symbol: halt the venue on its own"),
        ({"sym": "AAPL"}, "unknown scope key 'sym' (session, symbol, venue)"),
        ({"symbol": 5}, "symbol must be a non-empty string, not 5"),
        ({"symbol": ""}, 'symbol must be a non-empty string, not ""'),
        (["AAPL"], "the body must be a JSON object with session, symbol and/or venue"),
    ]
    for body, error in cases:
        assert _request(url, "POST", "/halt", body)[::2] == (400, {"error": error}), body
    status, _, answer = _request(url, "POST", "/halt", raw=b"{symbol: AAPL}")
    assert status == 400 and answer["error"].startswith("the body is not JSON")
    assert _request(url, "GET", "/halt")[::2] == (405, {"error": "/halt takes POST"})
    assert _request(url, "POST", "/resume", {"symbol": "AAPL"})[::2] == (
        409,
        {"error": "no halt (symbol AAPL) in force (in force: none)"},
    )
    assert admin_stack.gateway.inspect(lambda e: set(e.halts)) == set()


def test_halt_and_resume_over_http_reach_the_engine_and_the_oms(admin_stack):
    url, oms = admin_stack.gateway.admin.url, admin_stack.oms
    oms.new_order("REST", "AAPL", "2", 100, price="195.00")
    assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("REST")), 10)
    status, _, answer = _request(url, "POST", "/halt", {"symbol": "AAPL", "session": "OMS"})
    assert status == 200, answer
    assert answer["result"] == "halt (session FIX.4.4:SORGW->OMS, symbol AAPL) in force"
    final = oms.wait_final("REST")
    assert (final[codec.ORD_STATUS], final[codec.TEXT]) == (
        "4",
        "canceled: halt (session FIX.4.4:SORGW->OMS, symbol AAPL)",
    )
    assert _request(url, "POST", "/halt", {"venue": "LITA"})[0] == 200
    assert _request(url, "GET", "/halts")[2] == {
        "halts": [
            {"session": None, "symbol": None, "venue": "LITA", "text": "halt (venue LITA)"},
            {
                "session": "FIX.4.4:SORGW->OMS",
                "symbol": "AAPL",
                "venue": None,
                "text": "halt (session FIX.4.4:SORGW->OMS, symbol AAPL)",
            },
        ]
    }
    # The session id names the same scope as the CompID.
    status, _, answer = _request(url, "POST", "/resume", {"symbol": "AAPL", "session": "FIX.4.4:SORGW->OMS"})
    assert (status, answer["result"]) == (200, "halt (session FIX.4.4:SORGW->OMS, symbol AAPL) lifted")
    assert admin_stack.gateway.inspect(lambda e: set(e.halts)) == {Halt(venue="LITA")}


def test_sorgw_admin_against_the_endpoint(admin_stack, capsys, monkeypatch):
    url = admin_stack.gateway.admin.url

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["admin", "--url", url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    # The client reads the default token_env unless a config names another.
    monkeypatch.setenv("SORGW_ADMIN_TOKEN", TOKEN)
    assert run("halt", "--symbol", "MSFT") == (
        0,
        "halt (symbol MSFT) in force\nhalts in force:\n  halt (symbol MSFT)\n",
        "",
    )
    assert run("halts") == (0, "halts in force:\n  halt (symbol MSFT)\n", "")
    code, _, err = run("halt", "--symbol", "NOPE")
    assert code == 2 and err == (
        f"sorgw admin: {url} refused: HTTP 400: unknown symbol 'NOPE' (configured: AAPL, MSFT)\n"
    )
    code, _, err = run("resume", "--symbol", "AAPL")
    assert code == 1 and "HTTP 409: no halt (symbol AAPL) in force (in force: halt (symbol MSFT))" in err
    assert run("resume", "--symbol", "MSFT") == (0, "halt (symbol MSFT) lifted\nno halts in force\n", "")
    monkeypatch.setenv("SORGW_ADMIN_TOKEN", "not-the-token-at-all")
    code, _, err = run("halt")
    assert code == 1 and err == f"sorgw admin: {url} refused: HTTP 401: wrong token\n"
    assert admin_stack.gateway.inspect(lambda e: set(e.halts)) == set()


def test_sorgw_status_shows_the_halts_the_limits_and_each_sessions_exposure(make_stack, monkeypatch, capsys):
    monkeypatch.setenv("SORGW_ADMIN_TOKEN", TOKEN)
    stack = make_stack(
        gateway_overrides={
            "admin": {"enabled": True, "port": 0},
            "risk": {
                "defaults": {"max_order_qty": 5000, "price_collar_bps": 500},
                "sessions": {"OMS": {"max_open_qty": 1000, "max_open_notional": "100000", "max_orders_per_s": 50}},
                "symbols": {"MSFT": {"max_order_qty": 2000}},
            },
        }
    )
    oms = stack.oms
    oms.new_order("REST", "AAPL", "2", 100, price="195.00")
    assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("REST")), 10)
    assert _request(stack.gateway.admin.url, "POST", "/halt", {"venue": "DRKB"})[0] == 200
    assert cli.main(["status", "--url", stack.gateway.metrics_url]) == 0
    out = capsys.readouterr().out
    risk = out[out.index("\nRISK\n") : out.index("\nVENUES\n")].splitlines()
    assert risk[2] == "  halts             halt (venue DRKB)"
    assert risk[3].split() == ["session", "open", "qty", "/", "max", "open", "notional", "/", "max", "max", "orders/s"]
    assert risk[4].startswith("  FIX.4.4:SORGW->OMS") and " 100 / 1,000 (10%)" in risk[4]
    assert "19,500.00 / 100,000.00 (20%)" in risk[4]
    assert risk[4].rstrip().endswith("50")
    assert "  symbol AAPL       max_order_qty 5,000, price_collar_bps 500" in risk
    assert "  symbol MSFT       max_order_qty 2,000, price_collar_bps 500" in risk
