"""Dark pools at LOW urgency: each pool's share follows what was learnt about it, and a pool that filled all it
was sent is offered the rest before it goes lit."""

from __future__ import annotations

import dataclasses

from gateway.analytics.learning import VenueLearning
from gateway.core.routing import RoutingPolicy, plan
from gateway.core.types import CancelChild, ExecType, OrdStatus, TimeInForce, Urgency, VenueReport
from tests.unit.test_engine import children, fill, order
from tests.unit.test_router import VENUES, legs, make_market, request

DAY = TimeInForce.DAY


def learnt(fills: dict[str, int], rounds: int = 40) -> VenueLearning:
    """DRK1 and DRK2 each sent 2,000 shares `rounds` times, filling fills[pool] of them every time."""
    learning = VenueLearning(["ARCA", "BATS", "EDGA"], ["DRK1", "DRK2"])
    for _ in range(rounds):
        for pool, filled in fills.items():
            learning.child_done(pool, 2000, filled, True)
    return learning


def low(qty: int, **kw):
    return request(qty, "100.03", tif=DAY, urgency=Urgency.LOW, **kw)


def test_a_pool_gets_no_more_than_what_was_learnt_it_fills():
    decision = plan(low(50_000), make_market(), VENUES, RoutingPolicy(), learnt({"DRK1": 600, "DRK2": 1500}))
    assert decision.phase == "dark"
    shares = dict((venue, qty) for venue, qty, _ in legs(decision))
    assert shares == {"DRK2": 1500, "DRK1": 600}  # not 20,000 each: past these they never filled
    assert "under 5% of the time" in decision.reason


def test_a_pool_not_yet_seen_gets_more_than_the_old_20000_cap():
    decision = plan(low(60_000), make_market(), VENUES, RoutingPolicy(), VenueLearning([], ["DRK1", "DRK2"]))
    assert sum(qty for _, qty, _ in legs(decision)) == 60_000
    assert max(qty for _, qty, _ in legs(decision)) == 30_000


def test_without_a_floor_every_share_is_placed_as_before():
    decision = plan(
        low(5000), make_market(), VENUES, RoutingPolicy(dark_min_fill=0), learnt({"DRK1": 600, "DRK2": 1500})
    )
    assert sum(qty for _, qty, _ in legs(decision)) == 5000


def test_pools_that_filled_everything_are_offered_the_rest_and_only_they():
    decision = plan(
        low(3000, dark_done=True, dark_again=frozenset({"DRK1"})),
        make_market(),
        VENUES,
        RoutingPolicy(),
        VenueLearning([], ["DRK1", "DRK2"]),
    )
    assert legs(decision) == [("DRK1", 3000, "100.03")]
    assert decision.reason.startswith("dark again at LOW urgency")
    done = plan(low(3000, dark_done=True), make_market(), VENUES, RoutingPolicy())
    assert done.phase == "take"  # nothing filled everything: the rest goes lit


def test_the_engine_offers_the_rest_to_a_pool_that_filled_everything_until_the_dark_time_is_up(engine):
    engine.policy = dataclasses.replace(engine.policy, dark_timeout_ns=1_000_000_000)
    for _ in range(40):  # DRKA has held 300 shares for us, every time
        engine.learning.child_done("DRKA", 2000, 300, True)
    (dark,) = children(engine.on_new_order(order(qty=1000, urgency=Urgency.LOW)))
    assert (dark.venue, dark.spec.qty, dark.spec.tif) == ("DRKA", 300, DAY)  # the rest waits for the round
    engine.clock.advance(100_000_000)
    (again,) = children(engine.on_venue_report(fill(dark, 300, "100.00", "d1", done=True)))
    assert (again.venue, again.spec.tif) == ("DRKA", DAY) and 0 < again.spec.qty <= 700
    engine.clock.advance(900_000_000)  # the first round's resting time is up: the retry is pulled
    (cancel,) = [c for c in engine.on_timer(engine.clock.now_ns()).commands if isinstance(c, CancelChild)]
    assert cancel.orig_cl_ord_id == again.cl_ord_id
    out = engine.on_venue_report(VenueReport("DRKA", cancel.cl_ord_id, "d2", ExecType.CANCELED, OrdStatus.CANCELED))
    lit = children(out)
    assert lit and {c.venue for c in lit} <= {"LITA", "LITB"}  # then lit, not dark a third time


def test_a_pool_that_filled_part_is_not_offered_more(engine):
    engine.policy = dataclasses.replace(engine.policy, dark_timeout_ns=1_000_000_000)
    (dark,) = children(engine.on_new_order(order(qty=400, urgency=Urgency.LOW)))
    engine.on_venue_report(fill(dark, 100, "100.00", "d1"))
    engine.clock.advance(1_000_000_000)
    (cancel,) = [c for c in engine.on_timer(engine.clock.now_ns()).commands if isinstance(c, CancelChild)]
    out = engine.on_venue_report(VenueReport("DRKA", cancel.cl_ord_id, "d2", ExecType.CANCELED, OrdStatus.CANCELED))
    assert {c.venue for c in children(out)} <= {"LITA", "LITB"}
