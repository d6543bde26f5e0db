"""What routing is asked and what it answers: the plan request, the decision with its candidates and exclusions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from gateway.core.market import BookSnapshot, Nbbo
from gateway.core.types import ChildSpec, OrdType, Side, Strategy, TimeInForce, Urgency


@dataclass(frozen=True, slots=True)
class PlanRequest:
    order_id: str
    symbol: str
    side: Side
    qty: int  # quantity to place now (the parent's unplaced remainder), > 0
    ord_type: OrdType
    limit: Decimal | None  # None for MARKET
    tif: TimeInForce
    urgency: Urgency
    ex_destination: str | None = None
    dark_done: bool = False  # the dark phase was already tried for this parent
    dark_again: frozenset[str] = frozenset()  # resting pools that filled all they were sent, time left to rest
    excluded: frozenset[str] = frozenset()  # venues this parent must not use (they rejected it)
    halted: frozenset[str] = frozenset()  # venues a kill switch keeps out until resumed
    tripped: frozenset[str] = frozenset()  # venues whose circuit breaker is open
    lot: int = 1  # child quantities are multiples of lot, except a directed order
    strategy: Strategy = Strategy.DARK


@dataclass(frozen=True, slots=True)
class Candidate:
    """One lit price level or dark pool the router considered; rank is the order taken (None: not used)."""

    venue: str
    price: Decimal | None
    qty: int
    fee: Decimal
    latency_us: int
    rank: int | None
    score: Decimal | None = None  # lit: estimated all-in cost per share (price, fee, risks); dark: fill estimate


@dataclass(frozen=True, slots=True)
class Exclusion:
    venue: str
    reason: str


class _Candidates:
    """RouteDecision.candidates: a tuple of Candidate, or a recipe (a partial) the router hands over and that
    is built into one on first read; the order path acts on and logs decisions without reading candidates."""

    def __get__(self, decision: RouteDecision | None, owner: type | None = None) -> tuple[Candidate, ...]:
        if decision is None:
            raise AttributeError("candidates")  # no class-level default: the dataclass field stays required
        value = decision.__dict__["_candidates"]
        if type(value) is partial:
            value = decision.__dict__["_candidates"] = value()
        return value

    def __set__(self, decision: RouteDecision, value: tuple[Candidate, ...] | partial) -> None:
        decision.__dict__["_candidates"] = value  # only __init__ gets here: the frozen __setattr__ refuses


@dataclass(frozen=True)  # no slots: the candidates descriptor keeps its value in the instance dict
class RouteDecision:
    order_id: str
    phase: str  # "directed", "dark", "take", "post" or "none"
    children: tuple[ChildSpec, ...]
    if TYPE_CHECKING:  # to a type checker a plain required field; at run time the lazy descriptor
        candidates: tuple[Candidate, ...]
    else:
        candidates: tuple[Candidate, ...] = _Candidates()
    exclusions: tuple[Exclusion, ...]
    nbbo: Nbbo
    reason: str  # one human sentence: why these children (or why none)
    strategy: Strategy | None = None
    books: tuple[BookSnapshot, ...] = ()  # the usable lit books the plan saw
