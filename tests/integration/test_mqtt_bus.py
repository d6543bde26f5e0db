"""MQTT publisher and subscriber against the real Mosquitto on 127.0.0.1:1883, outages through a TCP proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal as D

import aiomqtt
import pytest

from gateway.bus import codec
from gateway.bus.mqtt import MqttPublisher, MqttSubscriber, parse_url
from gateway.core.market import BookSnapshot, Level, Trade
from tests.mqtt_broker import BROKER_HOST, BROKER_PORT
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

WAIT_S = 5.0


def snap(venue: str, symbol: str, seq: int, bid: str = "100.0125", ask: str = "100.02") -> BookSnapshot:
    return BookSnapshot(
        venue, symbol, (Level(D(bid), 500), Level(D(bid) * D("0.99"), 300)), (Level(D(ask), 200),), seq, time.time_ns()
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class Collector:
    """on_snapshot and on_status callbacks that remember what the subscriber delivered."""

    def __init__(self) -> None:
        self.snapshots: list[BookSnapshot] = []
        self.statuses: list[bool] = []

    def __call__(self, snapshot: BookSnapshot) -> None:
        self.snapshots.append(snapshot)

    def status(self, up: bool) -> None:
        self.statuses.append(up)

    def latest(self, venue: str, symbol: str) -> BookSnapshot | None:
        return next((s for s in reversed(self.snapshots) if (s.venue, s.symbol) == (venue, symbol)), None)

    def has(self, snapshot: BookSnapshot) -> bool:
        return self.latest(snapshot.venue, snapshot.symbol) == snapshot


async def publish_raw(topic: str, payload: bytes) -> None:
    async with aiomqtt.Client(BROKER_HOST, BROKER_PORT) as client:
        await client.publish(topic, payload)


@pytest.fixture
def bus(prefix: str) -> Iterator[Callable]:
    """Starts publishers and subscribers on the test's prefix; stops them all at the end."""
    started: list[MqttPublisher | MqttSubscriber] = []

    def start(client: MqttPublisher | MqttSubscriber) -> MqttPublisher | MqttSubscriber:
        started.append(client)
        client.start()
        return client

    yield start
    for client in started:
        client.stop()


def test_books_round_trip_with_exact_decimals(broker: str, prefix: str, bus: Callable) -> None:
    got = Collector()
    sub = bus(MqttSubscriber(broker, got, prefix=prefix))
    wait_until(lambda: sub.connected, "the subscriber to connect")
    pub = bus(MqttPublisher(broker, prefix=prefix))
    sent = [
        snap(venue, symbol, seq=1, bid=bid)
        for venue, bid in (("LIT1", "189.9900"), ("LIT2", "0.0001"), ("DARK1", "12345.678901"))
        for symbol in ("AAPL", "MSFT")
    ]
    for snapshot in sent:
        pub.publish(snapshot)

    wait_until(lambda: all(got.has(s) for s in sent), "every book")
    for snapshot in sent:
        received = got.latest(snapshot.venue, snapshot.symbol)
        assert [str(level.price) for level in received.bids] == [str(level.price) for level in snapshot.bids]
    wait_until(lambda: pub.published == len(sent), "the publisher to count what it sent")
    assert sub.received == len(sent) and sub.malformed == 0


def test_stop_sends_what_is_pending_and_a_late_subscriber_gets_every_retained_book(
    broker: str, prefix: str, bus: Callable
) -> None:
    pub = bus(MqttPublisher(broker, prefix=prefix))
    wait_until(lambda: pub.connected, "the publisher to connect")
    sent = [snap(f"LIT{i}", "AAPL", seq=i) for i in range(1, 6)]
    for snapshot in sent:
        pub.publish(snapshot)
    pub.stop()
    assert pub.published == len(sent)

    got = Collector()
    bus(MqttSubscriber(broker, got, prefix=prefix))
    wait_until(lambda: all(got.has(s) for s in sent), "the retained books")


