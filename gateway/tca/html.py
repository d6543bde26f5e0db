"""`sorgw tca --format html`: one self-contained HTML file (plots as embedded PNG, no script, no server)."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from gateway.charts import pyplot
from gateway.tca.report import AGGREGATE_COLUMNS, TABLE_ORDERS, TABLE_VENUES, _flat, _text, markout_columns

SHARE_BUCKETS = 20  # venue shares over time: the fills' span cut into this many intervals

_STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px}th{background:#eee}
figure{display:inline-block;margin:0 1em 1em 0}img{border:1px solid #ddd}p.note{color:#555;max-width:60em}"""


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(report: dict) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of the shortfall distribution, markout curves per venue and venue shares over time."""
    plt = pyplot()
    plots = []
    shortfalls = [float(o["shortfall_bps"]) for o in report["orders"] if o["shortfall_bps"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(shortfalls, bins=min(30, max(5, len(shortfalls))), color="#4477aa")
    ax.set_title(f"Implementation shortfall, {len(shortfalls)} orders")
    ax.set_xlabel("bps of arrival mid x ordered qty (positive: a cost)")
    ax.set_ylabel("orders")
    plots.append(("Distribution of implementation shortfall", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for venue in report["venues"]:
        points = sorted((int(h), float(v)) for h, v in venue["markouts_bps"].items() if v is not None)
        if points:
            ax.plot([h for h, _ in points], [v for _, v in points], marker="o", label=venue["venue"])
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_title("Markouts per venue (impact-free mid)")
    ax.set_xlabel("horizon after the fill (ms)")
    ax.set_ylabel("bps of the fill price (positive: our way)")
    if ax.lines[1:]:
        ax.legend(fontsize=8, loc="best")
    plots.append(("Markout curves per venue", _png(fig)))
    plt.close(fig)

    fills = sorted((f["ts_ns"], f["venue"], f["qty"]) for o in report["orders"] for f in o["fills"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if fills:
        start, span = fills[0][0], max(1, fills[-1][0] - fills[0][0])
        width = span / SHARE_BUCKETS
        venues = sorted({v for _, v, _ in fills})
        buckets = [{v: 0 for v in venues} for _ in range(SHARE_BUCKETS)]
        for ts, venue, qty in fills:
            buckets[min(SHARE_BUCKETS - 1, int((ts - start) / width))][venue] += qty
        totals = [sum(b.values()) or 1 for b in buckets]
        x = [(i + 0.5) * width / 1e9 for i in range(SHARE_BUCKETS)]
        bottom = [0.0] * SHARE_BUCKETS
        for venue in venues:
            shares = [b[venue] / t for b, t in zip(buckets, totals)]
            ax.bar(x, shares, width=width / 1e9, bottom=bottom, label=venue)
            bottom = [a + b for a, b in zip(bottom, shares)]
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Venue shares of filled quantity over time")
    ax.set_xlabel("seconds from the first fill")
    ax.set_ylabel("share of filled qty")
    plots.append(("Venue shares over time", _png(fig)))
    plt.close(fig)
    return plots


def _table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(report: dict) -> str:
    figures = "".join(
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{png}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
        for caption, png in _plots(report)
    )
    venues = [_flat(v) for v in report["venues"]]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>sorgw tca</title>'
        f"<style>{_STYLE}</style></head><body><h1>Transaction cost analysis</h1>"
        f'<p class="note">{len(report["orders"])} orders. Shortfall in bps of the arrival mid times the ordered '
        f"quantity (positive is a cost); markouts against the impact-free mid (the levels our own takes "
        f"consumed put back), in bps of the fill price, positive when the market moved our way.</p>"
        f'{figures}<h2>Aggregates</h2><p class="note">{escape(report["aggregates_method"])}</p>'
        f"{_table(report['aggregates'], AGGREGATE_COLUMNS)}"
        f"<h2>Venues</h2>{_table(venues, TABLE_VENUES + tuple(markout_columns(report['venues'])))}"
        f"<h2>Orders</h2>{_table(report['orders'], TABLE_ORDERS)}</body></html>\n"
    )


def write_html(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report))
