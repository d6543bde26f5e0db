"""MarketView's books by symbol and VenueInfo's exact fee key: what the router's survey reads instead of book()."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, strategies as st

from gateway.core.clock import ManualClock
from gateway.core.market import BookSnapshot, Level, MarketView, VenueInfo
from gateway.core.types import VenueKind


def snap(venue: str, symbol: str, seq: int, ts_ns: int) -> BookSnapshot:
    return BookSnapshot(venue, symbol, (Level(D("9.99"), 100),), (Level(D("10.01"), 100),), seq, ts_ns)


def test_books_are_what_book_shows_newest_first_stale_left_out():
    clock = ManualClock(1_000_000)
    market = MarketView(clock, max_age_ns=500)
    market.update(snap("A", "X", 2, 999_900))
    market.update(snap("A", "X", 1, 999_950))  # newer by venue time: replaces seq 2
    market.update(snap("A", "X", 1, 999_000))  # older: ignored
    market.update(snap("B", "X", 5, 999_400))  # 600 ns old: stale
    market.update(snap("C", "X", 1, 999_500))  # exactly max_age_ns old: still shown
    market.update(snap("A", "Y", 1, 999_990))
    for symbol in ("X", "Y", "Z"):
        shown = {venue: book for venue in "ABC" if (book := market.book(venue, symbol)) is not None}
        assert dict(market.books(symbol)) == shown
    assert market.books("X")["A"].ts_ns == 999_950
    assert set(market.books("X")) == {"A", "C"}
    clock.advance(1_000)
    assert dict(market.books("X")) == {}


def test_books_without_a_clock_never_age_and_follow_updates():
    market = MarketView()
    books = market.books("X")
    assert dict(books) == {}
    market.update(snap("A", "X", 1, 0))
    view = market.books("X")
    market.update(snap("A", "X", 2, 0))
    assert view["A"].seq == 2 == market.book("A", "X").seq  # type: ignore[union-attr]


fees = st.decimals(min_value=D("-0.01"), max_value=D("0.01"), allow_nan=False, places=10)


@given(st.lists(fees, min_size=2, max_size=6))
def test_taker_exact_sorts_as_the_taker_fee_does(values):
    infos = [VenueInfo(f"V{i}", VenueKind.LIT, D(0), fee, 100, True) for i, fee in enumerate(values)]
    by_key = sorted(infos, key=lambda info: (info.taker_exact, info.name))
    by_fee = sorted(infos, key=lambda info: (info.taker_fee, info.name))
    assert by_key == by_fee
    for info in infos:
        assert info.taker_exact == info.taker_fee * 10**8


levels = st.lists(st.tuples(st.integers(1, 10_000), st.integers(0, 5_000)), max_size=12)


@given(levels, levels)
def test_depths_and_notionals_are_the_running_sums_of_the_rows_shown(bids, asks):
    book = BookSnapshot(
        "A",
        "X",
        tuple(Level(D(cents) / 100, qty) for cents, qty in bids),
        tuple(Level(D(cents) / 100, qty) for cents, qty in asks),
        1,
        0,
    )
    for rows, depths, notionals, shown in (
        (book.bid_rows, book.bid_depths, book.bid_notionals, bids),
        (book.ask_rows, book.ask_depths, book.ask_notionals, asks),
    ):
        sizes = [qty for _, qty in shown if qty > 0]  # levels of no size are dropped
        assert len(depths) == len(notionals) == len(rows) == len(sizes)
        assert list(depths) == [sum(sizes[: i + 1]) for i in range(len(sizes))]
        assert list(depths) == [sum(row[1] for row in rows[: i + 1]) for i in range(len(rows))]
        assert list(notionals) == [sum(row[0] * row[1] for row in rows[: i + 1]) for i in range(len(rows))]
