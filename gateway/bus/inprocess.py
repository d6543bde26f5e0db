"""In-process market-data bus: publishers call subscribers synchronously with immutable snapshots."""
from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.core.market import BookSnapshot

Subscriber = Callable[[BookSnapshot], None]


class InProcessBus:
    """Fan-out of book snapshots to subscribers on the publisher's thread."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def publish(self, snapshot: BookSnapshot) -> None:
        for subscriber in self._subscribers:
            subscriber(snapshot)
