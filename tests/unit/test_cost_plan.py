"""The cost strategy's search (AllInCosts) against the algorithm it replaced, on thousands of seeded random books:
the same takes and the same all-in costs, so the faster search changed no plan."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Container, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import accumulate

import pytest

from gateway.core.market import PriceKey, Row, VenueInfo, price_key
from gateway.core.routing import PlanRequest
from gateway.core.routing.cost import penalty_key
from gateway.core.routing.cost_plan import AllInCosts
from gateway.core.routing.survey import Reachable
from gateway.core.routing.sweep import sweep_takes
from gateway.core.types import OrdType, Side, Strategy, TimeInForce, Urgency, VenueKind

CASES = 3000
INFO = VenueInfo("V", VenueKind.LIT, Decimal(0), Decimal(0), 100, True)


def _request(qty: int, lot: int) -> PlanRequest:
    return PlanRequest(
        "O-1", "S", Side.BUY, qty, OrdType.MARKET, None, TimeInForce.IOC, Urgency.HIGH, lot=lot, strategy=Strategy.SWEEP
    )


TICK = 1_000_000  # 0.01 in key units


def random_book(rng: random.Random) -> tuple[list[Row], dict[str, int], set[str], int, int]:
    """Rows in sweep order (several venues, prices overlapping, odd lots among round ones), each venue's extra
    cost per share (rebates too), the protected venues, a quantity and a lot."""
    venues = [f"V{i}" for i in range(rng.randint(1, 8))]
    lot = rng.choice((1, 1, 100))
    book: list[Row] = []
    for venue in venues:
        key = 100 * 100 * TICK + rng.randint(-3, 3) * TICK
        for _ in range(rng.randint(1, 10)):
            shown = rng.choice((rng.randint(1, 99), rng.randint(1, 30) * 100, rng.randint(50, 2000)))
            book.append((key, shown, venue, Decimal(key) / 10**8))
            key += rng.choice((1, 1, 2, 3)) * TICK
    book.sort(key=lambda row: row[0])  # stable: venue order breaks price ties, as in the sweep
    extra = {venue: rng.choice((0, rng.randint(-3000, 3000), rng.randint(0, 5 * TICK))) for venue in venues}
    protected = {venue for venue in venues if rng.random() < 0.7}
    depth = sum(row[1] for row in book)
    qty = rng.choice((rng.randint(1, max(1, depth // 4)), rng.randint(1, depth), depth, depth + rng.randint(1, 5000)))
    qty = max(lot, qty - qty % lot)
    return book, extra, protected, qty, lot


@pytest.mark.parametrize("seed", range(3))
def test_same_takes_and_costs_as_the_search_it_replaced(seed):
    rng = random.Random(seed)
    for _ in range(CASES // 3):
        rows, extra, protected, qty, lot = random_book(rng)
        books = _books(rows)
        costs = AllInCosts(_reachable(books, protected, list(books)), extra)
        assert costs.rows == rows
        takes, cost = costs.cheapest(qty, lot)
        expected = reference_takes(rows, qty, lot, extra, protected)
        assert takes == expected and list(takes) == list(expected), (rows, extra, protected, qty, lot)
        assert cost == costs.of(takes) == reference_cost(rows, takes, extra)
        every = {venue: sum(row[1] for row in rows if row[2] == venue) for venue in extra}
        some = {venue: rng.randint(0, shown) for venue, shown in every.items()}
        assert costs.of(some) == reference_cost(rows, some, extra)


@pytest.mark.parametrize("seed", range(3))
def test_its_sweeps_are_the_sweep_strategys_plan(seed):
    """AllInCosts.sweep (the cost plan's yardstick, found on rows it already sorted) takes what sweep_takes
    takes, venue by venue, with the marginal tier split in venue order and in any other (taker preference)."""
    rng = random.Random(100 + seed)
    for _ in range(CASES // 3):
        rows, extra, protected, qty, lot = random_book(rng)
        books = _books(rows)
        costs = AllInCosts(_reachable(books, protected, list(books)), extra)
        rank = list(range(len(books)))
        rng.shuffle(rank)
        for order in (None, rank):
            venues = list(books) if order is None else sorted(books, key=lambda name: order[list(books).index(name)])
            expected, _ = sweep_takes(_request(qty, lot), _reachable(books, protected, venues), qty, None)
            swept = costs.sweep(qty, lot) if order is None else costs.ranked_sweep(qty, lot, order)
            totals, cost = swept or costs.sweep(qty, lot)
            assert costs.taken(totals) == expected, (rows, qty, lot, order)
            if order is None:  # then the venues are reached in the same order too, as sweep_decision lists them
                assert list(costs.taken(totals)) == list(expected)
            assert cost == costs.of({name: qty for name, qty in zip(books, totals)})
            assert cost == reference_cost(rows, {name: qty for name, qty in zip(books, totals)}, extra)


def _books(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Each venue's rows, best first, the venues in venue order."""
    books: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda row: int(row[2][1:])):
        books.setdefault(row[2], []).append(row)
    return books


