"""One simulated venue without sockets: orders in, execution reports out, book snapshots published.

The FIX acceptor (host.py) and offline simulations drive the same core, so a venue behaves the same
with and without sockets. Deterministic for a seed, a clock and a sequence of calls; callers
serialise calls.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from gateway.config import DarkLiquidity, SimVenueConfig, SymbolConfig
from gateway.core.clock import Clock
from gateway.core.market import BookSnapshot, Level, Nbbo, Trade
from gateway.core.types import ExecType, Liquidity, OrdStatus, OrdType, Side, TimeInForce, VenueKind
from gateway.simulator.darkpool import DarkPool
from gateway.simulator.orderbook import Fill, Order, OrderBook

SNAPSHOT_LEVELS = 10
FINISHED_MEMORY = 100_000  # finished orders remembered for cancel rejects and duplicate ClOrdID checks
SIMULATED_REJECT = "simulated venue reject"


@dataclass(frozen=True, slots=True)
class SimOrder:
    """A client's order as the venue receives it."""

    owner: str  # the client session key, opaque here
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType
    price: Decimal | None  # None for MARKET
    tif: TimeInForce


@dataclass(frozen=True, slots=True)
class SimReport:
    """One execution report the venue sends to the order's owner."""

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str | None  # set on cancel acks
    order_id: str
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side
    order_qty: int
    price: Decimal | None
    last_qty: int
    last_px: Decimal | None
    leaves_qty: int
    cum_qty: int
    avg_px: Decimal
    liquidity: Liquidity | None  # MAKER/TAKER on a lit venue, DARK in a dark pool; None when no fill
    text: str | None = None
    fee: Decimal = Decimal(0)  # charged for this fill (last_qty x the maker or taker fee); negative: a rebate


@dataclass(frozen=True, slots=True)
class CancelResult:
    reports: list[SimReport]  # the CANCELED report when it worked
    reject_reason: str | None  # why not, when it did not


@dataclass(slots=True, eq=False)
class _Client:
    """A client order the venue accepted: what was asked, its matching state, where it stands."""

    request: SimOrder
    order: Order
    status: OrdStatus = OrdStatus.NEW


