"""In-process market-data bus: publishers call subscribers synchronously with immutable snapshots and trades."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.core.market import BookSnapshot, Trade

Subscriber = Callable[[BookSnapshot], None]
TradeSubscriber = Callable[[Trade], None]


class InProcessBus:
    """Fan-out of book snapshots on the publisher's thread.

    Like a retained MQTT topic, the newest snapshot per (venue, symbol) is kept and handed to
    a subscriber when it joins, so joining late never means starting without books. Trades are not
    retained: a trade subscriber sees those published after it joined.
    """

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._trade_subscribers: tuple[TradeSubscriber, ...] = ()
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

    def subscribe_trades(self, subscriber: TradeSubscriber) -> None:
        with self._lock:
            self._trade_subscribers = (*self._trade_subscribers, subscriber)

    def publish_trade(self, trade: Trade) -> None:
        for subscriber in self._trade_subscribers:
            subscriber(trade)
