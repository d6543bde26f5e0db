"""The do-nothing pass-through of `sorgw bench --e2e` between an OMS and the venue simulators, over real FIX."""

from __future__ import annotations

import pytest

from gateway import topology
from gateway.bus.inprocess import InProcessBus
from gateway.fix import codec
from gateway.fix.client import OmsClient
from gateway.fix.sessions import SessionSpec
from gateway.passthrough import PassThrough
from gateway.simulator.host import VenueHost

pytestmark = pytest.mark.integration


@pytest.fixture
def path(tmp_path):
    """OMS -> pass-through (orders without ExDestination split across LITA and LITB) -> simulated venues."""
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    venues = VenueHost(venues_cfg, tmp_path / "venues", InProcessBus())
    venues.start()
    passthrough = PassThrough(gateway_cfg, tmp_path / "passthrough", split=2)
    oms = None
    try:
        passthrough.start(10)
        up = gateway_cfg.upstream
        oms = OmsClient(SessionSpec("FIX.4.4", "OMS", "SORGW", up.host, up.port), gateway_cfg.fix, tmp_path / "oms")
        oms.start()
        yield passthrough, oms
    finally:
        if oms is not None:
            oms.stop()
        passthrough.stop()
        venues.stop()


def _fills(oms: OmsClient, cl_ord_id: str) -> list:
    return [m for m in oms.reports() if m.get(codec.CL_ORD_ID) == cl_ord_id and m.get(codec.EXEC_TYPE) == "F"]


def test_directed_order_reaches_that_venue_and_fills_under_the_oms_clordid(path):
    passthrough, oms = path
    oms.new_order("D1", "AAPL", "1", 10, price="190.10", ex_destination="LITB")
    assert oms.wait(lambda: _fills(oms, "D1"), 10)
    (fill,) = _fills(oms, "D1")
    assert fill[codec.LAST_QTY] == "10" and fill[codec.ORD_STATUS] == "2"
    assert fill[codec.LAST_PX] == "190.01"  # LITB's ask; LITC quotes a tick away
    assert passthrough.mapped == 0  # a filled order is forgotten


def test_order_without_destination_is_split_evenly_and_every_leg_comes_back(path):
    passthrough, oms = path
    oms.new_order("S1", "AAPL", "2", 21, price="189.90")
    assert oms.wait(lambda: sum(int(m[codec.LAST_QTY]) for m in _fills(oms, "S1")) == 21, 10)
    fills = _fills(oms, "S1")
    assert sorted(int(m[codec.LAST_QTY]) for m in fills) == [10, 11]
    assert len({m[codec.ORDER_ID] for m in fills}) == 2  # two venues' orders
    assert passthrough.mapped == 0


def test_cancel_reaches_every_leg_and_each_cancel_comes_back(path):
    passthrough, oms = path
    oms.new_order("R1", "AAPL", "1", 20, price="189.00")  # below the bids: both legs rest
    assert oms.wait(lambda: sum(m.get(codec.EXEC_TYPE) == "0" for m in oms.reports()) == 2, 10)
    oms.cancel("R1-C", "R1", "AAPL", "1", 20)
    assert oms.wait(lambda: sum(m.get(codec.ORD_STATUS) == "4" for m in oms.reports()) == 2, 10)
    canceled = [m for m in oms.reports() if m.get(codec.ORD_STATUS) == "4"]
    assert {(m[codec.CL_ORD_ID], m[codec.ORIG_CL_ORD_ID]) for m in canceled} == {("R1-C", "R1")}
    assert passthrough.mapped == 0  # canceled orders are forgotten too


def test_unknown_destination_and_bad_quantity_are_rejected_naming_the_tag(path):
    _, oms = path
    oms.new_order("X1", "AAPL", "1", 10, price="190.10", ex_destination="NOPE")
    oms.send_fields(
        "D",
        {
            codec.CL_ORD_ID: "X2",
            codec.SYMBOL: "AAPL",
            codec.SIDE: "1",
            codec.ORDER_QTY: "1",
            codec.ORD_TYPE: "2",
            codec.PRICE: "190.10",
        },
    )  # 1 share cannot be split across 2 venues
    assert oms.wait(lambda: len(oms.session_rejects()) == 2, 10)
    assert [m.get(371) for m in oms.session_rejects()] == [str(codec.EX_DESTINATION), str(codec.ORDER_QTY)]
    oms.new_order("OK", "AAPL", "1", 10, price="190.10", ex_destination="LITA")  # the session lives on
    assert oms.wait(lambda: _fills(oms, "OK"), 10)
