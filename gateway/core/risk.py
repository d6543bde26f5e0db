"""Pre-trade risk limits: every new order and replace is checked here before anything is routed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal

from gateway.core.types import OrdRejReason, OrdType, Side

_BPS = Decimal(10_000)
_SECOND_NS = 1_000_000_000
_MS = 1_000_000

ORDER_KEYS = ("max_order_qty", "max_order_notional", "price_collar_bps", "price_collar_ticks")


@dataclass(frozen=True, slots=True)
class Limits:
    """One level of limits (the global defaults, one OMS session or one symbol); None: not set at this level.

    The four order limits (ORDER_KEYS) and market_orders apply at every level; the tighter of the session's
    and the symbol's applies, each falling back to the default. The rest are per session only."""

    max_order_qty: int | None = None
    max_order_notional: Decimal | None = None
    price_collar_bps: Decimal | None = None
    price_collar_ticks: int | None = None
    market_orders: bool | None = None
    max_open_qty: int | None = None
    max_open_notional: Decimal | None = None
    max_orders_per_s: int | None = None
    duplicate_window_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Every limit in force: defaults, per OMS session (by session key), per symbol, restricted symbols."""

    defaults: Limits = Limits()
    sessions: Mapping[str, Limits] = field(default_factory=dict)
    symbols: Mapping[str, Limits] = field(default_factory=dict)
    restricted: frozenset[str] = frozenset()
    reference_prices: Mapping[str, Decimal] = field(default_factory=dict)  # when no book is fresh

    def effective(self, session: str, symbol: str) -> Limits:
        """The limits one order of `session` in `symbol` is held to."""
        default, by_session, by_symbol = self.defaults, self.sessions.get(session), self.symbols.get(symbol)
        values = {}
        for f in fields(Limits):
            base = getattr(default, f.name)
            ours = _or(getattr(by_session, f.name) if by_session else None, base)
            if f.name in ORDER_KEYS:
                values[f.name] = _tighter(ours, _or(getattr(by_symbol, f.name) if by_symbol else None, base))
            else:
                values[f.name] = ours
        allowed = [level.market_orders for level in (default, by_session, by_symbol) if level]
        values["market_orders"] = False not in allowed
        return Limits(**values)


@dataclass(frozen=True, slots=True)
class Reference:
    """The price a collar or a market order's notional is measured from, and where it came from."""

    symbol: str
    side: Side
    price: Decimal
    source: str  # "NBBO ask", "NBBO bid", "reference price"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit an order broke: the limit's name, the FIX OrdRejReason, and a Text naming both values."""

    limit: str
    reason: OrdRejReason
    text: str


@dataclass(frozen=True, slots=True)
class Ticket:
    """What is checked: a new order, or a replace as the order it would become."""

    session: str
    symbol: str
    side: Side
    qty: int  # OrderQty
    leaves: int  # what would be open: qty for a new order, qty - CumQty for a replace
    ord_type: OrdType
    price: Decimal | None
    now_ns: int
    replace: bool = False


Exposure = Callable[[], tuple[int, Decimal]]  # (open qty, open notional) of the session, without this order
Lookup = Callable[[], Reference | None]


