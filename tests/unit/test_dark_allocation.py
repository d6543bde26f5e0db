"""Dark-pool allocation: Kaplan–Meier from censored fills, greedy allocation, optimistic exploration, the oracle."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from gateway.analytics.dark_allocation import DarkAllocator, expected_fill, oracle_allocation
from gateway.analytics.learning import VenueLearning
from gateway.config import RoutingConfig
from gateway.policy import learning_config

P_C = 1 / 301  # pool C: geometric liquidity, mean 300 shares

# The true tails P(S >= k), k in shares: A uniform on 0..1000, B always dry, C geometric.
TAILS = {
    "A": lambda k: max(0.0, (1001 - k) / 1001),
    "B": lambda k: 0.0,
    "C": lambda k: (1 - P_C) ** k,
}
POOLS = list(TAILS)


def draw(rng: random.Random) -> dict[str, int]:
    return {"A": rng.randint(0, 1000), "B": 0, "C": int(math.log(1 - rng.random()) / math.log(1 - P_C))}


def play(allocator: DarkAllocator, rng: random.Random, rounds: int, qty: int) -> list[dict[str, int]]:
    """Rounds of allocate, then observe what each pool's liquidity that round let it fill."""
    allocations = []
    for _ in range(rounds):
        allocation = allocator.allocate(qty, POOLS)
        liquidity = draw(rng)
        for pool, sent in allocation.items():
            allocator.observe(pool, sent, min(sent, liquidity[pool]))
        allocations.append(allocation)
    return allocations


