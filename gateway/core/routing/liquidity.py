"""The `liquidity` strategy: the sweep with its marginal price tier split pro rata to displayed size."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.core.market import Row


def split_pro_rata(entries: Sequence[Row], takes: list[int]) -> list[int]:
    """Re-split the marginal price tier of a lot-1 sweep in proportion to the size each level shows
    (largest remainders first); every better tier stays taken whole."""
    if not takes:
        return takes
    marginal = entries[len(takes) - 1][0]
    tier = [i for i in range(len(takes)) if entries[i][0] == marginal]
    total = sum(takes[i] for i in tier)
    shown = sum(entries[i][1] for i in tier)
    exact = [(total * entries[i][1], i) for i in tier]
    split = {i: q // shown for q, i in exact}
    left = total - sum(split.values())
    for _, i in sorted(exact, key=lambda e: (-(e[0] % shown), e[1]))[:left]:
        split[i] += 1
    takes = list(takes)
    for i in tier:
        takes[i] = split[i]
    return takes
