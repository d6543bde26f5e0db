"""Crash points for recovery tests: SORGW_CRASH_AT=POINT:N kills the process with SIGKILL the Nth time POINT is reached.

Points: `recorded_out` (an outgoing application message is on the audit trail, quickfix has not stored it yet),
`recorded_out.<MsgType>` (the same, for one MsgType), `step_committed` (an engine step is on record, nothing it
decided has been sent), `stored_unrecorded` (an engine step is about to commit while an outgoing message quickfix
has stored and sent is still only queued for the trail: reached where the step's own commit would record it).
Callers on the order path test `armed()` first, so an unset variable costs one call.
"""

from __future__ import annotations

import os
import signal
import threading

_armed: dict[str, int] = {}
_lock = threading.Lock()


def arm(spec: str | None) -> None:
    """Arm the crash point SPEC ("POINT:N", N defaults to 1); None or "" disarms."""
    _armed.clear()
    if spec:
        point, _, count = spec.partition(":")
        _armed[point] = int(count or 1)


def armed(point: str | None = None) -> bool:
    """Whether any crash point is armed, or with `point`, that one."""
    return bool(_armed) if point is None else point in _armed


def reached(point: str) -> None:
    if point not in _armed:
        return
    with _lock:
        _armed[point] -= 1
        if _armed[point] == 0:
            os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get("SORGW_CRASH_AT"))