@pytest.mark.parametrize("qty", [1000, 1500, 3000])
def test_after_learning_it_fills_nearly_what_the_oracle_does_and_beats_a_uniform_split(qty):
    allocator = DarkAllocator(POOLS)
    rng = random.Random(7)
    play(allocator, rng, 300, qty)

    fresh = play(allocator, rng, 50, qty)

    mean = sum(expected_fill(a, TAILS) for a in fresh) / len(fresh)
    oracle = expected_fill(oracle_allocation(qty, TAILS), TAILS)
    uniform = expected_fill({pool: qty // 300 * 100 for pool in POOLS}, TAILS)
    assert mean >= 0.9 * oracle
    assert mean > uniform
    assert "B" not in fresh[-1]


def test_a_pool_never_observed_is_tried():
    allocator = DarkAllocator([*POOLS, "NEW"])
    play(allocator, random.Random(3), 100, 1500)

    assert allocator.allocate(1500, [*POOLS, "NEW"]).get("NEW", 0) > 0
    assert allocator.tail("NEW") == (1.0,)


def test_pools_share_evenly_before_anything_is_known():
    assert DarkAllocator(POOLS).allocate(1500, POOLS) == {"A": 500, "B": 500, "C": 500}


def test_kaplan_meier_is_the_empirical_tail_on_uncensored_data():
    allocator = DarkAllocator(["A"])
    rng = random.Random(11)
    filled = [rng.randint(0, 5000) for _ in range(400)]
    for shares in filled:
        allocator.observe("A", 10_000, shares)  # never everything sent: every observation is exact

    tail = allocator.tail("A")

    units = [shares // 100 for shares in filled]
    assert len(tail) == max(units) + 2  # defined through the step past the largest observation
    for k, estimate in enumerate(tail):
        assert estimate == pytest.approx(sum(u >= k for u in units) / len(units))


def test_kaplan_meier_with_censored_observations():
    allocator = DarkAllocator(["A"], unit=1)
    allocator.observe("A", 5, 1)  # S = 1
    allocator.observe("A", 2, 2)  # S >= 2
    allocator.observe("A", 9, 3)  # S = 3
    allocator.observe("A", 1, 1)  # S >= 1

    # At risk 4, 3, 1, 1 at k = 0..3 with one event at k = 1 and one at k = 3.
    assert allocator.tail("A") == pytest.approx((1, 1, 2 / 3, 2 / 3, 0))


def test_an_under_explored_step_stays_optimistic():
    allocator = DarkAllocator(["A", "B"], unit=1, exploration=100)
    for _ in range(3):
        allocator.observe("A", 10, 4)  # A looks like exactly 4, but from three observations only
        allocator.observe("B", 10, 2)

    assert allocator.tail("A")[5] == 0
    assert allocator.allocate(10, ["A", "B"]) == {"A": 5, "B": 5}  # both still look inexhaustible


def test_a_step_seen_often_enough_is_trusted():
    allocator = DarkAllocator(["A", "B"], unit=1)
    for _ in range(50):
        allocator.observe("A", 10, 4)
        allocator.observe("B", 10, 2)

    assert allocator.allocate(6, ["A", "B"]) == {"A": 4, "B": 2}


@pytest.mark.parametrize("qty, expected", [(1550, 1500), (99, 0), (0, 0)])
def test_shares_sum_to_the_quantity_rounded_down_to_units(qty, expected):
    allocator = DarkAllocator(POOLS)
    play(allocator, random.Random(5), 20, 1500)
    allocation = allocator.allocate(qty, POOLS)
    assert sum(allocation.values()) == expected
    assert all(shares % 100 == 0 and shares > 0 for shares in allocation.values())


def test_a_pool_whose_share_falls_under_its_minimum_is_dropped_and_the_rest_reallocated():
    allocator = DarkAllocator(POOLS)
    assert allocator.allocate(1500, POOLS, {"C": 1000}) == {"A": 800, "B": 700}
    assert allocator.allocate(1500, POOLS, {"C": 500}) == {"A": 500, "B": 500, "C": 500}
    assert allocator.allocate(1500, POOLS, {"A": 2000}) == {"B": 800, "C": 700}
    assert allocator.allocate(1500, POOLS, {pool: 2000 for pool in POOLS}) == {}


def test_a_pool_gets_at_most_max_units():
    allocator = DarkAllocator(["A", "B"], max_units=5)
    assert allocator.allocate(5000, ["A", "B"]) == {"A": 500, "B": 500}


@settings(max_examples=200, deadline=None)
@given(
    qty=st.integers(0, 30_000),
    seed=st.integers(0, 10**6),
    minimums=st.dictionaries(st.sampled_from(POOLS), st.integers(0, 3000)),
)
def test_allocations_are_whole_units_respect_minimums_and_never_exceed_the_quantity(qty, seed, minimums):
    allocator = DarkAllocator(POOLS, max_units=100)
    play(allocator, random.Random(seed), 5, 2000)

    allocation = allocator.allocate(qty, POOLS, minimums)

    assert sum(allocation.values()) <= qty
    assert all(shares % 100 == 0 and shares >= max(100, minimums.get(pool, 0)) for pool, shares in allocation.items())
    if not minimums:
        assert sum(allocation.values()) == min(qty // 100, 300) * 100


def test_it_is_deterministic():
    runs = [play(DarkAllocator(POOLS), random.Random(9), 100, 2000) for _ in range(2)]
    assert runs[0] == runs[1]


def test_the_oracle_is_the_best_split_in_units():
    qty = 1200
    best = max(
        expected_fill(dict(zip(POOLS, split, strict=True)), TAILS)
        for split in itertools.product(range(0, qty + 1, 100), repeat=3)
        if sum(split) == qty
    )

    assert expected_fill(oracle_allocation(qty, TAILS), TAILS) == pytest.approx(best)


def test_the_oracle_respects_minimums():
    assert oracle_allocation(1500, TAILS, min_qty={"C": 1000}) == {"A": 1000, "B": 500}


def test_expected_fill_is_the_sum_of_the_tail():
    assert expected_fill({"A": 3}, {"A": lambda k: 1 / k}) == pytest.approx(1 + 1 / 2 + 1 / 3)
    assert expected_fill({}, TAILS) == 0


def test_bad_observations_and_unknown_pools_are_refused():
    allocator = DarkAllocator(POOLS)
    with pytest.raises(ValueError):
        allocator.observe("A", 100, 200)
    with pytest.raises(ValueError):
        allocator.observe("NOPE", 100, 0)
    with pytest.raises(ValueError):
        allocator.allocate(100, ["NOPE"])


# --- regime change: pool A dries up and B fills up half-way ---------------------------------------------

AFTER = {"A": TAILS["B"], "B": TAILS["A"], "C": TAILS["C"]}


def draw_after(rng: random.Random) -> dict[str, int]:
    liquidity = draw(rng)
    return {"A": 0, "B": liquidity["A"], "C": liquidity["C"]}


def after_a_change(allocator: DarkAllocator, seed: int, qty: int = 1500) -> float:
    """300 rounds on the first pools, 300 on the changed ones: the mean share of the oracle's expected fill
    over rounds 200-300 after the change."""
    rng = random.Random(seed)
    play(allocator, rng, 300, qty)
    ratios = []
    oracle = expected_fill(oracle_allocation(qty, AFTER), AFTER)
    for _ in range(300):
        allocation = allocator.allocate(qty, POOLS)
        liquidity = draw_after(rng)
        for pool, sent in allocation.items():
            allocator.observe(pool, sent, min(sent, liquidity[pool]))
        ratios.append(expected_fill(allocation, AFTER) / oracle)
    return sum(ratios[200:]) / 100


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_a_half_life_it_recovers_from_a_regime_change_within_300_rounds(seed):
    assert after_a_change(DarkAllocator(POOLS, half_life=150), seed) >= 0.95


def detecting() -> DarkAllocator:
    return DarkAllocator(POOLS, change_threshold=5, change_slack=0.2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_change_detection_it_recovers_from_a_regime_change_within_300_rounds(seed):
    allocator = detecting()
    assert after_a_change(allocator, seed) >= 0.98  # 0.987, 0.994, 0.984 of the oracle
    assert allocator.changes >= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_change_detection_keeps_the_whole_history_of_steady_pools(seed):
    allocator, plain = detecting(), DarkAllocator(POOLS)
    play(allocator, random.Random(seed), 1000, 1500)
    play(plain, random.Random(seed), 1000, 1500)
    assert allocator.changes == 0
    assert allocator.allocate(1500, POOLS) == plain.allocate(1500, POOLS)


def test_change_detection_settings_are_checked():
    for bad in ({"change_threshold": 0}, {"change_slack": -0.1}, {"change_keep": 1}):
        with pytest.raises(ValueError):
            DarkAllocator(POOLS, **bad)


def test_the_engines_allocator_detects_changes_by_default():
    allocator = VenueLearning([], POOLS, learning_config(RoutingConfig())).dark
    assert after_a_change(allocator, 1) >= 0.98


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_one_it_does_not(seed):
    assert after_a_change(DarkAllocator(POOLS), seed) < 0.9


def tries_of_a_dry_pool(allocator: DarkAllocator) -> int:
    """Rounds out of 300 in which B, dry from the start, is sent something after 100 rounds of learning that."""
    play(allocator, random.Random(5), 100, 1500)
    tries = 0
    for _ in range(300):
        allocation = allocator.allocate(1500, POOLS)
        tries += "B" in allocation
        for pool, sent in allocation.items():
            allocator.observe(pool, sent, 0 if pool == "B" else sent // 2)
    return tries


def test_a_pool_left_out_keeps_being_tried_once_its_observations_fade():
    assert tries_of_a_dry_pool(DarkAllocator(POOLS, half_life=30)) >= 30
    assert tries_of_a_dry_pool(DarkAllocator(POOLS)) < 10  # without forgetting, hardly ever


def test_half_life_must_be_positive():
    with pytest.raises(ValueError):
        DarkAllocator(POOLS, half_life=0)


def test_the_configured_half_life_reaches_the_engines_allocator():
    forgetting = VenueLearning([], POOLS, learning_config(RoutingConfig(dark_half_life=30))).dark
    assert tries_of_a_dry_pool(forgetting) >= 30
    assert learning_config(RoutingConfig()).dark_half_life is None
