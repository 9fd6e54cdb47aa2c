"""Bands of a matrix: the positions (i, j) whose diagonal offset j - i lies in a range, or outside it.

Attention masks are bands. A causal mask keeps j - i <= 0, a sliding window of w keeps -w < j - i <= 0,
and their negations (what a reference fills with -inf) are the positions outside. A kernel that skips
masked blocks does work in proportion to the positions kept, which `Band.positions` counts exactly for any
matrix shape. Combining masks (`&`, `|`, `~`) stays within bands where the result is one; otherwise the
combination is None, and the caller counts the work in full.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Band:
    """The positions with lo <= j - i <= hi, or, when `outside`, every other position."""

    lo: float = -math.inf
    hi: float = math.inf
    outside: bool = False

    def __post_init__(self) -> None:
        # Everything outside a ray, or outside nothing, is itself a range: kept as one, so that `&` and `|`
        # of rays (a causal mask and a window) meet in a range.
        if not self.outside:
            return
        if self.lo > self.hi:
            lo, hi = -math.inf, math.inf
        elif self.lo == -math.inf and self.hi == math.inf:
            lo, hi = 1, 0
        elif self.lo == -math.inf:
            lo, hi = self.hi + 1, math.inf
        elif self.hi == math.inf:
            lo, hi = -math.inf, self.lo - 1
        else:
            return
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "outside", False)

    def positions(self, rows: int, cols: int) -> int:
        """How many positions of a rows x cols matrix the band holds."""
        lo, hi = max(self.lo, -rows), min(self.hi, cols)
        inside = 0 if lo > hi else rows * cols - _below(rows, cols, int(lo)) - _above(rows, cols, int(hi))
        return rows * cols - inside if self.outside else inside

    def covers(self, rows: int, cols: int) -> bool:
        """Whether every row and every column of a rows x cols matrix holds a position of the band."""
        if rows <= 0 or cols <= 0:
            return False
        if not self.outside:
            # row i meets [i + lo, i + hi], column j meets [j - hi, j - lo]: for all i, j in range.
            return self.lo <= min(0, cols - rows) and self.hi >= max(0, cols - rows) and self.lo <= self.hi
        # A row (column) misses the band when all of it lies in the hole [lo, hi].
        row_missed = max(0, cols - 1 - self.hi) <= min(rows - 1, -self.lo)
        column_missed = max(0, self.lo + rows - 1) <= min(cols - 1, self.hi)
        return not row_missed and not column_missed

    def shifted(self, columns: int) -> Band:
        """The band of a matrix with `columns` columns put before it: offsets grow by that many."""
        return dataclasses.replace(self, lo=self.lo + columns, hi=self.hi + columns)

    def __invert__(self) -> Band:
        return dataclasses.replace(self, outside=not self.outside)

    def __and__(self, other: Band) -> Band | None:
        if not self.outside and not other.outside:
            return Band(max(self.lo, other.lo), min(self.hi, other.hi))
        if self.outside and other.outside:
            union = _union(self, other)
            return None if union is None else ~union
        inner, hole = (other, self) if self.outside else (self, other)
        if hole.hi < inner.lo or hole.lo > inner.hi:
            return inner
        if hole.lo <= inner.lo:
            return Band(max(inner.lo, hole.hi + 1), inner.hi)
        if hole.hi >= inner.hi:
            return Band(inner.lo, min(inner.hi, hole.lo - 1))
        return None  # a band with a hole in it

    def __or__(self, other: Band) -> Band | None:
        both = ~self & ~other
        return None if both is None else ~both


def triangle(kind: str, diagonal: int) -> Band:
    """What `torch.triu` (j - i >= diagonal) or `torch.tril` (j - i <= diagonal) keeps."""
    return Band(lo=diagonal) if kind == "triu" else Band(hi=diagonal)


def _union(a: Band, b: Band) -> Band | None:
    """The union of two inside bands where it is one band (they overlap or touch)."""
    if a.hi + 1 < b.lo or b.hi + 1 < a.lo:
        return None
    return Band(min(a.lo, b.lo), max(a.hi, b.hi))


def _below(rows: int, cols: int, lo: int) -> int:
    """Positions with j - i < lo: per row i, the j < i + lo."""
    return _clamped_sum(lo, lo + rows - 1, cols)


def _above(rows: int, cols: int, hi: int) -> int:
    """Positions with j - i > hi: per row i, all but the j <= i + hi."""
    return rows * cols - _clamped_sum(hi + 1, hi + rows, cols)


def _clamped_sum(first: int, last: int, cap: int) -> int:
    """sum of min(max(x, 0), cap) for x from first to last."""
    lo, hi = max(first, 1), min(last, cap)
    linear = (lo + hi) * (hi - lo + 1) // 2 if hi >= lo else 0
    return linear + cap * max(0, last - max(first, cap + 1) + 1)
