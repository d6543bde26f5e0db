"""Whether a FIX session's schedule says it should be up at an instant: a daily or weekly window in a time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

_DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Window:
    """From start to end in `zone`'s wall-clock time: every day, or once a week from start_day to end_day
    (0 Monday .. 6 Sunday). An end before the start wraps over midnight (daily) or the weekend (weekly)."""

    start: time
    end: time
    zone: ZoneInfo
    start_day: int | None = None
    end_day: int | None = None


def in_schedule(window: Window | None, now: datetime) -> bool:
    """True when `now` (timezone-aware) lies in the window, ends included as quickfix includes them; no window is
    always in schedule, and so is a window whose start equals its end (quickfix's round-the-clock session).

    The zone's wall clock decides, so a window keeps its local hours across daylight-saving changes."""
    if window is None:
        return True
    local = now.astimezone(window.zone)
    t = _seconds(local.time())
    start, end = _seconds(window.start), _seconds(window.end)
    if window.start_day is not None and window.end_day is not None:
        t += local.weekday() * _DAY_S
        start += window.start_day * _DAY_S
        end += window.end_day * _DAY_S
    if start == end:
        return True
    if start < end:
        return start <= t <= end
    return t >= start or t <= end


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second
