"""`sorgw healthcheck`: /healthz at the port of the config a running `sorgw run` reads, with its SORGW__ overrides;
the config found from the process itself, as a container's HEALTHCHECK finds PID 1's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from gateway import topology
from gateway.healthcheck import config_of_process
from tests.e2e.harness import wait_log

SORGW = [sys.executable, "-m", "gateway.cli"]


def _healthcheck(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        SORGW + ["healthcheck", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_healthcheck_reads_the_running_gateways_config_and_fails_when_it_is_gone(tmp_path):
    port, other = topology.free_ports(2)
    gateway_cfg, _ = topology.build(tmp_path, gateway_overrides={"metrics": {"port": port}})
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "gw.yaml"
    config.write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
    log = tmp_path / "gateway.log"
    gateway = subprocess.Popen(
        SORGW + ["run", "--config", "conf/gw.yaml", "--work-dir", "work"],
        cwd=tmp_path,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_log(log, "gateway.started")
        assert config_of_process(Path(f"/proc/{gateway.pid}")) == config
        assert config_of_process(Path(f"/proc/{os.getpid()}")) is None  # pytest is no `sorgw run`
        healthy = _healthcheck(tmp_path, "--config", "conf/gw.yaml")
        assert healthy.returncode == 0, healthy.stderr
        assert f"http://127.0.0.1:{port}/healthz" in healthy.stdout
        # The same SORGW__ overrides as the gateway: here one that points it elsewhere, where nothing answers.
        moved = _healthcheck(tmp_path, "--config", "conf/gw.yaml", env={"SORGW__METRICS__PORT": str(other)})
        assert moved.returncode == 1
        assert f"http://127.0.0.1:{other}/healthz" in moved.stderr and "Connection refused" in moved.stderr
        off = _healthcheck(tmp_path, "--config", "conf/gw.yaml", env={"SORGW__METRICS__ENABLED": "false"})
        assert off.returncode == 1 and "metrics.enabled is false" in off.stderr
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)
    gone = _healthcheck(tmp_path, "--config", "conf/gw.yaml")
    assert gone.returncode == 1 and "Connection refused" in gone.stderr, gone.stderr
    assert "Traceback" not in gone.stderr
