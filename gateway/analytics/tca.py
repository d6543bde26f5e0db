"""Transaction cost analysis: per parent order and per venue figures from plain records of what happened."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

BPS = Decimal(10_000)
FIGURE = Decimal("0.0001")  # bps, shares of one and milliseconds are reported to four places
MONEY = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Quote:
    """An NBBO as recorded; either side may be missing."""

    bid: Decimal | None
    ask: Decimal | None

    @property
    def mid(self) -> Decimal | None:
        return None if self.bid is None or self.ask is None else (self.bid + self.ask) / 2

    def far(self, side: int) -> Decimal | None:
        """The touch a taker on `side` (+1 buy, -1 sell) pays: the offer for a buy, the bid for a sell."""
        return self.ask if side > 0 else self.bid


@dataclass(frozen=True, slots=True)
class VenueTerms:
    """A venue's kind and fees per share (negative: a rebate) as the recorded config had them."""

    dark: bool
    maker_fee: Decimal
    taker_fee: Decimal


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a child: at_fill is the NBBO when the gateway reported it upstream (after the venue's
    book moved for it), at_route the NBBO the router read when it sent the child (before any impact)."""

    ts_ns: int
    venue: str
    qty: int
    price: Decimal
    passive: bool | None  # LastLiquidityInd (851): 1 added liquidity, 2 removed it, None not reported
    at_fill: Quote | None
    at_route: Quote | None


@dataclass(frozen=True, slots=True)
class Child:
    cl_ord_id: str
    venue: str
    qty: int
    sent_ns: int
    ack_ns: int | None  # the venue's first answer (an ack, a fill or a reject)
    rejected: bool


@dataclass(slots=True)
class ParentTrail:
    """What the trail says about one parent order."""

    order_id: str
    cl_ord_id: str
    session: str
    symbol: str
    side: int  # +1 buy, -1 sell
    order_qty: int
    arrival_ns: int
    status: str = "new"
    arrival: Quote | None = None  # the first routing decision's NBBO
    end: Quote | None = None  # the NBBO when the parent reached a final status
    end_ns: int | None = None
    children: list[Child] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)


def _q(value: Decimal | None, step: Decimal = FIGURE) -> Decimal | None:
    return None if value is None else value.quantize(step, ROUND_HALF_EVEN) + 0  # + 0: no "-0.0000"


def _ms(ns: int | None) -> Decimal | None:
    return None if ns is None else _q(Decimal(ns) / 1_000_000)


def fee(terms: VenueTerms | None, passive: bool | None) -> Decimal:
    """Fee per share of one fill: the maker fee when it added liquidity, else the taker fee (unreported: taker)."""
    if terms is None:
        return Decimal(0)
    return terms.maker_fee if passive else terms.taker_fee


def fill_figures(fill: Fill, side: int, terms: VenueTerms | None) -> dict:
    """Slippage against the mid and the far touch at the fill (bps of that mid; positive is a cost), price
    improvement against the far touch the router saw (per share and bps of that mid; positive is better)."""
    out = {"ts_ns": fill.ts_ns, "venue": fill.venue, "qty": fill.qty, "price": fill.price,
           "liquidity": {True: "passive", False: "aggressive", None: None}[fill.passive],
           "fee": fill.qty * fee(terms, fill.passive), "mid_at_fill": None, "slippage_mid_bps": None,
           "slippage_far_bps": None, "improvement": None, "improvement_bps": None}
    mid = fill.at_fill.mid if fill.at_fill else None
    if mid:
        out["mid_at_fill"] = mid
        out["slippage_mid_bps"] = _q(side * (fill.price - mid) / mid * BPS)
        far = fill.at_fill.far(side)
        if far is not None:
            out["slippage_far_bps"] = _q(side * (fill.price - far) / mid * BPS)
    route_mid = fill.at_route.mid if fill.at_route else None
    if route_mid and fill.at_route.far(side) is not None:
        per_share = side * (fill.at_route.far(side) - fill.price)
        out["improvement"] = per_share
        out["improvement_bps"] = _q(per_share / route_mid * BPS)
    return out


def parent_figures(trail: ParentTrail, venues: dict[str, VenueTerms]) -> dict:
    """Arrival mid and implementation shortfall (bps of the arrival mid times the ordered quantity, so the
    three parts add up), fill rate, timings, children, venues and liquidity shares of one parent."""
    side, ordered = trail.side, trail.order_qty
    filled = sum(f.qty for f in trail.fills)
    fills = [fill_figures(f, side, venues.get(f.venue)) for f in trail.fills]
    fees = sum((f["fee"] for f in fills), Decimal(0))
    notional = sum((f.qty * f.price for f in trail.fills), Decimal(0))
    arrival = trail.arrival.mid if trail.arrival else None
    end_mid = trail.end.mid if trail.end else None
    out = {"order_id": trail.order_id, "cl_ord_id": trail.cl_ord_id, "session": trail.session,
           "symbol": trail.symbol, "side": "buy" if side > 0 else "sell", "order_qty": ordered,
           "status": trail.status, "filled_qty": filled, "avg_px": _q(notional / filled, MONEY) if filled else None,
           "fill_rate": _q(Decimal(filled) / ordered) if ordered else None, "arrival_mid": arrival,
           "end_mid": end_mid, "fees": fees, "execution_bps": None, "fees_bps": None, "opportunity_bps": None,
           "shortfall_bps": None}
    if arrival and ordered:
        paper = arrival * ordered
        execution = side * (notional - filled * arrival)
        out["execution_bps"] = _q(execution / paper * BPS)
        out["fees_bps"] = _q(fees / paper * BPS)
        unfilled = ordered - filled
        opportunity = side * (end_mid - arrival) * unfilled if end_mid and unfilled else Decimal(0)
        if end_mid or not unfilled:
            out["opportunity_bps"] = _q(opportunity / paper * BPS)
            out["shortfall_bps"] = _q((execution + fees + opportunity) / paper * BPS)
    first = min((f.ts_ns for f in trail.fills), default=None)
    out["time_to_first_fill_ms"] = _ms(first - trail.arrival_ns if first is not None else None)
    out["time_to_completion_ms"] = _ms(trail.end_ns - trail.arrival_ns if trail.end_ns is not None else None)
    out["children"] = len(trail.children)
    out["venues"] = sorted({c.venue for c in trail.children})
    out["passive_share"] = _share(sum(f.qty for f in trail.fills if f.passive is True), filled)
    out["aggressive_share"] = _share(sum(f.qty for f in trail.fills if f.passive is False), filled)
    out["dark_share"] = _share(sum(f.qty for f in trail.fills if _dark(venues.get(f.venue))), filled)
    out["fills"] = fills
    return out


def _dark(terms: VenueTerms | None) -> bool:
    return terms is not None and terms.dark


def _share(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    return _q(Decimal(part) / Decimal(whole)) if whole else None


def venue_figures(trails: list[ParentTrail], venues: dict[str, VenueTerms]) -> list[dict]:
    """The scorecard of every venue the trails routed to: orders, shares, fill rate, ack latency, price
    improvement, fees and rebates, rejects and share of the flow (routed shares)."""
    names = sorted({c.venue for t in trails for c in t.children} | {f.venue for t in trails for f in t.fills})
    routed_total = sum(c.qty for t in trails for c in t.children)
    filled_total = sum(f.qty for t in trails for f in t.fills)
    rows = []
    for name in names:
        children = [c for t in trails for c in t.children if c.venue == name]
        fills = [fill_figures(f, t.side, venues.get(name)) for t in trails for f in t.fills if f.venue == name]
        routed, filled = sum(c.qty for c in children), sum(f["qty"] for f in fills)
        acks = [c.ack_ns - c.sent_ns for c in children if c.ack_ns is not None]
        improved = [f for f in fills if f["improvement_bps"] is not None]
        improved_qty = sum(f["qty"] for f in improved)
        fees = [f["fee"] for f in fills]
        rows.append({
            "venue": name, "dark": _dark(venues.get(name)), "orders": len(children), "routed_qty": routed,
            "filled_qty": filled, "fill_rate": _share(filled, routed),
            "ack_ms_mean": _ms(sum(acks) // len(acks) if acks else None),
            "ack_ms_p50": _ms(int(median(acks)) if acks else None),
            "improvement": sum((f["improvement"] * f["qty"] for f in improved), Decimal(0)),
            "improvement_bps": _q(sum(f["improvement_bps"] * f["qty"] for f in improved) / improved_qty)
            if improved_qty else None,
            "fees": sum((f for f in fees if f > 0), Decimal(0)),
            "rebates": -sum((f for f in fees if f < 0), Decimal(0)),
            "rejects": sum(c.rejected for c in children),
            "flow_share": _share(routed, routed_total), "fill_share": _share(filled, filled_total)})
    return rows
