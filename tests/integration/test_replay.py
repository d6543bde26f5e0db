"""`sorgw replay` on a session recorded through the real gateway and venue simulators over FIX: replayed with
the strategy it ran, a sweep reproduces the children it sent; with another strategy it differs, and says how."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from gateway import topology
from gateway.audit.stores import open_store
from gateway.config import BreakerConfig
from gateway.core.breaker import DEFAULT_POLICY
from gateway.core.types import Strategy
from gateway.policy import breaker_policy, routing_policy
from gateway.replay.run import Counterfactual
from gateway.replay.trail import collect
from gateway.stack import Stack
from tests.integration.test_tca import fields
from tests.postgres import postgres_table, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
SORGW = [sys.executable, "-m", "gateway.cli", "replay"]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Two sweeps, a buy then a sell, each over several lit venues; an IOC priced away that trades nothing, then
    a third sweep that meets the same books (the venues do not replenish), so its book record only refers."""
    tmp_path = tmp_path_factory.mktemp("replay")
    still = {
        v["name"]: {"depth": {**v["sim"]["depth"], "replenish_ms": 0}} for v in topology.VENUES if v["kind"] == "lit"
    }
    gateway_cfg, venues_cfg = topology.build(tmp_path, sim_overrides=still)
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        stack.oms.new_order("BAD", "NOSUCH", "1", 100, price="10.00")
        assert stack.oms.wait_final("BAD")
        for cl_ord_id, side, qty, price, tif in (
            ("SW", "1", 3000, "190.05", "0"),
            ("SW2", "2", 2000, "189.90", "0"),
            ("P1", "1", 300, "189.00", "3"),
            ("SW3", "1", 600, "190.10", "0"),
        ):
            stack.oms.new_order(cl_ord_id, "AAPL", side, qty, price=price, tif=tif, urgency="H", strategy="sweep")
            assert stack.oms.wait_final(cl_ord_id)
    store = open_store(gateway_cfg.audit.url)
    store.open()
    try:
        records = list(store.records())
    finally:
        store.close()
    return gateway_cfg, records, tmp_path


def sent_children(gateway_cfg, records, cl_ord_id: str) -> list[dict]:
    """The child orders the gateway sent to venues for this parent, from the FIX messages on the trail."""
    venues = {f"{v.begin_string}:{v.sender_comp_id}->{v.target}": v.name for v in gateway_cfg.venues}
    order_id = next(r.order_id for r in records if r.kind == "fix_in" and r.cl_ord_id == cl_ord_id)
    out = []
    for r in records:
        if r.kind == "fix_out" and r.order_id == order_id and r.session in venues:
            msg = fields(r.body)
            if msg[35] == "D":
                out.append({"venue": venues[r.session], "qty": int(msg[38]), "price": msg[44]})
    return out


def replay(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SORGW, *args, "--audit-url", url], capture_output=True, text=True, timeout=120)


def test_book_records_refer_to_books_already_on_record(session):
    gateway_cfg, records, _ = session
    order_ids = {r.cl_ord_id: r.order_id for r in records if r.kind == "fix_in" and r.cl_ord_id in ("P1", "SW3")}
    books = {
        cl: [json.loads(r.body) for r in records if r.kind == "book" and r.order_id == oid]
        for cl, oid in order_ids.items()
    }
    p1, sw3 = books["P1"][0]["books"], books["SW3"][0]["books"]
    assert len(sw3) == 3 and all(set(entry) == {"venue", "seq", "at"} for entry in sw3)
    book_times = {r.ts_ns for r in records if r.kind == "book"}
    assert all(entry["at"] in book_times for entry in sw3)
    assert {e["venue"]: e["seq"] for e in sw3} == {e["venue"]: e["seq"] for e in p1}
    shown = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "--url", gateway_cfg.audit.url, "show", "SW3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "books read: " + ", ".join(f"{e['venue']} #{e['seq']} unchanged" for e in sw3) in shown.stdout