def _reachable(books: Mapping[str, list[Row]], protected: Container[str], venues: Sequence[str]) -> list[Reachable]:
    """far_side's answer for these books, in the order of venues."""
    return [
        (
            name,
            replace(INFO, name=name, protected=name in protected),
            books[name],
            list(accumulate(row[1] for row in books[name])),
            list(accumulate(row[0] * row[1] for row in books[name])),
        )
        for name in venues
    ]


def test_the_random_books_reach_every_branch():
    """The cases include lots of 100, unprotected venues skipped, marginal prices past the first that fills,
    and orders larger than the book."""
    rng = random.Random(0)
    seen = set()
    for _ in range(CASES // 3):
        rows, extra, protected, qty, lot = random_book(rng)
        takes = reference_takes(rows, qty, lot, extra, protected)
        filled = sum(takes.values())
        seen.add(("lot", lot))
        seen.add(("short", filled < qty))
        swept = {}
        left = qty
        for _, shown, venue, _ in rows:
            took = min(shown, left)
            if took:
                swept[venue] = swept.get(venue, 0) + took
                left -= took
        seen.add(("not the sweep", lot == 1 and filled == qty and takes != swept))
    assert seen >= {("lot", 1), ("lot", 100), ("short", True), ("short", False), ("not the sweep", True)}


# --- the search as it was before AllInCosts (gateway/core/cost_plan.py at 804bb33), the reference --------------


def reference_takes(
    rows: Sequence[Row], qty: int, lot: int, extra: Mapping[str, int], protected: Container[str]
) -> dict[str, int]:
    """Venue -> shares to take from it best price first (lot multiples, venues in the order first reached),
    filling as much of qty (a lot multiple) as the rows allow at the least expected all-in cost.

    rows are every takeable level in sweep order. For each marginal price M, every round lot a protected venue
    shows strictly better than M must be taken (else a child at M trades through it); the rest of qty goes to
    the levels at or better than M with the lowest all-in cost, a venue's own levels best first (its all-in
    cost rises with its price). Unprotected levels may be skipped whatever their price. Of these plans, the one
    filling the most at the least total all-in cost is chosen; ties go to the nearer M.
    """
    rows = rows[: _last_marginal(rows, qty, lot, protected)]
    ranked = [rows[i] for i in sorted(range(len(rows)), key=lambda i: (rows[i][0] + extra[rows[i][2]], i))]
    priced = _ReferencePrefixes(rows)
    best: dict[str, int] = {}
    best_key: tuple[int, PriceKey] | None = None
    shown_before: dict[str, int] = {}  # protected venue -> depth strictly better than the current M
    i, n = _first_filling(rows, qty, lot, protected, shown_before), len(rows)
    must = sum(shown - shown % lot for shown in shown_before.values())  # that depth, each rounded down to lots
    while i < n and must <= qty:
        marginal = rows[i][0]
        takes, left = _fill(ranked, marginal, qty, lot, shown_before)
        key = (left, priced.all_in_cost(takes, extra))
        if best_key is None or key < best_key:
            best, best_key = takes, key
        while i < n and rows[i][0] == marginal:
            _, shown, venue, _ = rows[i]
            if venue in protected:
                was = shown_before.get(venue, 0)
                shown_before[venue] = now = was + shown
                must += now - now % lot - (was - was % lot)
            i += 1
    first = {venue: None for _, _, venue, _ in rows}  # venues in sweep order
    return {venue: best[venue] for venue in first if best.get(venue)}


def _first_filling(
    rows: Sequence[Row], qty: int, lot: int, protected: Container[str], shown_before: dict[str, int]
) -> int:
    """The first row of the first price whose levels at or better than it show qty in whole lots (each venue's
    depth rounded down), filling shown_before with the protected depth strictly better than that price; 0 if
    no price does. A plan whose marginal price is better leaves some of qty unfilled, so it never beats one
    that fills it all."""
    depth: dict[str, int] = {}
    lots = 0  # the depth so far, each venue's rounded down to lots
    start, n = 0, len(rows)
    while start < n:
        marginal = rows[start][0]
        end = start
        while end < n and rows[end][0] == marginal:
            _, shown, venue, _ = rows[end]
            was = depth.get(venue, 0)
            depth[venue] = now = was + shown
            lots += now - now % lot - (was - was % lot)
            end += 1
        if lots >= qty:
            for _, shown, venue, _ in rows[:start]:
                if venue in protected:
                    shown_before[venue] = shown_before.get(venue, 0) + shown
            return start
        start = end
    return 0


def _last_marginal(rows: Sequence[Row], qty: int, lot: int, protected: Container[str]) -> int:
    """How many rows reach through the last price that can be marginal: past it, the round lots protected
    venues show at better prices are more than qty."""
    shown: dict[str, int] = {}
    must = 0
    tier = None
    for i, (key, qty_shown, venue, _) in enumerate(rows):
        if key != tier:
            if must > qty:
                return i
            tier = key
        if venue in protected:
            was = shown.get(venue, 0)
            shown[venue] = now = was + qty_shown
            must += now - now % lot - (was - was % lot)
    return len(rows)


def _fill(
    ranked: Sequence[Row], marginal: PriceKey, qty: int, lot: int, mandatory: Mapping[str, int]
) -> tuple[dict[str, int], int]:
    """The mandatory lots, then the cheapest levels (ranked: least all-in cost first) at or better than
    marginal: (venue -> shares, qty left)."""
    takes = {venue: shown - shown % lot for venue, shown in mandatory.items() if shown >= lot}
    left = qty - sum(takes.values())
    if not left:
        return takes, left
    reached: dict[str, int] = {}  # venue -> depth of its levels walked so far
    for key, shown, venue, _ in ranked:
        if key > marginal:
            continue
        depth = reached.get(venue, 0) + shown
        reached[venue] = depth
        add = depth - depth % lot - takes.get(venue, 0)
        if add > 0:
            if add >= left:
                takes[venue] = takes.get(venue, 0) + left
                return takes, 0
            takes[venue] = takes.get(venue, 0) + add
            left -= add
    return takes, left


class _ReferencePrefixes:
    """Each venue's rows best first as running depth and cost, to price taking its first n shares in log time."""

    __slots__ = ("_cost", "_depth", "_keys")

    def __init__(self, rows: Sequence[Row]) -> None:
        self._depth: dict[str, list[int]] = {}
        self._cost: dict[str, list[PriceKey]] = {}
        self._keys: dict[str, list[PriceKey]] = {}
        for key, shown, venue, _ in rows:
            depth = self._depth.get(venue)
            if depth is None:
                depth = self._depth[venue] = [0]
                self._cost[venue], self._keys[venue] = [0], []
            depth.append(depth[-1] + shown)
            cost = self._cost[venue]
            cost.append(cost[-1] + shown * key)
            self._keys[venue].append(key)

    def all_in_cost(self, takes: Mapping[str, int], extra: Mapping[str, int]) -> PriceKey:
        """all_in_cost of these takes over the rows given at construction."""
        total: PriceKey = 0
        for venue, qty in takes.items():
            if qty:
                depth = self._depth[venue]
                i = bisect_left(depth, qty)  # the row that takes the last share is i - 1
                total += self._cost[venue][i - 1] + (qty - depth[i - 1]) * self._keys[venue][i - 1] + qty * extra[venue]
        return total


def reference_cost(rows: Sequence[Row], takes: Mapping[str, int], extra: Mapping[str, int]) -> PriceKey:
    """The expected all-in cost of taking takes[venue] shares from each venue best price first, in key units."""
    left = dict(takes)
    cost: PriceKey = sum(qty * extra[venue] for venue, qty in takes.items())
    for key, shown, venue, _ in rows:
        want = left.get(venue)
        if want:
            took = shown if shown < want else want
            left[venue] = want - took
            cost += took * key
    return cost


def test_penalties_round_half_even_to_a_millionth_like_decimal():
    """The integer penalty (fee plus basis points of a reference) is what Decimal arithmetic gives, rebates and
    negative risks included, exact halves rounding to even."""
    rng = random.Random(5)
    cases = [(Decimal("0.0000005"), Decimal("1"), 0.0), (Decimal("0.0000015"), Decimal("1"), 0.0)]
    cases += [(Decimal("-0.0000025"), None, 0.0), (Decimal("0.003"), Decimal("100.005"), 0.5)]
    for _ in range(5000):
        fee = Decimal(rng.randint(-50000, 50000)).scaleb(-rng.choice((4, 6, 7)))
        reference = rng.choice((None, Decimal(rng.randint(1, 10**7)).scaleb(-rng.choice((2, 3, 4)))))
        cases.append((fee, reference, rng.uniform(-30, 30)))
    for fee, reference, risk_bps in cases:
        risk = 0 if reference is None else reference * Decimal(round(risk_bps * 10**4)).scaleb(-8)
        expected = (fee + risk).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
        got = penalty_key(price_key(fee), None if reference is None else price_key(reference), risk_bps)
        assert Decimal(got).scaleb(-8) == expected, (fee, reference, risk_bps)


def test_a_take_past_the_rows_a_limit_leaves_is_a_router_bug_not_a_row_beyond_the_limit():
    """far_side cuts a book's rows at the limit but keeps the snapshot's running sums, which run on past them."""
    whole = [(100 * TICK, 300, "V0", Decimal("1.00")), (101 * TICK, 300, "V0", Decimal("1.01"))]
    (name, info, _, depths, notionals) = _reachable({"V0": whole}, {"V0"}, ["V0"])[0]
    costs = AllInCosts([(name, info, whole[:1], depths, notionals)], {"V0": 0})  # the limit leaves the first row
    assert costs.of({"V0": 300}) == 300 * 100 * TICK and costs.taken([300]) == {"V0": [300, Decimal("1.00")]}
    with pytest.raises(AssertionError, match="router bug"):
        costs.taken([400])
    with pytest.raises(AssertionError, match="router bug"):
        costs.placed({"V0": 400})
    with pytest.raises(IndexError):
        costs.of({"V0": 400})
