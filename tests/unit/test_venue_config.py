"""Per-venue session settings and capabilities in config: what validates, what quickfix is given."""

from __future__ import annotations

import pytest

from gateway import config
from gateway.core.types import OrdType, TimeInForce
from gateway.fix import specs
from gateway.fix.sessions import build_settings, session_id
from gateway.service import venue_session

BASE = {"symbols": [{"symbol": "AAPL"}]}


def venue(**kw) -> dict:
    return {"name": "PLNX", "port": 9901, **kw}


def load(*venues, **extra) -> config.GatewayConfig:
    return config.validate({**BASE, "venues": list(venues), **extra}, config.GatewayConfig, "test.yaml")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"order_types": ["market"]}, "order_types must include limit"),
        ({"time_in_force": ["ioc"]}, "time_in_force must include day"),
        ({"tick": "0"}, "tick must be positive"),
        ({"password_env": "X"}, "password_env needs username"),
        ({"schedule": {"start_time": "25:00:00", "end_time": "20:00:00"}}, "venues.0.schedule.start_time"),
        ({"data_dictionary": "/no/such/file.xml"}, "venues.0.data_dictionary"),
        ({"sequence_reset": "sometimes"}, "venues.0.sequence_reset"),
    ],
)
def test_bad_venue_settings_are_clear_config_errors(settings, message):
    with pytest.raises(config.ConfigError, match=message):
        load(venue(**settings))


def test_two_sessions_with_the_same_ids_are_refused():
    with pytest.raises(config.ConfigError, match="upstream.sessions: duplicate"):
        load(venue(), upstream={"sessions": [{"target_comp_id": "A"}, {"target_comp_id": "A"}]})


def test_the_password_comes_from_the_named_environment_variable_only():
    cfg = load(venue(username="gw", password_env="PLNX_PASSWORD")).venues[0]
    assert cfg.password({"PLNX_PASSWORD": "pw"}) == "pw"
    with pytest.raises(config.ConfigError, match="PLNX_PASSWORD is not set"):
        cfg.password({})


def test_quickfix_message_logs_are_refused_when_a_venue_logs_on_with_a_password(tmp_path):
    with pytest.raises(config.ConfigError, match="fix.log_path: .* Logon password of PLNX"):
        load(venue(username="gw", password_env="PLNX_PASSWORD"), fix={"log_path": str(tmp_path)})
    assert load(venue(), fix={"log_path": str(tmp_path)}).fix.log_path == tmp_path


def test_capabilities_become_venue_rules():
    rules = (
        load(
            venue(
                order_types=["limit"],
                time_in_force=["day", "ioc"],
                tick="0.05",
                lot=100,
                min_qty=200,
                market_data=False,
            )
        )
        .venues[0]
        .rules()
    )
    assert rules.order_types == {OrdType.LIMIT} and rules.tifs == {TimeInForce.DAY, TimeInForce.IOC}
    assert (str(rules.tick), rules.lot, rules.min_qty, rules.market_data) == ("0.05", 100, 200, False)


def test_each_venue_session_gets_its_own_quickfix_settings(tmp_path):
    own = tmp_path / "plnx42.xml"
    own.write_text((specs.standard_spec_dir() / "FIX42.xml").read_text())  # a venue's own copy
    cfg = load(
        venue(
            begin_string="FIX.4.2",
            heartbeat_interval=10,
            sequence_reset="never",
            data_dictionary=str(own),
            schedule={"start_time": "13:30:00", "end_time": "20:00:00"},
        ),
        {"name": "LITA", "port": 9902},
    )
    sessions = [venue_session(v) for v in cfg.venues]
    settings = build_settings("initiator", sessions, cfg.fix, tmp_path)
    plnx, lita = (settings.get(session_id(spec)) for spec in sessions)
    assert (plnx.getString("BeginString"), plnx.getString("HeartBtInt"), plnx.getString("ResetOnLogon")) == (
        "FIX.4.2",
        "10",
        "N",
    )
    assert (plnx.getString("StartTime"), plnx.getString("EndTime")) == ("13:30:00", "20:00:00")
    assert plnx.getString("DataDictionary").endswith("FIX.4.2-SORGW-PLNX.xml")
    assert (lita.getString("HeartBtInt"), lita.getString("ResetOnLogon"), lita.getString("StartTime")) == (
        "30",
        "Y",
        "00:00:00",
    )
    assert lita.getString("DataDictionary").endswith("FIX44.xml")


def test_an_unknown_begin_string_is_refused():
    with pytest.raises(config.ConfigError, match="begin_string"):
        load(venue(begin_string="FIX.5.0"))


def test_a_dictionary_without_a_section_the_merge_needs_is_named(tmp_path):
    standard = tmp_path / "FIX44.xml"
    standard.write_text("<fix><messages/></fix>")
    custom = tmp_path / "custom.xml"
    custom.write_text("<fix><fields/><messages/><optional/></fix>")
    with pytest.raises(ValueError, match=r"FIX44\.xml: no <fields> section"):
        specs.merge(standard, custom, tmp_path / "out.xml")
    standard.write_text("<fix><fields/><messages/></fix>")
    custom.write_text("<fix><fields/><messages/></fix>")
    with pytest.raises(ValueError, match=r"custom\.xml: no <optional> section"):
        specs.merge(standard, custom, tmp_path / "out.xml")
