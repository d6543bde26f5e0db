"""The plain console renderer writes exactly the lines structlog's ConsoleRenderer writes without colors."""

from __future__ import annotations

import sys
from decimal import Decimal
from enum import Enum

import structlog
from hypothesis import given, strategies as st

from gateway import logs
from gateway.logs import PlainRenderer


class Side(str, Enum):  # a str subclass: shown by its value unless that needs quoting
    BUY = "1"
    ODD = "a b"


# Field names other than the columns (timestamp, level, ...), which `own` draws as structlog's processors set them.
keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12).filter(
    lambda key: key not in logs._OWN_COLUMNS
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(["FILLED", "has space", "a=b", "it's", 'say "x"', "tab\there", "", "line\nbreak"]),
    st.sampled_from(Side),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
own = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.one_of(st.just("2026-12-03T18:19:42.730423Z"), st.text(max_size=5)),
        "level": st.sampled_from(["debug", "info", "warning", "error", "critical", "exception"]),
        "event": st.one_of(st.text(max_size=40), st.integers()),
        "logger": st.text(max_size=8),
        "logger_name": st.text(max_size=8),
    },
)


@given(own, st.dictionaries(keys, values, max_size=6))
def test_same_line_as_console_renderer(columns, fields):
    event = {**fields, **columns}
    expected = structlog.dev.ConsoleRenderer(colors=False)(None, "info", dict(event))
    assert PlainRenderer()(None, "info", dict(event)) == expected


def test_exceptions_are_rendered_by_console_renderer():
    try:
        raise ValueError("boom")
    except ValueError:
        event = {"event": "failed", "level": "error", "exc_info": sys.exc_info(), "price": Decimal("1.5")}
    line = PlainRenderer()(None, "error", dict(event))
    assert line == structlog.dev.ConsoleRenderer(colors=False)(None, "error", dict(event))
    assert "ValueError: boom" in line and "price=Decimal('1.5')" in line


def test_configure_picks_the_plain_renderer_off_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    try:
        logs.configure("info")
        assert isinstance(structlog.get_config()["processors"][-1], PlainRenderer)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        logs.configure("info")
        assert isinstance(structlog.get_config()["processors"][-1], structlog.dev.ConsoleRenderer)
    finally:
        logs.configure("warning")  # as tests/conftest.py leaves it
