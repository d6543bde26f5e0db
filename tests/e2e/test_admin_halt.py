"""`sorgw admin halt` against `sorgw run` as a process: the halt cancels, refuses, outlives a kill -9, and resumes."""

from __future__ import annotations

import subprocess
import sys
import time

from gateway import topology
from gateway.fix import codec
from gateway.fix.client import OmsClient
from tests.e2e.harness import Processes, wait_log

TOKEN = "e2e-admin-token-0123456789abcdef"
HALT_TEXT = "halt (symbol AAPL)"


def _admin(url: str, *argv: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "admin", "--url", url, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={"SORGW_ADMIN_TOKEN": token, "PATH": "/usr/bin:/bin"},
    )


def _send_when_logged_on(oms: OmsClient, cl_ord_id: str, timeout: float = 30) -> None:
    """The OMS logs on again by itself after the gateway restarts; send once it has."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            oms.new_order(cl_ord_id, "AAPL", "2", 100, price="195.00")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_halt_cancels_refuses_survives_kill_9_and_resume_lets_orders_through(tmp_path, prefix, monkeypatch):
    monkeypatch.setenv("SORGW_ADMIN_TOKEN", TOKEN)
    [port] = topology.free_ports(1)
    procs = Processes(tmp_path, prefix, gateway_overrides={"admin": {"enabled": True, "port": port}})
    url = f"http://127.0.0.1:{port}"
    oms = None
    try:
        oms = procs.start(["LITA", "LITB", "LITC"])
        wait_log(procs.gateway_log, '"gateway.admin"')
        oms.new_order("REST", "AAPL", "2", 100, price="195.00")  # far above the market: it rests
        assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("REST")), 10)

        refused = _admin(url, "halt", "--symbol", "AAPL", token="wrong-token-wrong-token")
        assert refused.returncode == 1 and "HTTP 401: wrong token" in refused.stderr
        done = _admin(url, "halt", "--symbol", "AAPL")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{HALT_TEXT} in force\n")
        final = oms.wait_final("REST", 10)
        assert final is not None and (final[codec.ORD_STATUS], final[codec.TEXT]) == ("4", f"canceled: {HALT_TEXT}")
        oms.new_order("NEW", "AAPL", "2", 100, price="195.00")
        refused_order = oms.wait_final("NEW", 10)
        assert (refused_order[codec.ORD_STATUS], refused_order[codec.TEXT]) == (
            "8",
            f"refused: {HALT_TEXT} in force until resumed",
        )

        procs.kill_gateway()
        procs.start_gateway()
        wait_log(procs.gateway_log, '"gateway.admin"', after=1)
        listed = _admin(url, "halts")
        assert (listed.returncode, listed.stdout) == (0, f"halts in force:\n  {HALT_TEXT}\n")
        _send_when_logged_on(oms, "AFTER-RESTART")
        again = oms.wait_final("AFTER-RESTART", 10)
        assert (again[codec.ORD_STATUS], again[codec.TEXT]) == ("8", f"refused: {HALT_TEXT} in force until resumed")

        resumed = _admin(url, "resume", "--symbol", "AAPL")
        assert (resumed.returncode, resumed.stdout) == (0, f"{HALT_TEXT} lifted\nno halts in force\n")
        oms.new_order("RESUMED", "AAPL", "2", 100, price="195.00")
        assert oms.wait(lambda: any(m.get(codec.ORD_STATUS) == "0" for m in oms.reports("RESUMED")), 10)
        assert not any(m.get(codec.ORD_STATUS) == "8" for m in oms.reports("RESUMED"))
    finally:
        if oms is not None:
            oms.stop()
        procs.stop()
    log = procs.gateway_log.read_text()
    assert '"admin.unauthorized"' in log and TOKEN not in log and "wrong-token-wrong-token" not in log
    assert procs.trail_break() is None
