"""The real PostgreSQL the audit tests use; its absence fails the run in CI and skips these tests elsewhere."""
from __future__ import annotations

import asyncio
import os

import pytest

from tests.unavailable import unavailable

POSTGRES_URL = os.environ.get("SORGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> str:
    import asyncpg

    async def probe():
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return POSTGRES_URL
