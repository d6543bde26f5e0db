"""Transaction cost analysis: per parent order and per venue figures from plain records of what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

from gateway.analytics.markouts import OwnTake, Touch, impact_free_mid
from gateway.analytics.paired import t95

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
class Mark:
    """The market a markout horizon after a fill: the NBBO and each lit venue's touch."""

    horizon_ms: int
    ts_ns: int
    nbbo: Quote
    touches: dict[str, Touch]


@dataclass(frozen=True, slots=True)
class Print:
    """One trade a venue published (anyone's, ours included), as the gateway received it."""

    ts_ns: int
    venue: str
    qty: int
    price: Decimal


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
    marks: tuple[Mark, ...] = ()
    child: str | None = None  # the child order's ClOrdID


@dataclass(frozen=True, slots=True)
class Child:
    cl_ord_id: str
    venue: str
    qty: int
    sent_ns: int
    ack_ns: int | None  # the venue's first answer (an ack, a fill or a reject)
    rejected: bool
    ord_type: str = "limit"  # market, limit or other (OrdType 40 as sent)
    price: Decimal | None = None
    route: Quote | None = None  # the NBBO the router read when it sent the child

    def marketable(self, side: int) -> bool | None:
        """A limit child priced at or through the far touch it was routed against (None: no quote to tell)."""
        far = self.route.far(side) if self.ord_type == "limit" and self.route is not None else None
        return None if far is None or self.price is None else side * (self.price - far) >= 0


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
    ord_type: str = "limit"  # market, limit or other (the OMS's OrdType 40)
    directed: bool = False  # the OMS named the venue (ExDestination 100)
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


def own_takes(fills: Sequence[Fill], side: int, venues: dict[str, VenueTerms]) -> list[tuple[int, OwnTake]]:
    """(ts, take) of each fill that took liquidity (851=2) at a lit venue: the levels markouts put back."""
    return [
        (f.ts_ns, OwnTake(f.venue, side, f.price))
        for f in fills
        if f.passive is False and not _dark(venues.get(f.venue))
    ]


def markout(fill: Fill, mark: Mark, side: int, takes: Sequence[tuple[int, OwnTake]]) -> dict:
    """One fill marked at one horizon: bps is side x (impact-free mid - price) in bps of the price, positive when
    the market moved the fill's way; move_bps is side x (impact-free mid - the mid the router saw) in bps of that
    mid, the market's own move since the decision, without the spread paid. mid is the plain NBBO mid then,
    mid_ex_own the one with our takes until then put back."""
    mid_ex = impact_free_mid(mark.touches, [t for ts, t in takes if ts <= mark.ts_ns])
    route_mid = fill.at_route.mid if fill.at_route else None
    return {
        "horizon_ms": mark.horizon_ms,
        "mid": mark.nbbo.mid,
        "mid_ex_own": mid_ex,
        "bps": _q(side * (mid_ex - fill.price) / fill.price * BPS) if mid_ex is not None else None,
        "move_bps": _q(side * (mid_ex - route_mid) / route_mid * BPS) if mid_ex is not None and route_mid else None,
    }


def fill_figures(fill: Fill, side: int, terms: VenueTerms | None, takes: Sequence[tuple[int, OwnTake]] = ()) -> dict:
    """Slippage against the mid and the far touch at the fill (bps of that mid; positive is a cost), price
    improvement against the far touch the router saw (per share and bps of that mid; positive is better),
    effective spread (2 x side x (price - the router's mid), bps of it) and markouts at each recorded horizon."""
    out = {
        "ts_ns": fill.ts_ns,
        "venue": fill.venue,
        "qty": fill.qty,
        "price": fill.price,
        "liquidity": {True: "passive", False: "aggressive", None: None}[fill.passive],
        "fee": fill.qty * fee(terms, fill.passive),
        "mid_at_fill": None,
        "slippage_mid_bps": None,
        "slippage_far_bps": None,
        "improvement": None,
        "improvement_bps": None,
        "effective_spread_bps": None,
    }
    if fill.at_fill is not None and (mid := fill.at_fill.mid):
        out["mid_at_fill"] = mid
        out["slippage_mid_bps"] = _q(side * (fill.price - mid) / mid * BPS)
        far = fill.at_fill.far(side)
        if far is not None:
            out["slippage_far_bps"] = _q(side * (fill.price - far) / mid * BPS)
    if fill.at_route is not None and (route_mid := fill.at_route.mid):
        out["effective_spread_bps"] = _q(2 * side * (fill.price - route_mid) / route_mid * BPS)
        route_far = fill.at_route.far(side)
        if route_far is not None:
            per_share = side * (route_far - fill.price)
            out["improvement"] = per_share
            out["improvement_bps"] = _q(per_share / route_mid * BPS)
    out["markouts"] = [markout(fill, m, side, takes) for m in sorted(fill.marks, key=lambda m: m.horizon_ms)]
    return out


