"""A simulated venue without sockets: seeding, matching, reports, cancels, rejects, replenishment, determinism."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from gateway.config import DarkLiquidity, DepthProfile, SimVenueConfig, SymbolConfig
from gateway.core.clock import ManualClock
from gateway.core.market import BookSnapshot, Level, Nbbo
from gateway.core.types import ExecType, Liquidity, OrdStatus, OrdType, Side, TimeInForce, VenueKind
from gateway.simulator import venue as venue_module
from gateway.simulator.venue import SIMULATED_REJECT, SimOrder, SimReport, VenueCore

AAPL = SymbolConfig(symbol="AAPL", tick=D("0.01"), reference_price=D("100"))
MSFT = SymbolConfig(symbol="MSFT", tick=D("0.05"), lot=10, reference_price=D("50"))
DAY, IOC, FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
BUY, SELL = Side.BUY, Side.SELL


def lit(**overrides) -> SimVenueConfig:
    settings_ = {
        "name": "LITA",
        "port": 1,
        "maker_fee": D("-0.002"),
        "taker_fee": D("0.003"),
        "depth": DepthProfile(levels=3, qty_per_level=100, spread_ticks=1),
    }
    return SimVenueConfig(**{**settings_, **overrides})


class Venue:
    """A VenueCore with a manual clock and a record of everything it published."""

    def __init__(self, config: SimVenueConfig | None = None, seed: int = 7, nbbo: Nbbo | None = None) -> None:
        self.clock = ManualClock()
        self.published: list[BookSnapshot] = []
        self.core = VenueCore(
            config or lit(), [AAPL, MSFT], seed, self.clock, publish=self.published.append, nbbo=lambda symbol: nbbo
        )

    def book(self, symbol: str = "AAPL") -> BookSnapshot:
        return self.core.snapshot(symbol)


def new(
    cl: str,
    side: Side,
    qty: int,
    price: str | None = None,
    tif: TimeInForce = DAY,
    owner: str = "S1",
    symbol: str = "AAPL",
) -> SimOrder:
    return SimOrder(
        owner,
        cl,
        symbol,
        side,
        qty,
        OrdType.LIMIT if price is not None else OrdType.MARKET,
        D(price) if price is not None else None,
        tif,
    )


def kinds(reports: list[SimReport]) -> list[ExecType]:
    return [r.exec_type for r in reports]


def trades(reports: list[SimReport], cl: str | None = None) -> list[tuple[int, D]]:
    return [
        (r.last_qty, r.last_px) for r in reports if r.exec_type is ExecType.TRADE and (cl is None or r.cl_ord_id == cl)
    ]


@pytest.fixture
def venue() -> Venue:
    return Venue()


# --- seeding ---------------------------------------------------------------------------------


def test_depth_is_seeded_one_tick_apart_around_the_reference(venue):
    snap = venue.book()
    assert [lv.price for lv in snap.bids] == [D("99.99"), D("99.98"), D("99.97")]
    assert [lv.price for lv in snap.asks] == [D("100.01"), D("100.02"), D("100.03")]
    quantities = [lv.qty for lv in snap.bids + snap.asks]
    assert all(75 <= q <= 125 for q in quantities)
    assert len(set(quantities)) > 1, "quantities should vary per level"
    assert venue.core.open_orders("") == []


def test_price_offset_and_spread_shift_the_quotes():
    snap = Venue(lit(price_offset_ticks=2, depth=DepthProfile(levels=2, qty_per_level=10, spread_ticks=3))).book()
    assert [lv.price for lv in snap.bids] == [D("99.99"), D("99.98")]  # 100.02 - 3 ticks
    assert [lv.price for lv in snap.asks] == [D("100.05"), D("100.06")]


def test_the_seed_and_the_venue_name_pick_the_quantities():
    assert Venue(seed=7).book() == Venue(seed=7).book()
    assert Venue(seed=7).book().bids != Venue(seed=8).book().bids
    assert Venue(lit(name="LITB")).book().bids != Venue().book().bids


# --- matching --------------------------------------------------------------------------------


def test_sweep_across_levels_reports_each_fill_with_exact_avg_px(venue):
    a1, a2 = venue.book().asks[:2]
    reports = venue.core.submit(new("B1", BUY, a1.qty + 10, str(a2.price)))
    assert kinds(reports) == [ExecType.NEW, ExecType.TRADE, ExecType.TRADE]
    assert trades(reports) == [(a1.qty, a1.price), (10, a2.price)]
    first, last = reports[1], reports[2]
    assert (first.ord_status, first.cum_qty, first.leaves_qty, first.avg_px) == (
        OrdStatus.PARTIALLY_FILLED,
        a1.qty,
        10,
        a1.price,
    )
    assert (last.ord_status, last.cum_qty, last.leaves_qty) == (OrdStatus.FILLED, a1.qty + 10, 0)
    assert last.avg_px == (a1.price * a1.qty + a2.price * 10) / (a1.qty + 10)
    assert {r.liquidity for r in reports[1:]} == {Liquidity.TAKER}
    assert venue.book().asks[0] == Level(a2.price, a2.qty - 10)


def test_new_ack_carries_the_order(venue):
    ack = venue.core.submit(new("B1", BUY, 10, "99.50"))[0]
    assert (ack.exec_type, ack.ord_status, ack.owner, ack.cl_ord_id, ack.symbol, ack.side) == (
        ExecType.NEW,
        OrdStatus.NEW,
        "S1",
        "B1",
        "AAPL",
        BUY,
    )
    assert (ack.order_qty, ack.price, ack.leaves_qty, ack.cum_qty, ack.avg_px) == (10, D("99.50"), 10, 0, 0)
    assert ack.liquidity is None and ack.last_qty == 0 and ack.last_px is None


def test_earlier_client_order_at_a_price_fills_first_and_makers_are_told(venue):
    venue.core.submit(new("A", SELL, 100, "100.00", owner="S1"))
    venue.core.submit(new("B", SELL, 100, "100.00", owner="S2"))
    reports = venue.core.submit(new("C", BUY, 150, "100.00", owner="S3"))
    assert [(r.owner, r.cl_ord_id, r.exec_type, r.liquidity, r.last_qty) for r in reports] == [
        ("S3", "C", ExecType.NEW, None, 0),
        ("S3", "C", ExecType.TRADE, Liquidity.TAKER, 100),
        ("S1", "A", ExecType.TRADE, Liquidity.MAKER, 100),
        ("S3", "C", ExecType.TRADE, Liquidity.TAKER, 50),
        ("S2", "B", ExecType.TRADE, Liquidity.MAKER, 50),
    ]
    assert reports[2].ord_status is OrdStatus.FILLED
    assert (reports[4].ord_status, reports[4].cum_qty, reports[4].leaves_qty) == (OrdStatus.PARTIALLY_FILLED, 50, 50)
    assert venue.book().asks[0] == Level(D("100.00"), 50)


def test_fees_are_charged_per_fill_by_liquidity(venue):
    venue.core.submit(new("A", SELL, 100, "100.00", owner="S1"))
    reports = venue.core.submit(new("C", BUY, 100, "100.00", owner="S2"))
    taker, maker = reports[1], reports[2]
    assert (taker.liquidity, taker.fee) == (Liquidity.TAKER, D("0.300"))
    assert (maker.liquidity, maker.fee) == (Liquidity.MAKER, D("-0.200"))
    assert reports[0].fee == 0


def test_ioc_remainder_expires_and_never_rests(venue):
    asks = venue.book().asks
    reports = venue.core.submit(new("I1", BUY, asks[0].qty + 1000, str(asks[0].price), tif=IOC))
    assert kinds(reports) == [ExecType.NEW, ExecType.TRADE, ExecType.EXPIRED]
    expired = reports[-1]
    assert (expired.ord_status, expired.cum_qty, expired.leaves_qty) == (OrdStatus.EXPIRED, asks[0].qty, 0)
    assert venue.book().bids[0].price < asks[0].price
    assert venue.core.open_orders("S1") == []


def test_ioc_without_a_fill_expires_and_publishes_nothing(venue):
    reports = venue.core.submit(new("I1", BUY, 10, "99.00", tif=IOC))
    assert kinds(reports) == [ExecType.NEW, ExecType.EXPIRED]
    assert reports[-1].cum_qty == 0 and venue.published == []


def test_fok_that_cannot_fill_completely_does_nothing(venue):
    before = venue.book()
    a1, a2 = before.asks[:2]
    reports = venue.core.submit(new("F1", BUY, a1.qty + a2.qty + 1, str(a2.price), tif=FOK))
    assert kinds(reports) == [ExecType.NEW, ExecType.EXPIRED]
    assert (reports[-1].ord_status, reports[-1].cum_qty, reports[-1].leaves_qty) == (OrdStatus.EXPIRED, 0, 0)
    assert venue.book().asks == before.asks


def test_fok_that_can_fill_fills_completely(venue):
    a1, a2 = venue.book().asks[:2]
    reports = venue.core.submit(new("F1", BUY, a1.qty + a2.qty, str(a2.price), tif=FOK))
    assert kinds(reports) == [ExecType.NEW, ExecType.TRADE, ExecType.TRADE]
    assert reports[-1].ord_status is OrdStatus.FILLED


def test_market_order_sweeps_the_side_and_expires_the_rest(venue):
    asks = venue.book().asks
    total = sum(lv.qty for lv in asks)
    reports = venue.core.submit(new("M1", BUY, total + 5, tif=DAY))
    assert trades(reports) == [(lv.qty, lv.price) for lv in asks]
    assert (reports[-1].exec_type, reports[-1].cum_qty, reports[-1].price) == (ExecType.EXPIRED, total, None)
    assert venue.book().asks == ()
    assert venue.core.open_orders("S1") == []


def test_market_order_on_an_empty_side_expires(venue):
    venue.core.submit(new("M1", SELL, 10_000))
    reports = venue.core.submit(new("M2", SELL, 10))
    assert kinds(reports) == [ExecType.NEW, ExecType.EXPIRED]


def test_day_remainder_rests_and_shows_in_the_snapshot(venue):
    a1 = venue.book().asks[0]
    reports = venue.core.submit(new("D1", BUY, a1.qty + 40, str(a1.price)))
    assert kinds(reports) == [ExecType.NEW, ExecType.TRADE]
    assert (reports[-1].ord_status, reports[-1].leaves_qty) == (OrdStatus.PARTIALLY_FILLED, 40)
    published = venue.published[-1]
    assert published.bids[0] == Level(a1.price, 40)
    assert published.asks[0].price > a1.price
    [status] = venue.core.open_orders("S1")
    assert (status.exec_type, status.ord_status, status.cum_qty, status.leaves_qty) == (
        ExecType.ORDER_STATUS,
        OrdStatus.PARTIALLY_FILLED,
        a1.qty,
        40,
    )


def test_client_order_joins_the_queue_behind_seeded_liquidity(venue):
    b1 = venue.book().bids[0]
    venue.core.submit(new("J1", BUY, 30, str(b1.price)))
    assert venue.book().bids[0] == Level(b1.price, b1.qty + 30)
    reports = venue.core.submit(new("X", SELL, b1.qty, str(b1.price), owner="S2"))
    assert [r.owner for r in reports] == ["S2", "S2"]  # the seeded liquidity was ahead
    reports = venue.core.submit(new("Y", SELL, 10, str(b1.price), owner="S2"))
    assert [(r.cl_ord_id, r.liquidity) for r in reports[1:]] == [("Y", Liquidity.TAKER), ("J1", Liquidity.MAKER)]


def test_symbols_are_separate_books(venue):
    msft = venue.book("MSFT")
    assert [lv.price for lv in msft.asks] == [D("50.05"), D("50.10"), D("50.15")]
    assert all(lv.qty % MSFT.lot == 0 for lv in msft.bids + msft.asks)
    venue.core.submit(new("M", BUY, 10_000, symbol="AAPL"))
    assert venue.book("MSFT").asks == msft.asks


# --- cancels ---------------------------------------------------------------------------------


def test_cancel_a_partly_filled_order(venue):
    a1 = venue.book().asks[0]
    venue.core.submit(new("D1", BUY, a1.qty + 40, str(a1.price)))
    published = len(venue.published)
    result = venue.core.cancel("S1", "D1-C", "D1")
    assert result.reject_reason is None
    [report] = result.reports
    assert (report.exec_type, report.ord_status, report.cl_ord_id, report.orig_cl_ord_id) == (
        ExecType.CANCELED,
        OrdStatus.CANCELED,
        "D1-C",
        "D1",
    )
    assert (report.leaves_qty, report.cum_qty, report.avg_px) == (0, a1.qty, a1.price)
    assert len(venue.published) == published + 1
    assert venue.published[-1].bids[0].price < a1.price
    assert venue.core.open_orders("S1") == []


def test_cancel_rejects_unknown_orders_and_other_owners_orders(venue):
    venue.core.submit(new("D1", BUY, 10, "99.00"))
    for owner, orig in (("S1", "NOPE"), ("S2", "D1")):
        result = venue.core.cancel(owner, "C", orig)
        assert result.reports == [] and result.reject_reason == f"unknown order {orig}"


def test_cancel_after_fill_or_cancel_is_too_late(venue):
    a1 = venue.book().asks[0]
    venue.core.submit(new("F", BUY, 5, str(a1.price)))
    assert venue.core.cancel("S1", "C1", "F").reject_reason == "too late to cancel: order F is already filled"
    venue.core.submit(new("D", BUY, 5, "99.00"))
    assert venue.core.cancel("S1", "C2", "D").reject_reason is None
    assert venue.core.cancel("S1", "C3", "D").reject_reason == "too late to cancel: order D is already canceled"
    venue.core.submit(new("I", BUY, 5, "99.00", tif=IOC))
    assert "expired" in venue.core.cancel("S1", "C4", "I").reject_reason


def test_only_the_newest_finished_orders_are_remembered(venue, monkeypatch):
    monkeypatch.setattr(venue_module, "FINISHED_MEMORY", 2)
    for cl in ("A", "B", "C"):
        venue.core.submit(new(cl, BUY, 5, "99.00", tif=IOC))
    assert venue.core.cancel("S1", "x", "A").reject_reason == "unknown order A"
    assert venue.core.cancel("S1", "x", "B").reject_reason == "too late to cancel: order B is already expired"
    assert venue.core.submit(new("C", BUY, 5, "99.00"))[0].text == "duplicate ClOrdID C"


def test_rejected_order_is_unknown_to_cancel(venue):
    venue.core.submit(new("R", BUY, 0, "99.00"))
    assert venue.core.cancel("S1", "C", "R").reject_reason == "unknown order R"


# --- rejects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "text"),
    [
        (new("R", BUY, 0, "99.00"), "order quantity must be positive, got 0"),
        (new("R", BUY, -5, "99.00"), "order quantity must be positive, got -5"),
        (new("R", BUY, 10, "99.005"), "price 99.005 is not a multiple of the tick size 0.01"),
        (new("R", BUY, 10, "50.02", symbol="MSFT"), "price 50.02 is not a multiple of the tick size 0.05"),
        (new("R", BUY, 15, "50.00", symbol="MSFT"), "order quantity 15 is not a multiple of the lot size 10"),
        (new("R", BUY, 10, "99.00", symbol="IBM"), "unknown symbol IBM"),
        (SimOrder("S1", "R", "AAPL", BUY, 10, OrdType.LIMIT, None, DAY), "limit order without a price"),
        (new("R", BUY, 10, "0"), "price must be positive, got 0"),
    ],
)
def test_invalid_orders_get_one_rejected_report_with_a_reason(venue, order, text):
    reports = venue.core.submit(order)
    assert len(reports) == 1
    report = reports[0]
    assert (report.exec_type, report.ord_status, report.text) == (ExecType.REJECTED, OrdStatus.REJECTED, text)
    assert (report.cl_ord_id, report.leaves_qty, report.cum_qty) == ("R", 0, 0)
    assert venue.published == []


def test_duplicate_cl_ord_id_is_rejected_per_owner(venue):
    venue.core.submit(new("D1", BUY, 10, "99.00"))
    assert venue.core.submit(new("D1", BUY, 10, "99.00"))[0].text == "duplicate ClOrdID D1"
    assert venue.core.submit(new("D1", BUY, 10, "99.00", owner="S2"))[0].exec_type is ExecType.NEW


def test_below_minimum_size_is_rejected():
    venue = Venue(lit(min_qty=100))
    assert venue.core.submit(new("R", BUY, 99, "99.00"))[0].text == "below minimum size 100"


def test_reject_rate_one_rejects_every_valid_order():
    venue = Venue(lit(reject_rate=1.0))
    before = venue.book()
    for i, tif in enumerate((DAY, IOC, FOK)):
        reports = venue.core.submit(new(f"R{i}", BUY, 10, "100.05", tif=tif))
        assert [(r.exec_type, r.text) for r in reports] == [(ExecType.REJECTED, SIMULATED_REJECT)]
    assert venue.book().asks == before.asks


def test_reject_rate_rejects_a_share_of_orders():
    venue = Venue(lit(reject_rate=0.3))
    rejected = sum(
        venue.core.submit(new(f"R{i}", BUY, 1, "90.00"))[0].exec_type is ExecType.REJECTED for i in range(200)
    )
    assert 30 <= rejected <= 90


# --- snapshots and replenishment -----------------------------------------------------------------


def test_snapshots_are_published_after_each_change_with_increasing_seq(venue):
    venue.core.submit(new("A", BUY, 10, "99.00"))  # rests
    venue.core.submit(new("B", SELL, 5, tif=IOC))  # trades
    venue.core.cancel("S1", "A-C", "A")
    venue.clock.advance(1_000)
    venue.core.replenish()
    aapl = [s for s in venue.published if s.symbol == "AAPL"]
    assert len(aapl) == 4
    assert [s.seq for s in aapl] == sorted({s.seq for s in aapl})
    assert aapl[-1].ts_ns == venue.clock.now_ns() and aapl[0].ts_ns < aapl[-1].ts_ns
    assert {s.venue for s in venue.published} == {"LITA"}
    assert venue.core.snapshot("AAPL").seq == aapl[-1].seq + 1
    msft = [s.seq for s in venue.published if s.symbol == "MSFT"]
    assert msft == [1]  # each symbol counts on its own


def test_snapshot_shows_at_most_ten_levels_per_side():
    venue = Venue(lit(depth=DepthProfile(levels=12, qty_per_level=10)))
    snap = venue.book()
    assert len(snap.bids) == len(snap.asks) == 10
    assert snap.bids[0].price > snap.bids[-1].price and snap.asks[0].price < snap.asks[-1].price


def test_replenish_restores_the_seeded_profile(venue):
    before = venue.book()
    venue.core.submit(new("M", BUY, before.asks[0].qty + 20))
    venue.core.submit(new("N", SELL, 30))
    assert venue.book().asks != before.asks
    assert venue.core.replenish() == []
    after = venue.book()
    assert (after.bids, after.asks) == (before.bids, before.asks)


def test_replenish_never_crosses_a_resting_client_order(venue):
    a1 = venue.book().asks[0]
    venue.core.submit(new("D", BUY, a1.qty + 50, str(a1.price)))  # now the best bid at the old best ask
    venue.core.replenish()
    snap = venue.book()
    assert snap.bids[0] == Level(a1.price, 50)
    assert snap.asks[0].price > a1.price


def test_replenish_does_not_count_client_quantity_as_the_venues_own(venue):
    b1 = venue.book().bids[0]
    venue.core.submit(new("J", BUY, 30, str(b1.price)))
    venue.core.submit(new("X", SELL, b1.qty, str(b1.price), owner="S2"))  # takes the venue's own, not J
    venue.core.replenish()
    assert venue.book().bids[0] == Level(b1.price, b1.qty + 30)


def test_without_background_flow_replenish_never_fills_clients(venue):
    venue.core.submit(new("P", BUY, 10, "100.00"))
    for _ in range(50):
        assert venue.core.replenish() == []
    assert venue.core.open_orders("S1")[0].leaves_qty == 10


def test_background_flow_fills_resting_client_orders_over_time():
    venue = Venue(lit(background_flow=1.0))
    venue.core.submit(new("P", BUY, 60, "100.00"))  # alone at the best bid, inside the spread
    fills = []
    for _ in range(100):
        fills += venue.core.replenish()
    assert fills, "a background sell should have hit the best bid"
    assert {(r.cl_ord_id, r.liquidity, r.exec_type) for r in fills} == {("P", Liquidity.MAKER, ExecType.TRADE)}
    assert sum(r.last_qty for r in fills) == 60
    assert fills[-1].ord_status is OrdStatus.FILLED and venue.core.open_orders("S1") == []


def test_open_orders_lists_only_that_owners_live_orders(venue):
    venue.core.submit(new("A", BUY, 10, "99.00"))
    venue.core.submit(new("B", SELL, 10, "101.00"))
    venue.core.submit(new("C", BUY, 10, "99.00", owner="S2"))
    venue.core.cancel("S1", "A-C", "A")
    [b] = venue.core.open_orders("S1")
    assert (b.cl_ord_id, b.ord_status, b.leaves_qty, b.price) == ("B", OrdStatus.NEW, 10, D("101.00"))


# --- determinism and ids ---------------------------------------------------------------------


def script(venue: Venue) -> tuple[list[SimReport], list[BookSnapshot]]:
    out: list[SimReport] = []
    for i in range(30):
        side = BUY if i % 3 else SELL
        price = str(D("100") + (D(i % 7) - 3) / 100)
        out += venue.core.submit(
            new(
                f"O{i}",
                side,
                10 + 37 * i % 150,
                price,
                tif=(DAY, IOC, FOK)[i % 3],
                owner=f"S{i % 2}",
                symbol=("AAPL", "MSFT")[i % 5 == 0],
            )
        )
        if i % 4 == 0:
            out += venue.core.cancel(f"S{i % 2}", f"X{i}", f"O{i - 4}").reports
        if i % 5 == 0:
            venue.clock.advance(10_000_000)
            out += venue.core.replenish()
    return out, venue.published


def test_same_seed_and_calls_give_identical_reports_and_snapshots():
    config = lit(reject_rate=0.2, background_flow=0.5)
    first = script(Venue(config, seed=11))
    second = script(Venue(config, seed=11))
    assert first == second
    assert any(r.exec_type is ExecType.TRADE for r in first[0])
    assert any(r.text == SIMULATED_REJECT for r in first[0])
    assert script(Venue(config, seed=12)) != first


def test_exec_and_order_ids_are_unique_and_name_the_venue_and_boot():
    venue = Venue(lit(background_flow=0.5))
    boot = format(venue.clock.now_ns() // 1_000_000, "x")  # the clock at construction
    reports, _ = script(venue)
    assert len({r.exec_id for r in reports}) == len(reports)
    assert all(r.exec_id.startswith(f"LITA-{boot}-") for r in reports)
    ids = {r.cl_ord_id: r.order_id for r in reports if r.exec_type is ExecType.NEW}
    assert len(set(ids.values())) == len(ids)
    restarted = ManualClock(start_ns=venue.clock.now_ns() + 5_000_000_000)
    again = VenueCore(lit(), [AAPL], 7, restarted).submit(new("O1", BUY, 1, "99.00"))[0]
    assert again.exec_id not in {r.exec_id for r in reports} and again.order_id not in ids.values()


# --- invariants under random flow ------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from([BUY, SELL, Side.SELL_SHORT]),
            st.integers(-1, 400),
            st.one_of(st.none(), st.integers(9990, 10010)),
            st.sampled_from([DAY, IOC, FOK]),
            st.sampled_from(["S1", "S2"]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 50), st.sampled_from(["S1", "S2"])),
        st.tuples(st.just("replenish")),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions, st.integers(0, 3), st.sampled_from([VenueKind.LIT, VenueKind.DARK]))
def test_reports_stay_consistent_under_random_flow(steps, seed, kind):
    config = lit(reject_rate=0.1, kind=kind, dark=DarkLiquidity(mean_qty=300, stdev_qty=200), background_flow=0.5)
    venue = Venue(config, seed=seed, nbbo=Nbbo(D("99.99"), 100, D("100.02"), 100))
    reports: list[SimReport] = []
    submitted: dict[tuple[str, str], int] = {}
    for n, step in enumerate(steps):
        if step[0] == "order":
            _, side, qty, ticks, tif, owner = step
            price = None if ticks is None else str(D(ticks) / 100)
            reports += venue.core.submit(new(f"O{n}", side, qty, price, tif=tif, owner=owner))
            submitted[(owner, f"O{n}")] = qty
        elif step[0] == "cancel":
            reports += venue.core.cancel(step[2], f"C{n}", f"O{step[1]}").reports
        else:
            reports += venue.core.replenish()
    for snap in venue.published:
        assert not snap.bids or not snap.asks or snap.bids[0].price < snap.asks[0].price, "book crossed"
    assert len({r.exec_id for r in reports}) == len(reports)

    by_order: dict[tuple[str, str], list[SimReport]] = {}
    for r in reports:
        by_order.setdefault((r.owner, r.orig_cl_ord_id or r.cl_ord_id), []).append(r)
    for key, history in by_order.items():
        qty = submitted[key]
        filled = notional = 0
        for r in history:
            assert r.order_qty == qty
            if r.exec_type is ExecType.TRADE:
                assert r.last_qty > 0
                filled += r.last_qty
                notional += r.last_qty * r.last_px
                assert r.avg_px == notional / filled
                if r.price is not None:
                    assert r.last_px <= r.price if r.side is BUY else r.last_px >= r.price
            assert r.cum_qty == filled <= max(qty, 0), "over-filled"
            if r.ord_status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED):
                assert r.leaves_qty == qty - r.cum_qty
            else:
                assert r.leaves_qty == 0
        terminal = [i for i, r in enumerate(history) if r.ord_status not in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)]
        assert terminal in ([], [len(history) - 1]), "nothing may follow a terminal report"
