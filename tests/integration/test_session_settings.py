"""Per-session quickfix settings from config: schedules (weekly, in a time zone), LogonTimeout and pass-through,
as quickfix's own sessions hold them, and a real venue session that stays down outside its schedule (and says so in
sorgw_session_in_schedule)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import quickfix as fix

from gateway import topology
from gateway.app import start_gateway
from gateway.bus.inprocess import InProcessBus
from gateway.config import ConfigError, GatewayConfig, validate
from gateway.fix.sessions import session_id
from gateway.service import venue_session
from gateway.simulator.host import VenueHost


def _closed_window() -> dict[str, str]:
    """A daily UTC window two to three hours from now: never open during the test."""
    now = datetime.now(timezone.utc)
    return {
        "start_time": (now + timedelta(hours=2)).strftime("%H:%M:%S"),
        "end_time": (now + timedelta(hours=3)).strftime("%H:%M:%S"),
    }


def _configs(tmp_path, lita: dict):
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    raw = gateway_cfg.model_dump(mode="json", by_alias=True)
    raw["venues"][0].update(lita)
    return validate(raw, GatewayConfig, "test"), venues_cfg


def test_a_venue_outside_its_schedule_stays_down_and_the_settings_reach_quickfix(tmp_path):
    gateway_cfg, venues_cfg = _configs(
        tmp_path,
        {
            "schedule": _closed_window(),
            "logon_timeout": 7,
            "quickfix": {"ResetOnLogout": "Y", "ResetOnDisconnect": "Y"},
        },
    )
    bus = InProcessBus()
    venues = VenueHost(venues_cfg, tmp_path / "venues", bus)
    venues.start()
    gateway = None
    try:
        gateway = start_gateway(gateway_cfg, tmp_path / "gateway", bus)
        lita = fix.Session.lookupSession(session_id(venue_session(gateway_cfg.venues[0])))
        litb = fix.Session.lookupSession(session_id(venue_session(gateway_cfg.venues[1])))
        assert lita.getLogonTimeout() == 7 and litb.getLogonTimeout() == 10
        assert lita.getResetOnLogout() and lita.getResetOnDisconnect() and not litb.getResetOnLogout()
        assert not lita.isSessionTime(fix.UtcTimeStamp()) and litb.isSessionTime(fix.UtcTimeStamp())

        def up() -> dict[str, bool]:  # VenueInfo is replaced on each change: read it afresh
            return {name: info.connected for name, info in gateway.engine.venues.items()}

        deadline = time.monotonic() + 15
        while sum(up().values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert up() == {"LITA": False, "LITB": True, "LITC": True, "DRKA": True, "DRKB": True}
        time.sleep(2.5)  # reconnect_interval is 1 s: in schedule, LITA would have logged on by now
        assert not up()["LITA"]
        # The gauge SorgwSessionDown reads: LITA down and out of schedule pages nobody; the others are in schedule.
        in_schedule = {
            name: gateway.metrics.registry.get_sample_value(
                "sorgw_session_in_schedule", {"session": name, "role": "venue"}
            )
            for name in up()
        }
        assert in_schedule == {"LITA": 0, "LITB": 1, "LITC": 1, "DRKA": 1, "DRKB": 1}
        upstream = gateway.metrics.registry.get_sample_value(
            "sorgw_session_in_schedule", {"session": "FIX.4.4:SORGW->OMS", "role": "upstream"}
        )
        assert upstream == 1
    finally:
        if gateway is not None:
            gateway.stop()
        venues.stop()


def test_a_weekly_schedule_in_a_time_zone_is_given_to_quickfix_in_utc(tmp_path):
    schedule = {
        "start_time": "07:00:00",
        "end_time": "16:00:00",
        "start_day": "monday",
        "end_day": "friday",
        "time_zone": "Asia/Tokyo",
    }
    gateway_cfg, _ = _configs(tmp_path, {"schedule": schedule})
    spec = venue_session(gateway_cfg.venues[0])
    # Tokyo has no daylight saving: Monday 07:00 there is Sunday 22:00 UTC, Friday 16:00 is Friday 07:00 UTC.
    assert (spec.start_day, spec.start_time, spec.end_day, spec.end_time) == (
        "sunday",
        "22:00:00",
        "friday",
        "07:00:00",
    )


@pytest.mark.parametrize(
    "lita, message",
    [
        ({"quickfix": {"SocketConnectPort": "1"}}, "quickfix.SocketConnectPort: set by this session's port"),
        ({"quickfix": {"resetonlogout": "Y"}}, "quickfix.resetonlogout: not a quickfix setting name"),
        ({"logon_timout": 5}, "venues.0.logon_timout: unknown setting"),
        ({"schedule": {**_closed_window(), "start_day": "monday"}}, "start_day and end_day go together"),
        ({"schedule": {**_closed_window(), "time_zone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_session_settings_that_cannot_work_fail_validation(tmp_path, lita, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        _configs(tmp_path, lita)
