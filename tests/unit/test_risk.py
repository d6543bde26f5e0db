"""Pre-trade limits in the engine: each one accepts an order just under it and refuses one just over it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import MarketView
from gateway.core.risk import Halt, Limits, PriceReference, RiskLimits
from gateway.core.routing import RouteDecision
from gateway.core.types import (
    CancelChild,
    CancelReject,
    ExecType,
    OrdRejReason,
    OrdStatus,
    ReplaceRequest,
    Side,
    TimeInForce,
    Urgency,
    VenueReport,
)
from gateway.core.validation import Instrument
from tests.unit.test_engine import S, children, order, reports

OTHER = "FIX.4.4:SORGW->OMS2"


def limited(engine: OrderEngine, **kw) -> OrderEngine:
    """The shared engine (NBBO 99.99 / 100.01) held to `kw`, built like the gateway builds it."""
    risk = RiskLimits(reference_prices={"AAPL": D("100")}, **kw)
    return OrderEngine(engine.instruments, engine.venues, engine.market, IdSource("r"), ManualClock(), risk=risk)


def refused(out, limit: str, reason: OrdRejReason = OrdRejReason.EXCEEDS_LIMIT) -> str:
    [report] = reports(out)
    assert (report.exec_type, report.ord_status, report.ord_rej_reason, report.risk_limit) == (
        ExecType.REJECTED,
        OrdStatus.REJECTED,
        reason,
        limit,
    )
    assert not children(out)
    return report.text


def accepted(out) -> None:
    assert reports(out)[0].exec_type is ExecType.NEW, reports(out)[0].text


def test_max_order_qty(engine):
    engine = limited(engine, defaults=Limits(max_order_qty=1000))
    accepted(engine.on_new_order(order("A", qty=1000)))
    assert (
        refused(engine.on_new_order(order("B", qty=1001)), "max_order_qty")
        == "OrderQty 1001 exceeds max_order_qty 1000 for AAPL"
    )


def test_max_order_notional_limit_and_market(engine):
    engine = limited(engine, defaults=Limits(max_order_notional=D("50005")))
    accepted(engine.on_new_order(order("A", qty=500, price="100.01")))
    assert (
        refused(engine.on_new_order(order("B", qty=500, price="100.02")), "max_order_notional")
        == "notional 50010.00 (500 x 100.02) exceeds max_order_notional 50005 for AAPL"
    )
    # A market buy is valued at the NBBO ask.
    accepted(engine.on_new_order(order("C", qty=500, price=None, tif=TimeInForce.IOC)))
    assert refused(
        engine.on_new_order(order("D", qty=501, price=None, tif=TimeInForce.IOC)), "max_order_notional"
    ).startswith("notional 50105.01 (501 x 100.01)")


def test_price_collar_bps_against_the_far_touch(engine):
    engine = limited(engine, defaults=Limits(price_collar_bps=D("10")))
    # ask 100.01 + 10 bps = 100.11001: 100.11 is inside, 100.12 outside.
    accepted(engine.on_new_order(order("A", qty=100, price="100.11")))
    assert (
        refused(engine.on_new_order(order("B", qty=100, price="100.12")), "price_collar_bps")
        == "Price 100.12 is above the collar 100.11001 (price_collar_bps 10 from the NBBO ask 100.01) for AAPL"
    )
    accepted(engine.on_new_order(order("C", qty=100, price="99.90", side=Side.SELL)))
    assert "below the collar 99.89001 (price_collar_bps 10 from the NBBO bid 99.99)" in refused(
        engine.on_new_order(order("D", qty=100, price="99.89", side=Side.SELL)), "price_collar_bps"
    )
    accepted(engine.on_new_order(order("E", qty=100, price="1.00")))  # far from the market, passively: no harm


def test_price_collar_ticks_and_the_reference_price_without_a_book(engine):
    engine = limited(engine, defaults=Limits(price_collar_ticks=5))
    engine.market = MarketView()  # no book at all: the symbol's reference price, 100
    accepted(engine.on_new_order(order("A", qty=100, price="100.05")))
    assert (
        refused(engine.on_new_order(order("B", qty=100, price="100.06")), "price_collar_ticks")
        == "Price 100.06 is above the collar 100.05 (price_collar_ticks 5 from the reference price 100) for AAPL"
    )


def test_the_narrower_collar_applies(engine):
    engine = limited(engine, defaults=Limits(price_collar_bps=D("100"), price_collar_ticks=3))
    accepted(engine.on_new_order(order("A", qty=100, price="100.04")))
    assert refused(engine.on_new_order(order("B", qty=100, price="100.05")), "price_collar_ticks")


def test_market_orders_allowed_or_not(engine):
    engine = limited(engine, symbols={"AAPL": Limits(market_orders=False)})
    accepted(engine.on_new_order(order("A", qty=100)))
    assert (
        refused(
            engine.on_new_order(order("B", qty=100, price=None, tif=TimeInForce.IOC)),
            "market_orders",
            OrdRejReason.BROKER_OPTION,
        )
        == "market orders are not allowed for AAPL (market_orders false)"
    )


def test_restricted_symbols(engine):
    engine.instruments["TSLA"] = Instrument("TSLA", D("0.01"))
    engine = limited(engine, restricted=frozenset({"TSLA"}))
    accepted(engine.on_new_order(order("A", qty=100)))
    assert (
        refused(
            engine.on_new_order(order("B", qty=100, symbol="TSLA")), "restricted_symbols", OrdRejReason.BROKER_OPTION
        )
        == "TSLA is a restricted symbol"
    )


def test_max_open_qty_counts_leaves_of_live_orders_per_session(engine):
    engine = limited(engine, defaults=Limits(max_open_qty=1000))
    accepted(engine.on_new_order(order("A", qty=600, price="99.00")))  # rests: 600 open
    accepted(engine.on_new_order(order("B", qty=400, price="99.00")))
    assert (
        refused(engine.on_new_order(order("C", qty=1, price="99.00")), "max_open_qty")
        == f"open quantity 1001 (1000 open + 1) exceeds max_open_qty 1000 for {S}"
    )
    other = order("D", qty=1000, price="99.00")
    accepted(engine.on_new_order(other.__class__(**{**_fields(other), "session": OTHER})))  # its own budget


def test_max_open_notional(engine):
    engine = limited(engine, defaults=Limits(max_open_notional=D("19800")))
    accepted(engine.on_new_order(order("A", qty=100, price="99.00")))
    accepted(engine.on_new_order(order("B", qty=100, price="99.00")))
    assert (
        refused(engine.on_new_order(order("C", qty=1, price="0.01")), "max_open_notional")
        == f"open notional 19800.01 (19800.00 open + 0.01) exceeds max_open_notional 19800 for {S}"
    )


def test_max_open_counts_a_replace_as_the_order_it_becomes(engine):
    engine = limited(engine, defaults=Limits(max_open_qty=1000))
    accepted(engine.on_new_order(order("A", qty=600, price="99.00")))
    accepted(engine.on_new_order(order("B", qty=300, price="99.00")))
    ok = engine.on_replace(
        ReplaceRequest(S, "A2", "A", "AAPL", Side.BUY, 700, order().ord_type, D("99.00"), TimeInForce.DAY)
    )
    assert not [c for c in ok.commands if isinstance(c, CancelReject)]
    out = engine.on_replace(
        ReplaceRequest(S, "B2", "B", "AAPL", Side.BUY, 301, order().ord_type, D("99.00"), TimeInForce.DAY)
    )
    [reject] = [c for c in out.commands if isinstance(c, CancelReject)]
    assert (reject.risk_limit, reject.response_to) == ("max_open_qty", "2")
    assert reject.text == f"open quantity 1001 (700 open + 301) exceeds max_open_qty 1000 for {S}"


def test_a_replace_is_checked_as_a_new_order(engine):
    engine = limited(engine, defaults=Limits(max_order_qty=1000, price_collar_bps=D("10")))
    accepted(engine.on_new_order(order("A", qty=100, price="99.00")))
    out = engine.on_replace(
        ReplaceRequest(S, "A2", "A", "AAPL", Side.BUY, 100, order().ord_type, D("100.12"), TimeInForce.DAY)
    )
    [reject] = [c for c in out.commands if isinstance(c, CancelReject)]
    assert reject.risk_limit == "price_collar_bps" and reject.text.startswith("Price 100.12 is above the collar")
    out = engine.on_replace(
        ReplaceRequest(S, "A3", "A", "AAPL", Side.BUY, 1001, order().ord_type, D("99.00"), TimeInForce.DAY)
    )
    [reject] = [c for c in out.commands if isinstance(c, CancelReject)]
    assert reject.text == "OrderQty 1001 exceeds max_order_qty 1000 for AAPL"
    assert engine.parents[reject.order_id].qty == 100


def test_throttle_per_session_by_the_arrival_time(engine):
    engine = limited(engine, defaults=Limits(max_orders_per_s=3))
    t0 = 5_000_000_000
    for i, at in enumerate((t0, t0 + 1, t0 + 2)):
        accepted(engine.on_new_order(order(f"A{i}", qty=100, price="99.00"), at))
    assert (
        refused(engine.on_new_order(order("B", qty=100, price="99.00"), t0 + 999_999_999), "max_orders_per_s")
        == f"order rate 4 in 1 s exceeds max_orders_per_s 3 for {S}"
    )
    accepted(engine.on_new_order(order("C", qty=100, price="99.00"), t0 + 1_000_000_000))  # the first left the window


def test_duplicate_guard(engine):
    engine = limited(engine, defaults=Limits(duplicate_window_ms=500))
    t0 = 5_000_000_000
    accepted(engine.on_new_order(order("A", qty=100, price="99.00"), t0))
    assert refused(
        engine.on_new_order(order("B", qty=100, price="99.00"), t0 + 499_999_999),
        "duplicate_window_ms",
        OrdRejReason.DUPLICATE_ORDER,
    ) == ("duplicate of an order 499 ms ago (same side, symbol, qty and price) within duplicate_window_ms 500 for AAPL")
    accepted(engine.on_new_order(order("C", qty=101, price="99.00"), t0 + 1))  # another quantity
    accepted(engine.on_new_order(order("D", qty=100, price="99.00"), t0 + 500_000_000))


def test_the_tighter_of_session_and_symbol_applies_over_the_defaults(engine):
    risk = dict(
        defaults=Limits(max_order_qty=1000),
        sessions={S: Limits(max_order_qty=5000)},
        symbols={"AAPL": Limits(max_order_qty=2000)},
    )
    engine = limited(engine, **risk)
    accepted(engine.on_new_order(order("A", qty=2000, price="99.00")))
    assert refused(engine.on_new_order(order("B", qty=2001, price="99.00")), "max_order_qty")
    other = order("C", qty=1001, price="99.00")
    # OMS2 has no session limit: the default 1000 is tighter than the symbol's 2000.
    assert refused(engine.on_new_order(other.__class__(**{**_fields(other), "session": OTHER})), "max_order_qty")


def test_the_reference_used_is_on_record(engine):
    engine = limited(engine, defaults=Limits(price_collar_bps=D("10")))
    out = engine.on_new_order(order("A", qty=100, price="100.11"))
    [ref] = [d for d in out.decisions if isinstance(d, PriceReference)]
    assert (ref.cl_ord_id, ref.reference.price, ref.reference.source) == ("A", D("100.01"), "NBBO ask")
    plain = limited(engine)
    assert not [d for d in plain.on_new_order(order("B", qty=100)).decisions if isinstance(d, PriceReference)]


@pytest.mark.parametrize("qty", [10**30, 5_000_000])
def test_huge_orders_never_reach_a_venue(engine, qty):
    engine = limited(engine, defaults=Limits(max_order_qty=1_000_000))
    refused(engine.on_new_order(order("A", qty=qty)), "max_order_qty")


def _fields(o) -> dict:
    return {name: getattr(o, name) for name in o.__dataclass_fields__}


def test_halt_refuses_new_orders_in_scope_and_cancels_what_works_until_resumed(engine):
    engine = limited(engine)
    rest = engine.on_new_order(order("A", qty=100, price="99.00", urgency=Urgency.HIGH))
    [child] = children(rest)
    out = engine.on_halt(Halt(symbol="AAPL"))
    [cancel] = [c for c in out.commands if isinstance(c, CancelChild)]
    assert cancel.orig_cl_ord_id == child.cl_ord_id
    text = refused(engine.on_new_order(order("B", qty=100, price="99.00")), "halt", OrdRejReason.BROKER_OPTION)
    assert text == "refused: halt (symbol AAPL) in force until resumed"
    done = engine.on_venue_report(
        VenueReport(child.venue, cancel.cl_ord_id, "x1", ExecType.CANCELED, OrdStatus.CANCELED)
    )
    [final] = reports(done)
    assert (final.ord_status, final.text) == (OrdStatus.CANCELED, "canceled: halt (symbol AAPL)")
    engine.on_halt(Halt(session="other"))
    engine.on_resume(Halt(symbol="AAPL"))
    accepted(engine.on_new_order(order("C", qty=100, price="99.00")))  # the other session's halt is not ours


def test_venue_halt_takes_the_venue_out_of_routing(engine):
    engine = limited(engine)
    engine.on_halt(Halt(venue="LITB"))
    out = engine.on_new_order(order("A", qty=300, price="100.01"))
    assert {c.venue for c in children(out)} == {"LITA"}
    decision = next(d for d in out.decisions if isinstance(d, RouteDecision))
    assert ("LITB", "halted until resumed") in {(e.venue, e.reason) for e in decision.exclusions}
    assert (
        refused(
            engine.on_new_order(order("B", qty=10, price="100.01", ex_destination="LITB")),
            "halt",
            OrdRejReason.BROKER_OPTION,
        )
        == "refused: halt (venue LITB) in force until resumed"
    )