def test_sweep_replayed_with_sweep_reproduces_the_children_it_sent(session):
    gateway_cfg, records, _ = session
    for cl_ord_id in ("SW", "SW2", "SW3"):
        done = replay(gateway_cfg.audit.url, cl_ord_id, "--strategy", "sweep", "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        sent = sent_children(gateway_cfg, records, cl_ord_id)
        assert len(sent) > 1
        assert [{k: c[k] for k in ("venue", "qty", "price")} for c in report["replay"]["children"]] == sent
        assert report["same_children"] is True
        assert report["replay"]["filled_qty"] == report["recorded"]["filled_qty"]
        assert report["differences"] == ["none: the replay routed and filled exactly as on record"]


def test_another_strategy_gives_a_different_result_and_explains_it(session):
    gateway_cfg, records, _ = session
    done = replay(gateway_cfg.audit.url, "SW", "--strategy", "single", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    replayed = report["replay"]["children"]
    assert report["same_children"] is False
    assert replayed[0]["round"] == 1
    assert len({c["venue"] for c in replayed if c["round"] == 1}) == 1  # single: one venue a round
    assert report["recorded"]["children"] != replayed
    # every venue whose routed quantity changed is named, with both quantities
    routed = {}
    for side in ("recorded", "replay"):
        for c in report[side]["children"]:
            routed.setdefault(c["venue"], {"recorded": 0, "replay": 0})[side] += c["qty"]
    for venue, qty in routed.items():
        line = f"{venue}: {qty['replay']} routed in the replay against {qty['recorded']} on record"
        assert (line in report["differences"]) == (qty["recorded"] != qty["replay"])
    assert any(line.startswith("why: the replay's router said, round 1: single:") for line in report["differences"])
    assert report["cannot_know"] and any("queue position" in line for line in report["cannot_know"])
    table = replay(gateway_cfg.audit.url, "SW", "--strategy", "single")
    assert table.returncode == 0 and "what this replay cannot know:" in table.stdout
    assert "replay (single)" in table.stdout and "recorded (sweep)" in table.stdout


def test_period_replay_reports_each_strategy_with_its_interval(session):
    gateway_cfg, _, _ = session
    done = replay(
        gateway_cfg.audit.url,
        "--all",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--strategy",
        "single,sweep",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "Student-t" in report["method"] and [s["strategy"] for s in report["by_strategy"]] == ["single", "sweep"]
    single, sweep = report["by_strategy"]
    assert len(single["orders"]) == 4  # BAD was rejected before routing: not a routed parent
    overall = next(row for row in single["summary"] if row["recorded_strategy"] == "all")
    diffs = [float(o["replay_shortfall_bps"]) - float(o["recorded_shortfall_bps"]) for o in single["orders"]]
    assert overall["shortfall_bps"]["n"] == 4
    assert float(overall["shortfall_bps"]["mean"]) == pytest.approx(sum(diffs) / 4, abs=1e-4)
    low, high = (float(x) for x in overall["shortfall_bps"]["ci95"])
    assert low <= sum(diffs) / 4 <= high
    # the recorded strategy replayed over its own orders: every order the same, no difference
    assert all(o["same_children"] for o in sweep["orders"])
    same = next(row for row in sweep["summary"] if row["recorded_strategy"] == "all")
    assert same["shortfall_bps"]["mean"] == "0.0000" and same["shortfall_bps"]["ci95"] == ["0.0000", "0.0000"]
    table = replay(
        gateway_cfg.audit.url, "--all", "--from", "2000-01-01", "--to", "2100-01-01", "--strategy", "single,sweep"
    )
    assert table.returncode == 0 and "single" in table.stdout and "what this replay cannot know:" in table.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("NOPE", "--strategy", "sweep"), "unknown order 'NOPE'"),
        (("SW", "--strategy", "fastest"), "unknown strategy 'fastest'"),
        (("SW", "--strategy", "cost", "--policy-override", "speed=2"), "'speed': not a routing setting"),
        (("SW", "--strategy", "cost", "--policy-override", "probe_qty=-1"), "probe_qty"),
        (("SW", "--strategy", "cost", "--policy-override", "probe_qty"), "expected key=value"),
        (("--all", "--strategy", "sweep"), "--all needs --from and --to"),
        (("SW", "--strategy", "sweep,cost"), "several, comma-separated, go with --all"),
        (
            ("--all", "--from", "2000-01-01", "--to", "2100-01-01", "--strategy", "sweep,nope"),
            "unknown strategy 'nope'",
        ),
        (("BAD", "--strategy", "sweep"), "order 'BAD' was rejected before it was routed"),
    ],
)
def test_bad_requests_exit_2_with_the_reason(session, args, message):
    gateway_cfg, _, _ = session
    done = replay(gateway_cfg.audit.url, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_a_trail_without_book_records_is_refused(session, tmp_path):
    gateway_cfg, _, work = session
    old = tmp_path / "old.db"
    shutil.copy(gateway_cfg.audit.url[len("sqlite:///") :], old)
    with sqlite3.connect(old) as db:
        db.execute("DELETE FROM audit WHERE kind = 'book'")
    done = replay(f"sqlite:///{old}", "SW", "--strategy", "sweep")
    assert done.returncode == 2
    assert "has no book record" in done.stderr


def test_a_postgres_trail_replays_the_same(session, postgres_url, postgres_table):  # noqa: F811
    gateway_cfg, records, _ = session
    store = open_store(postgres_url, postgres_table)
    store.open()
    try:
        store.append(records)
    finally:
        store.close()
    for args in (
        ("SW3", "--strategy", "cost"),
        ("--all", "--from", "2000-01-01", "--to", "2100-01-01", "--strategy", "liquidity"),
    ):
        from_postgres = replay(postgres_url, *args, "--table", postgres_table, "--format", "json")
        assert from_postgres.returncode == 0, from_postgres.stderr
        assert json.loads(from_postgres.stdout) == json.loads(
            replay(gateway_cfg.audit.url, *args, "--format", "json").stdout
        )


def test_a_venue_reject_on_record_is_named_as_what_the_replay_cannot_repeat(tmp_path):
    gateway_cfg, venues_cfg = topology.build(tmp_path, sim_overrides={"LITC": {"reject_rate": 1.0}})
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        stack.oms.new_order("RJ", "AAPL", "1", 1500, price="190.05", urgency="H", strategy="sweep")
        assert stack.oms.wait_final("RJ")
    done = replay(gateway_cfg.audit.url, "RJ", "--strategy", "sweep", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any(c["venue"] == "LITC" for c in report["recorded"]["children"]) and report["same_children"] is False
    assert (
        "1 recorded child order(s) were rejected by their venue: the replay's venues reject nothing" in report["notes"]
    )
    replayed_litc = sum(c["qty"] for c in report["replay"]["children"] if c["venue"] == "LITC")
    filled_litc = sum(f["qty"] for f in report["replay"]["fills"] if f["venue"] == "LITC")
    assert filled_litc == replayed_litc > 0  # the replay's LITC took what the recorded one refused
    assert not any(f["venue"] == "LITC" for f in report["recorded"]["fills"])


def test_the_replay_trips_venue_breakers_as_the_config_says(session):
    """A replay's engine runs the circuit breaker policy of the config it replays under (routing.breaker), not
    the default one."""
    gateway_cfg, records, _ = session
    orders, _ = collect(records, lambda order_id, _: True)
    recorded = next(order for order in orders if order.decisions)
    routing = recorded.config.routing
    cfg = recorded.config.model_copy(
        update={"routing": routing.model_copy(update={"breaker": BreakerConfig(failures=2, window_s=3, cooldown_s=7)})}
    )
    replay_run = Counterfactual(recorded, Strategy.SWEEP, routing_policy(cfg.routing), cfg)
    assert replay_run.engine.breakers.policy == breaker_policy(cfg.routing) != DEFAULT_POLICY
