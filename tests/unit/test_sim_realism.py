"""Simulator realism without sockets: adverse selection, dark size distributions, speed bump, background flow."""

from __future__ import annotations

import random
import statistics
import threading
import zlib
from decimal import Decimal as D

import pytest

from gateway.bus.inprocess import InProcessBus
from gateway.config import DarkLiquidity, DepthProfile, SimVenueConfig, SymbolConfig, Toxicity, VenuesConfig
from gateway.core.clock import ManualClock
from gateway.core.market import BookSnapshot, Nbbo
from gateway.core.types import ExecType, OrdType, Side, TimeInForce, VenueKind
from gateway.simulator.host import Scheduler, VenueHost, inbound_delay_ms
from gateway.simulator.venue import SimOrder, SimReport, VenueCore, hidden_qty

AAPL = SymbolConfig(symbol="AAPL", tick=D("0.01"), reference_price=D("100"))
DAY, IOC = TimeInForce.DAY, TimeInForce.IOC
BUY, SELL = Side.BUY, Side.SELL


def lit(**overrides) -> SimVenueConfig:
    settings = {"name": "LITA", "port": 1, "depth": DepthProfile(levels=3, qty_per_level=100, spread_ticks=1)}
    return SimVenueConfig(**{**settings, **overrides})


def toxic(probability: float = 1.0, ticks: int = 1, **overrides) -> SimVenueConfig:
    return lit(toxicity=Toxicity(probability=probability, ticks=ticks), **overrides)


class Venue:
    """A VenueCore on AAPL with a manual clock and a record of what it published."""

    def __init__(self, config: SimVenueConfig, seed: int = 7, nbbo: Nbbo | None = None) -> None:
        self.published: list[BookSnapshot] = []
        self.core = VenueCore(
            config, [AAPL], seed, ManualClock(), publish=self.published.append, nbbo=lambda symbol: nbbo
        )
        self._seq = 0

    def send(
        self, side: Side, qty: int, price: str | None = None, tif: TimeInForce = IOC, owner: str = "S1"
    ) -> list[SimReport]:
        self._seq += 1
        return self.core.submit(
            SimOrder(
                owner,
                f"O{self._seq}",
                "AAPL",
                side,
                qty,
                OrdType.LIMIT if price else OrdType.MARKET,
                D(price) if price else None,
                tif,
            )
        )

    def quotes(self) -> tuple[list[D], list[D]]:
        snap = self.core.snapshot("AAPL")
        return [lv.price for lv in snap.bids], [lv.price for lv in snap.asks]


def traded(reports: list[SimReport]) -> int:
    return sum(r.last_qty for r in reports if r.exec_type is ExecType.TRADE)


# --- toxicity ---------------------------------------------------------------------------------


def test_a_toxic_venue_moves_its_quotes_down_after_a_client_buy_takes():
    venue = Venue(toxic(ticks=2))
    assert venue.quotes() == ([D("99.99"), D("99.98"), D("99.97")], [D("100.01"), D("100.02"), D("100.03")])
    assert traded(venue.send(BUY, 10, "100.01")) == 10
    assert venue.quotes() == ([D("99.97"), D("99.96"), D("99.95")], [D("99.99"), D("100.00"), D("100.01")])
    moved = venue.published[-1]
    assert (moved.bids[0].price, moved.asks[0].price) == (D("99.97"), D("99.99")), "the move is published"


def test_a_toxic_venue_moves_its_quotes_up_after_a_client_sell_takes():
    venue = Venue(toxic(ticks=1))
    venue.send(SELL, 10, "99.99")
    assert venue.quotes() == ([D("100.00"), D("99.99"), D("99.98")], [D("100.02"), D("100.03"), D("100.04")])


def test_the_fill_is_published_before_the_move():
    venue = Venue(toxic(ticks=2))
    venue.send(BUY, 10, "100.01")
    filled, moved = venue.published[-2:]
    assert filled.asks[0].price == D("100.01") and moved.asks[0].price == D("99.99")
    assert moved.seq == filled.seq + 1


