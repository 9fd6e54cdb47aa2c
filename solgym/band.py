"""Regions of a matrix that attention masks keep, and how many positions they hold.

A mask built in a reference is a predicate over the positions (i, j) of a rows x cols matrix, made of
comparisons of position indices: a causal mask keeps j - i <= 0, a sliding window -w < j - i <= 0, a decode
step's length mask j <= pos, a prefix-LM mask j < P or j - i <= 0, a frame-causal video mask
floor(j / F) <= floor(i / F). A `Region` is such a predicate: `Atom`s (an interval of one of these
quantities) combined with `&`, `|` and `~`. A kernel that skips masked blocks does work in proportion to the
positions a region keeps, which `Region.positions` counts exactly for any matrix shape: per row, the
positions kept are a union of intervals of columns, computed for all rows at once.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math

import numpy as np

INF = math.inf
_ROWS_PER_BLOCK = 1 << 16  # rows counted at once (each row holds a few intervals of int64)
_ENTRIES_PER_BLOCK = 1 << 22  # ... fewer where a row may hold many (`_width`)


class Region(abc.ABC):
    """A set of positions (i, j) of a matrix. Immutable and hashable; combined with `&`, `|`, `~`."""

    def positions(self, rows: int, cols: int) -> int:
        """How many positions of a rows x cols matrix the region holds."""
        return _counts(self, rows, cols)[0] if rows > 0 and cols > 0 else 0

    def covers(self, rows: int, cols: int) -> bool:
        """Whether every row and every column of a rows x cols matrix holds a position of the region."""
        if rows <= 0 or cols <= 0:
            return False
        return self.rows_kept(rows, cols) == rows and self.columns_kept(rows, cols) == cols

    def rows_kept(self, rows: int, cols: int) -> int:
        """How many rows of a rows x cols matrix hold a position of the region."""
        return _counts(self, rows, cols)[1] if rows > 0 and cols > 0 else 0

    def columns_kept(self, rows: int, cols: int) -> int:
        """How many columns of a rows x cols matrix hold a position of the region."""
        return self.transposed().rows_kept(cols, rows)

    @abc.abstractmethod
    def shifted(self, columns: int, rows: int = 0) -> Region:
        """The region of a matrix with `columns` columns put before it and `rows` rows above it: column and
        row indices grow by that many (negative: the part of the matrix from that column and row on)."""

    @abc.abstractmethod
    def transposed(self) -> Region:
        """The region with rows and columns exchanged."""

    def __invert__(self) -> Region:
        return self.operand if isinstance(self, _Not) else _Not(self)

    def __and__(self, other: Region) -> Region:
        return _And(self, other)

    def __or__(self, other: Region) -> Region:
        return ~(~self & ~other)


@dataclasses.dataclass(frozen=True)
class Atom(Region):
    """lo <= value(i, j) <= hi, where value is, by `kind`: "diagonal" j - i, "column" j, "row" i, and
    "frame" floor((j - shift) / size) - floor((i - row_shift) / size) (frames of `size` positions, which
    a column or row offset moves)."""

    kind: str
    lo: float = -INF
    hi: float = INF
    size: int = 1
    shift: int = 0
    row_shift: int = 0

    def shifted(self, columns: int, rows: int = 0) -> Region:
        if self.kind == "row":
            return dataclasses.replace(self, lo=self.lo + rows, hi=self.hi + rows)
        if self.kind == "frame":
            return dataclasses.replace(self, shift=self.shift + columns, row_shift=self.row_shift + rows)
        moved = columns - rows if self.kind == "diagonal" else columns
        return dataclasses.replace(self, lo=self.lo + moved, hi=self.hi + moved)

    def transposed(self) -> Region:
        if self.kind == "diagonal":
            return dataclasses.replace(self, lo=-self.hi, hi=-self.lo)
        if self.kind in ("row", "column"):
            return dataclasses.replace(self, kind="column" if self.kind == "row" else "row")
        return dataclasses.replace(self, lo=-self.hi, hi=-self.lo, shift=self.row_shift, row_shift=self.shift)


@dataclasses.dataclass(frozen=True)
class Blocks(Region):
    """The union of rectangles (first row, last row, first column, last column): the blocks a mask set
    one by one holds (one per image or window of a vision encoder's attention). Flat, so that a union of
    hundreds is counted in one pass rather than through as many nested operations."""

    rects: tuple[tuple[int, int, int, int], ...]

    @functools.cached_property
    def stacked(self) -> tuple[np.ndarray, ...] | None:
        """Where no two rectangles share a row (blocks down the diagonal, one per image or window): their
        first rows, last rows, first and last columns as arrays sorted by first row, so that each row finds
        its one rectangle by a binary search; None where two share a row."""
        if not self.rects:
            return None
        r0, r1, c0, c1 = np.array(sorted(self.rects), dtype=np.int64).reshape(-1, 4).T
        return (r0, r1, c0, c1) if bool((r1[:-1] < r0[1:]).all()) else None

    def shifted(self, columns: int, rows: int = 0) -> Region:
        return Blocks(
            tuple((r0 + rows, r1 + rows, c0 + columns, c1 + columns) for r0, r1, c0, c1 in self.rects)
        )

    def transposed(self) -> Region:
        return Blocks(tuple((c0, c1, r0, r1) for r0, r1, c0, c1 in self.rects))

    def __or__(self, other: Region) -> Region:
        return Blocks(self.rects + other.rects) if isinstance(other, Blocks) else super().__or__(other)


@dataclasses.dataclass(frozen=True)
class _Not(Region):
    operand: Region

    def shifted(self, columns: int, rows: int = 0) -> Region:
        return ~self.operand.shifted(columns, rows)

    def transposed(self) -> Region:
        return ~self.operand.transposed()


@dataclasses.dataclass(frozen=True)
class _And(Region):
    left: Region
    right: Region

    def shifted(self, columns: int, rows: int = 0) -> Region:
        return self.left.shifted(columns, rows) & self.right.shifted(columns, rows)

    def transposed(self) -> Region:
        return self.left.transposed() & self.right.transposed()


def diagonal(lo: float = -INF, hi: float = INF) -> Region:
    """The band lo <= j - i <= hi."""
    return Atom("diagonal", lo, hi)


def columns(lo: float = -INF, hi: float = INF) -> Region:
    """Every row's columns lo <= j <= hi."""
    return Atom("column", lo, hi)


def rows(lo: float = -INF, hi: float = INF) -> Region:
    """The whole rows lo <= i <= hi."""
    return Atom("row", lo, hi)


def frames(size: int, lo: float = -INF, hi: float = INF, *, shift: int = 0, row_shift: int = 0) -> Region:
    """lo <= floor((j - shift) / size) - floor((i - row_shift) / size) <= hi: frame-wise bands (size 1 and
    no offsets: a diagonal band)."""
    if size == 1 and not shift and not row_shift:
        return diagonal(lo, hi)
    return Atom("frame", lo, hi, size=size, shift=shift, row_shift=row_shift)


def block(first_row: int, last_row: int, first_column: int, last_column: int) -> Blocks:
    """The rectangle of rows first_row..last_row and columns first_column..last_column."""
    return Blocks(((first_row, last_row, first_column, last_column),))


def triangle(kind: str, offset: int) -> Region:
    """What `torch.triu` (j - i >= offset) or `torch.tril` (j - i <= offset) keeps."""
    return diagonal(lo=offset) if kind == "triu" else diagonal(hi=offset)


@functools.lru_cache(maxsize=4096)
def _counts(region: Region, rows: int, cols: int) -> tuple[int, int]:
    """(positions held, rows holding one) of a rows x cols matrix, counted a block of rows at a time."""
    positions = kept = 0
    step = max(1, min(_ROWS_PER_BLOCK, _ENTRIES_PER_BLOCK // _width(region)[1]))
    for first in range(0, rows, step):
        i = np.arange(first, min(rows, first + step), dtype=np.int64)
        starts, ends = _intervals(region, i, cols)
        per_row = np.maximum(ends - starts + 1, 0).sum(axis=1)
        positions, kept = positions + int(per_row.sum()), kept + int((per_row > 0).sum())
    return positions, kept


def _width(region: Region) -> tuple[int, int]:
    """(the most disjoint intervals a row of the region holds, the most a step of counting it holds per
    row before they are normalized: an intersection pairs each of one side's with each of the other's)."""
    if isinstance(region, Blocks):
        width = 1 if region.stacked is not None else len(region.rects) or 1
        return width, width
    if isinstance(region, _Not):
        inner, peak = _width(region.operand)
        return inner + 1, max(peak, inner + 1)
    if isinstance(region, _And):
        (left, left_peak), (right, right_peak) = _width(region.left), _width(region.right)
        return left + right, max(left_peak, right_peak, left * right)
    return 1, 1


def _intervals(region: Region, i: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row i, the columns the region keeps as disjoint intervals [start, end], sorted, an empty one
    written (cols, cols - 1): two arrays of shape (len(i), k)."""
    if isinstance(region, Atom):
        start, end = _atom(region, i, cols)
        return _normal(start[:, None], end[:, None], cols)
    if isinstance(region, Blocks) and region.stacked is not None:
        # One rectangle at most in each row: the last that starts at or before it, if it reaches it.
        r0, r1, c0, c1 = region.stacked
        at = np.searchsorted(r0, i, side="right") - 1
        inside = (at >= 0) & (i <= r1[np.maximum(at, 0)])
        at = np.maximum(at, 0)
        return _normal(np.where(inside, c0[at], cols)[:, None], np.where(inside, c1[at], -1)[:, None], cols)
    if isinstance(region, Blocks):
        rects = np.array(region.rects, dtype=np.int64).reshape(-1, 4)
        inside = (rects[:, 0] <= i[:, None]) & (i[:, None] <= rects[:, 1])
        starts, ends = _normal(np.where(inside, rects[:, 2], cols), np.where(inside, rects[:, 3], -1), cols)
        # Overlapping rectangles: each interval starts after those before it end (then disjoint).
        reached = np.maximum.accumulate(ends, axis=1)
        starts = np.maximum(starts, np.concatenate([np.full_like(ends[:, :1], -1), reached[:, :-1]], 1) + 1)
        return _normal(starts, ends, cols)
    if isinstance(region, _Not):
        starts, ends = _intervals(region.operand, i, cols)
        # The gaps: before the first interval, between neighbours, after the last (empties sort last).
        gap_starts = np.concatenate([np.zeros_like(starts[:, :1]), ends + 1], axis=1)
        gap_ends = np.concatenate([starts - 1, np.full_like(ends[:, :1], cols - 1)], axis=1)
        return _normal(gap_starts, gap_ends, cols)
    if isinstance(region, _And):
        a_starts, a_ends = _intervals(region.left, i, cols)
        b_starts, b_ends = _intervals(region.right, i, cols)
        starts = np.maximum(a_starts[:, :, None], b_starts[:, None, :]).reshape(len(i), -1)
        ends = np.minimum(a_ends[:, :, None], b_ends[:, None, :]).reshape(len(i), -1)
        return _normal(starts, ends, cols)
    raise TypeError(f"not a region: {region!r}")


def _atom(atom: Atom, i: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The one interval of columns an atom keeps in each row i (unclipped)."""
    far = len(i) + int(i[-1]) + cols + 2 if len(i) else cols + 2  # beyond any column: stands for infinity
    lo, hi = (int(min(max(v, -far), far)) for v in (atom.lo, atom.hi))
    if atom.kind == "diagonal":
        return i + lo, i + hi
    if atom.kind == "column":
        return np.full_like(i, lo), np.full_like(i, hi)
    if atom.kind == "row":
        inside = (lo <= i) & (i <= hi)
        return np.where(inside, 0, cols), np.where(inside, cols - 1, cols - 1)
    frame = (i - atom.row_shift) // atom.size
    start = (frame + lo) * atom.size + atom.shift if atom.lo > -INF else np.full_like(i, -far)
    end = (frame + hi + 1) * atom.size - 1 + atom.shift if atom.hi < INF else np.full_like(i, far)
    return start, end


def _normal(starts: np.ndarray, ends: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals clipped to the matrix, empty ones written (cols, cols - 1), sorted by start, and as few
    per row as the fullest row needs."""
    starts, ends = np.maximum(starts, 0), np.minimum(ends, cols - 1)
    empty = starts > ends
    starts, ends = np.where(empty, cols, starts), np.where(empty, cols - 1, ends)
    order = np.argsort(starts, axis=1, kind="stable")
    starts, ends = np.take_along_axis(starts, order, axis=1), np.take_along_axis(ends, order, axis=1)
    keep = max(int((starts < cols).sum(axis=1).max(initial=0)), 1)
    return starts[:, :keep], ends[:, :keep]
