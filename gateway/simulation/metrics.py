"""Transaction-cost metrics of one simulated run: implementation shortfall, fees, markouts, fill rate.

All in basis points of each parent's arrival mid (the true NBBO mid when the OMS sent it):

- shortfall_bps: side x (fill price - arrival mid) plus fees, per filled share (the execution cost).
- fees_bps: the venues' fees (negative: rebates), per filled share.
- markout_bps: side x (mid just before each fill - mid `markout_ms` later), qty-weighted over fills and
  relative to that first mid: how far the market moved against what was bought or sold; positive is a cost.
  Both mids are impact-free (gateway.analytics.markouts.impact_free_mid): the lit books with the levels the
  parent's own takes consumed put back, so the move a strategy's own orders caused is not counted as a gain.
- opportunity_bps: side x (mid when the parent ended - arrival mid) on the unfilled shares, per ordered share:
  what not trading cost, valued at the end mid (Perold's opportunity cost).
- total_bps: the execution cost of the filled shares plus the opportunity cost, per ordered share.
- all_in_bps: total_bps plus the markout cost carried by the filled shares, per ordered share: what the
  strategies are ranked by.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Fill:
    """One parent fill as the OMS saw it (LastMkt, LastQty, LastPx), with what the venue charged and when."""

    venue: str
    qty: int
    price: Decimal
    fee: Decimal  # for the whole fill; negative: a rebate
    ts_ns: int  # when the venue executed it
    mid_before: Decimal | None  # the true NBBO mid just before it executed, the parent's earlier takes put back
    mid_after: Decimal | None  # the true NBBO mid the markout horizon later, the parent's takes put back


@dataclass(frozen=True, slots=True)
class ParentOutcome:
    """What one parent order came to."""

    qty: int
    sign: int  # +1 buy, -1 sell
    arrival_ns: int
    arrival_mid: Decimal
    end_ns: int  # when the parent was done (filled, expired or canceled)
    end_mid: Decimal
    fills: tuple[Fill, ...]

    @property
    def filled(self) -> int:
        return sum(f.qty for f in self.fills)


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """One run of one strategy in one scenario; the bps are None when nothing filled."""

    scenario: str
    strategy: str
    run: int
    seed: int
    qty: int
    filled: int
    avg_px: Decimal | None
    shortfall_bps: float | None
    fees_bps: float | None
    markout_bps: float | None
    opportunity_bps: float
    total_bps: float
    all_in_bps: float
    venue_qty: dict[str, int]  # filled shares per venue

    @property
    def fill_rate(self) -> float:
        return self.filled / self.qty


def measure(scenario: str, strategy: str, run: int, seed: int, parents: list[ParentOutcome]) -> RunMetrics:
    qty = sum(p.qty for p in parents)
    execution = fees = markout = opportunity = Decimal(0)
    notional = Decimal(0)
    marked = 0
    venue_qty: dict[str, int] = {}
    for parent in parents:
        arrival = parent.arrival_mid
        for fill in parent.fills:
            execution += parent.sign * (fill.price - arrival) * fill.qty / arrival + fill.fee / arrival
            fees += fill.fee / arrival
            notional += fill.price * fill.qty
            venue_qty[fill.venue] = venue_qty.get(fill.venue, 0) + fill.qty
            if fill.mid_before and fill.mid_after is not None:
                markout += parent.sign * (fill.mid_before - fill.mid_after) * fill.qty / fill.mid_before
                marked += fill.qty
        opportunity += parent.sign * (parent.end_mid - arrival) * (parent.qty - parent.filled) / arrival
    filled = sum(venue_qty.values())
    return RunMetrics(
        scenario=scenario,
        strategy=strategy,
        run=run,
        seed=seed,
        qty=qty,
        filled=filled,
        avg_px=notional / filled if filled else None,
        shortfall_bps=_bps(execution, filled),
        fees_bps=_bps(fees, filled),
        markout_bps=_bps(markout, marked),
        opportunity_bps=float(opportunity * _BPS / qty),
        total_bps=float((execution + opportunity) * _BPS / qty),
        all_in_bps=float((execution + opportunity + markout) * _BPS / qty),
        venue_qty=dict(sorted(venue_qty.items())),
    )


def _bps(value: Decimal, qty: int) -> float | None:
    return float(value * _BPS / qty) if qty else None
