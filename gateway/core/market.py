"""Immutable L2 book snapshots per venue and the consolidated view (NBBO) built from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from operator import itemgetter
from types import MappingProxyType

from gateway.core.clock import Clock
from gateway.core.types import VenueKind


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    qty: int


PriceKey = int | Decimal
KEY_SCALE = 10**8


def price_key(price: Decimal) -> PriceKey:
    """An exact sort key for a price: the price in units of 1e-8 as an int, which sorts and compares several
    times faster than a Decimal; a price finer than that keeps its scaled Decimal (int and Decimal compare exactly)."""
    numerator, denominator = price.as_integer_ratio()
    key, rest = divmod(numerator * KEY_SCALE, denominator)
    return price.scaleb(8) if rest else key


def whole_key(price: Decimal) -> int:
    """price_key rounded (half even) to a whole 1e-8 where the price is finer: for figures only scaled or
    summed, such as fees and risk references."""
    key = price_key(price)
    return key if isinstance(key, int) else int(key.to_integral_value())


# One level as the router reads it: (price_key, qty, venue, price), price_key negated on the bid side.
Row = tuple[PriceKey, int, str, Decimal]
_shown = itemgetter(1)


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """One venue's visible book for one symbol; bids best first, asks best first, levels of no size left out.

    bid_rows and ask_rows are derived when the snapshot is made, off the order path: each level as a Row whose
    key ascends from the best level on both sides (a smaller key is a better price for the taker). They let the
    router merge and sort deep books with C-level slices and int comparisons instead of Decimal ones.
    bid_depths and ask_depths are the shares shown through each of those rows (running sums), so the depth of
    any best-first run of levels is one index; bid_notionals and ask_notionals, likewise, the sums of key times
    shares through each row, so what taking any best-first run costs is one index too.
    """

    venue: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    seq: int
    ts_ns: int
    bid_rows: tuple[Row, ...] = field(init=False, repr=False, compare=False)
    ask_rows: tuple[Row, ...] = field(init=False, repr=False, compare=False)
    bid_depths: tuple[int, ...] = field(init=False, repr=False, compare=False)
    ask_depths: tuple[int, ...] = field(init=False, repr=False, compare=False)
    bid_notionals: tuple[PriceKey, ...] = field(init=False, repr=False, compare=False)
    ask_notionals: tuple[PriceKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A level showing no shares is no level: dropped here so the NBBO, the router and its trade-through
        # guard never see a quote that cannot be taken, whatever the source of the snapshot checked.
        if any(level.qty <= 0 for level in self.bids):
            object.__setattr__(self, "bids", tuple([level for level in self.bids if level.qty > 0]))
        if any(level.qty <= 0 for level in self.asks):
            object.__setattr__(self, "asks", tuple([level for level in self.asks if level.qty > 0]))
        venue = self.venue
        object.__setattr__(
            self, "bid_rows", tuple([(-price_key(level.price), level.qty, venue, level.price) for level in self.bids])
        )
        object.__setattr__(
            self, "ask_rows", tuple([(price_key(level.price), level.qty, venue, level.price) for level in self.asks])
        )
        object.__setattr__(self, "bid_depths", tuple(accumulate(map(_shown, self.bid_rows))))
        object.__setattr__(self, "ask_depths", tuple(accumulate(map(_shown, self.ask_rows))))
        object.__setattr__(self, "bid_notionals", _notionals(self.bid_rows))
        object.__setattr__(self, "ask_notionals", _notionals(self.ask_rows))

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None


def _notionals(rows: tuple[Row, ...]) -> tuple[PriceKey, ...]:
    return tuple(accumulate([key * shown for key, shown, _, _ in rows]))


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution a venue printed, whoever the parties were (ours included): the tape that market VWAP and
    participation are measured against. seq counts the venue's prints, so a duplicate can be told apart."""

    venue: str
    symbol: str
    qty: int
    price: Decimal
    seq: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """What the router knows about a venue: its kind, costs, and whether it can be used now."""

    name: str
    kind: VenueKind
    maker_fee: Decimal  # per share; negative is a rebate
    taker_fee: Decimal  # per share; negative is a rebate (inverted venue)
    latency_us: int
    connected: bool
    min_qty: int = 1  # dark pools: minimum size that can cross
    protected: bool = True  # lit quote protected under the order-protection rule
    resends: bool = False  # its session keeps sequence numbers: reports missed while down are resent on logon
    taker_key: int = field(init=False, repr=False, compare=False)  # taker_fee in price key units (whole_key)
    taker_exact: PriceKey = field(init=False, repr=False, compare=False)  # taker_fee as a price_key: sorts as it does

    def __post_init__(self) -> None:
        object.__setattr__(self, "taker_key", whole_key(self.taker_fee))
        object.__setattr__(self, "taker_exact", price_key(self.taker_fee))


