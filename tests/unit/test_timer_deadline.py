"""The engine's next timer deadline: a tick before it would change nothing, so the gateway may skip it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.core.breaker import CircuitState
from gateway.core.types import CancelChild, ExecType, OrdStatus, Outbox, Strategy, Urgency, VenueReport
from gateway.service import TIMER_STEP_AT_LEAST_NS, timer_due
from gateway.simulation import scenarios
from gateway.simulation.world import World
from tests.unit.test_breaker import _open_litb, gate  # noqa: F401 - the fixture
from tests.unit.test_engine import children, order

CONFIG = Path(__file__).parents[2] / "config" / "simulate.yaml"
SECOND = 1_000_000_000


def _run(name: str, strategy: Strategy, gated: bool) -> tuple[list, list, dict, int]:
    """One simulated run; `gated`: on_timer is skipped while the clock is before engine.timer_due_ns, as the
    gateway's timer thread skips it. Returns the outcomes, every tick that produced something, the markouts
    learnt and how many ticks were skipped."""
    cfg = scenarios.load(CONFIG)
    world = World(next(s for s in cfg.scenarios if s.name == name), strategy, 7, cfg)
    engine = world.engine
    real = engine.on_timer
    ticks: list[tuple[int, list[str], list[str]]] = []
    skipped = 0

    def on_timer(now: int) -> Outbox:
        nonlocal skipped
        if gated and now < engine.timer_due_ns:
            skipped += 1
            return Outbox()
        due = engine.timer_due_ns
        out = real(now)
        if now < due:
            assert not out.commands and not out.decisions, f"a tick before the deadline produced {out}"
        if out.commands or out.decisions:
            ticks.append((now, [str(c) for c in out.commands], [str(d) for d in out.decisions]))
        return out

    engine.on_timer = on_timer  # type: ignore[method-assign]
    outcomes = world.run()
    return outcomes, ticks, engine.learning.markouts.summary(), skipped


@pytest.mark.parametrize(
    ("name", "strategy"),
    [("low-urgency-dark", Strategy.DARK), ("balanced", Strategy.SWEEP), ("toxic-rebate", Strategy.COST)],
)
def test_skipping_ticks_before_the_deadline_changes_no_outcome_no_decision_and_nothing_learnt(name, strategy):
    outcomes, ticks, learnt, _ = _run(name, strategy, gated=False)
    gated_outcomes, gated_ticks, gated_learnt, skipped = _run(name, strategy, gated=True)
    assert gated_outcomes == outcomes
    assert gated_ticks == ticks
    assert gated_learnt == learnt and learnt  # markouts were resolved at the same ticks, to the same mids
    assert skipped > 0


def test_the_deadline_names_the_child_timeout_the_breaker_cooldown_and_nothing_when_idle(gate):  # noqa: F811
    gate.on_timer(gate.clock.now_ns())
    assert gate.timer_due_ns > 10**18  # nothing to do, ever
    (child,) = children(gate.on_new_order(order("Q1", qty=100, price="99.00", ex_destination="LITA")))
    assert gate.timer_due_ns == gate.clock.now_ns() + gate.child_timeout_ns  # unanswered: queried then
    gate.clock.advance(gate.child_timeout_ns - 1)
    assert gate.clock.now_ns() < gate.timer_due_ns
    gate.clock.advance(1)
    assert gate.on_timer(gate.clock.now_ns()).commands  # the status query is due exactly then
    _open_litb(gate)
    assert gate.breakers.state("LITB") is CircuitState.OPEN
    cooldown_end = gate.breakers.next_tick_ns()
    assert cooldown_end is not None and gate.timer_due_ns <= cooldown_end
    gate.on_timer(gate.clock.now_ns())
    assert gate.timer_due_ns == min(cooldown_end, gate.clock.now_ns() + gate.child_timeout_ns)


def test_the_deadline_names_a_resting_dark_round_before_its_child_timeout(engine):
    engine.policy = dataclasses.replace(engine.policy, dark_timeout_ns=SECOND // 2)
    engine.on_timer(engine.clock.now_ns())  # a new engine's first tick is due at once
    (dark,) = children(engine.on_new_order(order(qty=400, urgency=Urgency.LOW)))
    engine.on_venue_report(VenueReport("DRKA", dark.cl_ord_id, "a1", ExecType.NEW, OrdStatus.NEW))
    assert engine.timer_due_ns == engine.clock.now_ns() + SECOND // 2
    engine.clock.advance(SECOND // 2)
    (cancel,) = engine.on_timer(engine.clock.now_ns()).commands
    assert isinstance(cancel, CancelChild) and cancel.orig_cl_ord_id == dark.cl_ord_id


def test_the_timer_steps_at_the_deadline_and_at_least_once_a_second_without_one():
    second = TIMER_STEP_AT_LEAST_NS
    assert not timer_due(5 * second + 10, 6 * second, 5 * second)  # before the deadline, stepped just now
    assert timer_due(6 * second, 6 * second, 5 * second + 500)  # the deadline itself
    assert timer_due(9 * second, 2**63 - 1, 8 * second)  # no deadline named: a second since the last step
    assert not timer_due(9 * second - 1, 2**63 - 1, 8 * second)
