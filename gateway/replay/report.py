"""`sorgw replay`: read recorded parents, work them again with another strategy, print both side by side."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Any, TextIO

from pydantic import ValidationError

from gateway.analytics.markouts import MarkoutTracker
from gateway.analytics.paired import METHOD, paired
from gateway.analytics.tca import Fill, parent_figures
from gateway.audit.commands import parse_time
from gateway.audit.stores import open_store
from gateway.config import GatewayConfig, RoutingConfig
from gateway.core.types import Side, Strategy
from gateway.policy import routing_policy
from gateway.replay.run import Counterfactual, Outcome, recorded_market_note
from gateway.replay.trail import RecordedOrder, ReplayError, Tape, collect, one_order
from gateway.tca.report import write_json

_MS = 1_000_000
_HORIZON_NS = 60_000 * _MS  # mids read past an order's last record, for its markouts (longer horizons show -)
CANNOT_KNOW = (
    "how the venues and other participants would have reacted to different orders: quotes after a decision are "
    "the recorded ones, which the recorded orders moved",
    "hidden liquidity: a dark pool holds only what the recorded order got there (a lower bound), a lit venue "
    "only what it displayed",
    "queue position: an order resting on a book in the replay fills only what it crossed on arrival",
    "latency: every child reaches its venue at the decision's time, before the book could change",
    "venue statistics the cost and dark strategies learn (toxicity, fill rates, latency) start afresh",
    "the market after the order: what either side leaves unfilled is valued at the recorded end mid",
)
FIGURES = ("filled_qty", "avg_px", "fees", "execution_bps", "fees_bps", "opportunity_bps", "shortfall_bps")


def overridden(cfg: GatewayConfig, overrides: list[str]) -> GatewayConfig:
    """The config with routing keys (dotted for nested ones, e.g. cost.toxicity_bps=2) set; ReplayError names
    a key that is not one or a value the routing config refuses."""
    if not overrides:
        return cfg
    routing = cfg.routing.model_dump(mode="json")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ReplayError(f"--policy-override {item!r}: expected key=value")
        parts = key.split(".")
        node = _holder(routing, parts)
        if node is None:
            raise ReplayError(
                f"--policy-override {key!r}: not a routing setting (one of "
                f"{', '.join(_keys(cfg.routing.model_dump(mode='json')))})"
            )
        node[parts[-1]] = json.loads(value) if value.startswith(("[", "{")) else value
    try:
        return cfg.model_copy(update={"routing": RoutingConfig.model_validate(routing)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ReplayError(f"--policy-override: {problems}") from None


def _holder(tree: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The dict holding the setting that path names (its last part is the key), or None if it names none."""
    for part in path[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            return None
        tree = child
    return tree if path[-1] in tree and not isinstance(tree[path[-1]], dict) else None


def _keys(tree: dict, prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in tree.items():
        out += _keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return out


def markouts(fills: list[Fill], side: int, symbol: str, tape: Tape, horizons_ms) -> dict[str, Decimal | None]:
    """Qty-weighted markout in bps per horizon (positive: the mid moved our way), None where some fill has no
    mid on record that late."""
    horizons = tuple(ms * _MS for ms in horizons_ms)
    tracker = MarkoutTracker(horizons)
    events = sorted(
        [(f.ts_ns, 0, i) for i, f in enumerate(fills)] + [(ts, 1, i) for i, (ts, _) in enumerate(tape.mids)]
    )
    for _, kind, i in events:
        if kind == 0:
            f = fills[i]
            tracker.on_fill(symbol, f.venue, Side.BUY if side > 0 else Side.SELL, f.qty, f.price, f.ts_ns)
        else:
            tracker.on_mid(symbol, *tape.mids[i])
    total = sum(f.qty for f in fills)
    out: dict[str, Decimal | None] = {}
    for horizon, ms in zip(horizons, horizons_ms):
        stats = [s for (_, h), s in tracker.summary().items() if h == horizon]
        if not total or sum(s.qty for s in stats) != total:
            out[f"{ms}ms"] = None
            continue
        weighted = sum((Decimal(str(s.mean_bps)) * s.qty for s in stats), Decimal(0)) / total
        out[f"{ms}ms"] = weighted.quantize(Decimal("0.0001")) + 0
    return out


def compare(recorded: RecordedOrder, tape: Tape, strategy: Strategy, cfg: GatewayConfig) -> dict:
    """Both sides of one parent: children, fills and figures, what differs and why."""
    if recorded.trail is None:
        raise ReplayError(f"order {recorded.order_id}: its parent order is not readable on the trail")
    replay = Counterfactual(recorded, strategy, routing_policy(cfg.routing), cfg)
    outcome = replay.run()
    trail = recorded.trail
    horizons = cfg.routing.markout_horizons_ms
    was = _side_figures(parent_figures(trail, recorded.venues), trail.fills, trail.side, trail.symbol, tape, horizons)
    was["strategy"] = ", ".join(sorted({d.strategy or "?" for d in recorded.decisions}))
    was["children"] = [_child(i, d.phase, c) for i, d in enumerate(recorded.decisions, 1) for c in d.children]
    was["reasons"] = [f"round {i}: {d.reason}" for i, d in enumerate(recorded.decisions, 1)]
    now = _side_figures(
        parent_figures(replay.trail(trail), recorded.venues), outcome.fills, trail.side, trail.symbol, tape, horizons
    )
    now["strategy"] = strategy.value
    now["children"] = [_child(i, r.phase, c) for i, r in enumerate(outcome.rounds, 1) for c in r.children]
    now["reasons"] = [f"round {i}: {r.reason}" for i, r in enumerate(outcome.rounds, 1)]
    notes = list(outcome.notes)
    note = recorded_market_note(outcome)
    if note:
        notes.append(note)
    order = recorded.order
    return {
        "order_id": recorded.order_id,
        "cl_ord_id": order.cl_ord_id,
        "symbol": order.symbol,
        "side": order.side.name.lower(),
        "order_qty": order.qty,
        "limit": order.price,
        "tif": order.tif.name,
        "recorded": was,
        "replay": now,
        "same_children": was["children"] == now["children"],
        "differences": _differences(was, now, outcome),
        "notes": notes,
        "cannot_know": list(CANNOT_KNOW),
    }


def _side_figures(figures: dict, fills: list[Fill], side: int, symbol: str, tape: Tape, horizons) -> dict:
    out = {key: figures[key] for key in FIGURES}
    out["status"] = figures["status"]
    out["fills"] = [
        {
            "venue": f.venue,
            "qty": f.qty,
            "price": f.price,
            "liquidity": "passive" if f.passive else "aggressive" if f.passive is False else None,
        }
        for f in fills
    ]
    out["markout_bps"] = markouts(fills, side, symbol, tape, horizons)
    return out


def _child(round_: int, phase: str, child) -> dict:
    return {
        "round": round_,
        "phase": phase,
        "venue": child.venue,
        "qty": child.qty,
        "price": child.price,
        "tif": child.tif.name,
    }


def _differences(was: dict, now: dict, outcome: Outcome) -> list[str]:
    """Plain sentences: where the shares went instead, and what it did to price, fees and shortfall."""
    out = []
    routed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, side in enumerate((was, now)):
        for child in side["children"]:
            routed[child["venue"]][i] += child["qty"]
    for venue, (before, after) in sorted(routed.items()):
        if before != after:
            out.append(f"{venue}: {after} routed in the replay against {before} on record")
    for key, what in (
        ("filled_qty", "filled"),
        ("avg_px", "average price"),
        ("fees", "fees"),
        ("shortfall_bps", "shortfall (bps)"),
    ):
        if was[key] != now[key]:
            delta = (now[key] - was[key]) if was[key] is not None and now[key] is not None else None
            out.append(
                f"{what}: {_text(now[key])} in the replay against {_text(was[key])} on record"
                + (f" ({'+' if delta > 0 else ''}{delta})" if delta is not None else "")
            )
    if out and outcome.rounds:
        out.append(f"why: the replay's router said, {now['reasons'][0]}")
        if len(outcome.rounds) > 1:
            out.append(f"then {len(outcome.rounds) - 1} more round(s), each with its reason above")
    if out and outcome.end_text:
        out.append(f"the replay ended {now['status']}: {outcome.end_text}")
    return out or ["none: the replay routed and filled exactly as on record"]


def period(recorded: list[RecordedOrder], tape: Tape, strategies: list[Strategy], cfg_for) -> dict:
    """Every parent replayed with each strategy; see _period."""
    return {
        "method": METHOD,
        "by_strategy": [_period(recorded, tape, s, cfg_for) for s in strategies],
        "cannot_know": list(CANNOT_KNOW),
    }


def _period(recorded: list[RecordedOrder], tape: Tape, strategy: Strategy, cfg_for) -> dict:
    """Every parent replayed with one strategy; the per-order differences of shortfall and fees (bps of arrival
    notional), per recorded strategy and overall, with their interval."""
    rows, skipped = [], []
    for order in recorded:
        if not order.decisions:
            skipped.append(f"{order.order_id}: never routed")
            continue
        result = compare(order, tape, strategy, cfg_for(order))
        rows.append(result)
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["recorded"]["strategy"]].append(row)
        groups["all"].append(row)
    summary = []
    for name, members in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        entry = {"recorded_strategy": name, "orders": len(members)}
        for key in ("shortfall_bps", "fees_bps"):
            diffs = [
                m["replay"][key] - m["recorded"][key]
                for m in members
                if m["replay"][key] is not None and m["recorded"][key] is not None
            ]
            interval = paired(diffs)
            entry[key] = (
                None
                if interval is None
                else {"n": interval.n, "mean": interval.mean, "ci95": [interval.low, interval.high]}
            )
        summary.append(entry)
    return {
        "strategy": strategy.value,
        "summary": summary,
        "orders": [
            {
                "order_id": r["order_id"],
                "recorded_strategy": r["recorded"]["strategy"],
                "recorded_shortfall_bps": r["recorded"]["shortfall_bps"],
                "replay_shortfall_bps": r["replay"]["shortfall_bps"],
                "recorded_fees_bps": r["recorded"]["fees_bps"],
                "replay_fees_bps": r["replay"]["fees_bps"],
                "same_children": r["same_children"],
            }
            for r in rows
        ],
        "skipped": skipped,
    }


# --- output ------------------------------------------------------------------------------------------


def _text(value) -> str:
    return "-" if value is None else str(value)


def write_order(report: dict, out: TextIO) -> None:
    was, now = report["recorded"], report["replay"]
    print(
        f"order {report['order_id']} ({report['cl_ord_id']}): {report['side']} {report['order_qty']} "
        f"{report['symbol']} limit {_text(report['limit'])} {report['tif']}",
        file=out,
    )
    print(f"{'':22}{'recorded (' + was['strategy'] + ')':>30}  {'replay (' + now['strategy'] + ')':>30}", file=out)
    for key in (*FIGURES, "status"):
        print(f"{key:22}{_text(was[key]):>30}  {_text(now[key]):>30}", file=out)
    for horizon in was["markout_bps"]:
        print(
            f"{'markout_bps ' + horizon:22}{_text(was['markout_bps'][horizon]):>30}  "
            f"{_text(now['markout_bps'][horizon]):>30}",
            file=out,
        )
    for name, side in (("recorded", was), ("replay", now)):
        print(f"\n{name} children (round phase venue qty price tif):", file=out)
        for c in side["children"]:
            print(
                f"  {c['round']:>2} {c['phase']:<8} {c['venue']:<8} {c['qty']:>7} {_text(c['price']):>12} {c['tif']}",
                file=out,
            )
        print(f"{name} fills (venue qty price liquidity):", file=out)
        for f in side["fills"]:
            print(f"  {f['venue']:<8} {f['qty']:>7} {_text(f['price']):>12} {_text(f['liquidity'])}", file=out)
        for reason in side["reasons"]:
            print(f"  {reason}", file=out)
    print("\ndifferences:", file=out)
    for line in report["differences"]:
        print(f"  {line}", file=out)
    _limits(report["notes"], out)


def _limits(notes: list[str], out: TextIO) -> None:
    print("what this replay cannot know:", file=out)
    for line in (*notes, *CANNOT_KNOW):
        print(f"  - {line}", file=out)


def write_period(report: dict, out: TextIO) -> None:
    print(f"replay minus recorded, per order ({report['method']})", file=out)
    print(
        f"{'replay':10}{'recorded strategy':>20}{'orders':>8}  {'shortfall bps: n mean [95% CI]':>40}  "
        f"{'fees bps: n mean [95% CI]':>40}",
        file=out,
    )
    for one in report["by_strategy"]:
        for row in one["summary"]:
            cells = []
            for key in ("shortfall_bps", "fees_bps"):
                d = row[key]
                cells.append(
                    "-" if d is None else f"{d['n']} {d['mean']} [{_text(d['ci95'][0])}, {_text(d['ci95'][1])}]"
                )
            print(
                f"{one['strategy']:10}{row['recorded_strategy']:>20}{row['orders']:>8}  {cells[0]:>40}  {cells[1]:>40}",
                file=out,
            )
    for line in report["by_strategy"][0]["skipped"]:
        print(f"skipped {line}", file=out)
    _limits([], out)


def command(url: str, table: str, args) -> int:
    """Run `sorgw replay`; ReplayError for anything the trail or the request cannot support."""
    strategies = []
    for name in args.strategy.split(","):
        try:
            strategies.append(Strategy(name.strip()))
        except ValueError:
            known = ", ".join(s.value for s in Strategy)
            raise ReplayError(f"unknown strategy {name.strip()!r} (one of {known})") from None
    if args.all == bool(args.order):
        raise ReplayError("name one ORDER, or --all with --from and --to")
    if not args.all and len(strategies) > 1:
        raise ReplayError("one ORDER is replayed with one --strategy; several, comma-separated, go with --all")
    try:
        start = parse_time(args.start) if args.start else None
        end = parse_time(args.end) if args.end else None
    except ValueError as exc:
        raise ReplayError(f"--from/--to: {exc} (expected an ISO-8601 time such as 2024-05-01T13:30:00)") from None
    if args.all and (start is None or end is None):
        raise ReplayError("--all needs --from and --to")
    store = open_store(url, table)
    if url.startswith("sqlite:///") and not store.path.exists():
        raise ReplayError(f"no audit trail at {store.path}")
    store.open()
    try:
        if args.all:
            assert start is not None and end is not None  # --all without both is refused above
            orders, tape = collect(store.records(None, end + _HORIZON_NS), lambda _, ts: start <= ts < end)
        else:
            orders, tape = one_order(store, args.order, _HORIZON_NS)
    finally:
        store.close()
    cfg_for = lambda order: overridden(order.config, args.policy_override or [])  # noqa: E731
    if args.all:
        report = period(orders, tape, strategies, cfg_for)
        if not report["by_strategy"][0]["orders"]:
            raise ReplayError("no routed parent orders arrived in that period")
        writer = write_json if args.format == "json" else write_period
    else:
        if not orders[0].decisions:
            raise ReplayError(f"order {args.order!r} was never routed (rejected before routing): nothing to replay")
        report = compare(orders[0], tape, strategies[0], cfg_for(orders[0]))
        writer = write_json if args.format == "json" else write_order
    writer(report, sys.stdout)
    return 0
