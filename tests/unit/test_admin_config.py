"""`sorgw run` with the admin endpoint on refuses to start without its token, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from gateway import topology


def _config(tmp_path, **admin) -> str:
    gateway_cfg, _ = topology.build(tmp_path, gateway_overrides={"admin": {"enabled": True, "port": 0, **admin}})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway_cfg.model_dump(mode="json", by_alias=True)))
    return str(path)


def _run(tmp_path, path: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SORGW_ADMIN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "--config", path, "--work-dir", str(tmp_path / "var")],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unset_token_variable_stops_the_start_naming_it(tmp_path):
    done = _run(tmp_path, _config(tmp_path))
    err = done.stderr
    assert done.returncode == 2, err
    assert "admin.token_env: the environment variable SORGW_ADMIN_TOKEN is not set" in err


def test_a_short_token_stops_the_start(tmp_path):
    done = _run(tmp_path, _config(tmp_path, token_env="MY_ADMIN_TOKEN"), MY_ADMIN_TOKEN="short-token")
    err = done.stderr
    assert done.returncode == 2, err
    assert "admin.token_env: MY_ADMIN_TOKEN is shorter than 16 characters" in err
    assert "short-token" not in err
