"""promtool checks the Prometheus config and alert rules, and runs the rules' unit tests (tests/ops/alerts_test.yml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ops.conftest import ALERTS, ROOT


def promtool_run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], check=False, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    command = " ".join(result.args)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}{result.stderr}"


def test_prometheus_config_is_valid(promtool):
    # The check also loads the rule files the config names, relative to the config file.
    result = promtool_run(promtool, "check", "config", ROOT / "config" / "prometheus.yml")
    assert_ok(result)
    assert "1 rule files found" in result.stdout + result.stderr


def test_alert_rules_are_valid(promtool):
    assert_ok(promtool_run(promtool, "check", "rules", ALERTS))


def test_alert_rules_unit_tests_pass(promtool):
    assert_ok(promtool_run(promtool, "test", "rules", Path(__file__).parent / "alerts_test.yml"))


def test_a_broken_rules_file_fails_the_check(promtool, tmp_path):
    broken = tmp_path / "alerts.yml"
    broken.write_text(ALERTS.read_text().replace("sorgw_session_up == 0", "sorgw_session_up == ", 1))
    result = promtool_run(promtool, "check", "rules", broken)
    assert result.returncode != 0, result.stdout
    assert '"SorgwSessionDown": could not parse expression' in result.stderr


def test_the_unit_tests_catch_a_session_alert_that_fires_too_early(promtool, tmp_path):
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text().replace("for: 30s", "for: 10s", 1))
    unit_tests = (Path(__file__).parent / "alerts_test.yml").read_text()
    (tmp_path / "alerts_test.yml").write_text(unit_tests.replace("../../config/alerts.yml", "alerts.yml"))
    result = promtool_run(promtool, "test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0, result.stdout
    assert "SorgwSessionDown" in result.stdout + result.stderr
