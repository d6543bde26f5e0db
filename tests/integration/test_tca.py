"""`sorgw tca` on a recorded session (venue simulators, gateway, OMS over FIX, SQLite trail): every figure
computed here by hand from the OMS's own reports, the recorded books and the recorded config."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

import pytest

from gateway import topology
from gateway.audit.stores import open_store
from gateway.fix import codec
from gateway.stack import Stack
from tests.postgres import postgres_table, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
SORGW = [sys.executable, "-m", "gateway.cli", "tca"]
FINAL = ("2", "3", "4", "8", "C")


def q(value: Decimal, step: str = "0.0001") -> str:
    return str(value.quantize(Decimal(step), ROUND_HALF_EVEN) + 0)


def fields(body: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in body.split(b"\x01"):
        tag, _, value = part.partition(b"=")
        if tag.isdigit():
            out.setdefault(int(tag), value.decode())
    return out


def mid(nbbo: dict) -> Decimal:
    return (Decimal(nbbo["bid"]) + Decimal(nbbo["ask"])) / 2


def ex_own(touches: dict, takes: list[tuple[str, Decimal]], side: int) -> Decimal:
    """The mid of the venues' touches with each of our takes' price put back on the side it was taken from,
    unless the venue's other side has since moved through it."""
    book = {v: [None if b is None else Decimal(b), None if a is None else Decimal(a)] for v, (b, a) in touches.items()}
    for venue, price in takes:
        if venue not in book:
            continue
        bid, ask = book[venue]
        if side > 0 and (bid is None or price > bid):
            book[venue][1] = price if ask is None else min(ask, price)
        if side < 0 and (ask is None or price < ask):
            book[venue][0] = price if bid is None else max(bid, price)
    return (max(b for b, _ in book.values() if b is not None) + min(a for _, a in book.values() if a is not None)) / 2


def qty_mean(pairs: list[tuple[int, str | None]]) -> str | None:
    known = [(qty, Decimal(v)) for qty, v in pairs if v is not None]
    total = sum(qty for qty, _ in known)
    return q(sum(qty * v for qty, v in known) / total) if total else None


