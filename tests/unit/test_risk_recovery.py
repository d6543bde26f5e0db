"""A replay of the audit trail reaches the same pre-trade decisions, whatever the market and limits are now."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import quickfix as fix

from gateway import recovery
from gateway.audit import entries
from gateway.audit.records import GENESIS, Entry, chain
from gateway.core.market import MarketView
from gateway.core.risk import Halt, Limits, RiskLimits
from gateway.core.types import ExecType, ExecutionReport, Urgency
from gateway.fix import codec
from tests.unit.test_recovery import LITA, OMS, make_engine, raw

RISK = {"defaults": {"price_collar_bps": "10", "max_orders_per_s": 2}}
CONFIG = {
    "risk": RISK,
    "symbols": [{"symbol": "AAPL", "reference_price": "100"}],
    "upstream": {"sessions": [{"target_comp_id": "OMS"}]},
}
T0 = 1_700_000_000_000_000_000


def limits() -> RiskLimits:
    return RiskLimits(Limits(price_collar_bps=D("10"), max_orders_per_s=2), reference_prices={"AAPL": D("100")})


def order(engine, trail: list[Entry], cl: str, price: str, at_ns: int) -> ExecutionReport:
    """One NewOrderSingle stepped and recorded the way the service does."""
    d = raw("D", {11: cl, 55: "AAPL", 54: "1", 38: "100", 40: "2", 44: price, 59: "0"})
    out = engine.on_new_order(codec.parse_new_order(fix.Message(d, False), OMS, Urgency.MEDIUM), at_ns)
    trail.append(entries.fix_message("in", OMS, d, at_ns, None, cl))
    trail.extend(entries.for_outbox(out, at_ns, {}))
    return [c for c in out.commands if isinstance(c, ExecutionReport)][0]


def recorded_run() -> tuple[list[Entry], list[ExecutionReport]]:
    engine = make_engine("old")
    engine.risk.reconfigure(limits())
    trail = [Entry("config", entries.to_json({"boot": "old", "config": CONFIG}), ts_ns=T0)]
    answers = [
        order(engine, trail, "A", "100.11", T0 + 1),  # inside the collar from the ask 100.01
        order(engine, trail, "B", "100.12", T0 + 2),  # outside it
        order(engine, trail, "C", "99.00", T0 + 3),
        order(engine, trail, "D", "99.00", T0 + 4),
    ]  # third in a second: throttled
    return trail, answers


def test_recorded_run_decides_as_expected():
    _, answers = recorded_run()
    assert [a.exec_type for a in answers] == [ExecType.NEW, ExecType.REJECTED, ExecType.NEW, ExecType.REJECTED]
    assert [a.risk_limit for a in answers] == [None, "price_collar_bps", None, "max_orders_per_s"]


def test_replay_uses_the_recorded_references_and_limits_not_todays():
    trail, _ = recorded_run()
    rebuilt = make_engine("new")
    rebuilt.market = MarketView()  # no book now: a live check would measure from the reference price 100
    result = recovery.replay(rebuilt, chain(trail, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    assert sorted(p.cl_ord_id for p in rebuilt.parents.values()) == ["A", "C"]
    assert result.records == len(trail)
    assert rebuilt.risk.limits == RiskLimits()  # the live limits (none) are back after the replay


def test_replay_carries_the_throttle_over_the_restart():
    trail, _ = recorded_run()
    rebuilt = make_engine("new")
    rebuilt.risk.reconfigure(limits())
    recovery.replay(rebuilt, chain(trail, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    again = order(rebuilt, [], "E", "99.00", T0 + 500_000_000)
    assert again.risk_limit == "max_orders_per_s"
    assert order(rebuilt, [], "F", "99.00", T0 + 1_000_000_004).exec_type is ExecType.NEW


def test_replay_refuses_a_trail_missing_a_reference():
    trail, _ = recorded_run()
    trail = [e for e in trail if e.kind != "risk_ref"]
    with pytest.raises(recovery.RecoveryError, match="none is on record"):
        recovery.replay(make_engine("new"), chain(trail, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)


def test_a_halt_on_record_lasts_across_a_restart_until_resumed():
    trail, _ = recorded_run()
    trail.append(Entry("event", entries.to_json(recovery.halt_body("halt", Halt(symbol="AAPL"))), ts_ns=T0 + 10))
    rebuilt = make_engine("new")
    recovery.replay(rebuilt, chain(trail, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    assert rebuilt.halts == {Halt(symbol="AAPL")}
    assert order(rebuilt, [], "E", "99.00", T0 + 2 * 10**9).risk_limit == "halt"
    trail.append(Entry("event", entries.to_json(recovery.halt_body("resume", Halt(symbol="AAPL"))), ts_ns=T0 + 11))
    resumed = make_engine("new")
    recovery.replay(resumed, chain(trail, 1, GENESIS), {OMS}, {LITA: "LITA"}, Urgency.MEDIUM)
    assert resumed.halts == set()
