"""The cost strategy's takes: the least expected all-in cost per share the no-trade-through rule allows."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from itertools import accumulate, chain
from operator import add as plus, itemgetter, mul

from gateway.core.market import PriceKey, Row
from gateway.core.routing.survey import Reachable
from gateway.core.routing.sweep import venue_totals_through

# A Row's key is the price in 1e-8 units, negated on the bid side, so for both sides a smaller key is better for
# the taker; a venue's extra cost per share (fee and risks) in the same units is added to it, so for a buy
# key + extra is the all-in price and for a sell it is minus the all-in proceeds: lower is better either way.
_key = itemgetter(0)
_qty = itemgetter(1)
_venue = itemgetter(2)


class AllInCosts:
    """Takeable rows in sweep order with their venues' extra costs, laid out once per plan as per-venue lists
    (venues numbered in taker preference order) to search and price takes without dicts or Decimals."""

    __slots__ = (
        "_allin",
        "_books",
        "_cum",
        "_depths",
        "_extra",
        "_guarded",
        "_ids",
        "_keys",
        "_marginal",
        "_names",
        "_notionals",
        "_numbers",
        "_reached",
        "_shown",
        "_tiers",
        "rows",
    )

    def __init__(self, reachable: Sequence[Reachable], extra: Mapping[str, PriceKey]) -> None:
        """reachable: the venues in taker preference order, each with its takeable rows best first."""
        self._names = names = [venue[0] for venue in reachable]
        self._guarded = [venue[1].protected for venue in reachable]
        self._books = books = [venue[2] for venue in reachable]
        self._depths = [venue[3] for venue in reachable]
        self._notionals = [venue[4] for venue in reachable]
        # _lot_tiers' and _marginal_tier's answers, with the (qty, lot) each is for: the sweeps and the search
        # share them.
        self._tiers: tuple[tuple[int, int], tuple[list[int], list[int], int]] | None = None
        self._marginal: tuple[tuple[int, int], tuple[int, int, list[int], list[int]]] | None = None
        self.rows: list[Row] = sorted(chain.from_iterable(books), key=_key)  # stable: the sweep order
        self._numbers = numbers = {name: v for v, name in enumerate(names)}
        self._ids = list(map(numbers.__getitem__, map(_venue, self.rows)))
        self._keys = list(map(_key, self.rows))
        self._shown = list(map(_qty, self.rows))
        self._extra = [extra[name] for name in names]
        self._allin = list(map(plus, self._keys, map(self._extra.__getitem__, self._ids)))
        self._cum = list(accumulate(self._shown))  # depth through each row
        # Venue numbers in the order the sweep first reaches them: by best price, ties in preference order.
        self._reached = sorted(range(len(names)), key=[rows[0][0] for rows in books].__getitem__)

    def of(self, takes: Mapping[str, int]) -> PriceKey:
        """The expected all-in cost of taking takes[venue] shares from each venue best price first, in key units."""
        number = self._numbers
        return self._priced([(number[venue], qty) for venue, qty in takes.items() if qty])

    def placed(self, takes: Mapping[str, int]) -> list[tuple[str, int, Row]]:
        """(venue, shares, the furthest row they reach) for takes[venue] shares from each venue best price first,
        in the order cheapest lists them."""
        placed = []
        for venue, qty in takes.items():
            v = self._numbers[venue]
            placed.append((venue, qty, self._furthest(v, qty)))
        return placed

    def passed(self, takes: Mapping[str, int], worst: PriceKey, lot: int) -> list[str]:
        """Unprotected venues that taking takes[venue] best price first leaves a round lot standing at a price
        better than worst (a key), by name. (A protected one would be traded through: the guard refuses that.)"""
        left_standing = []
        for venue, rows, guarded in zip(self._names, self._books, self._guarded):
            if guarded:
                continue
            left = takes.get(venue, 0)
            for key, shown, _, _ in rows:
                if key >= worst:
                    break
                if shown - left >= lot:
                    left_standing.append(venue)
                    break
                left = left - shown if left > shown else 0
        return sorted(left_standing)

    def cheapest(self, qty: int, lot: int) -> tuple[dict[str, int], PriceKey]:
        """Venue -> shares to take from it best price first (lot multiples, venues in the order first reached),
        filling as much of qty (a lot multiple) as the rows allow at the least expected all-in cost; and that
        cost (what `of` would say).

        For each marginal price M, every round lot a protected venue shows strictly better than M must be taken
        (else a child at M trades through it); the rest of qty goes to the levels at or better than M with the
        lowest all-in cost, a venue's own levels best first (its all-in cost rises with its price). Unprotected
        levels may be skipped whatever their price. Of these plans, the one filling the most at the least total
        all-in cost is chosen; ties go to the nearer M. A plan at M fills as much of qty as the levels at or
        better than M show in lots, so the marginal prices tried run from the first that fills as much as the
        furthest one can (a nearer one leaves more unfilled, so never wins) to the furthest: the last before
        the protected round lots better than M alone exceed qty.
        """
        ids, keys, shown, count = self._ids, self._keys, self._shown, len(self._names)
        guarded = self._guarded
        # before: per protected venue, depth strictly better than the current M
        start, end, before = self._marginal_range(qty, lot)
        ranked = sorted(range(end), key=self._allin.__getitem__)  # rows by all-in cost, stable: ties by row
        best: list[int] = []
        best_key: tuple[int, PriceKey] | None = None
        i = start
        while i < end:
            marginal = keys[i]
            takes = [depth - depth % lot for depth in before]  # the mandatory round lots
            left = qty - sum(takes)
            if left:
                reached = [0] * count  # per venue: depth of its levels walked so far
                for j in ranked:
                    if keys[j] > marginal:
                        continue
                    v = ids[j]
                    reached[v] = depth = reached[v] + shown[j]
                    add = depth - depth % lot - takes[v]
                    if add > 0:
                        if add >= left:
                            takes[v] += left
                            left = 0
                            break
                        takes[v] += add
                        left -= add
            key = (left, self._priced([(v, took) for v, took in enumerate(takes) if took]))
            if best_key is None or key < best_key:
                best, best_key = takes, key
            while i < end and keys[i] == marginal:
                v = ids[i]
                if guarded[v]:
                    before[v] += shown[i]
                i += 1
        if best_key is None:
            return {}, 0
        return {self._names[v]: best[v] for v in self._reached if best[v]}, best_key[1]

    def sweep(self, qty: int, lot: int) -> tuple[list[int], PriceKey]:
        """The best-price sweep of qty (sweep_takes' plan, found on these rows): per venue number what it takes,
        and its all-in cost. Whole price tiers best first, each venue's depth rounded down to lots; the marginal
        tier goes first to venues rounding up an odd lot shown at a better price, then in venue number order."""
        swept = self._sweep(qty, lot, None)
        assert swept is not None
        return swept

    def ranked_sweep(self, qty: int, lot: int, rank: Sequence[int]) -> tuple[list[int], PriceKey] | None:
        """sweep with the marginal tier in rank[venue number] order (taker preference, when the numbers follow
        cost); None if that is the order of the venue numbers, so the plan is sweep's."""
        return self._sweep(qty, lot, rank)

    def taken(self, totals: Sequence[int]) -> dict[str, list]:
        """venue_totals of a plan taking totals[venue number] from each venue best price first: venue ->
        [shares, the furthest price], in the order the sweep first reaches them."""
        names = self._names
        return {names[v]: [qty, self._furthest(v, qty)[3]] for v in self._reached if (qty := totals[v])}

    def _furthest(self, v: int, qty: int) -> Row:
        """The row where taking qty (> 0) from venue v best price first ends. Its running depths may run past the
        rows a limit leaves: a take reaching past those is a router bug, never a row beyond the limit."""
        rows = self._books[v]
        i = bisect_left(self._depths[v], qty, 0, len(rows))
        assert i < len(rows), f"router bug: a take of {qty} beyond {self._names[v]}'s takeable rows"
        return rows[i]

    def _sweep(self, qty: int, lot: int, rank: Sequence[int] | None) -> tuple[list[int], PriceKey] | None:
        if lot == 1:
            return self._sweep_shares(qty, rank)
        ids = self._ids
        start, end, depth, reach = self._marginal_tier(qty, lot)
        tier = range(start, end) if rank is None else sorted(range(start, end), key=lambda j: rank[ids[j]])
        if rank is not None and tier == list(range(start, end)):
            return None  # rank orders the marginal tier as venue numbers do: the plan is the unranked one
        totals = venue_totals_through(depth, reach, tier, ids, qty, lot)
        return totals, self._priced([(v, took) for v, took in enumerate(totals) if took])

    def _marginal_tier(self, qty: int, lot: int) -> tuple[int, int, list[int], list[int]]:
        """The rows of the sweep's marginal tier (the first that does not fit whole) as (start, end), and per
        venue the depth shown before it and through it."""
        if self._marginal is not None and self._marginal[0] == (qty, lot):
            return self._marginal[1]
        ids, shown = self._ids, self._shown
        firsts, floors, reached = self._lot_tiers(qty, lot)
        t = min(bisect_right(floors, qty), len(firsts) - 1)
        start, end = firsts[t], firsts[t + 1] if t + 1 < len(firsts) else reached
        depth = [0] * len(self._names)
        for v, level in zip(ids, shown[:start]):
            depth[v] += level
        reach = list(depth)
        for j in range(start, end):
            reach[ids[j]] += shown[j]
        marginal = start, end, depth, reach
        self._marginal = ((qty, lot), marginal)
        return marginal

    def _sweep_shares(self, qty: int, rank: Sequence[int] | None) -> tuple[list[int], PriceKey] | None:
        """sweep with a lot of 1: whole rows up to the first price whose depth reaches qty, then that price's rows
        in order until qty is done."""
        ids, keys, shown, cum = self._ids, self._keys, self._shown, self._cum
        n, totals = len(keys), [0] * len(self._names)
        if not n:
            return totals, 0
        last = min(bisect_left(cum, qty), n - 1)
        start, end = bisect_left(keys, keys[last]), bisect_right(keys, keys[last])
        tier = range(start, end) if rank is None else sorted(range(start, end), key=lambda j: rank[ids[j]])
        if rank is not None and tier == list(range(start, end)):
            return None  # as in _sweep
        takes = shown[:start] + [0] * (n - start)
        left = qty - (cum[start - 1] if start else 0)
        for j in tier:
            if not left:
                break
            takes[j] = took = shown[j] if shown[j] < left else left
            left -= took
        for v, took in zip(ids, takes[:end]):
            totals[v] += took
        return totals, sum(map(mul, takes[:end], self._allin))

    def _marginal_range(self, qty: int, lot: int) -> tuple[int, int, list[int]]:
        """(start, end) of the marginal prices to try, and each protected venue's depth in the rows before start:
        end, how many rows reach through the furthest price that can be marginal (past it, the round lots
        protected venues show at better prices are more than qty); start, the first row of the first price whose
        levels at or better than it show in lots (each venue's depth rounded down) as much of qty as the furthest
        price's do."""
        if lot == 1:
            return self._share_range(qty)
        firsts, floors, end = self._lot_tiers(qty, lot)
        before = [0] * len(self._names)
        if not firsts:
            return 0, 0, before
        start = firsts[bisect_left(floors, min(qty, floors[-1]))]
        guarded = self._guarded
        for v, level in zip(self._ids, self._shown[:start]):
            if guarded[v]:
                before[v] += level
        return start, end, before

    def _lot_tiers(self, qty: int, lot: int) -> tuple[list[int], list[int], int]:
        """Per price tier, best first, while the protected round lots strictly better than it fit in qty: its
        first row and the round lots (each venue's depth rounded down to lots) shown through it; and the row
        after the last such tier."""
        if self._tiers is not None and self._tiers[0] == (qty, lot):
            return self._tiers[1]
        ids, keys, shown, guarded = self._ids, self._keys, self._shown, self._guarded
        depth = [0] * len(self._names)
        firsts: list[int] = []
        floors: list[int] = []
        lots = must = i = 0
        n = len(keys)
        while i < n and must <= qty:
            key = keys[i]
            firsts.append(i)
            while i < n and keys[i] == key:
                v = ids[i]
                was = depth[v]
                depth[v] = now = was + shown[i]
                step = now - now % lot - (was - was % lot)
                lots += step
                if guarded[v]:
                    must += step
                i += 1
            floors.append(lots)
        tiers = firsts, floors, i
        self._tiers = ((qty, lot), tiers)
        return tiers

    def _share_range(self, qty: int) -> tuple[int, int, list[int]]:
        """_marginal_range with a lot of 1, from running depths."""
        ids, keys, shown, cum, guarded = self._ids, self._keys, self._shown, self._cum, self._guarded
        before = [0] * len(self._names)
        if not keys:
            return 0, 0, before
        must = list(accumulate(map(mul, shown, map(guarded.__getitem__, ids))))
        over = bisect_right(must, qty)  # the first row past which protected depth exceeds qty
        end = len(keys) if over == len(keys) else bisect_right(keys, keys[over])
        start = bisect_left(keys, keys[bisect_left(cum, min(qty, cum[end - 1]))])
        for v, level in zip(ids[:start], shown):
            if guarded[v]:
                before[v] += level
        return start, end, before

    def _priced(self, takes: Sequence[tuple[int, int]]) -> PriceKey:
        """The all-in cost of (venue number, shares > 0) takes, each venue's shares best price first: the running
        sums of the row before the furthest one reached, and the rest at that row's price."""
        total: PriceKey = 0
        books, depths, notionals, extra = self._books, self._depths, self._notionals, self._extra
        for v, qty in takes:
            i = bisect_left(depths[v], qty, 0, len(books[v]))  # past the rows: IndexError, never a row beyond them
            if i:
                total += notionals[v][i - 1] + (qty - depths[v][i - 1]) * books[v][i][0] + qty * extra[v]
            else:
                total += qty * (books[v][0][0] + extra[v])
        return total


def spread(rows: Sequence[Row], takes: Mapping[str, int]) -> list[int]:
    """How much of each row (same order) taking takes[venue] from each venue best price first takes."""
    left = dict(takes)
    out = []
    for _, shown, venue, _ in rows:
        want = left.get(venue, 0)
        took = shown if shown < want else want
        if took:
            left[venue] = want - took
        out.append(took)
    return out