HORIZONS = (0, 50, 200)
PC_LIMIT = Decimal("190.03")  # the limit of PC, the buy that rests


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A sweep that fills, a limit buy that takes what it can, rests and is canceled, a directed dark order, a market
    sell; background flow on LITC prints trades that are not ours."""
    tmp_path = tmp_path_factory.mktemp("tca")
    gateway_cfg, venues_cfg = topology.build(
        tmp_path,
        sim_overrides={"LITC": {"background_flow": 1.0}},
        gateway_overrides={"tca": {"markout_horizons_ms": list(HORIZONS)}},
    )
    with Stack(gateway_cfg, venues_cfg, tmp_path) as stack:
        oms = stack.oms
        oms.new_order("SW", "AAPL", "1", 900, price="190.03", urgency="H")
        oms.wait_final("SW")
        oms.new_order("PC", "AAPL", "1", 5000, price=str(PC_LIMIT), urgency="H")
        oms.wait(
            lambda: any(
                m.get(codec.ORD_STATUS) in ("0", "1")
                and m.get(codec.LEAVES_QTY) not in (None, "0")
                and int(m.get(codec.CUM_QTY)) > 0
                for m in oms.reports("PC")
            ),
            10,
        )
        time.sleep(0.7)  # LITC's background flow prints while PC rests: the market trades beside us
        oms.cancel("PC-X", "PC", "AAPL", "1", 5000)
        oms.wait_final("PC-X")
        oms.new_order("DK", "AAPL", "2", 300, price="189.00", ex_destination="DRKA")
        oms.wait_final("DK")
        oms.new_order("MK", "AAPL", "2", 200)
        oms.wait_final("MK")
        time.sleep(max(HORIZONS) / 1000 + 0.5)  # the last fill's longest markout horizon, and a background print
        reports = [m for m in oms.received if m.msg_type == "8"]
    store = open_store(gateway_cfg.audit.url)
    store.open()
    try:
        records = list(store.records())
    finally:
        store.close()
    return gateway_cfg, reports, records


def by_hand(gateway_cfg, reports, records) -> dict:
    """The report from first principles: fills from the OMS's reports (LastQty, LastPx, LastMkt), their NBBO from
    the quote recorded with that ExecID, arrival from the first decision's NBBO, fees from the config."""
    venues = {v.name: v for v in gateway_cfg.venues}
    sessions = {f"{v.begin_string}:{v.sender_comp_id}->{v.target}": v.name for v in gateway_cfg.venues}
    quotes = {json.loads(r.body)["exec_id"]: json.loads(r.body) for r in records if r.kind == "quote"}
    marks = {}
    for r in records:
        if r.kind == "marks":
            body = json.loads(r.body)
            for exec_id, horizon_ms in body["marks"]:
                marks.setdefault(exec_id, []).append((r.ts_ns, {**body, "horizon_ms": horizon_ms}))
    prints = [
        (r.ts_ns, json.loads(r.body)) for r in records if r.kind == "trade" and json.loads(r.body)["symbol"] == "AAPL"
    ]
    orders, per_venue = [], {}
    for cl_ord_id in ("SW", "PC", "DK", "MK"):
        mine = [m for m in reports if m.get(codec.CL_ORD_ID) in (cl_ord_id, cl_ord_id + "-X")]
        order_id = mine[0][codec.ORDER_ID]
        story = [r for r in records if r.order_id == order_id]
        arrival_ns = next(r.ts_ns for r in story if r.kind == "fix_in" and fields(r.body)[35] == "D")
        decisions = [r for r in story if r.kind == "decision"]
        arrival = mid(json.loads(decisions[0].body)["nbbo"])
        side = 1 if cl_ord_id in ("SW", "PC") else -1
        ordered = int(mine[0][codec.ORDER_QTY])
        final = next(m for m in mine if m[codec.ORD_STATUS] in FINAL)
        end = quotes[final[codec.EXEC_ID]]
        # Children and the venue's answers, from the trail's venue messages.
        sent = [
            (r, fields(r.body))
            for r in story
            if r.kind == "fix_out" and r.session in sessions and fields(r.body)[35] == "D"
        ]
        answers = [
            (r, fields(r.body))
            for r in story
            if r.kind == "fix_in" and r.session in sessions and fields(r.body)[35] == "8"
        ]
        venue_fills = [(r, f) for r, f in answers if int(Decimal(f.get(32, "0"))) > 0]
        oms_fills = [m for m in mine if int(m.get(codec.LAST_QTY) or 0) > 0]
        assert [(sessions[r.session], int(Decimal(f[32])), Decimal(f[31])) for r, f in venue_fills] == [
            (m[codec.LAST_MKT], int(m[codec.LAST_QTY]), Decimal(m[codec.LAST_PX])) for m in oms_fills
        ]
        assert sum(int(m[codec.LAST_QTY]) for m in oms_fills) == int(final[codec.CUM_QTY])
        takes = [
            (r.ts_ns, sessions[r.session], Decimal(f[31]))
            for r, f in venue_fills
            if f.get(851) == "2" and venues[sessions[r.session]].kind.value == "lit"
        ]
        fills, fees, notional, filled = [], Decimal(0), Decimal(0), 0
        for (record, venue_msg), report in zip(venue_fills, oms_fills):
            venue, qty, px = report[codec.LAST_MKT], int(report[codec.LAST_QTY]), Decimal(report[codec.LAST_PX])
            passive = venue_msg.get(851) == "1"
            fee = qty * (venues[venue].maker_fee if passive else venues[venue].taker_fee)
            at_fill = quotes[report[codec.EXEC_ID]]
            fill_mid = mid(at_fill)
            far = Decimal(at_fill["ask"] if side > 0 else at_fill["bid"])
            child = next(f[11] for r, f in sent if f[11] in (venue_msg.get(11), venue_msg.get(41)))
            child_seq = next(r.seq for r, f in sent if f[11] == child)
            route = json.loads([d for d in decisions if d.seq < child_seq][-1].body)["nbbo"]
            route_far = Decimal(route["ask"] if side > 0 else route["bid"])
            improvement = side * (route_far - px)
            fill_marks = []
            for ts, body in sorted(marks.get(report[codec.EXEC_ID], []), key=lambda m: m[1]["horizon_ms"]):
                reference = ex_own(body["venues"], [(v, p) for t, v, p in takes if t <= ts], side)
                fill_marks.append(
                    {
                        "horizon_ms": body["horizon_ms"],
                        "mid": str(mid(body)),
                        "mid_ex_own": str(reference),
                        "bps": q(side * (reference - px) / px * 10000),
                        "move_bps": q(side * (reference - mid(route)) / mid(route) * 10000),
                    }
                )
            assert [m["horizon_ms"] for m in fill_marks] == list(HORIZONS)
            fills.append(
                {
                    "ts_ns": record.ts_ns,
                    "venue": venue,
                    "qty": qty,
                    "price": str(px),
                    "liquidity": "passive" if passive else "aggressive",
                    "fee": str(fee),
                    "mid_at_fill": str(fill_mid),
                    "slippage_mid_bps": q(side * (px - fill_mid) / fill_mid * 10000),
                    "slippage_far_bps": q(side * (px - far) / fill_mid * 10000),
                    "improvement": str(improvement),
                    "improvement_bps": q(improvement / mid(route) * 10000),
                    "effective_spread_bps": q(2 * side * (px - mid(route)) / mid(route) * 10000),
                    "markouts": fill_marks,
                }
            )
            fees += fee
            notional += qty * px
            filled += qty
        paper = arrival * ordered
        execution = side * (notional - filled * arrival)
        opportunity = side * (mid(end) - arrival) * (ordered - filled)
        final_ns = next(
            r.ts_ns for r in story if r.kind == "fix_out" and fields(r.body).get(17) == final[codec.EXEC_ID]
        )
        during = [(int(b["qty"]), Decimal(b["price"])) for ts, b in prints if arrival_ns <= ts <= final_ns]
        volume = sum(qty for qty, _ in during)
        vwap = sum(qty * px for qty, px in during) / volume
        orders.append(
            {
                "order_id": order_id,
                "cl_ord_id": cl_ord_id,
                "session": "FIX.4.4:SORGW->OMS",
                "symbol": "AAPL",
                "side": "buy" if side > 0 else "sell",
                "ord_type": "market" if cl_ord_id == "MK" else "limit",
                "directed": cl_ord_id == "DK",
                "order_qty": ordered,
                "status": {"2": "filled", "4": "canceled"}[final[codec.ORD_STATUS]],
                "filled_qty": filled,
                "avg_px": q(notional / filled, "0.000001"),
                "fill_rate": q(Decimal(filled) / ordered),
                "arrival_mid": str(arrival),
                "end_mid": str(mid(end)),
                "fees": str(fees),
                "execution_bps": q(execution / paper * 10000),
                "fees_bps": q(fees / paper * 10000),
                "opportunity_bps": q(opportunity / paper * 10000),
                "shortfall_bps": q((execution + fees + opportunity) / paper * 10000),
                "time_to_first_fill_ms": q(Decimal(venue_fills[0][0].ts_ns - arrival_ns) / 1_000_000),
                "time_to_completion_ms": q(Decimal(final_ns - arrival_ns) / 1_000_000),
                "children": len(sent),
                "venues": sorted({sessions[r.session] for r, _ in sent}),
                "passive_share": q(Decimal(sum(f["qty"] for f in fills if f["liquidity"] == "passive")) / filled),
                "aggressive_share": q(Decimal(sum(f["qty"] for f in fills if f["liquidity"] == "aggressive")) / filled),
                "dark_share": q(
                    Decimal(sum(f["qty"] for f in fills if venues[f["venue"]].kind.value == "dark")) / filled
                ),
                "markouts_bps": {
                    str(h): qty_mean([(f["qty"], f["markouts"][i]["bps"]) for f in fills])
                    for i, h in enumerate(HORIZONS)
                },
                "market_volume": volume,
                "market_vwap": q(vwap, "0.000001"),
                "vwap_slippage_bps": q(side * (notional / filled - vwap) / vwap * 10000),
                "participation": q(Decimal(filled) / volume),
                "fills": fills,
            }
        )
        for record, f in sent:
            venue = sessions[record.session]
            row = per_venue.setdefault(venue, {"children": [], "acks": [], "fills": [], "rejects": 0})
            row["children"].append(int(f[38]))
            first = next(r for r, a in answers if f[11] in (a.get(11), a.get(41)))
            row["acks"].append(first.ts_ns - record.ts_ns)
            row["rejects"] += any(a[150] == "8" for r, a in answers if f[11] in (a.get(11), a.get(41)))
        for fill in fills:
            per_venue[fill["venue"]]["fills"].append(fill)
    assert any(b["venue"] == "LITC" for _, b in prints), "background flow printed no trade"
    routed_total = sum(sum(v["children"]) for v in per_venue.values())
    filled_total = sum(f["qty"] for v in per_venue.values() for f in v["fills"])
    scorecard = []
    for name in sorted(per_venue):
        row = per_venue[name]
        routed, filled = sum(row["children"]), sum(f["qty"] for f in row["fills"])
        fees = [Decimal(f["fee"]) for f in row["fills"]]
        weighted = sum(Decimal(f["improvement_bps"]) * f["qty"] for f in row["fills"])
        scorecard.append(
            {
                "venue": name,
                "dark": venues[name].kind.value == "dark",
                "orders": len(row["children"]),
                "routed_qty": routed,
                "filled_qty": filled,
                "fill_rate": q(Decimal(filled) / routed),
                "ack_ms_mean": q(Decimal(sum(row["acks"]) // len(row["acks"])) / 1_000_000),
                "ack_ms_p50": q(Decimal(int(median(row["acks"]))) / 1_000_000),
                "improvement": str(sum((Decimal(f["improvement"]) * f["qty"] for f in row["fills"]), Decimal(0))),
                "improvement_bps": q(weighted / filled) if filled else None,
                "fees": str(sum((f for f in fees if f > 0), Decimal(0))),
                "rebates": str(-sum((f for f in fees if f < 0), Decimal(0))),
                "rejects": row["rejects"],
                "flow_share": q(Decimal(routed) / routed_total),
                "fill_share": q(Decimal(filled) / filled_total),
                "effective_spread_bps": qty_mean([(f["qty"], f["effective_spread_bps"]) for f in row["fills"]]),
                "markouts_bps": {
                    str(h): qty_mean([(f["qty"], f["markouts"][i]["bps"]) for f in row["fills"]])
                    for i, h in enumerate(HORIZONS)
                }
                if row["fills"]
                else {},
                "toxicity": q(
                    Decimal(sum(f["qty"] for f in row["fills"] if Decimal(f["markouts"][-1]["move_bps"]) < 0)) / filled
                )
                if filled
                else None,
            }
        )
    means = []
    for figure in (
        "shortfall_bps",
        "execution_bps",
        "fees_bps",
        "opportunity_bps",
        "vwap_slippage_bps",
        "fill_rate",
        "participation",
    ):
        values = [Decimal(o[figure]) for o in orders]
        means.append(
            {"figure": figure, "n": len(values), "mean": q(sum(values) / len(values)), "ci_low": None, "ci_high": None}
        )  # four orders: too few for an interval
    for h in HORIZONS:
        values = [Decimal(o["markouts_bps"][str(h)]) for o in orders]
        means.append(
            {
                "figure": f"markout_{h}ms_bps",
                "n": len(values),
                "mean": q(sum(values) / len(values)),
                "ci_low": None,
                "ci_high": None,
            }
        )
    return {
        "orders": orders,
        "venues": scorecard,
        "aggregates": means,
        "aggregates_method": "95% Student t interval of the mean, each order one observation; none under 5 orders",
    }


def tca(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SORGW + ["--audit-url", url, *args], capture_output=True, text=True, timeout=60)


def test_every_figure_matches_the_hand_computation(session):
    gateway_cfg, reports, records = session
    expected = by_hand(gateway_cfg, reports, records)
    # The session exercised what the figures are about: a sweep across venues, an unfilled remainder, a dark fill.
    sweep, partial, dark, market = expected["orders"]
    assert len(sweep["venues"]) > 1 and sweep["filled_qty"] == 900
    assert 0 < partial["filled_qty"] < 5000 and partial["status"] == "canceled"
    assert dark["dark_share"] == "1.0000" and dark["passive_share"] == "1.0000"
    assert market["filled_qty"] == 200 and market["ord_type"] == "market"
    assert sweep["aggressive_share"] == "1.0000"  # takes at lit venues: the markouts put their levels back
    # Somebody else traded while the orders worked: participation below one.
    assert any(Decimal(o["participation"]) < 1 for o in expected["orders"])
    done = tca(gateway_cfg.audit.url, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(expected, default=str))


def test_selection_formats_and_errors(session, tmp_path):
    gateway_cfg, reports, records = session
    url = gateway_cfg.audit.url
    one = json.loads(tca(url, "--order", "PC-X", "--format", "json").stdout)
    assert [o["cl_ord_id"] for o in one["orders"]] == ["PC"]
    assert [
        o["cl_ord_id"]
        for o in json.loads(tca(url, "--symbol", "AAPL", "--session", "FIX.4.4:SORGW->OMS", "--format", "json").stdout)[
            "orders"
        ]
    ] == ["SW", "PC", "DK", "MK"]
    dark_at = next(r.ts_ns for r in records if r.kind == "fix_in" and b"\x0111=DK\x01" in r.body)
    later = datetime.fromtimestamp(dark_at / 1e9 - 0.0005, tz=timezone.utc).isoformat()
    assert [o["cl_ord_id"] for o in json.loads(tca(url, "--from", later, "--format", "json").stdout)["orders"]] == [
        "DK",
        "MK",
    ]
    before = json.loads(tca(url, "--to", later, "--format", "json").stdout)["orders"]
    assert [o["cl_ord_id"] for o in before] == ["SW", "PC"]

    table = tca(url)
    assert table.returncode == 0 and "shortfall_bps" in table.stdout and "DRKA" in table.stdout
    written = tca(url, "--format", "csv", "--out", str(tmp_path / "csv"))
    assert written.returncode == 0, written.stderr
    with (tmp_path / "csv" / "venues.csv").open() as f:
        assert {row["venue"] for row in csv.DictReader(f)} >= {"DRKA"}
    with (tmp_path / "csv" / "fills.csv").open() as f:
        assert sum(int(row["qty"]) for row in csv.DictReader(f)) == sum(
            int(m.get(codec.LAST_QTY) or 0) for m in reports
        )

    for args, message in (
        (("--order", "NOPE"), "no parent orders"),
        (("--from", "soon"), "--from/--to"),
        (("--format", "csv"), "--out DIR"),
    ):
        failed = tca(url, *args)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr
    missing = tca(f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1 and "no audit trail" in missing.stderr


def test_every_fill_and_every_end_has_its_nbbo_on_record(session):
    """Fill-time quotes were not on the trail before: each upstream fill and final report now has one."""
    _, reports, records = session
    quotes = {json.loads(r.body)["exec_id"]: json.loads(r.body) for r in records if r.kind == "quote"}
    for m in reports:
        if int(m.get(codec.LAST_QTY) or 0) or m.get(codec.ORD_STATUS) in FINAL:
            quote = quotes[m[codec.EXEC_ID]]
            bid, ask = Decimal(quote["bid"]), Decimal(quote["ask"])
            # While PC rests, its bid (190.03) is part of its venue's book, and another venue that refills its
            # offer at or below it locks or crosses the market: the quote on record is the market as it was.
            assert (bid <= ask or bid == PC_LIMIT) and quote["symbol"] == "AAPL", (m[codec.CL_ORD_ID], quote)


def test_a_trail_with_a_mark_record_per_fill_and_horizon_gives_the_same_report(session, tmp_path):
    """Trails written before marks were recorded together hold one `mark` record per (fill, horizon)."""
    gateway_cfg, _, records = session
    kinds = {r.kind for r in records}
    assert "marks" in kinds and "mark" not in kinds
    old = []
    for r in records:
        if r.kind != "marks":
            old.append(r)
            continue
        body = json.loads(r.body)
        for exec_id, horizon_ms in body.pop("marks"):
            mark = json.dumps({"exec_id": exec_id, "horizon_ms": horizon_ms, **body}).encode()
            old.append(r._replace(kind="mark", body=mark))
    store = open_store(f"sqlite:///{tmp_path}/old.db")
    store.open()
    try:
        store.append([r._replace(seq=seq) for seq, r in enumerate(old, 1)])
    finally:
        store.close()
    from_old = tca(f"sqlite:///{tmp_path}/old.db", "--format", "json")
    assert from_old.returncode == 0, from_old.stderr
    assert json.loads(from_old.stdout) == json.loads(tca(gateway_cfg.audit.url, "--format", "json").stdout)


def test_a_postgres_trail_gives_the_same_report(session, postgres_url, postgres_table):  # noqa: F811
    gateway_cfg, reports, records = session
    store = open_store(postgres_url, postgres_table)
    store.open()
    try:
        store.append(records)
    finally:
        store.close()
    from_postgres = tca(postgres_url, "--table", postgres_table, "--format", "json")
    assert from_postgres.returncode == 0, from_postgres.stderr
    assert json.loads(from_postgres.stdout) == json.loads(tca(gateway_cfg.audit.url, "--format", "json").stdout)


def best_ex_by_hand(gateway_cfg, reports, records) -> dict:
    """Both best-execution tables from the trail's messages: the OMS's orders, the children sent, the venues' fills."""
    venues = {v.name: v for v in gateway_cfg.venues}
    sessions = {f"{v.begin_string}:{v.sender_comp_id}->{v.target}": v.name for v in gateway_cfg.venues}
    parents = {}
    for r in records:
        if r.kind == "fix_in" and r.session not in sessions and r.order_id and fields(r.body).get(35) == "D":
            f = fields(r.body)
            parents[r.order_id] = {
                "arrival": r.ts_ns,
                "class": {"1": "market", "2": "limit"}[f[40]],
                "directed": 100 in f,
                "side": 1 if f[54] == "1" else -1,
                "children": [],
            }
    decisions = [r for r in records if r.kind == "decision"]
    for r in records:
        if r.kind == "fix_out" and r.session in sessions and fields(r.body)[35] == "D":
            f = fields(r.body)
            route = json.loads([d for d in decisions if d.seq < r.seq and d.order_id == r.order_id][-1].body)["nbbo"]
            fills = [
                fields(x.body)
                for x in records
                if x.kind == "fix_in"
                and x.session == r.session
                and fields(x.body).get(11) == f[11]
                and int(Decimal(fields(x.body).get(32, "0"))) > 0
            ]
            parents[r.order_id]["children"].append(
                {
                    "venue": sessions[r.session],
                    "type": f[40],
                    "price": Decimal(f[44]) if 44 in f else None,
                    "route": route,
                    "fills": fills,
                }
            )
    day = datetime.fromtimestamp(min(p["arrival"] for p in parents.values()) / 1e9, tz=timezone.utc).date()
    days = int(day.weekday() < 5)  # the session ran within one day: one business day, or none on a weekend
    top = []
    for order_class in ("market", "limit", "other"):
        executed = [
            (
                c["venue"],
                sum(int(f[32]) for f in c["fills"]),
                all(f.get(851) == "1" for f in c["fills"]),
                any(f.get(851) == "2" for f in c["fills"]),
                p["directed"],
            )
            for p in parents.values()
            if p["class"] == order_class
            for c in p["children"]
            if c["fills"]
        ]
        if not executed:
            continue
        volume = sum(e[1] for e in executed)
        names = sorted({e[0] for e in executed}, key=lambda v: (-sum(e[1] for e in executed if e[0] == v), v))[:5]
        for rank, venue in enumerate(names, 1):
            mine = [e for e in executed if e[0] == venue]
            top.append(
                {
                    "order_class": order_class,
                    "rank": rank,
                    "venue": venue,
                    "fewer_than_one_trade_a_day": days > 0 and len(executed) < days,
                    "volume": sum(e[1] for e in mine),
                    "volume_pct": q(Decimal(sum(e[1] for e in mine)) * 100 / volume),
                    "orders": len(mine),
                    "orders_pct": q(Decimal(len(mine)) * 100 / len(executed)),
                    "passive_pct": q(Decimal(sum(e[2] for e in mine)) * 100 / len(mine)),
                    "aggressive_pct": q(Decimal(sum(e[3] for e in mine)) * 100 / len(mine)),
                    "directed_pct": q(Decimal(sum(e[4] for e in mine)) * 100 / len(mine)),
                }
            )
    routed = [(p, c) for p in parents.values() if not p["directed"] for c in p["children"]]
    routing = []
    for venue in sorted({c["venue"] for _, c in routed}):
        mine = [(p, c) for p, c in routed if c["venue"] == venue]
        kinds = {"market": 0, "marketable_limit": 0, "non_marketable_limit": 0, "other": 0}
        charges = []
        for p, c in mine:
            if c["type"] == "1":
                kinds["market"] += 1
            else:
                far = Decimal(c["route"]["ask"] if p["side"] > 0 else c["route"]["bid"])
                kinds["marketable_limit" if p["side"] * (c["price"] - far) >= 0 else "non_marketable_limit"] += 1
            v = venues[venue]
            charges += [int(f[32]) * (v.maker_fee if f.get(851) == "1" else v.taker_fee) for f in c["fills"]]
        routing.append(
            {
                "venue": venue,
                "orders": len(mine),
                "orders_pct": q(Decimal(len(mine)) * 100 / len(routed)),
                **{f"{k}_pct": q(Decimal(n) * 100 / len(mine)) for k, n in kinds.items()},
                "fees_paid": str(sum((x for x in charges if x > 0), Decimal(0))),
                "rebates_received": str(-sum((x for x in charges if x < 0), Decimal(0))),
            }
        )
    return {"top_venues": top, "routing": routing, "days": days}


def test_best_execution_reports_match_the_hand_computation(session, tmp_path):
    gateway_cfg, reports, records = session
    expected = best_ex_by_hand(gateway_cfg, reports, records)
    done = tca(gateway_cfg.audit.url, "--report", "best-ex", "--format", "json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["orders"] == 4 and got["period"]["business_days"] == expected["days"]
    assert got["top_venues"] == json.loads(json.dumps(expected["top_venues"], default=str))
    assert got["routing"] == json.loads(json.dumps(expected["routing"], default=str))
    assert {r["order_class"] for r in got["top_venues"]} == {"market", "limit"}
    assert any(r["directed_pct"] == "100.0000" and r["venue"] == "DRKA" for r in got["top_venues"])
    children = sum(
        1
        for r in records
        if r.kind == "fix_out" and r.session != "FIX.4.4:SORGW->OMS" and fields(r.body).get(35) == "D"
    )
    assert sum(r["orders"] for r in got["routing"]) < children  # the directed order is not in the 606 counts
    table = tca(gateway_cfg.audit.url, "--report", "best-ex")
    assert table.returncode == 0 and "RTS 28" in table.stdout and "Rule 606" in table.stdout
    written = tca(gateway_cfg.audit.url, "--report", "best-ex", "--format", "csv", "--out", str(tmp_path / "bx"))
    assert written.returncode == 0, written.stderr
    with (tmp_path / "bx" / "routing.csv").open() as f:
        assert [row["venue"] for row in csv.DictReader(f)] == [r["venue"] for r in expected["routing"]]
    refused = tca(gateway_cfg.audit.url, "--report", "best-ex", "--format", "html", "--out", str(tmp_path / "x.html"))
    assert refused.returncode == 1 and "table, csv or json" in refused.stderr
