"""TCA arithmetic on plain records: a sell with a fee, a dark fill and an unfilled remainder, figures by hand."""

from __future__ import annotations

from decimal import Decimal as D

from gateway.analytics.tca import Child, Fill, ParentTrail, Quote, VenueTerms, parent_figures, venue_figures

VENUES = {"LIT": VenueTerms(False, D("-0.002"), D("0.003")), "DARK": VenueTerms(True, D("0"), D("0.001"))}
ROUTE = Quote(D("99.98"), D("100.02"))


def sell(end: Quote | None) -> ParentTrail:
    return ParentTrail(
        "O1",
        "C1",
        "FIX.4.4:SORGW->OMS",
        "XYZ",
        -1,
        1000,
        1_000_000_000,
        "canceled" if end else "partially_filled",
        arrival=ROUTE,
        end=end,
        end_ns=1_250_000_000 if end else None,
        children=[
            Child("K1", "LIT", 500, 1_001_000_000, 1_001_500_000, False),
            Child("K2", "DARK", 500, 1_001_000_000, 1_003_000_000, False),
            Child("K3", "LIT", 100, 1_010_000_000, 1_010_500_000, True),
        ],
        fills=[
            Fill(1_002_000_000, "LIT", 400, D("99.99"), False, Quote(D("99.97"), D("100.01")), ROUTE),
            Fill(1_004_000_000, "DARK", 200, D("100.00"), True, Quote(D("99.98"), D("100.02")), ROUTE),
        ],
    )


def test_shortfall_splits_into_execution_fees_and_opportunity():
    figures = parent_figures(sell(Quote(D("99.90"), D("99.94"))), VENUES)
    # paper: 1000 x 100.00; execution -(400 x 99.99 + 200 x 100 - 600 x 100) = 4; fees 400 x 0.003 = 1.2;
    # opportunity: 400 unfilled, the mid fell to 99.92 against a sell: -(99.92 - 100) x 400 = 32.
    assert (figures["execution_bps"], figures["fees_bps"], figures["opportunity_bps"], figures["shortfall_bps"]) == (
        D("0.4"),
        D("0.12"),
        D("3.2"),
        D("3.72"),
    )
    assert figures["avg_px"] == D("99.993333") and figures["fill_rate"] == D("0.6") and figures["fees"] == D("1.2")
    assert (figures["passive_share"], figures["aggressive_share"], figures["dark_share"]) == (
        D("0.3333"),
        D("0.6667"),
        D("0.3333"),
    )
    assert figures["time_to_first_fill_ms"] == D(2) and figures["time_to_completion_ms"] == D(250)
    assert figures["children"] == 3 and figures["venues"] == ["DARK", "LIT"]
    lit = figures["fills"][0]
    # A sell at 99.99 with the mid at 99.99 and the bid at 99.97: no slippage to the mid, 2 cents better than the
    # touch (-0.02 / 99.99); one cent better than the bid the router saw (99.98), 1 bp of its mid.
    assert (lit["slippage_mid_bps"], lit["slippage_far_bps"], lit["improvement"], lit["improvement_bps"]) == (
        D(0),
        D("-2.0002"),
        D("0.01"),
        D(1),
    )


def test_a_live_order_has_no_opportunity_cost_yet():
    figures = parent_figures(sell(None), VENUES)
    assert figures["execution_bps"] == D("0.4") and figures["opportunity_bps"] is None
    assert figures["shortfall_bps"] is None and figures["time_to_completion_ms"] is None


def test_venue_scorecard():
    dark, lit = venue_figures([sell(None)], VENUES)
    assert (lit["venue"], lit["orders"], lit["routed_qty"], lit["filled_qty"], lit["rejects"]) == (
        "LIT",
        2,
        600,
        400,
        1,
    )
    assert lit["fill_rate"] == D("0.6667") and lit["flow_share"] == D("0.5455") and lit["fill_share"] == D("0.6667")
    assert lit["ack_ms_mean"] == D("0.5") and lit["fees"] == D("1.2") and lit["rebates"] == 0
    # at the mid, 2 cents above the bid
    assert dark["dark"] and dark["ack_ms_p50"] == D(2) and dark["improvement_bps"] == D(2)