def test_a_move_tops_the_profile_up_at_once_around_the_new_centre():
    venue = Venue(toxic())
    before = venue.core.snapshot("AAPL")
    (b0, b1, b2), (a0, a1, a2) = ([lv.qty for lv in side] for side in (before.bids, before.asks))
    venue.send(BUY, a0 + 5, "100.02")  # the whole best ask and 5 of the next; the centre moves down a tick
    after = venue.core.snapshot("AAPL")
    # Each level's target moved with the centre; what the venue already had there is kept.
    assert [lv.price for lv in after.bids] == [D("99.98"), D("99.97"), D("99.96")]
    assert [lv.qty for lv in after.bids] == [max(b0, b1), max(b1, b2), b2]
    assert [lv.price for lv in after.asks] == [D("100.00"), D("100.01"), D("100.02")]
    assert [lv.qty for lv in after.asks] == [a0, a1, max(a1 - 5, a2)]


@pytest.mark.parametrize("tox", [Toxicity(probability=0, ticks=2), Toxicity(probability=1, ticks=0)])
def test_no_move_without_probability_or_ticks(tox):
    venue = Venue(lit(toxicity=tox))
    for _ in range(20):
        assert traded(venue.send(BUY, 1, "100.01")) == 1
        assert traded(venue.send(SELL, 1, "99.99")) == 1
    assert venue.quotes() == ([D("99.99"), D("99.98"), D("99.97")], [D("100.01"), D("100.02"), D("100.03")])


def test_no_move_when_nothing_was_taken_or_on_background_flow():
    venue = Venue(toxic(background_flow=1.0))
    venue.send(BUY, 10, "99.95", tif=DAY)  # rests, takes nothing
    venue.send(BUY, 10, "99.00", tif=IOC)  # expires, takes nothing
    for _ in range(20):
        venue.core.replenish()  # background market orders take, but they are not a client's
    assert venue.quotes()[0][0] == D("99.99") and venue.quotes()[1][0] == D("100.01")


def test_shift_moves_the_centre_and_relays_the_venues_own_quotes():
    venue = Venue(lit())
    venue.core.shift("AAPL", 2)
    assert venue.core.centre("AAPL") == D("100.02")
    assert venue.quotes() == ([D("100.01"), D("100.00"), D("99.99")], [D("100.03"), D("100.04"), D("100.05")])
    assert venue.published[-1].asks[0].price == D("100.03"), "the shift is published"
    venue.core.shift("AAPL", -100_000)
    assert venue.core.centre("AAPL") == D("0.01"), "the centre stays above zero"


def test_what_background_flow_takes_stays_gone_until_the_next_replenish():
    venue = Venue(lit(background_flow=1.0, depth=DepthProfile(levels=3, qty_per_level=100, replenish_ms=10)))
    full = venue.core.snapshot("AAPL")
    shown = []
    for _ in range(20):
        venue.core.replenish()
        shown.append(venue.published[-1])
    taken = [sum(lv.qty for lv in full.bids + full.asks) - sum(lv.qty for lv in s.bids + s.asks) for s in shown]
    assert all(t > 0 for t in taken), "each replenish's background order shows in what is published"
    assert len(set(taken)) > 1


def states(venue: Venue, owner: str) -> list[tuple]:
    return [
        (r.cl_ord_id, r.order_id, r.side, r.price, r.leaves_qty, r.cum_qty, r.ord_status)
        for r in venue.core.open_orders(owner)
    ]


def test_client_resting_orders_survive_a_move_untouched():
    venue = Venue(toxic(ticks=3))
    venue.send(SELL, 40, "100.02", tif=DAY, owner="S2")
    venue.send(BUY, 30, "100.00", tif=DAY, owner="S2")
    before = states(venue, "S2")
    venue.send(BUY, 10, "100.01")  # centre 100.00 -> 99.97
    assert states(venue, "S2") == before
    snap = venue.core.snapshot("AAPL")
    # Asks re-laid at 99.98, 99.99 and 100.00 would all cross S2's bid: skipped, S2's ask is all that is left.
    assert [(lv.price, lv.qty) for lv in snap.asks] == [(D("100.02"), 40)]
    assert snap.bids[0].price == D("100.00") and snap.bids[0].qty == 30  # S2's bid alone at the top
    assert [lv.price for lv in snap.bids[1:]] == [D("99.96"), D("99.95"), D("99.94")]