def test_conflation_keeps_the_newest_snapshot_and_never_goes_back(broker: str, prefix: str, bus: Callable) -> None:
    got = Collector()
    sub = bus(MqttSubscriber(broker, got, prefix=prefix))
    pub = bus(MqttPublisher(broker, prefix=prefix))
    wait_until(lambda: sub.connected and pub.connected, "both to connect")

    for seq in range(1, 1001):
        pub.publish(snap("LIT1", "AAPL", seq))

    wait_until(lambda: got.snapshots and got.snapshots[-1].seq == 1000, "the last snapshot")
    seqs = [s.seq for s in got.snapshots]
    assert seqs == sorted(set(seqs)), "a snapshot arrived after a newer one"
    wait_until(lambda: pub.published + pub.conflated == 1000, "every snapshot sent or conflated")
    # 1000 publishes from this thread take about a millisecond; one bus loop cannot send them all.
    assert pub.conflated > 0


def test_publish_from_many_threads(broker: str, prefix: str, bus: Callable) -> None:
    got = Collector()
    sub = bus(MqttSubscriber(broker, got, prefix=prefix))
    pub = bus(MqttPublisher(broker, prefix=prefix))
    wait_until(lambda: sub.connected, "the subscriber to connect")

    def produce(venue: str) -> None:
        for seq in range(1, 201):
            pub.publish(snap(venue, "AAPL", seq))

    producers = [threading.Thread(target=produce, args=(f"LIT{i}",)) for i in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    last = [snap(f"LIT{i}", "AAPL", 200) for i in range(4)]
    wait_until(
        lambda: all(getattr(got.latest(s.venue, s.symbol), "seq", 0) == 200 for s in last), "every book's last snapshot"
    )


def test_malformed_payload_is_counted_and_the_subscriber_carries_on(broker: str, prefix: str, bus: Callable) -> None:
    got = Collector()
    sub = bus(MqttSubscriber(broker, got, prefix=prefix))
    wait_until(lambda: sub.connected, "the subscriber to connect")
    asyncio.run(publish_raw(codec.topic(prefix, "LIT1", "AAPL"), b'{"venue": "LIT1", "seq": '))
    wrong_book = codec.encode(snap("LIT2", "AAPL", seq=1))
    asyncio.run(publish_raw(codec.topic(prefix, "LIT1", "AAPL"), wrong_book))

    valid = snap("LIT1", "AAPL", seq=2)
    bus(MqttPublisher(broker, prefix=prefix)).publish(valid)

    wait_until(lambda: got.has(valid), "the valid snapshot after the malformed ones")
    assert sub.malformed == 2 and sub.received == 3
    assert got.snapshots == [valid]


def test_trades_each_arrive_unconflated_and_a_bad_one_is_counted(broker: str, prefix: str, bus: Callable) -> None:
    trades: list[Trade] = []
    books = Collector()
    sub = bus(MqttSubscriber(broker, books, prefix=prefix, on_trade=trades.append))
    wait_until(lambda: sub.connected, "the subscriber to connect")
    pub = bus(MqttPublisher(broker, prefix=prefix))
    sent = [Trade("LIT1", "AAPL", 100 + i, D("189.9901"), i, time.time_ns()) for i in range(1, 6)]
    for trade in sent:  # one book: a snapshot would be conflated, a trade is not
        pub.publish_trade(trade)
    wait_until(lambda: len(trades) == len(sent), "every trade")
    assert trades == sent and books.snapshots == []
    asyncio.run(publish_raw(codec.topic(prefix, "LIT1", "AAPL", "trade"), codec.encode_trade(sent[0])[:-3]))
    asyncio.run(publish_raw(codec.topic(prefix, "LIT2", "AAPL", "trade"), codec.encode_trade(sent[0])))
    wait_until(lambda: sub.malformed == 2, "both bad trades counted")
    assert trades == sent


@pytest.fixture
def proxy(broker: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(BROKER_HOST, BROKER_PORT, "mqtt://127.0.0.1:{port}")
    proxy.up()
    yield proxy
    proxy.close()


def test_subscriber_reconnects_after_a_broker_outage(broker: str, prefix: str, proxy: TcpProxy, bus: Callable) -> None:
    got = Collector()
    sub = bus(MqttSubscriber(proxy.url, got, prefix=prefix, on_status=got.status))
    pub = bus(MqttPublisher(broker, prefix=prefix))
    first = snap("LIT1", "AAPL", seq=1)
    pub.publish(first)
    wait_until(lambda: got.has(first), "the first snapshot")

    proxy.down()
    wait_until(lambda: got.statuses == [True, False], "on_status(False)")
    during = snap("LIT1", "AAPL", seq=2)
    pub.publish(during)
    time.sleep(0.3)  # a few failed reconnects
    proxy.up()

    wait_until(lambda: got.statuses == [True, False, True], "on_status(True) again")
    wait_until(lambda: got.has(during), "the book published during the outage")
    after = snap("LIT1", "AAPL", seq=3)
    pub.publish(after)
    wait_until(lambda: got.has(after), "a snapshot published after the outage")
    assert sub.reconnects == 1 and sub.malformed == 0


def test_publisher_reconnects_and_republishes_its_books(
    broker: str, prefix: str, proxy: TcpProxy, bus: Callable
) -> None:
    got = Collector()
    bus(MqttSubscriber(broker, got, prefix=prefix))
    pub = bus(MqttPublisher(proxy.url, prefix=prefix))
    other = snap("LIT2", "MSFT", seq=1)
    pub.publish(other)
    pub.publish(snap("LIT1", "AAPL", seq=1))
    wait_until(lambda: pub.published == 2, "the first books to be sent")

    proxy.down()
    wait_until(lambda: not pub.connected, "the publisher to notice the outage")
    during = snap("LIT1", "AAPL", seq=2)
    pub.publish(during)
    time.sleep(0.3)
    proxy.up()

    wait_until(lambda: got.has(during), "the book published during the outage")
    assert pub.reconnects == 1
    # Every book is sent again on reconnect so the retained state is fresh, not only the changed ones.
    wait_until(lambda: [s.seq for s in got.snapshots if s.venue == "LIT2"] == [1, 1], "LIT2 republished")


def test_stop_is_prompt_without_a_broker_and_idempotent() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"mqtt://127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening: refused
        clients = [MqttPublisher(url), MqttSubscriber(url, lambda s: None)]
        for client in clients:
            client.start()
        clients[0].publish(snap("LIT1", "AAPL", seq=1))
        time.sleep(0.5)
        started = time.monotonic()
        for client in clients:
            client.stop()
            client.stop()
    assert time.monotonic() - started < 1.0
    assert not any(t.name.startswith("mqtt-") for t in threading.enumerate())
    assert clients[0].published == 0 and clients[0].reconnects == 0
    clients[0].publish(snap("LIT1", "AAPL", seq=2))  # after stop: dropped, never raises


@pytest.mark.parametrize(
    "url",
    [
        "tcp://127.0.0.1:1883",
        "mqtt://",
        "127.0.0.1:1883",
        "mqtt://host:port",
        "mqtt://host:70000",
        "mqtt://host:1883/topic",
        "mqtt://user@host:1883",
        "mqtts://user:pw@host",
    ],
)
def test_bad_url_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ValueError, match=f"MQTT url '{url}' is not of the form"):
        MqttSubscriber(url, lambda s: None)


def test_url_port_defaults_to_1883_or_8883_with_tls() -> None:
    assert parse_url("mqtt://broker") == ("broker", 1883, False)
    assert parse_url("mqtt://127.0.0.1:1884") == ("127.0.0.1", 1884, False)
    assert parse_url("mqtts://broker") == ("broker", 8883, True)
