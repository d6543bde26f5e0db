"""structlog set-up: readable console lines by default, JSON lines with --log-json."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

_LEVEL_WIDTH = len("exception")  # ConsoleRenderer pads levels to its longest level name
_EVENT_WIDTH = 30
_QUOTED = frozenset(" \t=\r\n\"'")  # a str value holding any of these is shown repr()'d
_OWN_COLUMNS = ("timestamp", "level", "event", "logger", "logger_name")


class PlainRenderer:
    """The lines of structlog's ConsoleRenderer without colors, at a fraction of its cost (it is one of the
    larger costs of an order at info); events with an exception or a stack go to ConsoleRenderer itself."""

    def __init__(self) -> None:
        self._console = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        if "exc_info" in event_dict or "exception" in event_dict or "stack" in event_dict:
            return self._console(logger, name, event_dict)
        parts = []
        pop = event_dict.pop
        if (timestamp := pop("timestamp", None)) is not None:
            parts.append(str(timestamp))
        if "level" in event_dict:
            parts.append(f"[{pop('level'):<{_LEVEL_WIDTH}}]")
        if "event" in event_dict:
            parts.append(f"{pop('event')!s:<{_EVENT_WIDTH}}")
        for key in _OWN_COLUMNS[3:]:
            if key in event_dict:
                parts.append(f"[{pop(key)}]")
        for key in sorted(event_dict):
            value = event_dict[key]
            if not isinstance(value, str) or not _QUOTED.isdisjoint(value):
                value = repr(value)
            parts.append(key + "=" + value)  # +, not format(): a str enum shows its value, as ConsoleRenderer's does
        return " ".join([part for part in parts if part]).rstrip(" ")


def configure(level: str = "info", json: bool = False) -> None:
    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    elif sys.stderr.isatty():
        processors.append(structlog.dev.ConsoleRenderer(colors=True))
    else:
        processors.append(PlainRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
