"""`sorgw tca`: read the audit trail, compute the figures (or the best-execution reports), print them as a table
or write CSV, JSON or a self-contained HTML report."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from gateway.analytics.bestex import business_days, routing_disclosure, top_venues
from gateway.analytics.tca import CI_METHOD, MIN_CI_SAMPLE, aggregates, parent_figures, venue_figures
from gateway.audit.commands import parse_time
from gateway.audit.stores import open_store
from gateway.charts import pyplot
from gateway.tca.trail import Selection, read_trail

ORDER_COLUMNS = (
    "order_id",
    "cl_ord_id",
    "session",
    "symbol",
    "side",
    "ord_type",
    "directed",
    "order_qty",
    "status",
    "filled_qty",
    "avg_px",
    "fill_rate",
    "arrival_mid",
    "end_mid",
    "fees",
    "execution_bps",
    "fees_bps",
    "opportunity_bps",
    "shortfall_bps",
    "time_to_first_fill_ms",
    "time_to_completion_ms",
    "children",
    "venues",
    "passive_share",
    "aggressive_share",
    "dark_share",
    "market_volume",
    "market_vwap",
    "vwap_slippage_bps",
    "participation",
)
FILL_COLUMNS = (
    "order_id",
    "ts_ns",
    "venue",
    "qty",
    "price",
    "liquidity",
    "fee",
    "mid_at_fill",
    "slippage_mid_bps",
    "slippage_far_bps",
    "improvement",
    "improvement_bps",
    "effective_spread_bps",
)
VENUE_COLUMNS = (
    "venue",
    "dark",
    "orders",
    "routed_qty",
    "filled_qty",
    "fill_rate",
    "ack_ms_mean",
    "ack_ms_p50",
    "improvement",
    "improvement_bps",
    "effective_spread_bps",
    "fees",
    "rebates",
    "rejects",
    "flow_share",
    "fill_share",
    "toxicity",
)
AGGREGATE_COLUMNS = ("figure", "n", "mean", "ci_low", "ci_high")
TOP_COLUMNS = (
    "order_class",
    "rank",
    "venue",
    "fewer_than_one_trade_a_day",
    "volume",
    "volume_pct",
    "orders",
    "orders_pct",
    "passive_pct",
    "aggressive_pct",
    "directed_pct",
)
DISCLOSURE_COLUMNS = (
    "venue",
    "orders",
    "orders_pct",
    "market_pct",
    "marketable_limit_pct",
    "non_marketable_limit_pct",
    "other_pct",
    "fees_paid",
    "rebates_received",
)
TABLE_ORDERS = (
    "order_id",
    "symbol",
    "side",
    "order_qty",
    "filled_qty",
    "avg_px",
    "arrival_mid",
    "execution_bps",
    "fees_bps",
    "opportunity_bps",
    "shortfall_bps",
    "time_to_first_fill_ms",
    "children",
    "dark_share",
    "vwap_slippage_bps",
    "participation",
)
TABLE_VENUES = (
    "venue",
    "orders",
    "routed_qty",
    "filled_qty",
    "fill_rate",
    "ack_ms_p50",
    "improvement_bps",
    "effective_spread_bps",
    "fees",
    "rebates",
    "rejects",
    "flow_share",
    "toxicity",
)


class TcaError(Exception):
    """A request the command cannot serve: said plainly, exit 1."""


def compute(records, selection: Selection) -> dict:
    """The whole report: one entry per selected parent (with its fills), the venues' scorecard, and each figure's
    mean over the orders with its interval."""
    parents, venues, tape = read_trail(records, selection)
    orders = [parent_figures(p, venues, tape.get(p.symbol, ())) for p in parents]
    return {
        "orders": orders,
        "venues": venue_figures(parents, venues),
        "aggregates": aggregates(orders),
        "aggregates_method": f"{CI_METHOD}; none under {MIN_CI_SAMPLE} orders",
    }


def compute_best_ex(records, selection: Selection) -> dict:
    """The best-execution reports for the period the selection names (else the orders' own span)."""
    parents, venues, _ = read_trail(records, selection)
    if not parents:
        return {"orders": 0, "top_venues": [], "routing": []}
    first = selection.start_ns if selection.start_ns is not None else min(p.arrival_ns for p in parents)
    last = selection.end_ns - 1 if selection.end_ns is not None else max(p.arrival_ns for p in parents)
    days = business_days(_day(first), _day(last))
    return {
        "orders": len(parents),
        "period": {"from": _day(first).isoformat(), "to": _day(last).isoformat(), "business_days": days},
        "top_venues": top_venues(parents, days),
        "routing": routing_disclosure(parents, venues),
    }


def _day(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).date()


def markout_columns(rows: list[dict]) -> list[str]:
    """A column per markout horizon any row has, shortest first."""
    return [f"markout_{h}ms_bps" for h in sorted({h for r in rows for h in r["markouts_bps"]}, key=int)]


def _flat(row: dict) -> dict:
    return {**row, **{f"markout_{h}ms_bps": v for h, v in row.get("markouts_bps", {}).items()}}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__}")


