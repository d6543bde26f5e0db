"""Errors that name what to fix: ports in use, clashing ports, empty venues, env overrides, bad arguments."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from gateway import topology

SORGW = [sys.executable, "-m", "gateway.cli"]


def _dump(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True)))
    return path


def _sorgw(*args: str, env: dict[str, str] | None = None, cmd: list[str] = SORGW) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


@contextmanager
def _held(port: int) -> Iterator[None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield


def _port_error(result: subprocess.CompletedProcess, key: str, port: int) -> None:
    assert result.returncode == 1, result.stderr
    assert f"{key}: cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr
    assert "Address already in use" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["upstream.port", "metrics.port", "admin.port"])
def test_a_gateway_port_in_use_names_its_key(tmp_path, key):
    port = topology.free_port()
    section = key.split(".")[0]
    overrides = {"metrics": {"port": port}} if section == "metrics" else {}
    if section == "admin":
        overrides = {"admin": {"enabled": True, "port": port}}
    gateway_cfg, _ = topology.build(tmp_path, gateway_overrides=overrides)
    if section == "upstream":
        port = gateway_cfg.upstream.port
    path = _dump(gateway_cfg, tmp_path / "gateway.yaml")
    with _held(port):
        result = _sorgw(
            "run", "--config", str(path), "--work-dir", str(tmp_path / "w"), env={"SORGW_ADMIN_TOKEN": "x" * 32}
        )
    _port_error(result, key, port)


def test_a_venue_port_in_use_names_the_venue(tmp_path):
    _, venues_cfg = topology.build(tmp_path)
    venue = venues_cfg.venues[2]
    path = _dump(venues_cfg, tmp_path / "venues.yaml")
    with _held(venue.port):
        result = _sorgw("venue", "--config", str(path), "--work-dir", str(tmp_path / "w"))
    _port_error(result, f"venues.{venue.name}.port", venue.port)


def _raw(tmp_path: Path, which: int) -> dict:
    cfgs = topology.build(tmp_path)
    return cfgs[which].model_dump(mode="json", by_alias=True)


def _run_invalid(tmp_path: Path, raw: dict, command: str = "run", env: dict[str, str] | None = None) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = _sorgw(command, "--config", str(path), "--work-dir", str(tmp_path / "w"), env=env)
    assert result.returncode == 2, result.stderr
    assert f"{path}: invalid configuration" in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def test_two_gateway_venues_on_one_port_fail_validation(tmp_path):
    raw = _raw(tmp_path, 0)
    raw["venues"][1]["port"] = raw["venues"][0]["port"]
    stderr = _run_invalid(tmp_path, raw)
    assert f"venues.LITB.port: 127.0.0.1:{raw['venues'][0]['port']} is also venues.LITA.port" in stderr


def test_upstream_on_a_venue_port_fails_validation(tmp_path):
    raw = _raw(tmp_path, 0)
    raw["venues"][3]["port"] = raw["upstream"]["port"]
    stderr = _run_invalid(tmp_path, raw)
    assert "venues.DRKA.port" in stderr and "is also upstream.port" in stderr


def test_two_simulated_venues_on_one_port_fail_validation(tmp_path):
    raw = _raw(tmp_path, 1)
    raw["venues"][4]["port"] = raw["venues"][0]["port"]
    stderr = _run_invalid(tmp_path, raw, "venue")
    assert "venues.DRKB.port" in stderr and "is also venues.LITA.port" in stderr


@pytest.mark.parametrize("which,command", [(0, "run"), (1, "venue")])
def test_no_venues_fails_validation(tmp_path, which, command):
    raw = _raw(tmp_path, which)
    raw["venues"] = []
    stderr = _run_invalid(tmp_path, raw, command)
    assert "venues: Tuple should have at least 1 item" in stderr


def test_an_env_override_error_names_the_variable(tmp_path):
    raw = _raw(tmp_path, 0)
    stderr = _run_invalid(tmp_path, raw, env={"SORGW__VENUES__1__PORT": "not-a-port"})
    assert "venues.1.port:" in stderr and "(set by SORGW__VENUES__1__PORT)" in stderr


def test_an_env_override_into_a_single_value_names_the_variable(tmp_path):
    raw = _raw(tmp_path, 0)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = _sorgw("run", "--config", str(path), env={"SORGW__UPSTREAM__PORT__X": "1"})
    assert result.returncode == 2
    assert "SORGW__UPSTREAM__PORT__X: upstream.port is a single value" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_export_with_a_bad_time_is_a_usage_error():
    result = _sorgw("audit", "--url", "sqlite:///nowhere.db", "export", "--from", "yesterday")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: sorgw audit export")
    assert "argument --from: not an ISO-8601 time: 'yesterday'" in result.stderr


def test_an_unknown_option_prints_the_subcommands_usage():
    result = _sorgw("run", "--bogus")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: sorgw run ")
    assert "sorgw run: error: unrecognized arguments: --bogus" in result.stderr


def test_python_dash_m_gateway_is_the_sorgw_command():
    result = _sorgw("--version", cmd=[sys.executable, "-m", "gateway"])
    assert result.returncode == 0 and result.stdout.startswith("sorgw "), result


# matplotlib made unimportable, as in the runtime image (which tests/e2e/test_container.py checks for real).
WITHOUT_MATPLOTLIB = [
    sys.executable,
    "-c",
    "import sys; sys.modules['matplotlib'] = None; from gateway.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--runs", "1"],
        ["tca", "--audit-url", "sqlite:///nowhere.db", "--format", "html", "--out", "x.html"],
    ],
)
def test_charts_without_matplotlib_name_the_extra_to_install(args):
    result = _sorgw(*args, cmd=WITHOUT_MATPLOTLIB)
    assert result.returncode == 2, result.stderr
    assert (
        f"sorgw {args[0]}: charts need matplotlib, which is not installed: pip install 'sor-gateway[sim]'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and result.stdout == ""
