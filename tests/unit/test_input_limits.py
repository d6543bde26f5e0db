"""The limits the FIX adapter and the core hold OMS input to: ids, free text, echoed values, bad cancels."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import quickfix as fix

from gateway.core.types import CancelReject, CancelRequest, CxlRejReason, InvalidChange, InvalidOrder, Side, Urgency
from gateway.core.validation import SHOWN_CHARS, shown
from gateway.fix import codec
from tests.unit.test_engine import S, order

SOH = "\x01"


def message(msg_type: str, tags: dict[str, str]) -> fix.Message:
    body = "".join(f"{tag}={value}{SOH}" for tag, value in tags.items())
    return fix.Message(f"8=FIX.4.4{SOH}9=10{SOH}35={msg_type}{SOH}{body}10=000{SOH}", False)


def test_cl_ord_id_is_1_to_64_characters_else_a_session_reject():
    assert (
        codec.parse_new_order(
            message("D", {"11": "A" * 64, "55": "AAPL", "54": "1", "38": "1", "40": "1"}), S, Urgency.MEDIUM
        ).cl_ord_id
        == "A" * 64
    )
    for bad in ("A" * 65, "A" * 10_000):
        with pytest.raises(codec.FieldError) as raised:
            codec.parse_new_order(message("D", {"11": bad, "55": "AAPL"}), S, Urgency.MEDIUM)
        assert raised.value.tag == codec.CL_ORD_ID and isinstance(raised.value.to_fix(), fix.IncorrectTagValue)


def test_free_text_over_the_limit_refuses_the_order_and_echoed_values_are_cut():
    tags = {"11": "N1", "55": "AAPL", "54": "1", "38": "100", "40": "2", "44": "190.03"}
    assert not isinstance(
        codec.parse_new_order(message("D", {**tags, "58": "x" * 1024}), S, Urgency.MEDIUM), InvalidOrder
    )
    refused = codec.parse_new_order(message("D", {**tags, "58": "x" * 1025}), S, Urgency.MEDIUM)
    assert isinstance(refused, InvalidOrder) and refused.text == "Text (58) is longer than 1024 characters"
    fraction = codec.parse_new_order(message("D", {**tags, "38": "1." + "5" * 500}), S, Urgency.MEDIUM)
    assert isinstance(fraction, InvalidOrder) and len(fraction.text) < 100
    assert shown("Z" * 10_000) == "Z" * (SHOWN_CHARS - 3) + "..." and shown("AAPL") == "AAPL"


@pytest.mark.parametrize(
    "msg_type, tags, text",
    [
        ("G", {"38": "1" + "0" * 30}, "OrderQty (38) has more than 12 digits before the decimal point"),
        ("G", {"44": "1" * 400}, "Price (44) has more than 12 digits before the decimal point"),
        ("G", {"54": "9"}, "unsupported Side (54) value '9'"),
        ("F", {"41": "O" * 65}, "OrigClOrdID (41) must be 1 to 64 characters, got 65"),
        ("F", {"58": "x" * 2000}, "Text (58) is longer than 1024 characters"),
    ],
)
def test_a_bad_cancel_or_replace_with_a_usable_cl_ord_id_is_answered_with_a_cancel_reject(msg_type, tags, text):
    base = {"11": "C1", "41": "LIVE", "55": "AAPL", "54": "1", "38": "100", "40": "2", "44": "185.00"}
    parse = codec.parse_cancel if msg_type == "F" else codec.parse_replace
    invalid = parse(message(msg_type, {**base, **tags}), S)
    assert isinstance(invalid, InvalidChange) and invalid.text == text
    assert invalid.response_to == ("1" if msg_type == "F" else "2")
    assert invalid.orig_cl_ord_id == ("NONE" if "41" in tags else "LIVE")


def test_the_engine_answers_a_bad_change_with_the_orders_status_and_a_cancel_must_name_its_symbol_and_side(engine):
    engine.on_new_order(order("LIVE", qty=100, price="99.00"))
    (reject,) = engine.on_replace(InvalidChange(S, "C1", "LIVE", "2", "OrderQty (38) is not a number")).commands
    assert isinstance(reject, CancelReject) and reject.order_id != "NONE" and reject.response_to == "2"
    assert (reject.ord_status.name, reject.reason, reject.text) == (
        "NEW",
        CxlRejReason.OTHER,
        "OrderQty (38) is not a number",
    )
    (unknown,) = engine.on_cancel(InvalidChange(S, "C2", "NONE", "1", "missing required field Side (54)")).commands
    assert (unknown.order_id, unknown.ord_status.name) == ("NONE", "REJECTED")
    for symbol, side in (("MSFT", Side.BUY), ("AAPL", Side.SELL)):
        (refused,) = engine.on_cancel(CancelRequest(S, f"C-{symbol}-{side.name}", "LIVE", symbol, side)).commands
        assert isinstance(refused, CancelReject) and refused.text == "a cancel must name the order's Symbol and Side"
    parent = next(iter(engine.parents.values()))
    assert parent.live and parent.pending is None and parent.price == D("99.00")
