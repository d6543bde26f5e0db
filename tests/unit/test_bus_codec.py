"""The MQTT bus codec: exact Decimal round trips, clear errors on malformed payloads, topic names."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, strategies as st

from gateway.bus import codec
from gateway.bus.inprocess import InProcessBus
from gateway.core.market import BookSnapshot, Level, Trade

prices = st.decimals(min_value=D("1e-8"), max_value=D("1e12"), allow_nan=False, allow_infinity=False)
levels = st.lists(st.builds(Level, prices, st.integers(1, 10**12)), max_size=10).map(tuple)
books = st.builds(
    BookSnapshot,
    venue=st.text(min_size=1),
    symbol=st.text(min_size=1),
    bids=levels,
    asks=levels,
    seq=st.integers(0, 2**64),
    ts_ns=st.integers(0, 2**64),
)

GOOD = {
    "venue": "LIT1",
    "symbol": "AAPL",
    "seq": 7,
    "ts_ns": 1_700_000_000_000_000_000,
    "bids": [["189.99", 500], ["189.98", 300]],
    "asks": [["190.01", 200]],
}


def payload(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


@given(books)
def test_round_trip_is_exact(snapshot: BookSnapshot) -> None:
    decoded = codec.decode(codec.encode(snapshot))
    assert decoded == snapshot
    # Decimal equality ignores exponents (1.5 == 1.50); the digits must survive too.
    assert [str(level.price) for level in decoded.bids + decoded.asks] == [
        str(level.price) for level in snapshot.bids + snapshot.asks
    ]


def test_encoding_is_compact_json_with_string_prices() -> None:
    snapshot = BookSnapshot("LIT1", "AAPL", (Level(D("189.990"), 500),), (), 3, 42)
    assert (
        codec.encode(snapshot)
        == b'{"venue":"LIT1","symbol":"AAPL","seq":3,"ts_ns":42,"bids":[["189.990",500]],"asks":[]}'
    )


def test_decodes_a_well_formed_payload() -> None:
    assert codec.decode(payload()) == BookSnapshot(
        "LIT1",
        "AAPL",
        (Level(D("189.99"), 500), Level(D("189.98"), 300)),
        (Level(D("190.01"), 200),),
        7,
        1_700_000_000_000_000_000,
    )


def test_empty_payload_is_a_deleted_book() -> None:
    assert codec.decode(b"") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'"book"', "must be a JSON object, got str"),
        (payload(seq=..., asks=...), "missing seq, asks"),
        (payload(venue=5), "venue must be a non-empty string"),
        (payload(symbol=""), "symbol must be a non-empty string"),
        (payload(seq="7"), "seq must be a non-negative integer"),
        (payload(seq=True), "seq must be a non-negative integer"),
        (payload(seq=-1), "seq must be a non-negative integer"),
        (payload(ts_ns=1.5), "ts_ns must be a non-negative integer"),
        (payload(bids={"189.99": 500}), "bids must be a list of [price, qty]"),
        (payload(asks=[["190.01"]]), "asks[0] must be [price, qty]"),
        (payload(asks=[["190.01", 1, 2]]), "asks[0] must be [price, qty]"),
        (payload(bids=[["189.99", 500], {"price": "1"}]), "bids[1] must be [price, qty]"),
        (payload(bids=[[189.99, 500]]), "bids[0] price must be a decimal string"),
        (payload(bids=[["abc", 500]]), "bids[0] price 'abc' is not a decimal"),
        (payload(asks=[["NaN", 500]]), "asks[0] price must be a positive finite decimal"),
        (payload(asks=[["Infinity", 500]]), "asks[0] price must be a positive finite decimal"),
        (payload(asks=[["0", 500]]), "asks[0] price must be a positive finite decimal"),
        (payload(asks=[["-1.5", 500]]), "asks[0] price must be a positive finite decimal"),
        (payload(bids=[["189.99", 0]]), "bids[0] qty must be a positive integer"),
        (payload(bids=[["189.99", -5]]), "bids[0] qty must be a positive integer"),
        (payload(bids=[["189.99", "500"]]), "bids[0] qty must be a positive integer"),
        (payload(bids=[["189.99", 2.5]]), "bids[0] qty must be a positive integer"),
        (payload(bids=[["189.99", True]]), "bids[0] qty must be a positive integer"),
    ],
)
def test_malformed_payload_raises_value_error_naming_the_problem(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        codec.decode(raw)
    assert message in str(excinfo.value)


def test_topic_and_filter() -> None:
    assert codec.topic("sorgw", "LIT1", "AAPL") == "sorgw/book/LIT1/AAPL"
    assert codec.topic_filter("sorgw") == "sorgw/book/+/+"


@pytest.mark.parametrize(("venue", "symbol"), [("", "AAPL"), ("LIT1", "BRK/B"), ("LIT+", "AAPL"), ("LIT1", "#")])
def test_topic_refuses_names_that_are_not_one_topic_level(venue: str, symbol: str) -> None:
    with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
        codec.topic("sorgw", venue, symbol)


def test_a_trade_round_trips_exactly_and_bad_ones_are_named():
    trade = Trade("LITA", "AAPL", 300, D("189.9901"), 7, 1_700_000_000_000_000_001)
    assert codec.decode_trade(codec.encode_trade(trade)) == trade
    assert codec.topic("sorgw", "LITA", "AAPL", "trade") == "sorgw/trade/LITA/AAPL"
    assert codec.topic_filter("sorgw", "trade") == "sorgw/trade/+/+"
    for payload, message in (
        (b"[]", "JSON object"),
        (b'{"venue": "A"}', "missing"),
        (b"{", "not JSON"),
        (codec.encode_trade(trade).replace(b'"qty":300', b'"qty":0'), "qty"),
        (codec.encode_trade(trade).replace(b'"189.9901"', b"189.99"), "decimal string"),
    ):
        with pytest.raises(ValueError, match=message):
            codec.decode_trade(payload)


def test_the_in_process_bus_hands_trades_to_trade_subscribers_only():
    bus, books, trades = InProcessBus(), [], []
    bus.subscribe(books.append)
    bus.subscribe_trades(trades.append)
    trade = Trade("LITA", "AAPL", 1, D("1"), 1, 1)
    bus.publish_trade(trade)
    assert trades == [trade] and books == []
