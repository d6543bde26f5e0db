"""An input probe over a real FIX socket: malformed and extreme orders, cancels and replaces from one OMS session
each get a clean reject, nothing of them reaches a venue, another OMS session keeps trading meanwhile, the process
stays up and the audit trail verifies."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from gateway import topology
from gateway.fix import codec
from gateway.stack import Stack
from tests.raw_fix import RawFixClient

pytestmark = pytest.mark.integration

PROBE, GOOD = "PROBE", "OMSB"
MAX_TEXT = 256  # no reject Text the probe gets may be longer (nothing it sent is echoed uncapped)
HUGE = b"1" + b"0" * 30  # 1e30 written out
DIGITS_400 = b"1" * 400
NOT_UTF8 = b"caf\xe9"
LONG_TEXT = b"x" * 100_000


@dataclass(frozen=True)
class Case:
    name: str
    msg_type: bytes  # D, F or G
    fields: dict[int, bytes]
    answers: frozenset[bytes]  # the MsgTypes that are a clean answer: 3, 8 (a reject), 9


def _order(cl_ord_id: bytes, **changes: bytes | None) -> dict[int, bytes]:
    """A valid limit buy of 100 AAPL at 190.03 (field names as keywords: qty, price, ...), None leaves one out."""
    base = {
        11: cl_ord_id,
        55: b"AAPL",
        54: b"1",
        38: b"100",
        40: b"2",
        44: b"190.03",
        59: b"0",
        60: time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()).encode(),
    }
    tags = {
        "cl": 11,
        "symbol": 55,
        "side": 54,
        "qty": 38,
        "ord_type": 40,
        "price": 44,
        "tif": 59,
        "text": 58,
        "dest": 100,
        "orig": 41,
    }
    for name, value in changes.items():
        if value is None:
            base.pop(tags[name], None)
        else:
            base[tags[name]] = value
    return base


def _cases() -> list[Case]:
    rej, cxl = frozenset({b"3", b"8"}), frozenset({b"9"})
    session = frozenset({b"3"})  # the ClOrdID itself is unusable: nothing to echo in a 35=8 or 35=9
    new = [
        ("qty 1e30", {"qty": HUGE}),
        ("qty 1e30 exponent", {"qty": b"1e30"}),
        ("qty zero", {"qty": b"0"}),
        ("qty negative", {"qty": b"-100"}),
        ("qty NaN", {"qty": b"NaN"}),
        ("qty Infinity", {"qty": b"Infinity"}),
        ("qty 400 digits", {"qty": DIGITS_400}),
        ("qty letters", {"qty": b"abc"}),
        ("qty fraction", {"qty": b"100.5"}),
        ("price 1e30", {"price": HUGE}),
        ("price zero", {"price": b"0"}),
        ("price negative", {"price": b"-190.03"}),
        ("price NaN", {"price": b"NaN"}),
        ("price Infinity", {"price": b"Infinity"}),
        ("price 400 digits", {"price": DIGITS_400}),
        ("price off tick", {"price": b"190.031"}),
        ("price letters", {"price": b"19O.03"}),
        ("price on a market order", {"ord_type": b"1"}),
        ("limit without price", {"price": None}),
        ("unknown symbol", {"symbol": b"ZZZZ"}),
        ("symbol 10,000 chars", {"symbol": b"Z" * 10_000}),
        ("symbol not UTF-8", {"symbol": NOT_UTF8}),
        ("qty minus zero", {"qty": b"-0"}),
        ("bad Side", {"side": b"9"}),
        ("bad OrdType", {"ord_type": b"Z"}),
        ("bad TimeInForce", {"tif": b"Q"}),
        ("missing Symbol", {"symbol": None}),
        ("missing Side", {"side": None}),
        ("missing OrderQty", {"qty": None}),
        ("missing OrdType", {"ord_type": None}),
        ("unknown ExDestination", {"dest": b"NOWHERE" * 2000}),
        ("ExDestination not UTF-8", {"dest": NOT_UTF8}),
        ("Text 100,000 chars", {"text": LONG_TEXT}),
    ]
    cases = [Case(f"D {name}", b"D", _order(f"N{i}".encode(), **change), rej) for i, (name, change) in enumerate(new)]
    cases += [
        Case("D ClOrdID 65 chars", b"D", _order(b"L" * 65), session),
        Case("D ClOrdID 10,000 chars", b"D", _order(b"L" * 10_000), session),
        Case("D empty ClOrdID", b"D", _order(b""), session),
        Case("D missing ClOrdID", b"D", _order(b"", cl=None), session),
        Case("D ClOrdID not UTF-8", b"D", _order(b"ID" + NOT_UTF8), session),
        Case("D duplicate ClOrdID", b"D", _order(b"LIVE", price=b"185.00"), rej),
    ]
    # Cancels and replaces: of an unknown order, and of the live order LIVE with the same bad values. A 35=9 for
    # each, but for what quickfix's session layer refuses before the gateway sees it (a value that is no FIX
    # number, a tag its dictionary requires in that message): a 35=3 naming the tag.
    quickfix_refuses = {
        ("F", "missing Side"),
        ("F", "missing OrigClOrdID"),
        ("G", "missing OrigClOrdID"),
        ("G", "qty NaN"),
        ("G", "qty Infinity"),
        ("G", "price NaN"),
    }
    changes = [
        ("", {}),
        ("qty 1e30", {"qty": HUGE}),
        ("qty zero", {"qty": b"0"}),
        ("qty negative", {"qty": b"-100"}),
        ("qty NaN", {"qty": b"NaN"}),
        ("qty Infinity", {"qty": b"Infinity"}),
        ("qty 400 digits", {"qty": DIGITS_400}),
        ("price 1e30", {"price": HUGE}),
        ("price negative", {"price": b"-1"}),
        ("price NaN", {"price": b"NaN"}),
        ("price 400 digits", {"price": DIGITS_400}),
        ("price off tick", {"price": b"185.001"}),
        ("unknown symbol", {"symbol": b"ZZZZ"}),
        ("other Side", {"side": b"2"}),
        ("missing Side", {"side": None}),
        ("missing Symbol", {"symbol": None}),
        ("missing OrigClOrdID", {"orig": None}),
        ("OrigClOrdID not UTF-8", {"orig": b"O" + NOT_UTF8}),
        ("OrigClOrdID 10,000 chars", {"orig": b"O" * 10_000}),
        ("Text not UTF-8", {"text": NOT_UTF8}),
        ("Text 100,000 chars", {"text": LONG_TEXT}),
    ]
    for kind in (b"F", b"G"):
        for target in (b"UNKNOWN", b"LIVE"):
            for i, (name, change) in enumerate(changes):
                if kind == b"F" and name.startswith(("qty", "price")):
                    continue  # a cancel carries neither
                what = f"{kind.decode()} {'unknown order' if target == b'UNKNOWN' else 'LIVE'} {name}".rstrip()
                if target == b"LIVE" and name in ("", "Text not UTF-8"):
                    continue  # a valid cancel or replace of LIVE (free text is neither acted on nor echoed)
                cl = f"{kind.decode()}{target[:1].decode()}{i}".encode()
                fields = _order(cl, **{"price": b"185.00", "orig": target, **change})
                if kind == b"F":
                    fields = {t: v for t, v in fields.items() if t not in (38, 40, 44, 59)}
                cases.append(Case(what, kind, fields, session if (kind.decode(), name) in quickfix_refuses else cxl))
        cases += [
            Case(f"{kind.decode()} ClOrdID 65 chars", kind, _order(b"C" * 65, orig=b"LIVE"), session),
            Case(f"{kind.decode()} ClOrdID not UTF-8", kind, _order(b"C" + NOT_UTF8, orig=b"LIVE"), session),
        ]
    return cases


@pytest.fixture
def probe_stack(tmp_path):
    upstream = {
        "port": topology.free_port(),
        "sessions": [
            {"target_comp_id": PROBE, "begin_string": "FIX.4.4"},
            {"target_comp_id": GOOD, "begin_string": "FIX.4.4"},
        ],
    }
    gateway_cfg, venues_cfg = topology.build(tmp_path, gateway_overrides={"upstream": upstream})
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        stack.oms.stop()  # session 0 is the prober's, on a raw socket
        stack.oms = stack.connect_oms(1)
        prober = RawFixClient(
            gateway_cfg.upstream.host, gateway_cfg.upstream.port, PROBE, gateway_cfg.upstream.sessions[0].sender_comp_id
        )
        prober.logon()
        try:
            yield stack, prober
        finally:
            prober.close()


def _answer(prober: RawFixClient, case: Case, seq: int, since: int) -> dict[int, bytes] | None:
    """The prober's answer to one message: a session reject naming its MsgSeqNum, else a report or cancel
    reject naming its ClOrdID, among the messages received after it was sent (the `since`-th on)."""
    with prober._cond:
        received = prober.received[since:]
    for message in received:
        if message.get(35) == b"3" and message.get(45) == str(seq).encode():
            return message
    cl = case.fields.get(11)
    for message in received:
        if message.get(35) in (b"8", b"9", b"j") and cl and (message.get(11) == cl or message.get(379) == cl):
            return message
    return None


def _clean(case: Case, answer: dict[int, bytes] | None) -> str | None:
    """What is wrong with the answer, or None."""
    if answer is None:
        return "no answer"
    kind = answer[35]
    if kind not in case.answers:
        return f"answered with 35={kind.decode()}"
    text = answer.get(58)
    if not text:
        return "no Text (58)"
    if len(text) > MAX_TEXT:
        return f"Text of {len(text)} characters"
    if kind == b"8" and (answer.get(39) != b"8" or 103 not in answer):
        return f"35=8 with OrdStatus {answer.get(39)} and OrdRejReason {answer.get(103)}"
    return None


def test_every_malformed_or_extreme_request_gets_a_clean_reject_and_the_other_session_keeps_trading(
    probe_stack, tmp_path
):
    stack, prober = probe_stack
    gateway = stack.gateway
    probe_key = next(k for k in gateway._upstream_keys if k.endswith(PROBE))
    # A live order of the prober's, for the cancels and replaces to aim at (a buy far below the market rests).
    prober.send(b"D", _order(b"LIVE", price=b"185.00"))
    assert prober.wait(lambda: any(m.get(39) == b"0" for m in prober.answers(b"LIVE")), 10)

    def live() -> dict:
        return gateway.inspect(
            lambda e: {
                p.cl_ord_id: (p.qty, p.price, p.status.name, sorted(p.children))
                for p in e.parents.values()
                if p.session == probe_key
            }
        )

    before = live()
    assert list(before) == ["LIVE"] and before["LIVE"][2] == "NEW"

    # The other OMS trades all along.
    done, good = threading.Event(), []

    def trade() -> None:
        while not done.is_set() or len(good) < 3:
            cl = f"G{len(good)}"
            stack.oms.new_order(cl, "AAPL", "2", 100, price="189.97", urgency="H")
            good.append(cl)
            time.sleep(0.05)

    trader = threading.Thread(target=trade, name="good-oms")
    trader.start()
    try:
        cases = _cases()
        sent = [(case, len(prober.received), prober.send(case.msg_type, case.fields)) for case in cases]
        prober.wait(lambda: all(_answer(prober, case, seq, since) for case, since, seq in sent), 20)
    finally:
        done.set()
        trader.join(30)
    problems = [
        f"{case.name}: {problem}"
        for case, since, seq in sent
        if (problem := _clean(case, _answer(prober, case, seq, since)))
    ]
    assert problems == [], "\n".join(problems)

    # Nothing of it reached a venue: the prober's only order is LIVE, as it was, with the same children.
    assert live() == before, "a probe changed the live order or sent a child"
    # The other session's orders all filled, during the probe and after it.
    stack.oms.new_order("AFTER", "AAPL", "2", 100, price="189.97", urgency="H")
    for cl in [*good, "AFTER"]:
        final = stack.oms.wait_final(cl)
        assert final is not None and final[codec.ORD_STATUS] == "2", cl
    # The process and the prober's session are still up: it answers a TestRequest.
    prober.send(b"1", {112: b"still-there"})
    assert prober.wait(lambda: any(m.get(35) == b"0" and m.get(112) == b"still-there" for m in prober.received), 10)
    assert not prober.closed and gateway.audit.writable

    stack.oms.stop()
    gateway.stop()  # a clean stop flushes the trail; then it is verified as an operator would
    stack.gateway = stack.oms = None
    verify = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "--url", stack.gateway_cfg.audit.url, "verify"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
