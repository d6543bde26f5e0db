"""Messages cross into and out of quickfix as whole text: one call each way, since every call releases the GIL."""

from __future__ import annotations

import calendar
import re
import time
from decimal import Decimal

import pytest
import quickfix as fix

from gateway.core.types import ExecType, ExecutionReport, OrdStatus, OrdType, Side, TimeInForce
from gateway.fix import codec
from gateway.fix.application import GuardedApplication
from gateway.fix.wire import WireMessage

SID = fix.SessionID("FIX.4.4", "GW", "OMS")
NOS = (
    "8=FIX.4.4\x019=99\x0135=D\x0134=7\x0149=OMS\x0152=20261203-21:00:00\x0156=GW\x01"
    "11=C-1\x0155=AAPL\x0158=a=b\x0110=000\x01"
)


class OnlyText:
    """A message that answers toString() and nothing else, counting the calls."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def toString(self) -> str:  # noqa: N802 - quickfix's name
        self.calls += 1
        return self.text


class Recorder(GuardedApplication):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[str, codec.Readable, str]] = []

    def on_app(self, message: codec.Readable, session: str) -> None:
        self.got.append(("app", message, session))

    def on_sent(self, message: codec.Readable, session: str) -> None:
        self.got.append(("sent", message, session))


def test_an_incoming_application_message_is_read_with_one_call_into_quickfix():
    app = Recorder()
    counted: list[tuple[str, str, str]] = []
    app.count = lambda direction, key, msg_type: counted.append((direction, key, msg_type))
    message = OnlyText(NOS)
    app.fromApp(message, SID)
    assert message.calls == 1
    [(_, read, session)] = app.got
    assert isinstance(read, WireMessage)
    assert session == "FIX.4.4:GW->OMS"
    assert (read.getHeader().getField(codec.MSG_SEQ_NUM), read.getField(codec.CL_ORD_ID)) == ("7", "C-1")
    assert read.getField(codec.TEXT) == "a=b"  # only the first = splits a field
    assert counted == [("in", "FIX.4.4:GW->OMS", "D")]


def test_an_outgoing_application_message_is_amended_first_then_read_once():
    app = Recorder()
    tapped: list[tuple[str, str, str, str]] = []
    app.tap = lambda direction, key, message, msg_type: tapped.append((direction, key, message.toString(), msg_type))
    message = fix.Message(NOS, False)
    app.amend = lambda m: m.getHeader().setField(codec.POSS_RESEND, "Y")
    app.toApp(message, SID)
    [(_, sent, _)] = app.got
    assert sent.getField(codec.POSS_RESEND) == "Y"  # the amendment is in what is read and recorded
    assert tapped == [("out", "FIX.4.4:GW->OMS", sent.toString(), "D")]
    assert "97=Y\x01" in tapped[0][2]


def test_an_amend_that_fails_still_leaves_the_message_recorded():
    app = Recorder()
    tapped: list[str] = []
    app.tap = lambda direction, key, message, msg_type: tapped.append(msg_type)

    def broken(message: fix.Message) -> None:
        raise RuntimeError("broken")

    app.amend = broken
    app.toApp(fix.Message(NOS, False), SID)
    assert tapped == ["D"]


def test_wire_text_and_bytes_read_alike():
    from_bytes, from_text = WireMessage(NOS.encode()), WireMessage(NOS)
    for tag in (8, 9, 35, 34, 49, 52, 56, 11, 55, 58, 10):
        assert from_bytes.getField(tag) == from_text.getField(tag)
    assert WireMessage(NOS).toString() == NOS
    repeated = WireMessage("35=8\x0111=first\x01111=x\x0111=second\x01\u0661\u0662=arabic digits\x01junk\x0158=")
    assert repeated.getField(35) == "8"  # the first field, with no SOH before it
    assert repeated.getField(11) == "first"
    assert repeated.getField(111) == "x"  # not taken for 11, nor 11 for it
    assert not repeated.isSetField(12)  # a tag of non-ASCII digits is no tag
    assert not repeated.isSetField(1) and not repeated.isSetField(5)  # no tag is found inside another
    assert repeated.getField(58) == ""  # the last field, with no SOH after it
    with pytest.raises(KeyError):
        repeated.getField(59)
    with pytest.raises(KeyError):
        repeated.getField(8)  # a value is never searched as a tag: "first" holds no "8="


def _report(**changes) -> ExecutionReport:
    fields = dict(
        session="FIX.4.4:GW->OMS",
        order_id="O-1",
        cl_ord_id="C-1",
        exec_id="E-1",
        exec_type=ExecType.TRADE,
        ord_status=OrdStatus.FILLED,
        symbol="AAPL",
        side=Side.BUY,
        order_qty=10,
        ord_type=OrdType.LIMIT,
        price=None,
        tif=TimeInForce.DAY,
        cum_qty=10,
        leaves_qty=0,
        avg_px=Decimal("190.01"),
        last_qty=10,
        last_px=Decimal("190.01"),
        last_mkt="LIT1",
        text="café",
    )
    fields.update(changes)
    return ExecutionReport(**fields)


def test_an_execution_report_is_built_from_text_with_every_field():
    msg = codec.execution_report(_report(), "FIX.4.4")
    read = WireMessage(msg.toString())
    assert read.getField(8) == "FIX.4.4"
    expected = {35: "8", 37: "O-1", 11: "C-1", 17: "E-1", 150: "F", 39: "2", 55: "AAPL", 54: "1", 38: "10"}
    expected |= {40: "2", 59: "0", 14: "10", 151: "0", 6: "190.01", 32: "10", 31: "190.01", 30: "LIT1", 58: "café"}
    assert {tag: read.getField(tag) for tag in expected} == expected
    stamp = read.getField(codec.TRANSACT_TIME)
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d", stamp)
    assert abs(calendar.timegm(time.strptime(stamp, "%Y%m%d-%H:%M:%S")) - time.time()) < 2  # now, in UTC
    assert not read.isSetField(codec.PRICE)
    # quickfix keeps the body in tag order, as setField did
    body = [int(part.split("=")[0]) for part in msg.toString().split("\x01")[3:-2]]
    assert body == sorted(body)


def test_a_value_holding_soh_is_refused_not_sent_as_extra_fields():
    with pytest.raises(ValueError, match="SOH"):
        codec.execution_report(_report(text="ok\x0156=EVIL"), "FIX.4.4")
