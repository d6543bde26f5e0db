"""Pieces of `sorgw replay` that need no trail: policy overrides, the paired interval, markouts of a side,
a venue core seeded with a recorded book."""

from __future__ import annotations

from decimal import Decimal as D
from statistics import mean, stdev

import pytest

from gateway.analytics.paired import paired, t95
from gateway.analytics.tca import Fill
from gateway.config import GatewayConfig, SimVenueConfig, SymbolConfig
from gateway.core.clock import ManualClock
from gateway.core.market import Level, Nbbo
from gateway.core.types import OrdType, Side, TimeInForce, VenueKind
from gateway.replay.report import markouts, overridden
from gateway.replay.trail import ReplayError, Tape
from gateway.simulator.venue import SimOrder, VenueCore

CFG = GatewayConfig.model_validate(
    {
        "venues": [{"name": "L", "port": 1}],
        "symbols": [{"symbol": "XYZ"}],
        "upstream": {"port": 2, "sessions": [{"target_comp_id": "OMS"}]},
    }
)
XYZ = SymbolConfig(symbol="XYZ", tick=D("0.01"), reference_price=D("10"))


def test_overrides_set_routing_keys_nested_or_not_and_are_validated():
    cfg = overridden(CFG, ["probe_qty=300", "cost.toxicity_bps=2.5", "unquoted_remainders=true"])
    assert cfg.routing.probe_qty == 300 and cfg.routing.cost.toxicity_bps == 2.5
    assert cfg.routing.unquoted_remainders is True and CFG.routing.probe_qty != 300
    for bad, message in (
        ("nope=1", "not a routing setting"),
        ("cost=1", "not a routing setting"),
        ("cost.nope=1", "not a routing setting"),
        ("probe_qty=0", "probe_qty"),
        ("probe_qty", "expected key=value"),
        ("max_sweeps=many", "max_sweeps"),
    ):
        with pytest.raises(ReplayError, match=message):
            overridden(CFG, [bad])


def test_paired_interval_matches_a_t_interval_by_hand():
    diffs = [D("1.5"), D("-0.5"), D("2.0"), D("0.25")]
    interval = paired(diffs)
    m, s = mean(map(float, diffs)), stdev(map(float, diffs))
    half = 3.182 * s / 2  # t(0.975, 3 df) * s / sqrt(4)
    assert interval.n == 4
    assert float(interval.mean) == pytest.approx(m, abs=1e-4)
    assert float(interval.low) == pytest.approx(m - half, abs=1e-4)
    assert float(interval.high) == pytest.approx(m + half, abs=1e-4)
    assert paired([D(3)]).low is None and paired([]) is None
    assert t95(45) == 2.021 and t95(500) == 1.96


def test_markouts_weigh_fills_by_quantity_and_need_a_mid_that_late():
    tape = Tape()
    for ts, bid, ask in ((0, "9.99", "10.01"), (150, "10.01", "10.03"), (1200, "9.97", "9.99")):
        tape.add(ts, bid, ask)
    fills = [Fill(100, "A", 100, D("10.01"), False, None, None), Fill(100, "B", 300, D("10.00"), False, None, None)]
    got = markouts(fills, 1, "XYZ", tape, (0, 10, 2000))
    # at +10 ms nothing is on the tape yet; at +0 the first mid at/after 100 ns is 10.02
    assert got["2000ms"] is None and got["10ms"] is None
    by_hand = (100 * (D("10.02") - D("10.01")) / D("10.01") + 300 * (D("10.02") - D("10.00")) / D("10.00")) / 400
    assert got["0ms"] == (by_hand * 10_000).quantize(D("0.0001"))


def test_a_seeded_lit_core_holds_exactly_the_recorded_levels_and_fills_against_them():
    core = VenueCore(SimVenueConfig(name="L", port=1, taker_fee=D("0.003")), [XYZ], 1, ManualClock())
    core.seed("XYZ", (Level(D("9.99"), 100),), (Level(D("10.01"), 50), Level(D("10.02"), 70)))
    book = core.snapshot("XYZ")
    assert book.bids == (Level(D("9.99"), 100),) and book.asks == (Level(D("10.01"), 50), Level(D("10.02"), 70))
    reports = core.submit(SimOrder("S", "C1", "XYZ", Side.BUY, 100, OrdType.LIMIT, D("10.02"), TimeInForce.IOC))
    assert [(r.last_qty, r.last_px) for r in reports if r.last_qty] == [(50, D("10.01")), (50, D("10.02"))]


def test_a_seeded_dark_pool_crosses_only_its_hidden_size():
    core = VenueCore(
        SimVenueConfig(name="D", port=1, kind=VenueKind.DARK),
        [XYZ],
        1,
        ManualClock(),
        nbbo=lambda s: Nbbo(D("9.99"), 1, D("10.01"), 1),
    )
    core.seed("XYZ", hidden=(0, 120))
    reports = core.submit(SimOrder("S", "C1", "XYZ", Side.BUY, 200, OrdType.LIMIT, D("10.01"), TimeInForce.IOC))
    assert [(r.last_qty, r.last_px) for r in reports if r.last_qty] == [(120, D("10.00"))]
