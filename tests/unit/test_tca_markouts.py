"""Impact-free markouts, market VWAP and participation, aggregates with intervals, the mark timer: by hand."""

from __future__ import annotations

import statistics
import threading
import time
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from gateway.analytics.markouts import OwnTake, impact_free_mid, touch_without
from gateway.analytics.tca import (
    Child,
    Fill,
    Mark,
    ParentTrail,
    Print,
    Quote,
    VenueTerms,
    aggregates,
    mean_ci,
    parent_figures,
    venue_figures,
)
from gateway.tca import marks
from gateway.tca.marks import MarkTimer, slack_s

VENUES = {"A": VenueTerms(False, D(0), D(0)), "B": VenueTerms(False, D(0), D(0)), "D": VenueTerms(True, D(0), D(0))}


def test_a_take_is_put_back_until_the_venue_refills_or_moves_through_it():
    # We bought A's offer at 100.01; A now shows 100.03, B 100.02: the take put back makes the ask 100.01.
    touches = {"A": (D("99.99"), D("100.03")), "B": (D("99.98"), D("100.02"))}
    assert impact_free_mid(touches, []) == D("100.005")
    assert impact_free_mid(touches, [OwnTake("A", 1, D("100.01"))]) == D("100.00")
    # A re-laid its quotes above our price (a toxic move through it): nothing to put back, the move counts.
    moved = {"A": (D("100.02"), D("100.04")), "B": (D("99.98"), D("100.02"))}
    assert impact_free_mid(moved, [OwnTake("A", 1, D("100.01"))]) == D("100.02")
    # A sell's take goes back on the bid; a venue not in the mark and an empty side are handled.
    assert impact_free_mid({"A": (None, D("100.03"))}, [OwnTake("A", -1, D("99.99")), OwnTake("Z", 1, D("1"))]) == D(
        "100.01"
    )
    assert impact_free_mid({"A": (None, D("100.03"))}, []) is None


def order(fills, marks_ok=True) -> ParentTrail:
    route = Quote(D("99.99"), D("100.01"))
    after = Quote(D("100.00"), D("100.03"))
    mark = Mark(100, 2_000, after, {"A": (D("100.00"), D("100.03")), "B": (D("99.99"), D("100.03"))})
    return ParentTrail(
        "O",
        "C",
        "S",
        "XYZ",
        1,
        1000,
        1_000,
        "filled",
        arrival=route,
        end=after,
        end_ns=5_000,
        children=[Child("K", "A", 1000, 1_000, 1_100, False, "limit", D("100.01"), route)],
        fills=[
            Fill(ts, v, q, D(p), passive, after, route, (mark,) if marks_ok else (), "K")
            for ts, v, q, p, passive in fills
        ],
    )


def test_markouts_vwap_and_participation_of_one_order():
    trail = order([(1_500, "A", 600, "100.01", False), (1_600, "D", 400, "100.00", True)])
    tape = [
        Print(900, "B", 100, D("99.00")),
        Print(1_500, "A", 600, D("100.01")),
        Print(1_600, "D", 400, D("100.00")),
        Print(3_000, "B", 1000, D("100.02")),
        Print(6_000, "B", 100, D("200")),
    ]
    figures = parent_figures(trail, VENUES, tape)
    lit, dark = figures["fills"]
    # At 100 ms A shows 100.00/100.03, B 99.99/100.03; our take at 100.01 on A goes back: mid (100.00 + 100.01) / 2.
    # bps: (100.005 - 100.01) / 100.01, to four places; move: (100.005 - 100.00) / 100.00 since the route mid.
    assert lit["markouts"] == [
        {"horizon_ms": 100, "mid": D("100.015"), "mid_ex_own": D("100.005"), "bps": D("-0.5"), "move_bps": D("0.5")}
    ]
    assert dark["markouts"][0]["bps"] == D("0.5")  # (100.005 - 100.00) / 100.00
    assert figures["markouts_bps"] == {"100": D("-0.1")}  # (600 x -0.5 + 400 x 0.5) / 1000
    # Prints from arrival (1000) to the end (5000): 600 @ 100.01, 400 @ 100.00, 1000 @ 100.02.
    assert figures["market_volume"] == 2000 and figures["market_vwap"] == D("100.013")
    assert figures["participation"] == D("0.5")
    assert figures["vwap_slippage_bps"] == D("-0.6999")  # (100.006 - 100.013) / 100.013
    assert lit["effective_spread_bps"] == D("2")  # 2 x (100.01 - 100.00) / 100.00
    [a, d] = sorted(venue_figures([trail], VENUES), key=lambda v: v["venue"])
    # The market rose after both buys (move +0.5 bps): not toxic, though the lit take's markout is negative.
    assert a["toxicity"] == D(0) and d["toxicity"] == D(0) and a["markouts_bps"] == {"100": D("-0.5")}
    falling = order([(1_500, "A", 600, "100.01", False)])
    falling.fills[0] = Fill(
        1_500, "A", 600, D("100.01"), False, None, Quote(D("100.00"), D("100.04")), falling.fills[0].marks, "K"
    )  # routed at a 100.02 mid: the market fell 0.15 bps since
    assert venue_figures([falling], VENUES)[0]["toxicity"] == D(1)


def test_a_live_order_has_no_interval_vwap():
    trail = order([(1_500, "A", 600, "100.01", False)], marks_ok=False)
    trail.end_ns = None
    figures = parent_figures(trail, VENUES, [Print(1_500, "A", 600, D("100.01"))])
    assert figures["market_vwap"] is None and figures["participation"] is None and figures["markouts_bps"] == {}


