"""Logon credentials: an OMS's Username (553) and Password (554) checked in constant time, 554 masked for the record."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from gateway.fix.wire import WireMessage

USERNAME, PASSWORD = 553, 554
MASK = "****"  # what the audit trail holds in place of a password: the same whatever its length
_PASSWORD_FIELD = re.compile("(^|\x01)554=[^\x01]*")

# Why a Logon was refused: metric labels, log fields and the Text (58) of the Logout the peer gets.
REFUSALS = {
    "missing_credentials": "logon refused: Username (553) and Password (554) are required",
    "wrong_username": "logon refused: wrong Username or Password",
    "wrong_password": "logon refused: wrong Username or Password",
}


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def _same(given: str, expected: str) -> bool:
    # quickfix hands over values decoded with surrogateescape: compare the bytes the peer sent.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def refusal(expected: Credentials, username: str | None, password: str | None) -> str | None:
    """The reason (a REFUSALS key) a Logon with these credentials is refused, or None when it may log on.

    Both fields are compared whatever the outcome of the first, so timing tells nothing about either.
    """
    if username is None or password is None:
        return "missing_credentials"
    user_ok = _same(username, expected.username)
    password_ok = _same(password, expected.password)
    if not user_ok:
        return "wrong_username"
    return None if password_ok else "wrong_password"


def masked(message):
    """The message as it may be recorded: a Logon's Password (554) replaced by MASK (a WireMessage then)."""
    header = message.getHeader()
    if header.getField(35) != "A" or not message.isSetField(PASSWORD):
        return message
    raw = _PASSWORD_FIELD.sub(lambda m: f"{m.group(1)}554={MASK}", message.toString())
    return WireMessage(raw.encode("utf-8", "surrogateescape"))
