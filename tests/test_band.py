"""Bands of diagonals: counts and combinations checked position by position."""

from __future__ import annotations

import itertools
import math

import pytest

from solgym.band import Band, triangle

ENDS = [-math.inf, -9, -3, -1, 0, 1, 4, 7, math.inf]
BANDS = [Band(lo, hi, out) for lo, hi, out in itertools.product(ENDS, ENDS, (False, True))]
OFFSETS = range(-15, 16)


def holds(b: Band, d: int) -> bool:
    return (b.lo <= d <= b.hi) != b.outside


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (5, 5), (4, 7), (7, 4), (6, 3)])
def test_positions_are_counted_exactly_for_any_shape(rows, cols):
    for b in BANDS:
        assert b.positions(rows, cols) == sum(holds(b, j - i) for i in range(rows) for j in range(cols)), b


def test_and_or_and_not_hold_where_both_either_or_neither_does():
    combined = 0
    for a, b in itertools.product(BANDS, BANDS):
        for made, rule in ((a & b, all), (a | b, any)):
            if made is not None:
                combined += 1
                assert all(holds(made, d) == rule((holds(a, d), holds(b, d))) for d in OFFSETS), (a, b)
        assert all(holds(~a, d) != holds(a, d) for d in OFFSETS)
    assert combined > len(BANDS) ** 2  # most combinations are bands


def test_a_causal_mask_and_a_window_meet_in_a_band_and_a_hole_is_none():
    causal, window = triangle("tril", 0), ~triangle("tril", -8)
    assert causal & window == Band(-7, 0)
    assert (~causal | ~window) == ~Band(-7, 0)
    assert Band(-7, 7) & ~Band(-1, 1) is None  # a band with a hole in it


def test_a_band_moves_by_the_columns_put_before_it():
    causal = triangle("tril", 0)
    n = 64
    # A sink column before the scores: every row keeps it, besides its own causal prefix.
    assert causal.shifted(1).positions(n, n + 1) == n * (n + 1) // 2 + n
    assert (~causal).shifted(3).positions(n, n + 3) == n * (n - 1) // 2