def _weighted(fills: Sequence[dict], value) -> tuple[Decimal | None, int]:
    """The qty-weighted mean of value(fill) over the fills where it is known, and the qty it covers."""
    known = [(f["qty"], v) for f in fills if (v := value(f)) is not None]
    qty = sum(q for q, _ in known)
    return (_q(sum(q * v for q, v in known) / qty) if qty else None), qty


def markouts_by_horizon(fills: Sequence[dict]) -> dict[str, Decimal | None]:
    """Qty-weighted mean markout (bps) per horizon over the fills marked at it, keyed by the horizon in ms."""
    horizons = sorted({m["horizon_ms"] for f in fills for m in f["markouts"]})
    return {
        str(h): _weighted(fills, lambda f, h=h: next((m["bps"] for m in f["markouts"] if m["horizon_ms"] == h), None))[
            0
        ]
        for h in horizons
    }


def interval_market(tape: Sequence[Print], start_ns: int, end_ns: int | None) -> tuple[int, Decimal | None]:
    """Volume and VWAP of the venues' prints received in [start_ns, end_ns] (None: the order is live, none)."""
    if end_ns is None:
        return 0, None
    prints = [p for p in tape if start_ns <= p.ts_ns <= end_ns]
    volume = sum(p.qty for p in prints)
    return volume, (sum((p.qty * p.price for p in prints), Decimal(0)) / volume if volume else None)


