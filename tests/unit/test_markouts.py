"""Markouts: sign and bps, resolution at the first mid at or after each horizon, qty-weighted aggregation, memory."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from gateway.analytics.markouts import MarkoutStats, MarkoutTracker
from gateway.core.types import Side

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
BUY, SELL = Side.BUY, Side.SELL


def test_buy_followed_by_a_rising_mid_earns_five_bps_at_one_second():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "DRK1", BUY, 100, D("100.00"), T0)

    (markout,) = tracker.on_mid("ACME", T0 + SEC, D("100.05"))

    assert (markout.venue, markout.horizon_ns, markout.per_share) == ("DRK1", SEC, D("0.05"))
    assert markout.bps == pytest.approx(5.0)
    assert tracker.summary() == {("DRK1", SEC): MarkoutStats(1, 100, D("0.05"), pytest.approx(5.0))}


def test_a_sell_picked_off_marks_negative():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "DRK1", SELL, 200, D("100.00"), T0)

    (markout,) = tracker.on_mid("ACME", T0 + SEC, D("100.10"))

    assert markout.per_share == D("-0.10")
    assert markout.bps == pytest.approx(-10.0)


def test_sell_short_marks_like_a_sell():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "DRK1", Side.SELL_SHORT, 100, D("50.00"), T0)

    assert tracker.on_mid("ACME", T0 + SEC, D("49.95"))[0].per_share == D("0.05")


def test_a_fill_resolves_only_once_its_horizon_has_elapsed():
    tracker = MarkoutTracker([SEC, 5 * SEC])
    tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), T0)

    assert tracker.on_mid("ACME", T0 + SEC - 1, D("10.01")) == []
    assert [m.horizon_ns for m in tracker.on_mid("ACME", T0 + SEC, D("10.02"))] == [SEC]
    assert tracker.on_mid("ACME", T0 + 5 * SEC - 1, D("10.03")) == []
    assert [m.horizon_ns for m in tracker.on_mid("ACME", T0 + 5 * SEC, D("10.04"))] == [5 * SEC]
    assert tracker.pending == 0


def test_the_mid_used_is_the_first_at_or_after_the_horizon():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), T0)

    tracker.on_mid("ACME", T0 + SEC // 2, D("10.01"))
    resolved = tracker.on_mid("ACME", T0 + 1_200_000_000, D("10.03"))
    tracker.on_mid("ACME", T0 + 1_500_000_000, D("10.09"))

    assert [m.mid for m in resolved] == [D("10.03")]
    assert tracker.stats("ARCA", SEC).mean_per_share == D("0.03")


def test_aggregation_is_quantity_weighted_per_venue_and_horizon():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "DRK1", BUY, 100, D("10.00"), T0)  # +0.10 at the mid below
    tracker.on_fill("ACME", "DRK1", BUY, 300, D("10.12"), T0)  # -0.02
    tracker.on_fill("ACME", "DRK2", SELL, 100, D("10.00"), T0)  # -0.10
    tracker.on_mid("ACME", T0 + SEC, D("10.10"))

    drk1 = tracker.stats("DRK1", SEC)
    assert (drk1.count, drk1.qty) == (2, 400)
    assert drk1.mean_per_share == D("0.01")  # (100 * 0.10 - 300 * 0.02) / 400
    assert drk1.mean_bps == pytest.approx((100 * 100.0 - 300 * 0.02 / 10.12 * 10_000) / 400)
    assert tracker.stats("DRK2", SEC).mean_per_share == D("-0.10")
    assert set(tracker.summary()) == {("DRK1", SEC), ("DRK2", SEC)}
    assert tracker.stats("DRK1", 2 * SEC) is None


def test_mid_at_fill_resolves_horizon_zero_at_once_and_without_it_the_next_mid_does():
    tracker = MarkoutTracker([0, SEC])
    assert [m.per_share for m in tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.01"), T0, D("10.005"))] == [
        D("-0.005")
    ]
    assert tracker.on_fill("ACME", "BATS", BUY, 100, D("10.01"), T0 + 1) == []

    resolved = tracker.on_mid("ACME", T0 + 1, D("10.005"))

    assert [(m.venue, m.horizon_ns) for m in resolved] == [("BATS", 0)]


def test_symbols_resolve_independently():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), T0)

    assert tracker.on_mid("OTHER", T0 + SEC, D("99.00")) == []
    assert len(tracker.on_mid("ACME", T0 + SEC, D("10.00"))) == 1


def test_a_late_reported_fill_takes_its_place_in_time_order():
    tracker = MarkoutTracker([SEC])
    tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), T0 + 2 * SEC)
    tracker.on_fill("ACME", "BATS", BUY, 100, D("10.00"), T0)  # reported after a later fill

    assert [m.venue for m in tracker.on_mid("ACME", T0 + SEC, D("10.01"))] == ["BATS"]
    assert [m.venue for m in tracker.on_mid("ACME", T0 + 3 * SEC, D("10.01"))] == ["ARCA"]


def test_memory_stays_bounded_over_many_fills():
    tracker = MarkoutTracker([SEC, 10 * SEC])
    ms = 1_000_000
    for i in range(20_000):  # a fill and a mid every millisecond
        ts = T0 + i * ms
        tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), ts)
        tracker.on_mid("ACME", ts, D("10.00"))
        assert tracker.pending <= 1_000 + 10_000 + 2  # only the fills younger than each horizon wait
    tracker.on_mid("ACME", T0 + 100 * SEC, D("10.00"))
    assert tracker.pending == 0
    assert tracker.stats("ARCA", 10 * SEC).count == 20_000


def test_fills_waiting_on_a_silent_symbol_are_capped():
    tracker = MarkoutTracker([SEC], max_pending=50)
    for i in range(80):
        tracker.on_fill("ACME", "ARCA", BUY, 100, D("10.00"), T0 + i)

    assert (tracker.pending, tracker.dropped) == (50, 30)
    assert [m.fill_ts_ns for m in tracker.on_mid("ACME", T0 + 2 * SEC, D("10.00"))] == list(range(T0 + 30, T0 + 80))


@pytest.mark.parametrize("qty, price", [(0, "10"), (-5, "10"), (100, "0")])
def test_a_fill_without_positive_qty_and_price_is_refused(qty, price):
    with pytest.raises(ValueError):
        MarkoutTracker([SEC]).on_fill("ACME", "ARCA", BUY, qty, D(price), T0)


def test_horizons_must_be_non_negative_and_given():
    with pytest.raises(ValueError):
        MarkoutTracker([])
    with pytest.raises(ValueError):
        MarkoutTracker([-1])
    assert MarkoutTracker([5, 1, 5]).horizons_ns == (1, 5)
