"""Regions of a matrix kept by masks: counts and combinations checked position by position."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from solgym.band import Atom, Blocks, Region, block, columns, diagonal, frames, rows, triangle

ENDS = [-math.inf, -9, -3, -1, 0, 1, 4, 7, math.inf]
ATOMS = [
    *(diagonal(lo, hi) for lo, hi in itertools.product(ENDS, ENDS)),
    *(columns(lo, hi) for lo, hi in [(-math.inf, 2), (3, 5), (1, math.inf), (0, 0)]),
    *(rows(lo, hi) for lo, hi in [(-math.inf, 1), (2, 4), (3, math.inf)]),
    *(frames(size, lo, hi) for size, lo, hi in [(3, -math.inf, 0), (2, 0, 0), (4, -1, 0)]),
    frames(3, 0, 0, shift=-2, row_shift=-1),
    frames(4, -math.inf, 0, shift=1, row_shift=-5),
]
SHAPES = [(1, 1), (5, 5), (4, 7), (7, 4), (6, 3), (1, 9)]


def holds(r: Region, i: int, j: int) -> bool:
    """Membership from the definitions, position by position."""
    if isinstance(r, Atom):
        value = {
            "diagonal": j - i,
            "column": j,
            "row": i,
            "frame": (j - r.shift) // r.size - (i - r.row_shift) // r.size,
        }[r.kind]
        return r.lo <= value <= r.hi
    if isinstance(r, Blocks):
        return any(r0 <= i <= r1 and c0 <= j <= c1 for r0, r1, c0, c1 in r.rects)
    if type(r).__name__ == "_Not":
        return not holds(r.operand, i, j)
    return holds(r.left, i, j) and holds(r.right, i, j)


def brute(r: Region, n: int, m: int) -> int:
    return sum(holds(r, i, j) for i in range(n) for j in range(m))


@pytest.mark.parametrize(("n", "m"), SHAPES)
def test_positions_are_counted_exactly_for_any_shape(n, m):
    for a in ATOMS:
        for r in (a, ~a):
            assert r.positions(n, m) == brute(r, n, m), r


def test_combinations_hold_where_both_either_or_neither_does():
    rng = random.Random(0)
    for _ in range(300):
        a, b, c = (rng.choice(ATOMS) for _ in range(3))
        for r in (a & b, a | b, ~(a & ~b), (a | b) & ~c, a & (b | ~c)):
            for n, m in ((5, 7), (8, 3)):
                assert r.positions(n, m) == brute(r, n, m), r
                kept_rows = sum(any(holds(r, i, j) for j in range(m)) for i in range(n))
                kept_cols = sum(any(holds(r, i, j) for i in range(n)) for j in range(m))
                assert (r.rows_kept(n, m), r.columns_kept(n, m)) == (kept_rows, kept_cols), r
                assert r.covers(n, m) == (kept_rows == n and kept_cols == m), r


def test_the_masks_models_write():
    n = 64
    causal, window = triangle("tril", 0), ~triangle("tril", -8)
    assert (causal & window).positions(n, n) == diagonal(-7, 0).positions(n, n)
    # A band with a hole in it, a prefix-LM mask, a sliding window with sink tokens, a decode step's length.
    assert (diagonal(-7, 7) & ~diagonal(-1, 1)).positions(n, n) == 2 * diagonal(2, 7).positions(n, n)
    assert (causal | columns(hi=15)).positions(n, n) == n * (n + 1) // 2 + 15 * 16 // 2
    sinks = (causal & window) | (causal & columns(hi=3))
    assert sinks.positions(n, n) == diagonal(-7, 0).positions(n, n) + sum(
        max(0, min(4, i - 7)) for i in range(n)
    )
    assert columns(hi=40).positions(1, n) == 41 and not columns(hi=40).covers(1, n)
    # Frames of 4 positions attending to their own and earlier frames.
    assert frames(4, hi=0).positions(n, n) == 16 * 17 // 2 * 16


def test_a_region_moves_by_the_columns_put_before_it():
    causal = triangle("tril", 0)
    n = 64
    # A sink column before the scores: every row keeps it, besides its own causal prefix.
    assert (causal.shifted(1) | columns(hi=0)).positions(n, n + 1) == n * (n + 1) // 2 + n
    assert (~causal).shifted(3).positions(n, n + 3) == n * (n - 1) // 2
    assert columns(2, 5).shifted(3) == columns(5, 8) and rows(0, 2).shifted(3) == rows(0, 2)


def test_large_matrices_are_counted_in_blocks_of_rows():
    causal = triangle("tril", 0)
    n = 200_000
    assert causal.positions(n, n) == n * (n + 1) // 2
    assert (causal & ~triangle("tril", -4096)).positions(n, n) == diagonal(-4095, 0).positions(n, n)
    assert causal.covers(n, n) and not (causal & columns(hi=9)).covers(n, n)


@pytest.mark.parametrize(
    "region, holds",
    [
        (diagonal(hi=0), lambda i, j: j - i <= 0),
        (diagonal(-7, 0), lambda i, j: -7 <= j - i <= 0),
        (columns(3, 9), lambda i, j: 3 <= j <= 9),
        (rows(hi=4), lambda i, j: i <= 4),
        (frames(4, hi=0), lambda i, j: j // 4 - i // 4 <= 0),
        (diagonal(hi=0) & ~columns(hi=2), lambda i, j: j - i <= 0 and not j <= 2),
    ],
)
def test_a_region_seen_from_a_row_and_column_on_holds_its_positions_there(region, holds):
    # The rows r0.. and columns c0.. of a mask (`causal[r0:r0 + n, c0:c0 + m]`, nanoGPT's `bias[:, :, :T, :T]`)
    # are the region shifted by -c0 columns and -r0 rows.
    for r0, c0, n, m in ((0, 0, 12, 12), (5, 0, 7, 16), (3, 6, 9, 5), (10, 2, 4, 4)):
        seen = region.shifted(-c0, -r0)
        expected = sum(holds(i + r0, j + c0) for i in range(n) for j in range(m))
        assert seen.positions(n, m) == expected, (r0, c0)


def test_blocks_count_their_union_where_they_overlap_and_combine_as_regions():
    rng = random.Random(0)
    for _ in range(50):
        rects = []
        for _ in range(rng.randint(1, 6)):
            r0, c0 = rng.randint(-2, 7), rng.randint(-2, 7)
            rects.append((r0, r0 + rng.randint(0, 4), c0, c0 + rng.randint(0, 4)))
        blocks = Blocks(tuple(rects))
        for n, m in SHAPES:
            for r in (
                blocks,
                ~blocks,
                blocks & diagonal(hi=0),
                blocks | block(0, 1, 5, 6),
                ~blocks & ~block(2, 3, 0, 9),
            ):
                assert r.positions(n, m) == brute(r, n, m)
            assert blocks.transposed().positions(m, n) == brute(blocks, n, m)
            moved = blocks.shifted(2, -1)
            assert moved.positions(n, m) == brute(moved, n, m)
            assert all(holds(moved, i - 1, j + 2) == holds(blocks, i, j) for i in range(n) for j in range(m))
    # A union of blocks stays flat: hundreds of windows count in one pass.
    assert isinstance(block(0, 1, 0, 1) | block(2, 3, 2, 3), Blocks)