class VenueCore:
    """A lit venue (a price-time book per symbol, seeded with the venue's own depth) or a dark pool."""

    def __init__(
        self,
        config: SimVenueConfig,
        symbols: Sequence[SymbolConfig],
        seed: int,
        clock: Clock,
        publish: Callable[[BookSnapshot], None] = lambda s: None,
        nbbo: Callable[[str], Nbbo | None] = lambda sym: None,
        trade: Callable[[Trade], None] = lambda t: None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self._symbols = {s.symbol: s for s in symbols}
        self._clock = clock
        self._publish = publish
        self._trade = trade  # every print, the background's and the venue's own included
        self._trade_seq = 0
        self._nbbo = nbbo
        self._rng = random.Random(seed ^ zlib.crc32(config.name.encode()))
        self._boot = format(clock.now_ns() // 1_000_000, "x")  # ids stay unique across restarts
        self._exec_seq = 0
        self._order_seq = 0
        self._snap_seq = {s: 0 for s in self._symbols}
        self._live: dict[tuple[str, str], _Client] = {}  # (owner, cl_ord_id) -> a live order
        self._finished: dict[tuple[str, str], _Client] = {}  # the newest FINISHED_MEMORY, oldest first
        self._books = {s: OrderBook() for s in self._symbols}
        self._pools = {s: DarkPool() for s in self._symbols}
        # Per symbol: the venue's quote centre, which adverse selection moves.
        self._centre = {s.symbol: s.reference_price + config.price_offset_ticks * s.tick for s in symbols}
        # Per symbol and side (is_buy): the seeded (ticks from the centre, qty) levels that replenish() restores.
        self._profile: dict[str, dict[bool, list[tuple[int, int]]]] = {}
        for symbol in self._symbols:
            if self.kind is VenueKind.LIT:
                self._profile[symbol] = self._draw_profile(symbol)
                self._top_up(symbol)
            else:
                self._draw_hidden(symbol)

    # --- public -------------------------------------------------------------------------------

    def submit(self, order: SimOrder) -> list[SimReport]:
        """The NEW ack, then fills and any expiry, in order; or a single REJECTED report."""
        problem = self._problem(order)
        if problem is None and self.config.reject_rate and self._rng.random() < self.config.reject_rate:
            problem = SIMULATED_REJECT
        limit = order.price if order.ord_type is OrdType.LIMIT else None
        client = _Client(
            order, Order(order.owner, order.cl_ord_id, self._next_order_id(), order.side, order.qty, limit)
        )
        if problem is not None:
            client.order.leaves = 0
            client.status = OrdStatus.REJECTED
            return [self._report(client, ExecType.REJECTED, text=problem)]
        self._live[(order.owner, order.cl_ord_id)] = client
        reports = [self._report(client, ExecType.NEW)]
        if self.kind is VenueKind.LIT:
            self._submit_lit(client, reports)
        else:
            self._submit_dark(client, reports)
        return reports

    def cancel(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str) -> CancelResult:
        client = self._live.get((owner, orig_cl_ord_id))
        if client is None:
            finished = self._finished.get((owner, orig_cl_ord_id))
            if finished is None:
                return CancelResult([], f"unknown order {orig_cl_ord_id}")
            return CancelResult(
                [], f"too late to cancel: order {orig_cl_ord_id} is already {finished.status.name.lower()}"
            )
        symbol = client.request.symbol
        if self.kind is VenueKind.LIT:
            self._books[symbol].remove(client.order)
        else:
            self._pools[symbol].remove(client.order)
        client.order.leaves = 0
        self._finish(client, OrdStatus.CANCELED)
        report = replace(self._report(client, ExecType.CANCELED), cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id)
        self._publish(self.snapshot(symbol))
        return CancelResult([report], None)

    def replenish(self) -> list[SimReport]:
        """One replenishment step per symbol; reports for client orders that background flow filled."""
        reports: list[SimReport] = []
        for symbol in self._symbols:
            if self.kind is VenueKind.LIT:
                self._top_up(symbol)
                # After the top-up, so what someone else took stays gone (and shown) until the next replenish.
                if self.config.background_flow and self._rng.random() < self.config.background_flow:
                    reports += self._background_order(symbol)
            else:
                self._draw_hidden(symbol)
                for order, fill in self._pools[symbol].sweep(self._mid(symbol)):
                    reports += self._fill_reports(symbol, order, fill, taker_fee=False)
            self._publish(self.snapshot(symbol))
        return reports

    def snapshot(self, symbol: str) -> BookSnapshot:
        """The visible book now (none in a dark pool), with the next sequence number for the symbol."""
        self._snap_seq[symbol] += 1
        bids: tuple[Level, ...] = ()
        asks: tuple[Level, ...] = ()
        if self.kind is VenueKind.LIT:
            book = self._books[symbol]
            bids, asks = book.levels(True, SNAPSHOT_LEVELS), book.levels(False, SNAPSHOT_LEVELS)
        return BookSnapshot(self.name, symbol, bids, asks, self._snap_seq[symbol], self._clock.now_ns())

    def centre(self, symbol: str) -> Decimal:
        """Where the venue lays its own quotes: the reference price plus its offset, moved by adverse selection."""
        return self._centre[symbol]

    def shift(self, symbol: str, ticks: int) -> None:
        """Move the centre `ticks` (negative: down, never to zero or below) and re-lay the venue's own levels
        around it at once, publishing the result; the venue's own orders off the new profile go, client orders
        stay where they are. A lit venue only."""
        tick = self._symbols[symbol].tick
        self._centre[symbol] = max(tick, self._centre[symbol] + ticks * tick)
        book = self._books[symbol]
        keep = {(is_buy, price) for is_buy, price, _ in self._levels(symbol)}
        for order in list(book.resting()):
            if order.owner is None and (order.is_buy, order.price) not in keep:
                book.remove(order)
        self._top_up(symbol)
        self._publish(self.snapshot(symbol))

    def seed(
        self, symbol: str, bids: Sequence[Level] = (), asks: Sequence[Level] = (), hidden: tuple[int, int] | None = None
    ) -> None:
        """Lay a recorded market in place of the venue's own: a lit venue's own orders become exactly these
        levels (a level a client order rests at or through on the other side is left out: the book never
        crosses), a dark pool's hidden size becomes `hidden` (buy side, sell side). Client orders stay."""
        if self.kind is VenueKind.DARK:
            if hidden is not None:
                self._pools[symbol].hidden.update({True: hidden[0], False: hidden[1]})
            return
        book = self._books[symbol]
        for order in list(book.resting()):
            if order.owner is None:
                book.remove(order)
        for is_buy, levels in ((True, bids), (False, asks)):
            for level in levels:
                if level.qty > 0 and not book.would_cross(is_buy, level.price):
                    book.add(Order(None, "", "", Side.BUY if is_buy else Side.SELL, level.qty, level.price))

    def status(self, owner: str, cl_ord_id: str) -> SimReport | None:
        """Where one of the owner's orders stands, live or finished, as an ORDER_STATUS report; None if unknown."""
        key = (owner, cl_ord_id)
        client = self._live.get(key) or self._finished.get(key)
        return None if client is None else self._report(client, ExecType.ORDER_STATUS)

    def open_orders(self, owner: str) -> list[SimReport]:
        """The current state of the owner's live orders, oldest first, as ORDER_STATUS reports."""
        return [self._report(c, ExecType.ORDER_STATUS) for (o, _), c in self._live.items() if o == owner]

    # --- lit ----------------------------------------------------------------------------------

    def _submit_lit(self, client: _Client, reports: list[SimReport]) -> None:
        request, order = client.request, client.order
        book = self._books[request.symbol]
        if request.tif is TimeInForce.FOK and book.available(order.is_buy, order.price) < order.qty:
            self._expire(client, reports, "fill or kill: not enough liquidity within the limit")
            return
        for fill in book.match(order):
            reports += self._fill_reports(request.symbol, order, fill, taker_fee=True)
        rests = bool(order.leaves) and request.tif is TimeInForce.DAY and order.price is not None
        if rests:
            book.add(order)
        elif order.leaves:
            self._expire(client, reports, "no more liquidity within the limit")
        if order.cum or rests:  # a new order's fills all happened just now
            self._publish(self.snapshot(request.symbol))
        if order.cum:
            self._adverse_move(request.symbol, order.is_buy)

    def _draw_profile(self, symbol: str) -> dict[bool, list[tuple[int, int]]]:
        spec, depth = self._symbols[symbol], self.config.depth
        vary = depth.qty_per_level // 4
        profile: dict[bool, list[tuple[int, int]]] = {}
        for is_buy, sign in ((True, -1), (False, 1)):
            levels = []
            for i in range(depth.levels):
                ticks = sign * (depth.spread_ticks + i)
                if self._centre[symbol] + ticks * spec.tick > 0:
                    qty = self._rng.randint(depth.qty_per_level - vary, depth.qty_per_level + vary)
                    levels.append((ticks, _in_lots(qty, spec.lot)))
            profile[is_buy] = levels
        return profile

    def _levels(self, symbol: str) -> Iterator[tuple[bool, Decimal, int]]:
        """(is_buy, price, target qty) of each profile level around the current centre."""
        tick = self._symbols[symbol].tick
        for is_buy, levels in self._profile[symbol].items():
            for ticks, target in levels:
                price = self._centre[symbol] + ticks * tick
                if price > 0:
                    yield is_buy, price, target

    def _top_up(self, symbol: str) -> None:
        """Restore the venue's own quantity at each profile level, skipping prices a client order
        now rests at or through on the other side (the book must never cross)."""
        book = self._books[symbol]
        for is_buy, price, target in self._levels(symbol):
            if book.would_cross(is_buy, price):
                continue
            own = sum(o.leaves for o in book.orders_at(is_buy, price) if o.owner is None)
            if own < target:
                book.add(Order(None, "", "", Side.BUY if is_buy else Side.SELL, target - own, price))

    def _adverse_move(self, symbol: str, taker_bought: bool) -> None:
        """Adverse selection as markouts measure it: maybe (toxicity.probability, once per client order that
        took liquidity) move the quotes toxicity.ticks against the taker's fill (down after a buy, up after a
        sell), so what the taker just got is worth less at once."""
        toxicity = self.config.toxicity
        if not (toxicity.probability and toxicity.ticks) or self._rng.random() >= toxicity.probability:
            return
        self.shift(symbol, -toxicity.ticks if taker_bought else toxicity.ticks)

    def _background_order(self, symbol: str) -> list[SimReport]:
        """Someone else's small market order, which may fill client orders resting at the top."""
        side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
        qty = _in_lots(self._rng.randint(1, max(1, self.config.depth.qty_per_level // 2)), self._symbols[symbol].lot)
        taker = Order(None, "", "", side, qty, None)
        reports: list[SimReport] = []
        for fill in self._books[symbol].match(taker):
            reports += self._fill_reports(symbol, taker, fill, taker_fee=True)
        return reports

    # --- dark ---------------------------------------------------------------------------------

    def _submit_dark(self, client: _Client, reports: list[SimReport]) -> None:
        request, order = client.request, client.order
        pool = self._pools[request.symbol]
        mid = self._mid(request.symbol)
        if request.tif is TimeInForce.FOK and pool.available(order, mid) < order.qty:
            self._expire(client, reports, "fill or kill: not enough dark liquidity at the midpoint")
            return
        for fill in pool.cross(order, mid):
            reports += self._fill_reports(request.symbol, order, fill, taker_fee=True)
        rests = bool(order.leaves) and request.tif is TimeInForce.DAY
        if rests:
            pool.rest(order)
        elif order.leaves:
            self._expire(client, reports, "no more dark liquidity at the midpoint")
        if order.cum or rests:  # a new order's fills all happened just now
            self._publish(self.snapshot(request.symbol))

    def _draw_hidden(self, symbol: str) -> None:
        pool = self._pools[symbol]
        for is_buy in (True, False):
            pool.hidden[is_buy] = hidden_qty(self.config.dark, self._rng)

    def _mid(self, symbol: str) -> Decimal | None:
        """The NBBO midpoint, or None when there is no two-sided, uncrossed NBBO to peg to."""
        nbbo = self._nbbo(symbol)
        if nbbo is None or nbbo.bid is None or nbbo.ask is None or nbbo.bid > nbbo.ask:
            return None
        return nbbo.mid

    # --- shared -------------------------------------------------------------------------------

    def _problem(self, order: SimOrder) -> str | None:
        spec = self._symbols.get(order.symbol)
        if spec is None:
            return f"unknown symbol {order.symbol}"
        if order.qty <= 0:
            return f"order quantity must be positive, got {order.qty}"
        if order.qty % spec.lot:
            return f"order quantity {order.qty} is not a multiple of the lot size {spec.lot}"
        if order.qty < self.config.min_qty:
            return f"below minimum size {self.config.min_qty}"
        if order.ord_type is OrdType.LIMIT:
            if order.price is None:
                return "limit order without a price"
            if order.price <= 0:
                return f"price must be positive, got {order.price}"
            if order.price % spec.tick:
                return f"price {order.price} is not a multiple of the tick size {spec.tick}"
        if (order.owner, order.cl_ord_id) in self._live or (order.owner, order.cl_ord_id) in self._finished:
            return f"duplicate ClOrdID {order.cl_ord_id}"
        return None

    def _expire(self, client: _Client, reports: list[SimReport], text: str) -> None:
        client.order.leaves = 0
        self._finish(client, OrdStatus.EXPIRED)
        reports.append(self._report(client, ExecType.EXPIRED, text=text))

    def _fill_reports(self, symbol: str, taker: Order, fill: Fill, taker_fee: bool) -> list[SimReport]:
        """TRADE reports for each client side of one fill (the venue's own orders get none).

        `taker_fee`: whether `taker` is the incoming order (it pays the taker fee) or a resting one
        that crossed on a replenish (a dark order meeting new liquidity pays the maker fee).
        """
        self._trade_seq += 1
        self._trade(Trade(self.name, symbol, fill.qty, fill.price, self._trade_seq, self._clock.now_ns()))
        dark = self.kind is VenueKind.DARK
        sides = [(taker, Liquidity.DARK if dark else Liquidity.TAKER, taker_fee)]
        if fill.maker is not None:
            sides.append((fill.maker, Liquidity.DARK if dark else Liquidity.MAKER, False))
        reports = []
        for order, liquidity, pays_taker_fee in sides:
            if order.owner is None:
                continue
            client = self._live[(order.owner, order.cl_ord_id)]
            if order.leaves:
                client.status = OrdStatus.PARTIALLY_FILLED
            else:
                self._finish(client, OrdStatus.FILLED)
            rate = self.config.taker_fee if pays_taker_fee else self.config.maker_fee
            reports.append(
                self._report(
                    client,
                    ExecType.TRADE,
                    last_qty=fill.qty,
                    last_px=fill.price,
                    liquidity=liquidity,
                    fee=rate * fill.qty,
                )
            )
        return reports

    def _finish(self, client: _Client, status: OrdStatus) -> None:
        client.status = status
        key = (client.request.owner, client.request.cl_ord_id)
        del self._live[key]
        self._finished[key] = client
        if len(self._finished) > FINISHED_MEMORY:
            del self._finished[next(iter(self._finished))]

    def _report(
        self,
        client: _Client,
        exec_type: ExecType,
        *,
        last_qty: int = 0,
        last_px: Decimal | None = None,
        liquidity: Liquidity | None = None,
        text: str | None = None,
        fee: Decimal = Decimal(0),
    ) -> SimReport:
        request, order = client.request, client.order
        self._exec_seq += 1
        return SimReport(
            owner=request.owner,
            cl_ord_id=request.cl_ord_id,
            orig_cl_ord_id=None,
            order_id=order.order_id,
            exec_id=f"{self.name}-{self._boot}-{self._exec_seq}",
            exec_type=exec_type,
            ord_status=client.status,
            symbol=request.symbol,
            side=request.side,
            order_qty=request.qty,
            price=order.price,
            last_qty=last_qty,
            last_px=last_px,
            leaves_qty=order.leaves,
            cum_qty=order.cum,
            avg_px=order.avg_px,
            liquidity=liquidity,
            text=text,
            fee=fee,
        )

    def _next_order_id(self) -> str:
        self._order_seq += 1
        return f"{self.name}-{self._boot}-O{self._order_seq}"


def hidden_qty(dark: DarkLiquidity, rng: random.Random) -> int:
    """One side's hidden size: none at all with chance 1 - fill_probability, else drawn from the distribution."""
    if dark.fill_probability < 1 and rng.random() >= dark.fill_probability:
        return 0
    if dark.distribution == "exponential":
        return round(rng.expovariate(1 / dark.mean_qty)) if dark.mean_qty else 0
    if dark.distribution == "uniform":
        return round(rng.uniform(0, 2 * dark.mean_qty))
    return max(0, round(rng.gauss(dark.mean_qty, dark.stdev_qty)))


def _in_lots(qty: int, lot: int) -> int:
    """`qty` rounded down to whole lots, at least one lot."""
    return max(lot, qty // lot * lot)
