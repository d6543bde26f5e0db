"""`sorgw tca`: read the audit trail, compute the figures, print them as a table or write CSV or JSON."""
from __future__ import annotations

import csv
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from gateway.analytics.tca import parent_figures, venue_figures
from gateway.audit.commands import parse_time
from gateway.audit.stores import open_store
from gateway.tca.trail import Selection, read_trail

ORDER_COLUMNS = ("order_id", "cl_ord_id", "session", "symbol", "side", "order_qty", "status", "filled_qty", "avg_px",
                 "fill_rate", "arrival_mid", "end_mid", "fees", "execution_bps", "fees_bps", "opportunity_bps",
                 "shortfall_bps", "time_to_first_fill_ms", "time_to_completion_ms", "children", "venues",
                 "passive_share", "aggressive_share", "dark_share")
FILL_COLUMNS = ("order_id", "ts_ns", "venue", "qty", "price", "liquidity", "fee", "mid_at_fill", "slippage_mid_bps",
                "slippage_far_bps", "improvement", "improvement_bps")
VENUE_COLUMNS = ("venue", "dark", "orders", "routed_qty", "filled_qty", "fill_rate", "ack_ms_mean", "ack_ms_p50",
                 "improvement", "improvement_bps", "fees", "rebates", "rejects", "flow_share", "fill_share")
TABLE_ORDERS = ("order_id", "symbol", "side", "order_qty", "filled_qty", "avg_px", "arrival_mid", "execution_bps",
                "fees_bps", "opportunity_bps", "shortfall_bps", "time_to_first_fill_ms", "children", "dark_share")
TABLE_VENUES = ("venue", "orders", "routed_qty", "filled_qty", "fill_rate", "ack_ms_p50", "improvement_bps", "fees",
                "rebates", "rejects", "flow_share")


class TcaError(Exception):
    """A request the command cannot serve: said plainly, exit 1."""


def compute(records, selection: Selection) -> dict:
    """The whole report: one entry per selected parent (with its fills) and the venues' scorecard."""
    parents, venues = read_trail(records, selection)
    return {"orders": [parent_figures(p, venues) for p in parents], "venues": venue_figures(parents, venues)}


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
    out.write(f"orders ({len(report['orders'])}; bps of the arrival mid x ordered qty, positive is a cost)\n")
    _table(report["orders"], TABLE_ORDERS, out)
    out.write(f"\nvenues ({len(report['venues'])})\n")
    _table(report["venues"], TABLE_VENUES, out)


def write_csvs(report: dict, folder: Path) -> list[Path]:
    """orders.csv, fills.csv and venues.csv in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    fills = [{"order_id": o["order_id"], **f} for o in report["orders"] for f in o["fills"]]
    paths = []
    for name, rows, columns in (("orders", report["orders"], ORDER_COLUMNS), ("fills", fills, FILL_COLUMNS),
                                ("venues", report["venues"], VENUE_COLUMNS)):
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([_text(row[c]) for c in columns] for row in rows)
        paths.append(path)
    return paths


def command(url: str, table: str, args) -> int:
    """Run `sorgw tca` on the trail at url; 0 with the report written, 1 with the reason on stderr."""
    try:
        selection = Selection(parse_time(args.start) if args.start else None,
                              parse_time(args.end) if args.end else None, args.session, args.symbol, args.order)
    except ValueError as exc:
        raise TcaError(f"--from/--to: {exc} (expected an ISO-8601 time such as 2024-05-01T13:30:00)") from None
    if args.format == "csv" and args.out is None:
        raise TcaError("--format csv writes orders.csv, fills.csv and venues.csv: name their folder with --out DIR")
    store = open_store(url, table)
    if url.startswith("sqlite:///") and not store.path.exists():
        raise TcaError(f"no audit trail at {store.path}")
    store.open()
    try:
        report = compute(store.records(), selection)
    finally:
        store.close()
    if not report["orders"]:
        raise TcaError("no parent orders on the trail match the selection")
    if args.format == "csv":
        print(f"wrote {', '.join(str(p) for p in write_csvs(report, args.out))}")
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
