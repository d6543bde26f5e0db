"""What a test does when a service or tool it needs is missing: it fails in CI (CI=true), elsewhere it skips."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Stop the test, saying why: CI must run every test, a developer's machine may lack the service."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run these tests")
    pytest.skip(reason)