def write_json(report: dict, out: TextIO) -> None:
    json.dump(report, out, default=_json_value, indent=2)
    out.write("\n")


def _table(rows: list[dict], columns: tuple[str, ...], out: TextIO) -> None:
    cells = [[_text(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        out.write("  ".join(v.rjust(w) for v, w in zip(line, widths)).rstrip() + "\n")


def write_table(report: dict, out: TextIO) -> None:
    if "top_venues" in report:
        write_best_ex_table(report, out)
        return
    out.write(f"orders ({len(report['orders'])}; bps of the arrival mid x ordered qty, positive is a cost)\n")
    _table(report["orders"], TABLE_ORDERS, out)
    out.write(f"\nvenues ({len(report['venues'])}; markouts in bps of the fill price, positive: moved our way)\n")
    _table([_flat(r) for r in report["venues"]], TABLE_VENUES + tuple(markout_columns(report["venues"])), out)
    out.write(f"\naggregates ({report['aggregates_method']})\n")
    _table(report["aggregates"], AGGREGATE_COLUMNS, out)


def write_best_ex_table(report: dict, out: TextIO) -> None:
    period = report["period"]
    out.write(
        f"top five execution venues per class of order (MiFID II, former RTS 28), {period['from']} to "
        f"{period['to']}, {period['business_days']} business days; percentages\n"
    )
    _table(report["top_venues"], TOP_COLUMNS, out)
    out.write("\norder routing (Rule 606 style, non-directed orders); percentages, fees in the price currency\n")
    _table(report["routing"], DISCLOSURE_COLUMNS, out)


def write_csvs(report: dict, folder: Path) -> list[Path]:
    """orders.csv, fills.csv, venues.csv and aggregates.csv in folder (best-ex: top_venues.csv, routing.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables: tuple[tuple[str, list[dict], tuple[str, ...]], ...]
    if "top_venues" in report:
        tables = (("top_venues", report["top_venues"], TOP_COLUMNS), ("routing", report["routing"], DISCLOSURE_COLUMNS))
    else:
        fills = [
            {"order_id": o["order_id"], **f, **{f"markout_{m['horizon_ms']}ms_bps": m["bps"] for m in f["markouts"]}}
            for o in report["orders"]
            for f in o["fills"]
        ]
        fill_marks = sorted({m["horizon_ms"] for f in fills for m in f["markouts"]})
        orders, venues = [_flat(o) for o in report["orders"]], [_flat(v) for v in report["venues"]]
        tables = (
            ("orders", orders, ORDER_COLUMNS + tuple(markout_columns(report["orders"]))),
            ("fills", fills, FILL_COLUMNS + tuple(f"markout_{h}ms_bps" for h in fill_marks)),
            ("venues", venues, VENUE_COLUMNS + tuple(markout_columns(report["venues"]))),
            ("aggregates", report["aggregates"], AGGREGATE_COLUMNS),
        )
    paths = []
    for name, rows, columns in tables:
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([_text(row.get(c)) for c in columns] for row in rows)
        paths.append(path)
    return paths


def command(url: str, table: str, args) -> int:
    """Run `sorgw tca` on the trail at url; 0 with the report written, 1 with the reason on stderr."""
    try:
        selection = Selection(
            parse_time(args.start) if args.start else None,
            parse_time(args.end) if args.end else None,
            args.session,
            args.symbol,
            args.order,
        )
    except ValueError as exc:
        raise TcaError(f"--from/--to: {exc} (expected an ISO-8601 time such as 2024-05-01T13:30:00)") from None
    if args.format == "csv" and args.out is None:
        raise TcaError("--format csv writes one file per table: name their folder with --out DIR")
    if args.format == "html" and args.out is None:
        raise TcaError("--format html writes one self-contained file: name it with --out FILE")
    if args.format == "html" and args.report == "best-ex":
        raise TcaError("--report best-ex is written as table, csv or json")
    if args.format == "html":
        pyplot()  # before reading the trail: without matplotlib, say so at once
    store = open_store(url, table)
    if url.startswith("sqlite:///") and not store.path.exists():
        raise TcaError(f"no audit trail at {store.path}")
    store.open()
    try:
        report = (compute_best_ex if args.report == "best-ex" else compute)(store.records(), selection)
    finally:
        store.close()
    if not report["orders"]:
        raise TcaError("no parent orders on the trail match the selection")
    if args.format == "csv":
        print(f"wrote {', '.join(str(p) for p in write_csvs(report, args.out))}")
        return 0
    if args.format == "html":
        from gateway.tca.html import write_html

        write_html(report, args.out)
        print(f"wrote {args.out}")
        return 0
    writer = write_json if args.format == "json" else write_table
    if args.out is None:
        writer(report, sys.stdout)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w") as f:
            writer(report, f)
        print(f"wrote {args.out}")
    return 0