def test_a_taker_remainder_that_rests_stays_where_it_rests():
    venue = Venue(toxic())
    best_ask = venue.core.snapshot("AAPL").asks[0]
    venue.send(BUY, best_ask.qty + 20, "100.01", tif=DAY)
    [resting] = venue.core.open_orders("S1")
    assert (resting.price, resting.leaves_qty) == (D("100.01"), 20)
    bids, asks = venue.quotes()
    assert bids == [D("100.01"), D("99.98"), D("99.97"), D("99.96")], "the bid profile sits behind it"
    assert asks[0] == D("100.02"), "asks at 100.00 and 100.01 would cross it"


def flow(venue: Venue, seed: int, steps: int = 200) -> list[SimReport]:
    """Random client orders, replenishes in between: a reproducible script."""
    rng = random.Random(seed)
    reports: list[SimReport] = []
    for _ in range(steps):
        side = BUY if rng.random() < 0.5 else SELL
        price = str(D("100") + D(rng.randint(-6, 6)) / 100)
        reports += venue.send(
            side, rng.randint(1, 150), price, tif=rng.choice([DAY, IOC]), owner=rng.choice(["S1", "S2"])
        )
        if rng.random() < 0.2:
            reports += venue.core.replenish()
    return reports


def test_moves_are_deterministic_for_a_seed():
    config = toxic(probability=0.5, ticks=2, background_flow=0.3)
    first, second, other = Venue(config, seed=11), Venue(config, seed=11), Venue(config, seed=12)
    reports = flow(first, 1)
    assert reports == flow(second, 1) and first.published == second.published
    flow(other, 1)
    assert other.published != first.published
    tops = {snap.asks[0].price for snap in first.published if snap.asks}
    assert len(tops) > 5, "the quotes should have wandered"


def test_defaults_draw_nothing_extra_so_the_venue_behaves_as_before():
    plain, off = Venue(lit(), seed=5), Venue(lit(toxicity=Toxicity(probability=0, ticks=4)), seed=5)
    assert flow(plain, 3) == flow(off, 3) and plain.published == off.published


def test_the_book_never_crosses_and_client_orders_keep_their_price_under_toxic_flow():
    venue = Venue(toxic(probability=0.7, ticks=3, background_flow=0.5), seed=2)
    reports = flow(venue, 9, steps=400)
    assert any(r.exec_type is ExecType.TRADE for r in reports)
    for snap in venue.published:
        assert not snap.bids or not snap.asks or snap.bids[0].price < snap.asks[0].price, "book crossed"
    acks = {r.cl_ord_id: r.price for r in reports if r.exec_type is ExecType.NEW}
    for owner in ("S1", "S2"):
        for open_order in venue.core.open_orders(owner):
            assert open_order.price == acks[open_order.cl_ord_id]


def test_a_dark_venue_ignores_toxicity():
    nbbo = Nbbo(D("99.99"), 100, D("100.01"), 100)
    plain, tox = Venue(lit(kind=VenueKind.DARK), nbbo=nbbo), Venue(toxic(kind=VenueKind.DARK), nbbo=nbbo)
    assert flow(plain, 6, steps=30) == flow(tox, 6, steps=30) and plain.published == tox.published


# --- dark liquidity ---------------------------------------------------------------------------


def dark_draws(dark: DarkLiquidity, n: int = 2000, seed: int = 4) -> list[int]:
    """The hidden sell size after each of n replenishes, as a large market buy finds it."""
    venue = Venue(lit(kind=VenueKind.DARK, dark=dark), seed=seed, nbbo=Nbbo(D("99.99"), 100, D("100.01"), 100))
    draws = []
    for _ in range(n):
        venue.core.replenish()
        draws.append(traded(venue.send(BUY, 1_000_000)))
    return draws