class RiskGate:
    """The limits and what they remember: each session's recent orders for the throttle and the duplicate guard."""

    def __init__(self, limits: RiskLimits, ticks: Mapping[str, Decimal]) -> None:
        self.limits = limits
        self._ticks = dict(ticks)
        self._effective: dict[tuple[str, str], Limits] = {}
        self._recent: dict[str, deque[int]] = {}  # session -> times of its accepted orders, last second
        self._sent: dict[str, deque[tuple[int, tuple]]] = {}  # session -> (time, order key), duplicate window

    def reconfigure(self, limits: RiskLimits) -> None:
        """New limits (a replay moving into a run that had other limits); what was remembered stays."""
        self.limits = limits
        self._effective.clear()

    def limits_for(self, session: str, symbol: str) -> Limits:
        key = (session, symbol)
        found = self._effective.get(key)
        if found is None:
            found = self._effective[key] = self.limits.effective(session, symbol)
        return found

    def check(self, t: Ticket, exposure: Exposure, reference: Lookup) -> Refusal | None:
        """The first limit `t` breaks, or None (then call `accepted`)."""
        lim = self.limits_for(t.session, t.symbol)
        sym = t.symbol
        if sym in self.limits.restricted:
            return Refusal("restricted_symbols", OrdRejReason.BROKER_OPTION, f"{sym} is a restricted symbol")
        if t.ord_type is OrdType.MARKET and not lim.market_orders:
            return Refusal(
                "market_orders",
                OrdRejReason.BROKER_OPTION,
                f"market orders are not allowed for {sym} (market_orders false)",
            )
        if lim.max_order_qty is not None and t.qty > lim.max_order_qty:
            return Refusal(
                "max_order_qty",
                OrdRejReason.EXCEEDS_LIMIT,
                f"OrderQty {t.qty} exceeds max_order_qty {lim.max_order_qty} for {sym}",
            )
        collar = self._collar(t, lim, reference)
        if collar is not None:
            return collar
        unit = t.price
        if unit is None and (lim.max_order_notional is not None or lim.max_open_notional is not None):
            ref = reference()
            if ref is None:
                return Refusal(
                    "max_order_notional",
                    OrdRejReason.EXCEEDS_LIMIT,
                    f"no price to value a market order in {sym} against its notional limits",
                )
            unit = ref.price
        # unit is None only for a market order with neither notional limit set.
        if lim.max_order_notional is not None and unit is not None and unit * t.qty > lim.max_order_notional:
            return Refusal(
                "max_order_notional",
                OrdRejReason.EXCEEDS_LIMIT,
                f"notional {unit * t.qty} ({t.qty} x {unit}) exceeds max_order_notional "
                f"{lim.max_order_notional} for {sym}",
            )
        if lim.max_open_qty is not None or lim.max_open_notional is not None:
            open_qty, open_notional = exposure()
            if lim.max_open_qty is not None and open_qty + t.leaves > lim.max_open_qty:
                return Refusal(
                    "max_open_qty",
                    OrdRejReason.EXCEEDS_LIMIT,
                    f"open quantity {open_qty + t.leaves} ({open_qty} open + {t.leaves}) exceeds "
                    f"max_open_qty {lim.max_open_qty} for {t.session}",
                )
            if (
                lim.max_open_notional is not None
                and unit is not None
                and open_notional + unit * t.leaves > lim.max_open_notional
            ):
                return Refusal(
                    "max_open_notional",
                    OrdRejReason.EXCEEDS_LIMIT,
                    f"open notional {open_notional + unit * t.leaves} ({open_notional} open + "
                    f"{unit * t.leaves}) exceeds max_open_notional {lim.max_open_notional} "
                    f"for {t.session}",
                )
        if lim.max_orders_per_s is not None:
            recent = self._window(self._recent, t.session, t.now_ns - _SECOND_NS)
            if len(recent) >= lim.max_orders_per_s:
                return Refusal(
                    "max_orders_per_s",
                    OrdRejReason.EXCEEDS_LIMIT,
                    f"order rate {len(recent) + 1} in 1 s exceeds max_orders_per_s "
                    f"{lim.max_orders_per_s} for {t.session}",
                )
        if lim.duplicate_window_ms and not t.replace:
            sent = self._window(self._sent, t.session, t.now_ns - lim.duplicate_window_ms * _MS)
            key = _order_key(t)
            for at, seen in reversed(sent):
                if seen == key:
                    return Refusal(
                        "duplicate_window_ms",
                        OrdRejReason.DUPLICATE_ORDER,
                        f"duplicate of an order {(t.now_ns - at) // _MS} ms ago (same side, symbol, "
                        f"qty and price) within duplicate_window_ms {lim.duplicate_window_ms} for {sym}",
                    )
        return None

    def accepted(self, t: Ticket) -> None:
        """Remember an order that passed, for the throttle and the duplicate guard."""
        lim = self.limits_for(t.session, t.symbol)
        if lim.max_orders_per_s is not None:
            self._recent.setdefault(t.session, deque()).append(t.now_ns)
        if lim.duplicate_window_ms and not t.replace:
            self._sent.setdefault(t.session, deque()).append((t.now_ns, _order_key(t)))

    def _collar(self, t: Ticket, lim: Limits, reference: Lookup) -> Refusal | None:
        if t.price is None or (lim.price_collar_bps is None and lim.price_collar_ticks is None):
            return None
        ref = reference()
        if ref is None:
            return Refusal(
                "price_collar",
                OrdRejReason.EXCEEDS_LIMIT,
                f"no NBBO and no reference price for {t.symbol} to check the price collar",
            )
        bands = []
        if lim.price_collar_bps is not None:
            bands.append((ref.price * lim.price_collar_bps / _BPS, f"price_collar_bps {lim.price_collar_bps}"))
        if lim.price_collar_ticks is not None:
            bands.append(
                (
                    self._ticks.get(t.symbol, Decimal("0.01")) * lim.price_collar_ticks,
                    f"price_collar_ticks {lim.price_collar_ticks}",
                )
            )
        band, name = min(bands, key=lambda b: b[0])
        bound = ref.price + band if t.side.is_buy else ref.price - band
        if (t.price > bound) if t.side.is_buy else (t.price < bound):
            word = "above" if t.side.is_buy else "below"
            return Refusal(
                name.split(" ")[0],
                OrdRejReason.EXCEEDS_LIMIT,
                f"Price {t.price} is {word} the collar {bound} ({name} from the {ref.source} "
                f"{ref.price}) for {t.symbol}",
            )
        return None

    @staticmethod
    def _window(store: dict[str, deque], session: str, since_ns: int) -> deque:
        entries = store.setdefault(session, deque())
        while entries and (entries[0] if isinstance(entries[0], int) else entries[0][0]) <= since_ns:
            entries.popleft()
        return entries