@dataclass(frozen=True, slots=True)
class Nbbo:
    bid: Decimal | None
    bid_qty: int
    ask: Decimal | None
    ask_qty: int

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


_NO_BOOKS: Mapping[str, BookSnapshot] = MappingProxyType({})


class MarketView:
    """The latest snapshot per (venue, symbol), replaced whole on every update.

    Writers (the bus) replace a snapshot reference; readers see either the old or the new
    snapshot, never a half-updated book, so no lock is needed.
    """

    def __init__(self, clock: Clock | None = None, max_age_ns: int = 0) -> None:
        """With a clock and max_age_ns, a book older than that (by its venue timestamp) is not shown."""
        self._books: dict[tuple[str, str], BookSnapshot] = {}
        self._by_symbol: dict[str, dict[str, BookSnapshot]] = {}  # the same snapshots: symbol -> venue -> book
        self._views: dict[str, Mapping[str, BookSnapshot]] = {}  # a read-only view of each of those
        self._clock = clock
        self._max_age_ns = max_age_ns if clock is not None else 0

    def update(self, snapshot: BookSnapshot) -> None:
        """Keep the newest snapshot: by venue time, then seq (a restarted venue counts seq from 1 again)."""
        key = (snapshot.venue, snapshot.symbol)
        current = self._books.get(key)
        if current is None or (snapshot.ts_ns, snapshot.seq) > (current.ts_ns, current.seq):
            self._books[key] = snapshot
            books = self._by_symbol.get(snapshot.symbol)
            if books is None:
                books = self._by_symbol[snapshot.symbol] = {}
                self._views[snapshot.symbol] = MappingProxyType(books)
            books[snapshot.venue] = snapshot

    def book(self, venue: str, symbol: str) -> BookSnapshot | None:
        """The venue's current book, or None if there is none or it is stale."""
        snapshot = self._books.get((venue, symbol))
        if (
            snapshot is not None
            and self._clock is not None
            and self._max_age_ns
            and self._clock.now_ns() - snapshot.ts_ns > self._max_age_ns
        ):
            return None
        return snapshot

    def books(self, symbol: str) -> Mapping[str, BookSnapshot]:
        """Venue -> its current book for symbol, stale ones left out (what book() shows, in one read)."""
        books = self._views.get(symbol, _NO_BOOKS)
        if self._clock is None or not self._max_age_ns:
            return books
        oldest = self._clock.now_ns() - self._max_age_ns
        # tuple(): one C-level copy, so a writer adding a venue meanwhile cannot break the iteration
        return {venue: book for venue, book in tuple(books.items()) if book.ts_ns >= oldest}

    def now_ns(self) -> int | None:
        """The time books age by (a book's age is this less its ts_ns); None without a clock: books never age."""
        return None if self._clock is None else self._clock.now_ns()

    def age_ns(self, venue: str, symbol: str) -> int | None:
        """How old the venue's newest snapshot is, stale or not (None: never seen)."""
        snapshot = self._books.get((venue, symbol))
        return None if snapshot is None or self._clock is None else self._clock.now_ns() - snapshot.ts_ns

    def nbbo(self, symbol: str, venues: Mapping[str, VenueInfo]) -> Nbbo:
        """Best bid and offer over connected, protected lit venues."""
        books = (
            self.book(name, symbol)
            for name, info in venues.items()
            if info.kind is VenueKind.LIT and info.connected and info.protected
        )
        return fold_nbbo([book for book in books if book is not None])


def fold_nbbo(books: Iterable[BookSnapshot]) -> Nbbo:
    """The best bid and offer across `books`, with the quantity shown at each."""
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty = ask_qty = 0
    for book in books:
        if book.bids:
            top = book.bids[0]
            if bid is None or top.price > bid:
                bid, bid_qty = top.price, top.qty
            elif top.price == bid:
                bid_qty += top.qty
        if book.asks:
            top = book.asks[0]
            if ask is None or top.price < ask:
                ask, ask_qty = top.price, top.qty
            elif top.price == ask:
                ask_qty += top.qty
    return Nbbo(bid, bid_qty, ask, ask_qty)
