"""The reason a venue connection failed, as quickfix words it in its Socket Error events."""

from __future__ import annotations

import pytest

from gateway.fix.connect_watch import socket_error


@pytest.mark.parametrize(
    "text",
    ["Connection reset by peer.", "(errno[104]:Connection reset by peer)", " Connection reset by peer "],
)
def test_both_wordings_of_a_reset_read_the_same(text):
    assert socket_error(text) == "connection reset by peer"


def test_other_errors_pass_through_lowered():
    assert socket_error("Broken pipe.") == "broken pipe"
    assert socket_error("(errno[32]:Broken pipe)") == "broken pipe"
