"""The dark pool: midpoint crossing against hidden size and resting orders, in the pool and behind a VenueCore."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from gateway.config import DarkLiquidity, SimVenueConfig, SymbolConfig
from gateway.core.clock import ManualClock
from gateway.core.market import BookSnapshot, Nbbo
from gateway.core.types import ExecType, Liquidity, OrdStatus, OrdType, Side, TimeInForce, VenueKind
from gateway.simulator.darkpool import DarkPool
from gateway.simulator.orderbook import Order
from gateway.simulator.venue import SimOrder, SimReport, VenueCore

AAPL = SymbolConfig(symbol="AAPL", tick=D("0.01"), reference_price=D("100"))
DAY, IOC, FOK = TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
BUY, SELL = Side.BUY, Side.SELL


def order(side: Side, qty: int, limit: str | None = None, owner: str = "c") -> Order:
    return Order(owner, "C", "O", side, qty, D(limit) if limit is not None else None)


# --- the pool on its own ---------------------------------------------------------------------


def test_cross_takes_resting_contra_first_then_hidden_at_the_mid():
    pool = DarkPool()
    pool.hidden = {True: 0, False: 500}
    maker = order(SELL, 100)
    pool.rest(maker)
    taker = order(BUY, 300, "100.01")
    fills = list(pool.cross(taker, D("100.005")))
    assert [(f.maker, f.qty, f.price) for f in fills] == [(maker, 100, D("100.005")), (None, 200, D("100.005"))]
    assert pool.hidden[False] == 300 and pool.resting() == ()
    assert taker.leaves == 0 and taker.avg_px == D("100.005")


def test_no_cross_without_a_mid_or_beyond_a_limit():
    pool = DarkPool()
    pool.hidden = {True: 1000, False: 1000}
    assert list(pool.cross(order(BUY, 10, "100.00"), None)) == []
    assert list(pool.cross(order(BUY, 10, "100.00"), D("100.005"))) == []
    assert list(pool.cross(order(SELL, 10, "100.01"), D("100.005"))) == []
    assert pool.hidden == {True: 1000, False: 1000}


def test_resting_contra_outside_its_own_limit_is_skipped():
    pool = DarkPool()
    capped = order(SELL, 100, "100.01")
    pool.rest(capped)
    assert pool.available(order(BUY, 100), D("100.005")) == 0
    assert list(pool.cross(order(BUY, 100), D("100.005"))) == []
    assert capped.leaves == 100


def test_sweep_crosses_resting_orders_oldest_first():
    pool = DarkPool()
    first, second = order(BUY, 300), order(BUY, 300)
    pool.rest(first)
    pool.rest(second)
    pool.hidden[False] = 400
    crossed = [(o, f.qty) for o, f in pool.sweep(D("100"))]
    assert crossed == [(first, 300), (second, 100)]
    assert pool.resting() == (second,)


def test_remove():
    pool = DarkPool()
    o = order(BUY, 10)
    pool.rest(o)
    assert pool.remove(o) and not pool.remove(o)


# --- a dark venue ----------------------------------------------------------------------------


class Dark:
    """A dark VenueCore whose NBBO the test sets."""

    def __init__(self, mean: int = 1000, stdev: int = 0, min_qty: int = 1, seed: int = 3, **overrides) -> None:
        self.nbbo: Nbbo | None = Nbbo(D("100.00"), 500, D("100.02"), 500)
        self.published: list[BookSnapshot] = []
        config = SimVenueConfig(
            name="DRKA",
            kind=VenueKind.DARK,
            port=1,
            min_qty=min_qty,
            maker_fee=D("0.0005"),
            taker_fee=D("0.001"),
            dark=DarkLiquidity(mean_qty=mean, stdev_qty=stdev),
            **overrides,
        )
        self.core = VenueCore(
            config,
            [AAPL],
            seed,
            ManualClock(),
            publish=self.published.append,
            nbbo=lambda symbol: self.nbbo if symbol == "AAPL" else None,
        )

    def submit(
        self, cl: str, side: Side, qty: int, price: str | None = None, tif: TimeInForce = IOC, owner: str = "S1"
    ) -> list[SimReport]:
        return self.core.submit(
            SimOrder(
                owner,
                cl,
                "AAPL",
                side,
                qty,
                OrdType.LIMIT if price else OrdType.MARKET,
                D(price) if price else None,
                tif,
            )
        )


def fills(reports: list[SimReport]) -> list[tuple[str, int, D]]:
    return [(r.cl_ord_id, r.last_qty, r.last_px) for r in reports if r.exec_type is ExecType.TRADE]


def test_crosses_at_the_nbbo_mid_and_consumes_hidden_size():
    dark = Dark()
    reports = dark.submit("B1", BUY, 300, "100.02")
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.TRADE]
    fill = reports[1]
    assert (fill.last_qty, fill.last_px, fill.liquidity, fill.ord_status) == (
        300,
        D("100.01"),
        Liquidity.DARK,
        OrdStatus.FILLED,
    )
    assert (fill.avg_px, fill.fee) == (D("100.01"), D("0.3"))
    assert fills(dark.submit("B2", BUY, 1000, "100.02")) == [("B2", 700, D("100.01"))]  # 1000 hidden - 300


def test_half_tick_mid_is_kept_exactly():
    dark = Dark()
    dark.nbbo = Nbbo(D("100.00"), 100, D("100.01"), 100)
    assert fills(dark.submit("S1", SELL, 200, "100.00")) == [("S1", 200, D("100.005"))]


def test_market_order_crosses_at_any_mid():
    dark = Dark()
    dark.nbbo = Nbbo(D("250.00"), 100, D("250.10"), 100)
    assert fills(dark.submit("M", SELL, 10)) == [("M", 10, D("250.05"))]


def test_fill_is_capped_by_hidden_size_and_ioc_remainder_expires():
    dark = Dark(mean=400)
    reports = dark.submit("B1", BUY, 1000, "100.02")
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.TRADE, ExecType.EXPIRED]
    assert (reports[1].last_qty, reports[2].cum_qty, reports[2].leaves_qty, reports[2].ord_status) == (
        400,
        400,
        0,
        OrdStatus.EXPIRED,
    )


def test_below_minimum_size_is_rejected():
    dark = Dark(min_qty=100)
    [report] = dark.submit("B1", BUY, 99, "100.02")
    assert (report.exec_type, report.text) == (ExecType.REJECTED, "below minimum size 100")
    assert fills(dark.submit("B2", BUY, 100, "100.02")) == [("B2", 100, D("100.01"))]


@pytest.mark.parametrize(("side", "limit"), [(BUY, "100.00"), (SELL, "100.02")])
def test_no_cross_when_the_mid_is_outside_the_limit(side, limit):
    dark = Dark()
    reports = dark.submit("X", side, 100, limit)
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.EXPIRED]
    assert fills(dark.submit("Y", side, 1000, "100.01")) == [("Y", 1000, D("100.01"))]  # hidden untouched


@pytest.mark.parametrize("nbbo", [None, Nbbo(None, 0, D("100.02"), 100), Nbbo(D("100.03"), 100, D("100.02"), 100)])
def test_no_cross_without_a_usable_nbbo(nbbo):
    dark = Dark()
    dark.nbbo = nbbo
    assert [r.exec_type for r in dark.submit("X", BUY, 100)] == [ExecType.NEW, ExecType.EXPIRED]


def test_fok_is_all_or_nothing():
    dark = Dark(mean=500)
    reports = dark.submit("F1", BUY, 501, "100.02", tif=FOK)
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.EXPIRED] and reports[-1].cum_qty == 0
    reports = dark.submit("F2", BUY, 500, "100.02", tif=FOK)
    assert fills(reports) == [("F2", 500, D("100.01"))] and reports[-1].ord_status is OrdStatus.FILLED


def test_fok_counts_resting_orders_as_well_as_hidden_size():
    dark = Dark(mean=0)
    dark.submit("S", SELL, 300, tif=DAY, owner="S2")
    assert fills(dark.submit("F1", BUY, 301, tif=FOK)) == []
    assert fills(dark.submit("F2", BUY, 300, tif=FOK)) == [("F2", 300, D("100.01")), ("S", 300, D("100.01"))]


def test_day_remainder_rests_and_crosses_on_later_replenish():
    dark = Dark(mean=600)
    reports = dark.submit("D1", BUY, 1000, "100.02", tif=DAY)
    assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.TRADE]
    assert (reports[-1].ord_status, reports[-1].leaves_qty) == (OrdStatus.PARTIALLY_FILLED, 400)
    [status] = dark.core.open_orders("S1")
    assert status.leaves_qty == 400
    dark.nbbo = Nbbo(D("100.02"), 100, D("100.03"), 100)  # mid 100.025: beyond the limit, no cross
    assert dark.core.replenish() == []
    dark.nbbo = Nbbo(D("99.98"), 100, D("100.00"), 100)
    [fill] = dark.core.replenish()
    assert (fill.cl_ord_id, fill.last_qty, fill.last_px, fill.ord_status, fill.cum_qty) == (
        "D1",
        400,
        D("99.99"),
        OrdStatus.FILLED,
        1000,
    )
    assert fill.avg_px == (D("100.01") * 600 + D("99.99") * 400) / 1000
    assert fill.fee == D("0.0005") * 400  # resting: the maker fee
    assert dark.core.open_orders("S1") == []


def test_resting_client_orders_cross_each_other_at_the_mid():
    dark = Dark(mean=0)
    dark.submit("B", BUY, 300, "100.02", tif=DAY, owner="S1")
    reports = dark.submit("S", SELL, 200, tif=IOC, owner="S2")
    assert [(r.owner, r.cl_ord_id, r.exec_type, r.liquidity, r.last_qty) for r in reports] == [
        ("S2", "S", ExecType.NEW, None, 0),
        ("S2", "S", ExecType.TRADE, Liquidity.DARK, 200),
        ("S1", "B", ExecType.TRADE, Liquidity.DARK, 200),
    ]
    assert reports[2].leaves_qty == 100 and reports[2].last_px == D("100.01")


def test_cancel_a_resting_dark_order():
    dark = Dark(mean=0)
    dark.submit("D1", BUY, 300, tif=DAY)
    result = dark.core.cancel("S1", "D1-C", "D1")
    assert result.reject_reason is None and result.reports[0].ord_status is OrdStatus.CANCELED
    after = dark.submit("S", SELL, 100, owner="S2")
    assert [r.exec_type for r in after] == [ExecType.NEW, ExecType.EXPIRED]  # the canceled order is gone
    assert dark.core.open_orders("S1") == [] and dark.core.cancel("S1", "x", "D1").reject_reason is not None


def test_snapshots_show_nothing_but_are_published_on_change():
    dark = Dark()
    dark.submit("B1", BUY, 100)
    dark.core.replenish()
    assert [(s.venue, s.bids, s.asks) for s in dark.published] == [("DRKA", (), ())] * 2
    assert [s.seq for s in dark.published] == [1, 2]


def test_hidden_size_is_redrawn_on_each_replenish_and_never_negative():
    dark = Dark(mean=100, stdev=300)
    crossed = []
    for i in range(40):
        dark.core.replenish()
        crossed.append(sum(q for _, q, _ in fills(dark.submit(f"B{i}", BUY, 10_000))))
    assert min(crossed) == 0  # clipped at zero, not negative
    assert len(set(crossed)) > 10


def test_same_seed_same_dark_fills():
    def run(seed: int) -> list[SimReport]:
        dark = Dark(mean=500, stdev=200, seed=seed)
        out = []
        for i in range(10):
            out += dark.submit(f"B{i}", (BUY, SELL)[i % 2], 300, tif=(IOC, DAY)[i % 3 == 0])
            out += dark.core.replenish()
        return out

    assert run(5) == run(5) != run(6)