def parent_figures(trail: ParentTrail, venues: dict[str, VenueTerms], tape: Sequence[Print] = ()) -> dict:
    """Arrival mid and implementation shortfall (bps of the arrival mid times the ordered quantity, so the
    three parts add up), fill rate, timings, children, venues and liquidity shares, markouts, and the market's
    interval VWAP and our participation in it (`tape`: the prints of the order's symbol)."""
    side, ordered = trail.side, trail.order_qty
    filled = sum(f.qty for f in trail.fills)
    takes = own_takes(trail.fills, side, venues)
    fills = [fill_figures(f, side, venues.get(f.venue), takes) for f in trail.fills]
    fees = sum((f["fee"] for f in fills), Decimal(0))
    notional = sum((f.qty * f.price for f in trail.fills), Decimal(0))
    arrival = trail.arrival.mid if trail.arrival else None
    end_mid = trail.end.mid if trail.end else None
    out = {
        "order_id": trail.order_id,
        "cl_ord_id": trail.cl_ord_id,
        "session": trail.session,
        "symbol": trail.symbol,
        "side": "buy" if side > 0 else "sell",
        "ord_type": trail.ord_type,
        "directed": trail.directed,
        "order_qty": ordered,
        "status": trail.status,
        "filled_qty": filled,
        "avg_px": _q(notional / filled, MONEY) if filled else None,
        "fill_rate": _q(Decimal(filled) / ordered) if ordered else None,
        "arrival_mid": arrival,
        "end_mid": end_mid,
        "fees": fees,
        "execution_bps": None,
        "fees_bps": None,
        "opportunity_bps": None,
        "shortfall_bps": None,
    }
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
    out["markouts_bps"] = markouts_by_horizon(fills)
    volume, vwap = interval_market(tape, trail.arrival_ns, trail.end_ns)
    out["market_volume"] = volume
    out["market_vwap"] = _q(vwap, MONEY)
    out["vwap_slippage_bps"] = _q(side * (notional / filled - vwap) / vwap * BPS) if vwap and filled else None
    out["participation"] = _share(filled, volume)
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
        fills = [
            fill_figures(f, t.side, venues.get(name), own_takes(t.fills, t.side, venues))
            for t in trails
            for f in t.fills
            if f.venue == name
        ]
        routed, filled = sum(c.qty for c in children), sum(f["qty"] for f in fills)
        acks = [c.ack_ns - c.sent_ns for c in children if c.ack_ns is not None]
        improved = [f for f in fills if f["improvement_bps"] is not None]
        improved_qty = sum(f["qty"] for f in improved)
        fees = [f["fee"] for f in fills]
        rows.append(
            {
                "venue": name,
                "dark": _dark(venues.get(name)),
                "orders": len(children),
                "routed_qty": routed,
                "filled_qty": filled,
                "fill_rate": _share(filled, routed),
                "ack_ms_mean": _ms(sum(acks) // len(acks) if acks else None),
                "ack_ms_p50": _ms(int(median(acks)) if acks else None),
                "improvement": sum((f["improvement"] * f["qty"] for f in improved), Decimal(0)),
                "improvement_bps": _q(sum(f["improvement_bps"] * f["qty"] for f in improved) / improved_qty)
                if improved_qty
                else None,
                "fees": sum((f for f in fees if f > 0), Decimal(0)),
                "rebates": -sum((f for f in fees if f < 0), Decimal(0)),
                "rejects": sum(c.rejected for c in children),
                "flow_share": _share(routed, routed_total),
                "fill_share": _share(filled, filled_total),
                "effective_spread_bps": _weighted(fills, lambda f: f["effective_spread_bps"])[0],
                "markouts_bps": markouts_by_horizon(fills),
                "toxicity": _toxicity(fills),
            }
        )
    return rows


def _toxicity(fills: Sequence[dict]) -> Decimal | None:
    """The share of the marked quantity after which the market moved against us by the longest horizon: the
    impact-free mid then is worse for our side than the mid the router saw (move_bps < 0; the spread paid is
    not a move)."""
    horizon = max((m["horizon_ms"] for f in fills for m in f["markouts"]), default=None)
    last = [
        (f["qty"], m["move_bps"])
        for f in fills
        for m in f["markouts"]
        if m["horizon_ms"] == horizon and m["move_bps"] is not None
    ]
    return _share(sum(q for q, bps in last if bps < 0), sum(q for q, _ in last))


MIN_CI_SAMPLE = 5  # fewer observations than this: a mean is reported with no interval
CI_METHOD = "95% Student t interval of the mean, each order one observation"


def mean_ci(values: Sequence[Decimal]) -> dict:
    """n, mean and, from MIN_CI_SAMPLE observations on, a 95% t interval of the mean."""
    n = len(values)
    out: dict[str, int | Decimal | None] = {"n": n, "mean": None, "ci_low": None, "ci_high": None}
    if not n:
        return out
    mean = sum(values, Decimal(0)) / n
    out["mean"] = _q(mean)
    if n >= MIN_CI_SAMPLE:
        variance = sum(((v - mean) ** 2 for v in values), Decimal(0)) / (n - 1)
        half = Decimal(str(t95(n - 1))) * variance.sqrt() / Decimal(n).sqrt()
        out["ci_low"], out["ci_high"] = _q(mean - half), _q(mean + half)
    return out


AGGREGATED = (
    "shortfall_bps",
    "execution_bps",
    "fees_bps",
    "opportunity_bps",
    "vwap_slippage_bps",
    "fill_rate",
    "participation",
)


def aggregates(orders: Sequence[dict]) -> list[dict]:
    """Each order figure's mean over the orders that have it, and each horizon's markout, with n and an interval."""
    rows = [{"figure": name, **mean_ci([o[name] for o in orders if o[name] is not None])} for name in AGGREGATED]
    horizons = sorted({h for o in orders for h in o["markouts_bps"]}, key=int)
    rows += [
        {
            "figure": f"markout_{h}ms_bps",
            **mean_ci([o["markouts_bps"][h] for o in orders if o["markouts_bps"].get(h) is not None]),
        }
        for h in horizons
    ]
    return rows
