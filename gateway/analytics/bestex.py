"""Best-execution reports from plain trail records: MiFID II top-five venues (former RTS 28) and a Rule 606 style
routing disclosure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from gateway.analytics.tca import ParentTrail, VenueTerms, _q, fee

TOP = 5
ORDER_CLASSES = ("market", "limit", "other")


def business_days(first: date, last: date) -> int:
    """Weekdays from first to last, both included (no holiday calendar: a public holiday counts)."""
    days = 0
    day = first
    while day <= last:
        days += day.weekday() < 5
        day += timedelta(days=1)
    return days


def _pct(part: int, whole: int) -> Decimal | None:
    return _q(Decimal(part) * 100 / whole) if whole else None


def top_venues(trails: Sequence[ParentTrail], days: int) -> list[dict]:
    """Per class of order (the parent's OrdType), the five venues with the most executed volume: each one's share
    of the class's volume and of its executed child orders, and of the child orders it executed the percentages
    that were passive (every fill added liquidity), aggressive (a fill took liquidity) and directed (the parent
    named the venue). `days`: business days in the period, for the fewer-than-one-trade-a-day notice."""
    rows = []
    for order_class in ORDER_CLASSES:
        parents = [t for t in trails if t.ord_type == order_class]
        executed = []  # (venue, qty, passive, aggressive, directed) per child order with a fill
        for parent in parents:
            for child in parent.children:
                fills = [f for f in parent.fills if f.venue == child.venue and f.child == child.cl_ord_id]
                if fills:
                    executed.append(
                        (
                            child.venue,
                            sum(f.qty for f in fills),
                            all(f.passive is True for f in fills),
                            any(f.passive is False for f in fills),
                            parent.directed,
                        )
                    )
        if not executed:
            continue
        volume, orders = sum(e[1] for e in executed), len(executed)
        by_venue: dict[str, list[tuple]] = {}
        for e in executed:
            by_venue.setdefault(e[0], []).append(e)
        ranked = sorted(by_venue.items(), key=lambda kv: (-sum(e[1] for e in kv[1]), kv[0]))[:TOP]
        for rank, (venue, mine) in enumerate(ranked, 1):
            rows.append(
                {
                    "order_class": order_class,
                    "rank": rank,
                    "venue": venue,
                    "fewer_than_one_trade_a_day": days > 0 and orders < days,
                    "volume": sum(e[1] for e in mine),
                    "volume_pct": _pct(sum(e[1] for e in mine), volume),
                    "orders": len(mine),
                    "orders_pct": _pct(len(mine), orders),
                    "passive_pct": _pct(sum(e[2] for e in mine), len(mine)),
                    "aggressive_pct": _pct(sum(e[3] for e in mine), len(mine)),
                    "directed_pct": _pct(sum(e[4] for e in mine), len(mine)),
                }
            )
    return rows


def routing_disclosure(trails: Sequence[ParentTrail], venues: dict[str, VenueTerms]) -> list[dict]:
    """Rule 606 style, over non-directed parents: per venue, its share of the child orders routed, the split of
    those into market, marketable limit, non-marketable limit and other orders, and the fees paid and rebates
    received there (from each fill's liquidity and the venue's configured fees)."""
    routed = [(t, c) for t in trails if not t.directed for c in t.children]
    rows = []
    for venue in sorted({c.venue for _, c in routed}):
        mine = [(t, c) for t, c in routed if c.venue == venue]
        kinds = {"market": 0, "marketable_limit": 0, "non_marketable_limit": 0, "other": 0}
        for parent, child in mine:
            marketable = child.marketable(parent.side)
            if child.ord_type == "limit" and marketable is not None:
                kinds["marketable_limit" if marketable else "non_marketable_limit"] += 1
            else:  # a market order, or a limit with no quote to judge it by, or another type
                kinds["market" if child.ord_type == "market" else "other"] += 1
        parents = {t.order_id: t for t, _ in mine}.values()
        charges = [f.qty * fee(venues.get(venue), f.passive) for t in parents for f in t.fills if f.venue == venue]
        rows.append(
            {
                "venue": venue,
                "orders": len(mine),
                "orders_pct": _pct(len(mine), len(routed)),
                **{f"{k}_pct": _pct(n, len(mine)) for k, n in kinds.items()},
                "fees_paid": sum((c for c in charges if c > 0), Decimal(0)),
                "rebates_received": -sum((c for c in charges if c < 0), Decimal(0)),
            }
        )
    return rows
