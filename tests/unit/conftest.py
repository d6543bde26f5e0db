"""Fixtures shared by the unit tests: an order engine over two lit venues and a dark pool."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from gateway.core.clock import ManualClock
from gateway.core.engine import IdSource, OrderEngine
from gateway.core.market import MarketView, VenueInfo
from gateway.core.types import VenueKind
from gateway.core.validation import Instrument
from tests.unit.test_engine import book


@pytest.fixture
def engine() -> OrderEngine:
    market = MarketView()
    market.update(book("LITA", [("99.99", 300), ("99.98", 300)], [("100.01", 300), ("100.02", 300)]))
    market.update(book("LITB", [("99.99", 200)], [("100.01", 200), ("100.03", 500)]))
    venues = {
        "LITA": VenueInfo("LITA", VenueKind.LIT, D("-0.002"), D("0.003"), 300, True),
        "LITB": VenueInfo("LITB", VenueKind.LIT, D("0.0015"), D("-0.001"), 400, True),
        "DRKA": VenueInfo("DRKA", VenueKind.DARK, D("0"), D("0.001"), 400, True, min_qty=100),
    }
    return OrderEngine({"AAPL": Instrument("AAPL", D("0.01"))}, venues, market, IdSource("t"), ManualClock())
