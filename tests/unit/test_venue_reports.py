"""Venue execution reports in FIX 4.2 and FIX 4.4, with and without their optional fields."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import quickfix as fix

from gateway.core.types import ExecType, OrdStatus
from gateway.fix import codec


def report(begin_string: str, fields: dict[int, str]) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString(begin_string))
    msg.getHeader().setField(fix.MsgType("8"))
    for tag, value in {37: "V1", 17: "X1", 11: "C1", 55: "AAPL", 54: "1", **fields}.items():
        msg.setField(tag, value)
    return msg


def parse(begin_string: str, fields: dict[int, str]):
    return codec.parse_venue_report(report(begin_string, fields), "PLNX")


@pytest.mark.parametrize(
    "begin_string, fields, exec_type, status, last",
    [
        # FIX 4.2: ExecTransType 0, ExecType 1/2, LastShares (32); no LastMkt, LeavesQty, CumQty or AvgPx.
        (
            "FIX.4.2",
            {20: "0", 150: "1", 39: "1", 32: "300", 31: "190.05"},
            ExecType.TRADE,
            OrdStatus.PARTIALLY_FILLED,
            (300, D("190.05")),
        ),
        (
            "FIX.4.2",
            {20: "0", 150: "2", 39: "2", 32: "100", 31: "190"},
            ExecType.TRADE,
            OrdStatus.FILLED,
            (100, D(190)),
        ),
        # FIX 4.4: ExecType F and LastQty, again without the optional totals.
        (
            "FIX.4.4",
            {150: "F", 39: "1", 32: "50", 31: "190.01"},
            ExecType.TRADE,
            OrdStatus.PARTIALLY_FILLED,
            (50, D("190.01")),
        ),
        ("FIX.4.2", {20: "0", 150: "0", 39: "0"}, ExecType.NEW, OrdStatus.NEW, (0, None)),
        ("FIX.4.4", {150: "4", 39: "4"}, ExecType.CANCELED, OrdStatus.CANCELED, (0, None)),  # unsolicited cancel
        ("FIX.4.2", {20: "0", 150: "3", 39: "3"}, ExecType.DONE_FOR_DAY, OrdStatus.DONE_FOR_DAY, (0, None)),
        # Status only: 4.2 status (ExecTransType 3), 4.2 bust (1), 4.4 status (I), stopped / restated.
        ("FIX.4.2", {20: "3", 150: "1", 39: "1"}, ExecType.ORDER_STATUS, OrdStatus.PARTIALLY_FILLED, (0, None)),
        (
            "FIX.4.2",
            {20: "1", 150: "2", 39: "2", 32: "100", 31: "190"},
            ExecType.ORDER_STATUS,
            OrdStatus.FILLED,
            (0, None),
        ),
        ("FIX.4.4", {150: "I", 39: "0"}, ExecType.ORDER_STATUS, OrdStatus.NEW, (0, None)),
        ("FIX.4.2", {20: "0", 150: "7", 39: "7"}, ExecType.ORDER_STATUS, OrdStatus.NEW, (0, None)),
        ("FIX.4.4", {150: "D", 39: "0"}, ExecType.ORDER_STATUS, OrdStatus.NEW, (0, None)),
    ],
)
def test_reports_of_either_version_are_understood(begin_string, fields, exec_type, status, last):
    parsed = parse(begin_string, fields)
    assert (parsed.exec_type, parsed.ord_status, (parsed.last_qty, parsed.last_px)) == (exec_type, status, last)
    assert parsed.leaves_qty is None and parsed.cum_qty is None and parsed.cl_ord_id == "C1"


def test_totals_are_read_when_present():
    parsed = parse("FIX.4.4", {150: "F", 39: "2", 32: "100", 31: "190", 14: "300", 151: "0", 6: "190"})
    assert (parsed.cum_qty, parsed.leaves_qty) == (300, 0)


@pytest.mark.parametrize(
    "fields, tag",
    [
        ({150: "2", 39: "2", 31: "190"}, 32),  # a fill without LastShares
        ({150: "F", 39: "1", 32: "100"}, 31),  # a fill without LastPx
        ({150: "F", 39: "1", 32: "100", 31: "abc"}, 31),
        ({150: "0"}, 39),  # no OrdStatus
        ({150: "0", 39: "Z"}, 39),
    ],
)
def test_an_unusable_report_is_refused_naming_the_field(fields, tag):
    with pytest.raises(codec.FieldError) as caught:
        parse("FIX.4.2", {20: "0", **fields})
    assert caught.value.tag == tag
