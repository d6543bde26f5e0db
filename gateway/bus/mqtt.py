"""MQTT market-data bus: book snapshots published retained per book, venue trades as they print, each side on
its own loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import uuid4

import aiomqtt
import structlog

from gateway.bus import codec
from gateway.core.market import BookSnapshot, Trade

log = structlog.get_logger("gateway.bus.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
KEEPALIVE_S = 10  # a silent (half-open) broker is noticed within about twice this
STOP_TIMEOUT_S = 5.0
FLUSH_GRACE_S = 2.0  # how long stop() lets the publisher send what is pending
MAX_PENDING_TRADES = 10_000  # trades waiting for the broker beyond this many: the oldest are dropped, counted


def parse_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an mqtt://host[:port] or mqtts://host[:port] url; ValueError naming the url otherwise."""
    bad = ValueError(f"MQTT url {url!r} is not of the form mqtt://host:port or mqtts://host:port")
    try:
        parts = urlsplit(url)
        port = DEFAULT_PORTS.get(parts.scheme) if parts.port is None else parts.port
    except ValueError:  # a port that is not a number in 0..65535, a broken [IPv6] host
        raise bad from None
    if (
        parts.scheme not in DEFAULT_PORTS
        or not port
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise bad
    return parts.hostname, port, parts.scheme == "mqtts"


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to authenticate to the broker: username/password, and for mqtts the CA to trust (None: the system's)."""

    username: str | None = None
    password: str | None = None
    ca_file: str | None = None


class _BusClient(ABC):
    """One broker connection kept up by an asyncio loop in a daemon thread, with reconnect and backoff."""

    _role: str

    def __init__(self, url: str, credentials: Credentials | None = None) -> None:
        self.url = url
        self._host, self._port, tls = parse_url(url)
        self._credentials = credentials or Credentials()
        # Verifies the broker's certificate and host name (create_default_context does both).
        self._tls = ssl.create_default_context(cafile=self._credentials.ca_file) if tls else None
        self.connected = False
        self._connects = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_status: Callable[[bool], None] | None = None

    @property
    def reconnects(self) -> int:
        """Times a connection was established again after the first one."""
        return max(0, self._connects - 1)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"mqtt {self._role} for {self.url} can only be started once")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(ready),), name=f"mqtt-{self._role}", daemon=True
        )
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Disconnect, end the loop and join its thread; safe to call more than once."""
        loop, task = self._loop, self._task  # both set before start() returns
        if self._thread is None or loop is None or task is None or self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(self._request_stop, task)
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("mqtt.stop_timeout", role=self._role, broker=self.url, timeout_s=STOP_TIMEOUT_S)

    def _request_stop(self, task: asyncio.Task[None]) -> None:
        """On the loop: end the client's task."""
        task.cancel()

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        ready.set()
        try:
            await self._run()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("mqtt.crashed", role=self._role, broker=self.url)
        self.connected = False

    async def _run(self) -> None:
        delay = BACKOFF_MIN_S
        while True:
            try:
                async with aiomqtt.Client(
                    self._host,
                    self._port,
                    keepalive=KEEPALIVE_S,
                    identifier=f"sorgw-{self._role}-{uuid4().hex[:12]}",
                    username=self._credentials.username,
                    password=self._credentials.password,
                    tls_context=self._tls,
                ) as client:
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                if self.connected:
                    delay = BACKOFF_MIN_S
                self._lost(exc, delay)
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    @abstractmethod
    async def _serve(self, client: aiomqtt.Client) -> None:
        """Use one connection until it drops (MqttError) or stop() ends it; call _up() once ready."""

    def _up(self) -> None:
        self._connects += 1
        self.connected = True
        log.info("mqtt.connected", role=self._role, broker=self.url, reconnects=self.reconnects)
        self._report_status()

    def _lost(self, exc: aiomqtt.MqttError, retry_in_s: float) -> None:
        if not self.connected:
            log.warning(
                "mqtt.connect_failed", role=self._role, broker=self.url, reason=_reason(exc), retry_in_s=retry_in_s
            )
            return
        self.connected = False
        log.error("mqtt.disconnected", role=self._role, broker=self.url, reason=_reason(exc), retry_in_s=retry_in_s)
        self._report_status()

    def _report_status(self) -> None:
        if self._on_status is not None:
            _guarded("mqtt.on_status_failed", self._on_status, self.connected)


