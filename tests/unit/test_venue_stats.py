"""Per-venue statistics: smoothed fill rate, ack latency mean and p99, toxicity from markouts, immutable snapshots."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from gateway.analytics.markouts import MarkoutTracker
from gateway.analytics.venue_stats import VenueStats, VenueStatsConfig
from gateway.core.types import Side

SEC = 1_000_000_000
US = 1_000
T0 = 1_700_000_000 * SEC


def make_stats(**config) -> tuple[VenueStats, MarkoutTracker]:
    markouts = MarkoutTracker([SEC])
    config.setdefault("toxicity_horizon_ns", SEC)
    return VenueStats(markouts, VenueStatsConfig(**config), venues=["ARCA", "DRK1"]), markouts


def picked_off(stats: VenueStats, markouts: MarkoutTracker, venue: str, fills: int, bps: int | str) -> None:
    """`fills` buys of 100 at 100.00 that each mark `bps` at one second, fed to stats as the engine feeds them."""
    for _ in range(fills):
        markouts.on_fill("ACME", venue, Side.BUY, 100, D("100.00"), T0)
    for markout in markouts.on_mid("ACME", T0 + SEC, D("100.00") + D(bps) / 100):
        stats.on_markout(markout)


def test_a_new_venue_has_the_prior_fill_rate():
    stats, _ = make_stats()
    assert stats.fill_rate("ARCA") == 0.5
    assert stats.fill_rate("never-seen") == 0.5


def test_fill_rate_is_smoothed_toward_the_prior():
    stats, _ = make_stats()
    stats.on_child_done("ARCA", 100, 100)
    assert stats.fill_rate("ARCA") == pytest.approx(2 / 3)  # (1 * 1.0 + 1) / (1 + 2)

    for _ in range(98):
        stats.on_child_done("DRK1", 500, 0)
    assert 0 < stats.fill_rate("DRK1") == pytest.approx(1 / 100)


def test_fill_rate_weighs_quantity_within_the_observed_rate():
    stats, _ = make_stats()
    stats.on_child_done("ARCA", 100, 100)
    stats.on_child_done("ARCA", 900, 0)
    assert stats.fill_rate("ARCA") == pytest.approx((2 * 0.1 + 1) / 4)  # 100 of 1000 shares over two children


def test_a_done_child_with_impossible_quantities_is_refused():
    stats, _ = make_stats()
    with pytest.raises(ValueError):
        stats.on_child_done("ARCA", 100, 101)
    with pytest.raises(ValueError):
        stats.on_child_done("ARCA", 0, 0)


def test_latency_is_an_exponentially_weighted_mean_of_acks():
    stats, _ = make_stats(latency_alpha=0.25)
    assert stats.snapshot()["ARCA"].latency_us is None

    stats.on_ack("ARCA", T0 + 400 * US, T0)
    assert stats.snapshot()["ARCA"].latency_us == pytest.approx(400)
    stats.on_ack("ARCA", T0 + 800 * US, T0)
    assert stats.snapshot()["ARCA"].latency_us == pytest.approx(500)  # 400 + 0.25 * (800 - 400)
    stats.on_ack("ARCA", T0, T0 + 1)  # acked before it was sent: clock skew, not a sample
    assert stats.snapshot()["ARCA"].latency_us == pytest.approx(500)


def test_latency_p99_is_over_a_bounded_window():
    stats, _ = make_stats(latency_window=100)
    for us in range(1, 101):
        stats.on_ack("ARCA", T0 + us * US, T0)
    assert stats.snapshot()["ARCA"].latency_p99_us == 99

    for _ in range(100):  # the window now holds only these
        stats.on_ack("ARCA", T0 + 5 * US, T0)
    assert stats.snapshot()["ARCA"].latency_p99_us == 5


def test_toxicity_rises_with_adverse_markouts_and_is_zero_without_them():
    scores = []
    for bps in (5, 0, -1, -5, -20):
        stats, markouts = make_stats()
        picked_off(stats, markouts, "DRK1", 50, bps)
        scores.append(stats.toxicity("DRK1"))

    assert scores[:2] == [0.0, 0.0]
    assert scores[1] < scores[2] < scores[3] < scores[4] < 1


def test_toxicity_is_shrunk_when_there_are_few_fills():
    few, few_markouts = make_stats()
    many, many_markouts = make_stats()
    picked_off(few, few_markouts, "DRK1", 2, -10)
    picked_off(many, many_markouts, "DRK1", 200, -10)

    assert 0 < few.toxicity("DRK1") < many.toxicity("DRK1")
    assert few.toxicity("ARCA") == 0.0  # no markouts at all


def test_toxicity_counts_the_move_after_a_fill_not_the_spread_paid_at_it():
    def toxicity(mid_later: str) -> float:
        markouts = MarkoutTracker([0, SEC])
        stats = VenueStats(markouts, VenueStatsConfig(toxicity_horizon_ns=SEC), venues=["ARCA"])
        for _ in range(20):  # bought at the offer, a cent over the mid
            for markout in markouts.on_fill("ACME", "ARCA", Side.BUY, 100, D("100.01"), T0, mid_at_fill=D("100.00")):
                stats.on_markout(markout)
        for markout in markouts.on_mid("ACME", T0 + SEC, D(mid_later)):
            stats.on_markout(markout)
        return stats.toxicity("ARCA")

    assert toxicity("100.00") == 0.0  # the 1 bp half spread paid is no adverse selection
    assert toxicity("100.02") == 0.0  # the price went our way
    assert 0.5 < toxicity("99.98") < 1  # marked down 2 bps after every fill


def test_snapshot_reports_activity_per_venue():
    stats, markouts = make_stats()
    stats.on_child_sent("DRK1", 500, T0)
    stats.on_child_sent("DRK1", 300, T0 + 1)
    stats.on_ack("DRK1", T0 + 200 * US, T0)
    stats.on_fill("DRK1", 200, T0 + 5)
    stats.on_child_done("DRK1", 500, 200)
    picked_off(stats, markouts, "DRK1", 30, -5)

    score = stats.snapshot()["DRK1"]

    assert (score.venue, score.children, score.fills, score.working_qty) == ("DRK1", 2, 1, 300)
    assert (score.last_sent_ns, score.last_fill_ns) == (T0 + 1, T0 + 5)
    assert score.fill_rate == pytest.approx((0.4 + 1) / 3)
    assert (score.latency_us, score.latency_p99_us) == (200, 200)
    assert score.toxicity == stats.toxicity("DRK1") > 0
    assert set(stats.snapshot()) == {"ARCA", "DRK1"}


def test_snapshot_is_immutable_and_detached():
    stats, _ = make_stats()
    snapshot = stats.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot["ARCA"].fill_rate = 1.0  # type: ignore[misc]

    snapshot.clear()
    stats.on_child_done("ARCA", 100, 100)
    assert stats.snapshot()["ARCA"].fill_rate == pytest.approx(2 / 3)
    assert snapshot == {}


def test_the_config_must_fit_the_tracker_and_keep_the_prior_off_0_and_1():
    with pytest.raises(ValueError):
        VenueStats(MarkoutTracker([5 * SEC]))
    with pytest.raises(ValueError):
        make_stats(prior_misses=0)


def test_with_a_half_life_toxicity_forgets_a_venue_that_cleaned_up():
    forgetting, forgetting_markouts = make_stats(toxicity_half_life=5)
    remembering, remembering_markouts = make_stats()
    for stats, markouts in ((forgetting, forgetting_markouts), (remembering, remembering_markouts)):
        picked_off(stats, markouts, "ARCA", 100, -5)
    toxic = forgetting.toxicity("ARCA")
    assert toxic == pytest.approx(remembering.toxicity("ARCA"), abs=0.2) and toxic > 0.5
    for stats, markouts in ((forgetting, forgetting_markouts), (remembering, remembering_markouts)):
        for second in range(2, 22):  # 20 clean fills, each marked on its own
            markouts.on_fill("ACME", "ARCA", Side.BUY, 100, D("100.00"), T0 + second * SEC)
            for markout in markouts.on_mid("ACME", T0 + (second + 1) * SEC, D("100.00")):
                stats.on_markout(markout)
    assert forgetting.toxicity("ARCA") < 0.1  # 20 clean fills are 4 half-lives: what was toxic counts 1/16
    assert remembering.toxicity("ARCA") > 0.5  # 100 toxic fills against 20 clean ones, forever


def test_half_life_must_be_positive():
    with pytest.raises(ValueError):
        make_stats(toxicity_half_life=0)


def test_risks_follow_the_score_through_every_event():
    """risks() keeps its answer between events: an ack, a done child and a markout must each refresh it."""
    stats, markouts = make_stats()
    assert stats.risks("never-seen") is None

    def same() -> None:
        score = stats.score("ARCA")
        assert stats.risks("ARCA") == (score.toxicity, score.fill_rate, score.latency_us)

    same()
    stats.on_child_sent("ARCA", 100, T0)
    stats.on_ack("ARCA", T0 + 300 * US, T0)
    same()
    stats.on_child_done("ARCA", 100, 40)
    same()
    picked_off(stats, markouts, "ARCA", 3, 4)
    same()
    stats.on_ack("ARCA", T0 + 900 * US, T0)
    stats.on_child_done("ARCA", 100, 100)
    picked_off(stats, markouts, "ARCA", 2, -1)
    same()
