"""in_schedule: daily and weekly session windows in IANA time zones, over midnight, over the weekend and across
daylight-saving changes; and the config's schedule turned into a window."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Schedule
from gateway.core.schedule import Window, in_schedule

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
SYDNEY = ZoneInfo("Australia/Sydney")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# New York's cash session: 09:30-16:00 local, EST (UTC-5) in winter and EDT (UTC-4) in summer.
NYSE = Window(time(9, 30), time(16, 0), NEW_YORK)


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-15 14:29:59", False),  # 09:29:59 EST
        ("2026-01-15 14:30:00", True),  # 09:30 EST: the start is in
        ("2026-01-15 21:00:00", True),  # 16:00 EST: so is the end, as quickfix has it
        ("2026-01-15 21:00:01", False),
        ("2026-07-15 13:30:00", True),  # 09:30 EDT, an hour earlier in UTC
        ("2026-07-15 20:30:00", False),  # 16:30 EDT (15:30 EST): the window follows the wall clock
        ("2026-01-15 13:30:00", False),  # 08:30 EST
    ],
)
def test_a_daily_window_follows_the_zones_wall_clock_in_winter_and_summer(now, expected):
    assert in_schedule(NYSE, utc(now)) is expected


@pytest.mark.parametrize(
    "now, expected",
    [
        # 2026-03-08: New York springs forward at 02:00 EST (07:00 UTC): local time jumps from 01:59:59 to 03:00.
        ("2026-03-08 06:59:59", False),  # 01:59:59 EST
        ("2026-03-08 07:00:00", True),  # 03:00 EDT
        # 2026-11-01: falls back at 02:00 EDT (06:00 UTC) to 01:00 EST; both 01:30s are before the window.
        ("2026-11-01 05:30:00", False),  # 01:30 EDT
        ("2026-11-01 06:30:00", False),  # 01:30 EST
        ("2026-11-01 07:29:59", False),  # 02:29:59 EST
        ("2026-11-01 07:30:00", True),  # 02:30 EST
    ],
)
def test_daylight_saving_changes_on_the_day_they_happen(now, expected):
    early = Window(time(2, 30), time(6, 0), NEW_YORK)
    assert in_schedule(early, utc(now)) is expected


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-15 21:59:59", False),  # 21:59:59 London (GMT)
        ("2026-01-15 22:00:00", True),
        ("2026-01-16 03:00:00", True),  # past midnight
        ("2026-01-16 06:00:01", False),
        ("2026-07-15 21:30:00", True),  # 22:30 BST
        ("2026-07-15 20:30:00", False),  # 21:30 BST
    ],
)
def test_a_daily_window_over_midnight(now, expected):
    assert in_schedule(Window(time(22, 0), time(6, 0), LONDON), utc(now)) is expected


# An FX week: Sunday 17:00 to Friday 17:00 New York time, wrapping the weekend the other way round.
FX_WEEK = Window(time(17, 0), time(17, 0), NEW_YORK, start_day=6, end_day=4)


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-16 21:59:59", True),  # Friday 16:59:59 EST
        ("2026-01-16 22:00:01", False),  # Friday 17:00:01
        ("2026-01-17 12:00:00", False),  # Saturday
        ("2026-01-18 21:59:59", False),  # Sunday 16:59:59
        ("2026-01-18 22:00:00", True),  # Sunday 17:00
        ("2026-01-19 03:00:00", True),  # Sunday night, Monday in UTC
        ("2026-01-21 15:00:00", True),  # Wednesday
        ("2026-07-17 21:30:00", False),  # Friday 17:30 EDT (still Friday 16:30 EST): summer time follows the wall clock
    ],
)
def test_a_weekly_window_wrapping_the_weekend(now, expected):
    assert in_schedule(FX_WEEK, utc(now)) is expected


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-01-18 22:00:00", True),  # Monday 07:00 in Tokyo is Sunday 22:00 UTC
        ("2026-01-18 21:59:59", False),
        ("2026-01-23 07:00:00", True),  # Friday 16:00 Tokyo
        ("2026-01-23 07:00:01", False),
        ("2026-01-20 12:00:00", True),  # Tuesday 21:00 Tokyo: weekly, so nights inside the week are in
    ],
)
def test_a_weekly_window_in_a_zone_ahead_of_utc(now, expected):
    assert in_schedule(Window(time(7, 0), time(16, 0), TOKYO, start_day=0, end_day=4), utc(now)) is expected


def test_a_southern_hemisphere_zone_keeps_summer_time_in_january():
    asx = Window(time(10, 0), time(16, 0), SYDNEY)  # AEDT (UTC+11) in January, AEST (UTC+10) in July
    assert in_schedule(asx, utc("2026-01-14 23:00:00"))  # 10:00 AEDT
    assert not in_schedule(asx, utc("2026-07-14 23:00:00"))  # 09:00 AEST
    assert in_schedule(asx, utc("2026-07-15 00:00:00"))


def test_no_window_and_a_round_the_clock_window_are_always_in_schedule():
    assert in_schedule(None, utc("2026-01-17 03:00:00"))
    assert in_schedule(Window(time(0, 0), time(0, 0), LONDON), utc("2026-01-17 03:00:00"))


def test_the_configs_schedule_becomes_its_window():
    schedule = Schedule(
        start_time="17:00:00", end_time="17:00:00", start_day="sunday", end_day="friday", time_zone="America/New_York"
    )
    assert schedule.window() == FX_WEEK
    assert Schedule(start_time="09:30:00", end_time="16:00:00", time_zone="America/New_York").window() == NYSE
