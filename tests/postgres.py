"""The PostgreSQL fixtures: a reachable server (SORGW_TEST_POSTGRES_URL) and a table of a test's own."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.unavailable import unavailable

POSTGRES_URL = os.environ.get("SORGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> str:
    async def probe():
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return POSTGRES_URL


@pytest.fixture
def postgres_table(postgres_url: str) -> Iterator[str]:
    """A table name no other test uses; dropped afterwards."""
    table = f"audit_{uuid.uuid4().hex[:12]}"
    yield table

    async def drop():
        conn = await asyncpg.connect(postgres_url, timeout=3)
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()

    asyncio.run(drop())
