"""The real Mosquitto the MQTT tests use, and how they clean up the retained books they leave."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from uuid import uuid4

import aiomqtt
import pytest

from tests.unavailable import unavailable

BROKER_HOST, BROKER_PORT = "127.0.0.1", 1883
BROKER_URL = f"mqtt://{BROKER_HOST}:{BROKER_PORT}"


@pytest.fixture(scope="session")
def broker() -> str:
    """The broker's url; its absence fails the run in CI and skips these tests elsewhere."""
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=1).close()
    except OSError as exc:
        unavailable(f"no MQTT broker at {BROKER_URL} ({exc})")
    return BROKER_URL


@pytest.fixture
def prefix(broker: str) -> Iterator[str]:
    """A topic prefix of this test's own; the retained messages it left are deleted afterwards."""
    prefix = f"sorgw-test-{uuid4().hex}"
    yield prefix
    asyncio.run(clear_retained(prefix))


async def clear_retained(prefix: str) -> None:
    topics = await retained_topics(prefix)
    # Deleted from a connection without subscriptions: Mosquitto 2.0.11 sometimes keeps a retained
    # message that a client subscribed to its topic deletes.
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
        for topic in topics:
            await client.publish(topic, b"", retain=True)


async def retained_topics(prefix: str) -> set[str]:
    topics = set()
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
        await client.subscribe(f"{prefix}/#")
        try:
            async with asyncio.timeout(0.3):  # retained messages come straight after the subscription
                async for message in client.messages:
                    topics.add(message.topic.value)
        except TimeoutError:
            pass
    return topics
