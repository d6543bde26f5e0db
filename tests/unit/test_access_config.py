"""Upstream credentials in the config, the constant-time check and the masking of Password (554) for the record."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.fix.logon import Credentials, masked, refusal
from gateway.fix.wire import WireMessage

VENUE = {"name": "LITA", "port": 9881}
SYMBOL = {"symbol": "AAPL"}


def load(session: dict, **extra) -> config.GatewayConfig:
    raw = {
        "venues": [VENUE],
        "symbols": [SYMBOL],
        "upstream": {"sessions": [{"target_comp_id": "OMS", **session}]},
        **extra,
    }
    return config.validate(raw, config.GatewayConfig, "test")


@pytest.mark.parametrize(
    "session, problem",
    [
        ({"username": "desk"}, "username needs exactly one of password_env and password_file"),
        ({"username": "desk", "password_env": "X", "password_file": "/x"}, "exactly one of"),
        ({"password_env": "X"}, "password_env and password_file need username"),
        ({"password_file": "/x"}, "need username"),
    ],
)
def test_a_username_needs_exactly_one_password_source(session, problem):
    with pytest.raises(config.ConfigError, match=problem):
        load(session)


def test_the_password_comes_from_the_named_variable_or_the_file(tmp_path):
    assert load({"username": "d", "password_env": "PW"}).upstream.sessions[0].password({"PW": "x"}) == "x"
    with pytest.raises(config.ConfigError, match="upstream.sessions.OMS.password_env: .*PW is not set"):
        load({"username": "d", "password_env": "PW"}).upstream.sessions[0].password({})
    path = tmp_path / "pw"
    session = load({"username": "d", "password_file": str(path)}).upstream.sessions[0]
    with pytest.raises(config.ConfigError, match="password_file: cannot read"):
        session.password({})
    path.write_text("\n")
    with pytest.raises(config.ConfigError, match="is empty"):
        session.password({})
    path.write_text("p w\n")
    assert session.password({}) == "p w"


def test_quickfix_message_logs_are_refused_when_an_oms_logs_on_with_a_password(tmp_path):
    with pytest.raises(config.ConfigError, match="fix.log_path: .*Logon password of OMS"):
        load({"username": "d", "password_env": "PW"}, fix={"log_path": str(tmp_path)})


@pytest.mark.parametrize(
    "username, password, reason",
    [
        ("desk", "pw", None),
        ("desk", "pW", "wrong_password"),
        ("Desk", "pw", "wrong_username"),
        ("desk", None, "missing_credentials"),
        (None, "pw", "missing_credentials"),
        ("desk", "", "wrong_password"),
        ("desk", "pw\udcff", "wrong_password"),  # a byte that is not UTF-8, as quickfix hands it over
    ],
)
def test_refusal(username, password, reason):
    assert refusal(Credentials("desk", "pw"), username, password) == reason


def test_only_a_logons_password_is_masked():
    logon = WireMessage(b"8=FIX.4.4\x019=40\x0135=A\x01553=desk\x01554=hunter2\x0110=000\x01")
    out = masked(logon)
    assert out.toString() == "8=FIX.4.4\x019=40\x0135=A\x01553=desk\x01554=****\x0110=000\x01"
    order = WireMessage(b"8=FIX.4.4\x019=20\x0135=D\x01554=not-a-logon\x0110=000\x01")
    assert masked(order) is order


def test_the_bus_takes_mqtts_and_a_password_from_the_environment_only():
    mqtt = load({}, mqtt={"url": "mqtts://broker:8883", "username": "md", "password_env": "MQ"}).mqtt
    assert mqtt.password({"MQ": "pw"}) == "pw"
    with pytest.raises(config.ConfigError, match="mqtt.password_env: environment variable MQ is not set"):
        mqtt.password({})
    with pytest.raises(config.ConfigError, match="mqtt.password_env: password_env needs username|password_env needs"):
        load({}, mqtt={"url": "mqtt://b:1", "password_env": "MQ"})
    with pytest.raises(config.ConfigError, match="expected mqtt://HOST:PORT or mqtts://HOST:PORT"):
        load({}, mqtt={"url": "ws://b:1"})