class MqttPublisher(_BusClient):
    """Publishes book snapshots retained, QoS 0, conflated to the newest pending one per book, and trades
    not retained, QoS 0, each one (a trade is not superseded by the next).

    publish() and publish_trade() may be called from any thread and never block: the item is handed to
    the loop thread. Counters: published (sent), conflated (dropped unsent for a newer snapshot of
    the same book), trades_dropped (over MAX_PENDING_TRADES waiting, or pending at a disconnect), reconnects.
    """

    _role = "publisher"

    def __init__(self, url: str, prefix: str = "sorgw", credentials: Credentials | None = None) -> None:
        super().__init__(url, credentials)
        self.prefix = prefix
        self.published = 0
        self.conflated = 0
        self._lock = threading.Lock()
        self._latest: dict[str, BookSnapshot] = {}  # by topic: re-sent whole on every (re)connect
        self._pending: dict[str, BookSnapshot] = {}  # by topic: not yet handed to the broker
        self._trades: list[tuple[str, Trade]] = []  # (topic, trade) not yet handed to the broker
        self.trades_dropped = 0
        self._wake = asyncio.Event()  # binds to the loop thread's loop on first use

    def publish(self, snapshot: BookSnapshot) -> None:
        """Queue the snapshot for sending; ValueError if its venue or symbol cannot be a topic level."""
        topic = codec.topic(self.prefix, snapshot.venue, snapshot.symbol)
        with self._lock:
            self._latest[topic] = snapshot
            was_idle = not self._pending
            if topic in self._pending:
                self.conflated += 1
            self._pending[topic] = snapshot
        # Only the first pending snapshot wakes the loop; later ones ride along with it.
        if was_idle:
            self._wake_loop()

    def publish_trade(self, trade: Trade) -> None:
        """Queue one trade for sending; ValueError if its venue or symbol cannot be a topic level."""
        topic = codec.topic(self.prefix, trade.venue, trade.symbol, "trade")
        with self._lock:
            was_idle = not self._pending and not self._trades
            self._trades.append((topic, trade))
            if len(self._trades) > MAX_PENDING_TRADES:
                del self._trades[0]
                self.trades_dropped += 1
        if was_idle:
            self._wake_loop()

    def _wake_loop(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # stopped: nothing will send it
                self._loop.call_soon_threadsafe(self._wake.set)

    def _request_stop(self, task: asyncio.Task[None]) -> None:
        if not self.connected:
            task.cancel()
            return
        self._wake.set()
        asyncio.get_running_loop().call_later(FLUSH_GRACE_S, task.cancel)

    async def _serve(self, client: aiomqtt.Client) -> None:
        with self._lock:
            self._pending = dict(self._latest)
        self._wake.set()
        self._up()
        # Publishing alone would notice a dead broker only at the next publish, or after a
        # publish's own timeout; watching the connection notices it at once.
        await _first(self._pump(client), _until_disconnected(client))

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, {}
                trades, self._trades = self._trades, []
            for topic, snapshot in batch.items():
                await client.publish(topic, codec.encode(snapshot), qos=0, retain=True)
                self.published += 1
            for topic, trade in trades:
                await client.publish(topic, codec.encode_trade(trade), qos=0, retain=False)
                self.published += 1
            if self._stopping:
                return


class MqttSubscriber(_BusClient):
    """Delivers every book snapshot under the prefix to on_snapshot, and with on_trade every trade to it, on the
    bus thread.

    Retained books arrive at once on subscribing, so after a reconnect the current books come
    again (same seq). on_status(True/False) is called when the connection comes up or drops
    (not on stop()). Counters: received (every message), malformed (logged and skipped),
    reconnects.
    """

    _role = "subscriber"

    def __init__(
        self,
        url: str,
        on_snapshot: Callable[[BookSnapshot], None],
        prefix: str = "sorgw",
        on_status: Callable[[bool], None] | None = None,
        credentials: Credentials | None = None,
        on_trade: Callable[[Trade], None] | None = None,
    ) -> None:
        super().__init__(url, credentials)
        self.prefix = prefix
        self.received = 0
        self.malformed = 0
        self._on_snapshot = on_snapshot
        self._on_status = on_status
        self._on_trade = on_trade

    async def _serve(self, client: aiomqtt.Client) -> None:
        await client.subscribe(codec.topic_filter(self.prefix))
        if self._on_trade is not None:
            await client.subscribe(codec.topic_filter(self.prefix, "trade"))
        self._up()
        async for message in client.messages:
            self._deliver(message.topic.value, message.payload)

    def _deliver(self, topic: str, payload: bytes) -> None:
        self.received += 1
        if self._on_trade is not None and topic.startswith(f"{self.prefix}/trade/"):
            try:
                trade = codec.decode_trade(payload)
                if codec.topic(self.prefix, trade.venue, trade.symbol, "trade") != topic:
                    raise ValueError(f"trade of {trade.venue}/{trade.symbol} arrived on another book's topic")
            except ValueError as exc:
                self.malformed += 1
                log.warning("mqtt.malformed", topic=topic, reason=str(exc), malformed=self.malformed)
                return
            _guarded("mqtt.on_trade_failed", self._on_trade, trade)
            return
        try:
            snapshot = self._decode(topic, payload)
        except ValueError as exc:
            self.malformed += 1
            log.warning("mqtt.malformed", topic=topic, reason=str(exc), malformed=self.malformed)
            return
        if snapshot is not None:
            _guarded("mqtt.on_snapshot_failed", self._on_snapshot, snapshot)

    def _decode(self, topic: str, payload: bytes) -> BookSnapshot | None:
        snapshot = codec.decode(payload)
        if snapshot is not None and codec.topic(self.prefix, snapshot.venue, snapshot.symbol) != topic:
            raise ValueError(f"snapshot of {snapshot.venue}/{snapshot.symbol} arrived on another book's topic")
        return snapshot


async def _first(*coros: Awaitable[None]) -> None:
    """Run the coroutines until one ends, cancel the rest, and return or raise as that one did."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    done.pop().result()


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Return never; raise MqttError when the connection drops (the publisher subscribes to nothing)."""
    async for _ in client.messages:
        pass


def _reason(exc: BaseException) -> str:
    """The error and what caused it: aiomqtt wraps the socket's own error in a generic one."""
    cause = exc.__cause__
    return f"{exc}: {cause}" if cause is not None and str(cause) else str(exc)


def _guarded(event: str, callback: Callable[..., None], *args: object) -> None:
    """Call back into the application; its exceptions are logged, never allowed to stop the bus."""
    try:
        callback(*args)
    except Exception:
        log.exception(event)