@pytest.mark.parametrize(
    "dark, stdev",
    [
        (DarkLiquidity(mean_qty=1000, stdev_qty=300), 300),
        (DarkLiquidity(mean_qty=1000, distribution="exponential"), 1000),
        (DarkLiquidity(mean_qty=1000, distribution="uniform"), 2000 / 12**0.5),
    ],
    ids=["normal", "exponential", "uniform"],
)
def test_hidden_size_follows_the_configured_distribution(dark, stdev):
    draws = dark_draws(dark)
    assert 900 <= statistics.mean(draws) <= 1100
    assert 0.85 * stdev <= statistics.stdev(draws) <= 1.15 * stdev
    assert min(draws) >= 0


def test_uniform_hidden_size_stays_within_twice_the_mean():
    draws = dark_draws(DarkLiquidity(mean_qty=500, distribution="uniform"))
    assert max(draws) <= 1000 and min(draws) < 50 and max(draws) > 950


def test_exponential_with_a_zero_mean_is_empty():
    assert set(dark_draws(DarkLiquidity(mean_qty=0, distribution="exponential"), n=50)) == {0}


@pytest.mark.parametrize("distribution", ["normal", "exponential", "uniform"])
def test_fill_probability_zero_never_fills(distribution):
    assert set(dark_draws(DarkLiquidity(distribution=distribution, fill_probability=0), n=200)) == {0}


def test_fill_probability_is_the_share_of_draws_with_any_size():
    draws = dark_draws(DarkLiquidity(mean_qty=1000, stdev_qty=100, fill_probability=0.3))
    assert 0.25 <= sum(1 for d in draws if d) / len(draws) <= 0.35
    assert 950 <= statistics.mean([d for d in draws if d]) <= 1050


def test_hidden_qty_is_the_venues_own_draw():
    dark = DarkLiquidity(mean_qty=700, stdev_qty=250, fill_probability=0.6)
    venue = Venue(lit(kind=VenueKind.DARK, dark=dark), seed=3, nbbo=Nbbo(D("99.99"), 100, D("100.01"), 100))
    rng = random.Random(3 ^ zlib.crc32(b"LITA"))
    bid, ask = hidden_qty(dark, rng), hidden_qty(dark, rng)  # the venue draws the bid side first, at start-up
    assert (traded(venue.send(SELL, 1_000_000)), traded(venue.send(BUY, 1_000_000))) == (bid, ask)


def test_dark_draws_are_deterministic_for_a_seed():
    dark = DarkLiquidity(distribution="exponential", fill_probability=0.5)
    assert dark_draws(dark, n=100, seed=1) == dark_draws(dark, n=100, seed=1) != dark_draws(dark, n=100, seed=2)


# --- speed bump and host settings -------------------------------------------------------------


def test_inbound_delay_is_the_speed_bump_plus_the_ack_latency():
    assert inbound_delay_ms(lit()) == 0
    assert inbound_delay_ms(lit(speed_bump_us=350)) == 0.35
    assert inbound_delay_ms(lit(speed_bump_us=350, ack_latency_ms=0.5)) == 0.85


def test_tasks_with_the_same_delay_run_in_the_order_scheduled():
    scheduler = Scheduler()
    ran: list[int] = []
    done = threading.Event()
    try:
        for i in range(50):
            scheduler.call_later(0.01, lambda i=i: ran.append(i))
        scheduler.call_later(0.01, done.set)
        assert done.wait(5)
    finally:
        scheduler.stop()
    assert ran == list(range(50))


def venues_config() -> VenuesConfig:
    return VenuesConfig(
        symbols=(AAPL,), venues=(lit(name="LITA", port=1, background_flow=0.2), lit(name="LITB", port=2))
    )


def test_the_host_uses_each_venues_background_flow(tmp_path):
    host = VenueHost(venues_config(), tmp_path, InProcessBus())
    assert sorted((c.name, c.config.background_flow) for c in host.cores.values()) == [("LITA", 0.2), ("LITB", 0)]
