"""The lit order book: price-time priority, exact fills, and invariants under random order flow."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from gateway.core.market import Level
from gateway.core.types import Side
from gateway.simulator.orderbook import Order, OrderBook, within_limit

_ids = itertools.count(1)


def order(side: Side, qty: int, price: str | None, owner: str | None = "c") -> Order:
    n = next(_ids)
    return Order(owner, f"C{n}", f"O{n}", side, qty, D(price) if price is not None else None)


def rest(book: OrderBook, side: Side, qty: int, price: str) -> Order:
    o = order(side, qty, price)
    book.add(o)
    return o


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook()
    rest(b, Side.BUY, 100, "99.99")
    rest(b, Side.BUY, 200, "99.98")
    rest(b, Side.SELL, 100, "100.01")
    rest(b, Side.SELL, 200, "100.02")
    rest(b, Side.SELL, 300, "100.03")
    return b


def test_earlier_order_at_the_same_price_fills_first():
    b = OrderBook()
    first = rest(b, Side.SELL, 50, "100.01")
    second = rest(b, Side.SELL, 50, "100.01")
    fills = list(b.match(order(Side.BUY, 60, "100.01")))
    assert [(f.maker, f.qty) for f in fills] == [(first, 50), (second, 10)]
    assert first.leaves == 0 and second.leaves == 40
    assert b.levels(False, 10) == (Level(D("100.01"), 40),)


def test_better_price_beats_earlier_time():
    b = OrderBook()
    worse = rest(b, Side.BUY, 50, "99.98")
    better = rest(b, Side.BUY, 50, "99.99")
    fills = list(b.match(order(Side.SELL, 50, None)))
    assert [(f.maker, f.price) for f in fills] == [(better, D("99.99"))]
    assert worse.leaves == 50


def test_sweep_across_levels_trades_at_each_resting_price_with_exact_avg_px(book):
    taker = order(Side.BUY, 250, "100.02")
    fills = list(book.match(taker))
    assert [(f.qty, f.price) for f in fills] == [(100, D("100.01")), (150, D("100.02"))]
    assert taker.cum == 250 and taker.leaves == 0
    assert taker.avg_px == (D("100.01") * 100 + D("100.02") * 150) / 250 == D("100.016")
    assert book.levels(False, 10) == (Level(D("100.02"), 50), Level(D("100.03"), 300))


def test_limit_stops_matching_at_the_limit_price(book):
    taker = order(Side.BUY, 1000, "100.02")
    assert sum(f.qty for f in book.match(taker)) == 300
    assert taker.leaves == 700
    assert book.best_ask() == D("100.03")


def test_market_order_takes_whatever_there_is(book):
    taker = order(Side.SELL, 1000, None)
    assert sum(f.qty for f in book.match(taker)) == 300
    assert book.best_bid() is None and taker.leaves == 700


def test_match_yields_each_fill_with_the_state_as_of_that_fill(book):
    taker = order(Side.BUY, 250, None)
    seen = [(taker.cum, taker.leaves) for _ in book.match(taker)]
    assert seen == [(100, 150), (250, 0)]


def test_available_counts_only_within_the_limit(book):
    assert book.available(True, D("100.01")) == 100
    assert book.available(True, D("100.02")) == 300
    assert book.available(True, None) == 600
    assert book.available(False, D("99.99")) == 100
    assert book.available(True, D("100.00")) == 0


def test_a_marketable_order_cannot_rest(book):
    with pytest.raises(ValueError, match="cross"):
        book.add(order(Side.BUY, 10, "100.01"))
    with pytest.raises(ValueError):
        book.add(order(Side.BUY, 10, None))


def test_remove_takes_the_order_out_and_the_level_when_empty(book):
    extra = rest(book, Side.BUY, 40, "99.97")
    assert book.remove(extra)
    assert not book.remove(extra)
    assert [lv.price for lv in book.levels(True, 10)] == [D("99.99"), D("99.98")]


def test_remove_distinguishes_identical_looking_orders():
    b = OrderBook()
    a = Order(None, "", "", Side.SELL, 10, D("100"))
    twin = Order(None, "", "", Side.SELL, 10, D("100"))
    b.add(a)
    b.add(twin)
    assert b.remove(twin)
    assert b.orders_at(False, D("100")) == (a,)


def test_levels_aggregate_per_price_and_stop_at_depth():
    b = OrderBook()
    for i in range(12):
        rest(b, Side.BUY, 10, str(D("99") - D("0.01") * i))
        rest(b, Side.BUY, 5, str(D("99") - D("0.01") * i))
    levels = b.levels(True, 10)
    assert len(levels) == 10
    assert levels[0] == Level(D("99"), 15) and levels[-1] == Level(D("98.91"), 15)


def test_an_order_cannot_be_overfilled():
    o = order(Side.BUY, 10, "1")
    o.fill(10, D("1"))
    with pytest.raises(ValueError):
        o.fill(1, D("1"))


@pytest.mark.parametrize(
    ("is_buy", "limit", "price", "ok"),
    [
        (True, D("10"), D("10"), True),
        (True, D("10"), D("10.01"), False),
        (False, D("10"), D("10"), True),
        (False, D("10"), D("9.99"), False),
        (True, None, D("1e9"), True),
    ],
)
def test_within_limit(is_buy, limit, price, ok):
    assert within_limit(is_buy, limit, price) is ok


# --- invariants under random order flow --------------------------------------------------------

flow = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL, Side.SELL_SHORT]),
        st.integers(1, 60),
        st.one_of(st.none(), st.integers(95, 105)),  # price in ticks of 0.01 around 1.00; None: market
        st.booleans(),  # rest the remainder (DAY) or drop it (IOC)
        st.integers(0, 5),  # > 3: cancel an earlier resting order afterwards
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(flow)
def test_book_invariants_hold_under_random_flow(steps):
    book = OrderBook()
    orders: list[Order] = []
    traded: dict[int, tuple[int, D]] = {}  # id(order) -> (qty, notional) of its fills, as maker or taker
    for side, qty, ticks, day, cancel in steps:
        o = order(side, qty, None if ticks is None else str(D(ticks) / 100))
        orders.append(o)
        for fill in book.match(o):
            assert fill.qty > 0
            assert within_limit(o.is_buy, o.price, fill.price)  # never outside the taker's limit
            assert fill.price == fill.maker.price  # at the resting order's price
            assert fill.maker.is_buy != o.is_buy
            for party in (o, fill.maker):
                qty, notional = traded.get(id(party), (0, D(0)))
                traded[id(party)] = (qty + fill.qty, notional + fill.qty * fill.price)
        if o.leaves and day and o.price is not None:
            book.add(o)
        if cancel > 3:
            live = list(book.resting())
            if live:
                assert book.remove(live[cancel % len(live)])
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, "book crossed after matching"

    resting = list(book.resting())
    assert len({id(o) for o in resting}) == len(resting)
    for side in (True, False):
        for level in book.levels(side, 10**6):
            assert level.qty == sum(o.leaves for o in book.orders_at(side, level.price)) > 0
    for o in orders:
        assert 0 <= o.cum <= o.qty
        assert traded.get(id(o), (0, D(0))) == (o.cum, o.notional)  # every share from a fill, none twice
        assert o.cum + o.leaves == o.qty  # left (resting, dropped or canceled) + filled == submitted
    assert all(o.leaves > 0 for o in resting)
