"""Over real FIX sessions: a venue that stays down, stopping with working orders, an OMS that goes away."""

from __future__ import annotations

import pytest
import quickfix as fix

from gateway import checks, topology
from gateway.config import UpstreamSession
from gateway.fix import codec
from gateway.stack import Stack
from tests.integration.test_metrics import scrape, total, wait_for

pytestmark = pytest.mark.integration


def rest_at_lita(stack: Stack, cl_ord_id: str, qty: int = 200) -> str:
    """A buy below the market directed to LITA: it rests there. Returns its child's ClOrdID."""
    stack.oms.new_order(cl_ord_id, "AAPL", "1", qty, price="189.50", ex_destination="LITA")

    def acked_child(engine) -> str | None:
        for parent in engine.parents.values():
            if parent.cl_ord_id == cl_ord_id:
                return next((c.cl_ord_id for c in parent.children.values() if c.acked), None)
        return None

    assert wait_for(lambda: stack.gateway.inspect(acked_child) is not None)
    return stack.gateway.inspect(acked_child)


def venue_session(stack: Stack, name: str) -> fix.Session:
    (key,) = [key for key, cfg in stack.venues.configs.items() if cfg.name == name]
    return fix.Session.lookupSession(stack.venues.sessions[key])


def texts(stack: Stack, cl_ord_id: str, exec_type: str) -> list[str]:
    return [m.get(codec.TEXT, "") for m in stack.oms.reports(cl_ord_id) if m.get(codec.EXEC_TYPE) == exec_type]


def stop_gateway(stack: Stack) -> None:
    stack.gateway.stop()
    stack.gateway = None  # stopped: the stack's exit leaves it alone


def test_a_child_at_a_venue_that_stays_down_is_held_in_doubt_until_the_venue_answers(make_stack):
    stack = make_stack(gateway_overrides={"routing": {"venue_down_timeout_ms": 500}})
    oms = stack.oms
    child = rest_at_lita(stack, "D1")
    venue_session(stack, "LITA").logout("down for maintenance")  # refuses logons until logon() below
    assert oms.wait(lambda: texts(stack, "D1", "I"), 10), "the OMS was not told of the child in doubt"
    (told,) = texts(stack, "D1", "I")
    assert "LITA" in told and "200 in doubt" in told and child in told
    status = [m for m in oms.reports("D1") if m.get(codec.EXEC_TYPE) == "I"][0]
    assert status[codec.ORD_STATUS] == "0" and status[codec.LEAVES_QTY] == "200"  # OrdStatus unchanged
    assert total(scrape(stack), "sorgw_children_in_doubt", venue="LITA") == 1
    assert stack.gateway.inspect(lambda e: [c.cl_ord_id for c in e.working_children()]) == [child]  # not re-routed

    oms.cancel("D1-C", "D1", "AAPL", "1", 200)
    assert oms.wait(lambda: texts(stack, "D1", "6"), 5)
    assert "pending until LITA answers: 200 in doubt" in texts(stack, "D1", "6")[0]

    venue_session(stack, "LITA").logon()  # the venue takes logons again: the status request resolves the child
    final = oms.wait_final("D1-C", timeout=15)
    assert final is not None and final[codec.ORD_STATUS] == "4" and final[codec.CUM_QTY] == "0"
    assert any("LITA answered" in text for text in texts(stack, "D1", "I"))
    assert total(scrape(stack), "sorgw_children_in_doubt", venue="LITA") == 0
    assert checks.order_problems([m for m in oms.reports("D1") if m.msg_type == "8"]) == []


def test_stopping_cancels_working_children_and_ends_their_parents_canceled(make_stack):
    stack = make_stack()
    child = rest_at_lita(stack, "S1")
    engine = stack.gateway.engine
    stop_gateway(stack)
    final = stack.oms.wait_final("S1", timeout=5)
    assert final is not None and final[codec.ORD_STATUS] == "4" and final[codec.TEXT] == "gateway shutting down"
    assert final[codec.LEAVES_QTY] == "0"
    assert engine.child(child).status.name == "CANCELED"  # the venue confirmed the cancel


def test_stopping_with_leave_keeps_children_working_and_tells_the_oms_where(make_stack):
    stack = make_stack(gateway_overrides={"shutdown": {"working_orders": "leave"}})
    child = rest_at_lita(stack, "L1")
    engine = stack.gateway.engine
    stop_gateway(stack)
    assert stack.oms.wait(lambda: texts(stack, "L1", "I"), 5)
    (told,) = texts(stack, "L1", "I")
    assert told == f"gateway shutting down: still working 200 at LITA (child {child})"
    assert engine.child(child).live and not engine.child(child).cancel_sent


def test_a_cancel_the_venue_never_answers_is_reported_after_the_timeout(make_stack):
    stack = make_stack(gateway_overrides={"shutdown": {"cancel_timeout_ms": 300}})
    child = rest_at_lita(stack, "T1")
    venue_session(stack, "LITA").logout("down")
    assert wait_for(lambda: not stack.gateway.inspect(lambda e: e.venues["LITA"].connected))
    stop_gateway(stack)
    assert stack.oms.wait(lambda: texts(stack, "T1", "I"), 5)
    assert (
        texts(stack, "T1", "I")[-1]
        == f"gateway shutting down, cancels unanswered: still working 200 at LITA (child {child})"
    )


def test_an_oms_with_cancel_on_disconnect_has_its_orders_canceled_when_it_goes(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path)
    upstream = gateway_cfg.upstream.model_copy(update={"sessions": (UpstreamSession(cancel_on_disconnect=True),)})
    with Stack(gateway_cfg.model_copy(update={"upstream": upstream}), venues_cfg, tmp_path) as stack:
        child = rest_at_lita(stack, "C1")
        stack.oms.stop()
        stack.oms = None

        def parent_and_child(engine):
            parent = engine.parents[engine.child(child).parent_id]
            return parent.status.name, engine.child(child).status.name

        assert wait_for(lambda: stack.gateway.inspect(parent_and_child) == ("CANCELED", "CANCELED"))