def test_intervals_by_hand_and_none_for_small_samples():
    values = [D("1.5"), D("2.25"), D("-0.75"), D("3"), D("0.5"), D("1")]
    got = mean_ci(values)
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = D("2.571") * sd / D(6).sqrt()  # t(0.975, 5)
    assert got["n"] == 6 and got["mean"] == round(mean, 4)
    assert (got["ci_low"], got["ci_high"]) == (round(mean - half, 4), round(mean + half, 4))
    assert mean_ci(values[:4])["ci_low"] is None and mean_ci([])["mean"] is None
    rows = {
        r["figure"]: r
        for r in aggregates(
            [
                {
                    **dict.fromkeys(
                        (
                            "shortfall_bps",
                            "execution_bps",
                            "fees_bps",
                            "opportunity_bps",
                            "vwap_slippage_bps",
                            "fill_rate",
                            "participation",
                        )
                    ),
                    "shortfall_bps": v,
                    "markouts_bps": {"100": v},
                }
                for v in values
            ]
        )
    }
    assert rows["shortfall_bps"] == rows["markout_100ms_bps"] | {"figure": "shortfall_bps"}
    assert rows["fill_rate"]["n"] == 0


def test_the_mark_timer_calls_back_at_each_horizon_and_not_after_stop():
    seen, done = [], threading.Event()

    def mark(due):
        seen.extend(due)
        if len(seen) == 4:
            done.set()

    timer = MarkTimer((0, 20, 3_600_000), mark)
    timer.start()
    timer.schedule("F1")
    timer.schedule("F2")
    assert done.wait(5)
    assert sorted(seen) == [("F1", 0), ("F1", 20), ("F2", 0), ("F2", 20)]
    assert [h for _, h in seen[:2]] == [0, 0]  # each at its horizon: both zeros before either 20
    timer.stop()
    assert timer.waiting == 2 and len(seen) == 4  # the hour-long horizons are never made once stopped


def test_our_own_resting_quantity_is_taken_out_of_a_touch():
    bids = [(D("100.03"), 500), (D("100.00"), 300)]
    assert touch_without(bids, {}) == D("100.03")
    assert touch_without(bids, {D("100.03"): 500}) == D("100.00")  # the top bid was only ours
    assert touch_without(bids, {D("100.03"): 200}) == D("100.03")  # others rest there too
    assert touch_without(bids, {D("100.03"): 500, D("100.00"): 300}) is None


def test_marks_due_by_the_time_the_thread_wakes_come_in_one_call_oldest_first():
    calls, done = [], threading.Event()
    timer = MarkTimer((20, 0), lambda due: calls.append(due) or done.set())  # horizons in any order
    timer.schedule("F1")
    timer.schedule("F2")
    time.sleep(0.05)  # all four are due before the thread starts
    timer.start()
    assert done.wait(5)
    timer.stop()
    assert calls == [[("F1", 0), ("F2", 0), ("F1", 20), ("F2", 20)]]


def test_a_mark_that_fails_costs_only_itself_not_the_others_due_with_it():
    made, done = [], threading.Event()

    def mark(due):
        if any(key == "BAD" for key, _ in due):
            raise ValueError("a defect in one fill's mark")
        made.extend(due)
        if len(made) == 2:
            done.set()

    timer = MarkTimer((0,), mark)
    for key in ("F1", "BAD", "F2"):
        timer.schedule(key)
    time.sleep(0.05)  # all three are due before the thread starts: one batch
    timer.start()
    assert done.wait(5)
    timer.stop()
    assert made == [("F1", 0), ("F2", 0)]


def test_the_slack_is_a_hundredth_of_the_horizon_and_at_most_ten_ms():
    assert [slack_s(h) for h in (0, 100, 1000, 5000)] == pytest.approx([0, 0.001, 0.010, 0.010])


def test_a_wake_takes_the_marks_due_within_their_slack_and_none_early(monkeypatch):
    now = [0.0]  # the timer's clock, moved by hand; its waits still take real time
    monkeypatch.setattr(marks, "time", SimpleNamespace(monotonic=lambda: now[0]))
    calls, made = [], threading.Event()
    timer = MarkTimer((1000,), lambda due: (calls.append((now[0], due)), made.set()))
    for at, key in ((0.0, "F1"), (0.005, "F2"), (0.3, "F3")):
        now[0] = at
        timer.schedule(key)
    now[0] = 0.999  # within F1's 10 ms slack, but the earliest mark is not due: the thread waits for it
    timer.start()
    try:
        time.sleep(0.05)
        assert calls == []
        now[0] = 1.0
        assert made.wait(5)
        made.clear()
        # F2, 5 ms from due, is made with F1; F3, 300 ms from due, waits for its own time.
        assert calls == [(1.0, [("F1", 1000), ("F2", 1000)])]
        now[0] = 1.3
        assert made.wait(5)
        assert calls[1:] == [(1.3, [("F3", 1000)])]
        assert timer.waiting == 0
    finally:
        timer.stop()


def test_marks_beyond_max_waiting_are_not_scheduled(monkeypatch):
    monkeypatch.setattr(marks, "MAX_WAITING", 7)
    timer = MarkTimer((0, 10, 3_600_000), lambda due: None)
    for key in range(5):
        timer.schedule(key)
    assert timer.waiting == 6  # two fills of three marks; a third would pass the bound
