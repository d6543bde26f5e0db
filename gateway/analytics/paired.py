"""Paired differences (alternative minus recorded, one per order) and their Student-t confidence interval."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

# Two-sided 95% quantiles of Student's t by degrees of freedom; past 30 the next tabled row at or below is used
# (conservative), past 120 the normal 1.960.
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}
METHOD = "mean of paired per-order differences, 95% Student-t interval"
_PLACES = Decimal("0.0001")


def t95(df: int) -> float:
    if df < 1:
        raise ValueError("a t interval needs at least two differences")
    if df in _T95:
        return _T95[df]
    if df > 120:
        return 1.960
    return _T95[max(k for k in _T95 if k <= df)]


@dataclass(frozen=True, slots=True)
class Interval:
    n: int
    mean: Decimal
    low: Decimal | None  # None when n < 2: no interval
    high: Decimal | None


def paired(differences: list[Decimal]) -> Interval | None:
    """The mean difference and its 95% interval (None for no differences)."""
    n = len(differences)
    if not n:
        return None
    mean = sum(differences, Decimal(0)) / n
    if n < 2:
        return Interval(1, _q(mean), None, None)
    variance = sum(((d - mean) ** 2 for d in differences), Decimal(0)) / (n - 1)
    half = Decimal(str(t95(n - 1))) * (variance / n).sqrt()
    return Interval(n, _q(mean), _q(mean - half), _q(mean + half))


def _q(value: Decimal) -> Decimal:
    return value.quantize(_PLACES, ROUND_HALF_EVEN) + 0