def _order_key(t: Ticket) -> tuple:
    return (t.side, t.symbol, t.qty, t.ord_type, t.price)


def _or(value, fallback):
    return fallback if value is None else value


def _tighter(a, b):
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class PriceReference:
    """A reference an order was checked against, on record so that a replay checks it the same way."""

    session: str
    cl_ord_id: str
    symbol: str
    reference: Reference | None


def market_reference(
    nbbo_bid: Decimal | None, nbbo_ask: Decimal | None, reference_price: Decimal | None, symbol: str, side: Side
) -> Reference | None:
    """The far touch of the NBBO for `side` (a buy is measured from the ask), else its near touch, else the
    symbol's configured reference price."""
    touches = [(nbbo_ask, "NBBO ask"), (nbbo_bid, "NBBO bid")]
    if not side.is_buy:
        touches.reverse()
    for price, source in touches:
        if price is not None:
            return Reference(symbol, side, price, source)
    return Reference(symbol, side, reference_price, "reference price") if reference_price is not None else None


@dataclass(frozen=True, slots=True)
class Halt:
    """A kill switch in force: new orders in its scope are refused and what works there is canceled. All None: every
    order. A venue halt takes that venue out of routing instead (with no session or symbol)."""

    session: str | None = None
    symbol: str | None = None
    venue: str | None = None

    def covers(self, session: str, symbol: str) -> bool:
        return self.venue is None and self.session in (None, session) and self.symbol in (None, symbol)

    def __str__(self) -> str:
        scope = [
            f"{name} {value}"
            for name, value in (("session", self.session), ("symbol", self.symbol), ("venue", self.venue))
            if value is not None
        ]
        return "halt (" + (", ".join(scope) or "everything") + ")"
