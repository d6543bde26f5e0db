"""In-process market-data bus: publishers call subscribers synchronously with immutable snapshots."""
from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.core.market import BookSnapshot

Subscriber = Callable[[BookSnapshot], None]


class InProcessBus:
    """Fan-out of book snapshots on the publisher's thread.

    Like a retained MQTT topic, the newest snapshot per (venue, symbol) is kept and handed to
    a subscriber when it joins, so joining late never means starting without books.
    """

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._retained: dict[tuple[str, str], BookSnapshot] = {}
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)
            retained = list(self._retained.values())
        for snapshot in retained:
            subscriber(snapshot)

    def publish(self, snapshot: BookSnapshot) -> None:
        self._retained[(snapshot.venue, snapshot.symbol)] = snapshot
        for subscriber in self._subscribers:
            subscriber(snapshot)
