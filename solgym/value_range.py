"""Value ranges of tensors traced without data.

A reference that branches on a tensor (`if scale == 0:`) or reads one (`.item()`) cannot run on meta
tensors, which hold no values. Many such reads are guards whose answer follows from how the value was made:
the global scale of a block quantizer is a positive constant over the absolute maximum of its input,
clamped to the largest float, so it is never zero. This module carries, for a tensor, an interval that
holds every element (and whether one may be NaN) through the few ops such guards are made of; a read that
the interval decides is answered without data, and any other still needs data.

Everything here is a pure function of ranges. A `Range` is `(lo, hi, nan)`: every element is in
[lo, hi] (bounds may be infinite) or, where `nan`, NaN. Arithmetic is done in float64 and then widened by
the result dtype's rounding (a relative epsilon each way, and zero for a magnitude that may underflow), so
an interval never claims more than the rounded values allow.

Assumption, shared with the needed-reads analysis: finite arithmetic neither overflows nor leaves its
domain. An infinity or a NaN comes only from where an op puts one by construction (an infinite constant or
fill, a division by a possible zero), and a float tensor that no op made so holds none (`unknown`). Integer
and bool tensors are bounded by their dtype.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from typing import Any

import torch

Range = tuple[float, float, bool]
Lookup = Callable[[Any], "Range | None"]

INF = math.inf
_TRUE: Range = (1.0, 1.0, False)
_FALSE: Range = (0.0, 0.0, False)
_EITHER: Range = (0.0, 1.0, False)
NOTHING: Range = (INF, -INF, False)  # no element yet


class Drawn(tuple):
    """The range of integers drawn uniformly at random, `per_row` distinct ones at a time (1: independent
    draws, as `randint` makes; k: the indices a top-k picks in each row), as a `Range` that also says how
    many distinct values a gather through them names (`distinct_drawn`). Copies, casts and a number added
    keep it, and so do pads and joins with a few constants (a blank or start id put before the draws:
    `extra` values besides those `draws` is drawn from) and a clamp whose bounds hold them all; any other
    op gives a plain range. `replaced`: some of the draws may have been replaced by other values (`where`,
    `masked_fill`: ids outside a vocabulary shard set to a pad row)."""

    per_row: int
    draws: tuple[float, float]
    extra: int
    replaced: bool

    def __new__(
        cls,
        lo: float,
        hi: float,
        per_row: int = 1,
        *,
        draws: tuple[float, float] | None = None,
        extra: int = 0,
        replaced: bool = False,
    ) -> Drawn:
        drawn = super().__new__(cls, (float(lo), float(hi), False))
        drawn.per_row = per_row
        drawn.draws = (float(lo), float(hi)) if draws is None else draws
        drawn.extra = extra
        drawn.replaced = replaced
        return drawn

    @property
    def values(self) -> float:
        """How many values the draws are from."""
        return self.draws[1] - self.draws[0] + 1

    def moved(self, lo: float, hi: float, by: float = 0.0) -> Drawn:
        """The same draws within [lo, hi], moved by a number."""
        draws = (self.draws[0] + by, self.draws[1] + by)
        return Drawn(lo, hi, self.per_row, draws=draws, extra=self.extra, replaced=self.replaced)


def distinct_drawn(n: int, per_row: int, values: float, *, most: bool = False) -> float:
    """Distinct values among n drawn uniformly from `values` values, `per_row` distinct at a time: the
    expected count less three standard deviations of it (the occupancy distribution), so that a draw holds
    fewer only rarely; at least one row's. A gather through such indices reads no fewer rows than this
    but, where values repeat, fewer than its n lookups (an embedding of 40 960 random ids into 50 000 rows
    names about 28 000 of them). With `most`, the other side: the expected count plus three standard
    deviations, at most n and `values`, which a draw exceeds only rarely (the rows a write at drawn
    positions can replace)."""
    if not n or not values or math.isinf(values):
        return float(n)
    per_row = max(1, min(per_row, int(values)))
    draws = n / per_row
    missed = (1 - per_row / values) ** draws  # the chance that a given value is never drawn
    both = (
        ((values - per_row) * (values - per_row - 1) / (values * (values - 1))) ** draws if values > 1 else 0
    )
    mean = values * (1 - missed)
    variance = values * missed * (1 - missed) + values * (values - 1) * (both - missed * missed)
    if most:
        return min(float(n), float(values), mean + 3 * math.sqrt(max(variance, 0.0)))
    return min(float(n), max(float(per_row), mean - 3 * math.sqrt(max(variance, 0.0))))


def landing(n: float, drawn: Drawn, low: float, high: float) -> tuple[float, float]:
    """Of n independent draws (`drawn`), some of them replaced, how many land on the values low..high (a
    table's rows: the others would be out of range, so they are among those replaced), as the expected
    count less three standard deviations (at least one lookup), and how many of the values drawn from
    lie there: (n, drawn.values) where all do, or none was replaced."""
    lo, hi = drawn.draws
    inside = max(0.0, min(hi, high) - max(lo, low) + 1)
    if drawn.per_row != 1 or not drawn.replaced or inside >= drawn.values or not n:
        return float(n), drawn.values
    p = inside / drawn.values
    return max(1.0, n * p - 3 * math.sqrt(n * p * (1 - p))), max(inside, 1.0)


def of_number(v: Any) -> Range | None:
    """A Python number (or bool) as a range of one point; None for anything else."""
    if isinstance(v, bool | int | float):
        v = float(v)
        return (v, v, False) if not math.isnan(v) else (INF, -INF, True)
    return None


def of_data(data: Any, dtype: torch.dtype) -> Range | None:
    """The range of the values of `torch.tensor(data, dtype=dtype)`, for data made of Python numbers (nested
    lists and tuples of them); None for anything else. Pure Python: no tensor op runs."""
    stack, r = [data], None
    while stack:
        v = stack.pop()
        if isinstance(v, list | tuple):
            stack.extend(v)
            continue
        point = of_number(v)
        if point is None:
            return None
        r = point if r is None else union(r, point)
    return None if r is None else fit(r, dtype)


def unknown(dtype: torch.dtype, *, infinite: bool) -> Range | None:
    """What is known of a tensor no interval was carried for: its dtype's bounds (finite floats, without
    NaN, unless `infinite`: may hold either); None for dtypes without them (packed fp4, complex)."""
    if dtype == torch.bool:
        return _EITHER
    if dtype.is_floating_point:
        big = _finfo_max(dtype)
        if big is None:
            return None
        return (-INF, INF, True) if infinite else (-big, big, False)
    if dtype.is_complex:
        return None
    info = torch.iinfo(dtype)
    return (float(info.min), float(info.max), False)


def union(a: Range, b: Range) -> Range:
    """The range of a tensor holding elements of both."""
    return (min(a[0], b[0]), max(a[1], b[1]), a[2] or b[2])


def joined(a: Range, b: Range, *, replaced: bool = False) -> Range:
    """`union`, keeping the draws of a `Drawn` joined with single values (a pad id set before them) or with
    the same draws: each value outside the draws counts one more distinct value a gather may name. With
    `replaced`, the values of `b` take the place of some of `a`'s."""
    hull = union(a, b)
    drawn = [r for r in (a, b) if isinstance(r, Drawn)]
    points = [r for r in (a, b) if not isinstance(r, Drawn) and r[0] == r[1] and not r[2]]
    if not drawn or len(drawn) + len(points) != 2 or len({(d.draws, d.per_row) for d in drawn}) != 1:
        return hull
    first = drawn[0]
    extra = sum(d.extra for d in drawn) + sum(not first.draws[0] <= p[0] <= first.draws[1] for p in points)
    replaced = replaced or any(d.replaced for d in drawn)
    return Drawn(hull[0], hull[1], first.per_row, draws=first.draws, extra=extra, replaced=replaced)


def finite(r: Range) -> bool:
    """Whether every element is a finite number (no infinity, no NaN)."""
    return not (r[2] or math.isinf(r[0]) or math.isinf(r[1]))


def holds(r: Range | None, v: float) -> bool:
    """Whether a tensor of range `r` may hold the number v (None: nothing is known, so it may)."""
    return r is None or r[0] <= v <= r[1]


def covers(name: str) -> bool:
    """Whether ATen op `name` (in-place or not) is modelled."""
    return _rule_name(name) in _RULES


def _rule_name(name: str) -> str:
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def decided(r: Range | None, dtype: torch.dtype) -> bool | int | float | None:
    """The Python value every element of a tensor with range `r` has, or None when `r` does not decide it."""
    if r is None or r[2] or r[0] != r[1] or math.isinf(r[0]):
        return None
    if dtype == torch.bool:
        return bool(r[0])
    if dtype.is_floating_point:
        return r[0]
    return int(r[0])


def transfer(name: str, args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """The range of `out`, the (first) result of ATen op `name` on `args`; None where this module does not
    model the op or the inputs' ranges do not bound it."""
    rule = _RULES.get(_rule_name(name))
    if rule is None:
        return None
    try:
        r = rule(args, kwargs, out, lookup)
    except (IndexError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None
    fitted = fit(r, out.dtype) if r is not None else None
    if fitted is None or out.dtype.is_floating_point:
        return fitted
    if isinstance(r, Drawn) and fitted[:2] == r[:2] and _rule_name(name) in _KEEPS_DRAWS:
        return r.moved(*fitted[:2])  # the draws themselves, copied, cast, padded or joined
    if _rule_name(name) in ("clamp", "clamp_min", "clamp_max"):
        drawn = lookup(args[0])
        if isinstance(drawn, Drawn) and fitted[:2] == drawn[:2]:
            return drawn  # bounds that hold every draw (`ids.clamp(min=0)`) leave the draws as they were
    if _rule_name(name) in ("add", "sub") and len(args) > 1 and of_number(args[1]) is not None:
        drawn = lookup(args[0])  # moved by a number
        if isinstance(drawn, Drawn):
            by = float(args[1]) * (-1 if _rule_name(name) == "sub" else 1) * kwargs.get("alpha", 1)
            return drawn.moved(fitted[0], fitted[1], by)
    folded = _folded_draws(name, args, kwargs, lookup)
    return folded if folded is not None and folded[:2] == fitted[:2] else fitted


def _folded_draws(name: str, args: tuple, kwargs: dict, lookup: Lookup) -> Drawn | None:
    """Independent draws taken modulo a number (`ids % buckets`, a hashed embedding) or floor-divided by one
    (`ids // rows`, a quotient-remainder embedding), where every result is as likely as every other: the
    number of values drawn from is a multiple of the divisor (and, for a quotient, they start at one). The
    result is then itself uniform draws, from fewer values."""
    rule = _rule_name(name)
    floor = rule == "floor_divide" or rule == "div" and kwargs.get("rounding_mode") == "floor"
    if rule != "remainder" and not floor or len(args) < 2:
        return None
    drawn, n = lookup(args[0]), args[1]
    if not isinstance(drawn, Drawn) or drawn.per_row != 1 or drawn.extra or drawn[:2] != drawn.draws:
        return None
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    lo, hi = drawn.draws
    if not floor and 0 <= lo and hi < n:
        return drawn  # every value its own remainder
    if (hi - lo + 1) % n or floor and lo % n:
        return None
    return Drawn(0, n - 1) if not floor else Drawn(lo // n, (hi + 1) // n - 1)


def fit(r: Range, dtype: torch.dtype) -> Range | None:
    """`r` as values of `dtype`: widened by one rounding each way, zero where a magnitude may underflow,
    and within the dtype's finite range where finite arithmetic went beyond it (no overflow: the module's
    assumption); bools and integers as a conversion makes them."""
    lo, hi, nan = r
    if dtype.is_complex:
        return None  # an interval of reals does not bound complex values
    if dtype == torch.bool:  # nonzero (NaN included) is True
        if lo > hi:
            return _TRUE if nan else r  # only NaN, or nothing written yet
        if lo == hi == 0 and not nan:
            return _FALSE
        return _TRUE if lo > 0 or hi < 0 else _EITHER
    if lo > hi:  # only NaN
        return r
    if not dtype.is_floating_point:
        if nan or math.isinf(lo) or math.isinf(hi):
            return unknown(dtype, infinite=False)
        info = torch.iinfo(dtype)
        lo, hi = float(math.trunc(lo)), float(math.trunc(hi))
        if lo < info.min or hi > info.max:
            return unknown(dtype, infinite=False)
        return (lo, hi, False)
    big = _finfo_max(dtype)
    if big is None:
        return None
    finfo = torch.finfo(dtype)
    eps = 2 * max(finfo.eps, 2.0**-52)

    def widen(v: float, down: bool) -> float:
        if math.isinf(v) or _exact(v, dtype):
            return v
        if abs(v) < finfo.tiny:
            return 0.0 if (v > 0) == down or v == 0 else math.copysign(finfo.tiny, v)
        out = v - abs(v) * eps if down else v + abs(v) * eps
        # Finite arithmetic is taken not to overflow (the module's assumption): a finite bound beyond the
        # dtype's largest value means values up to that largest one.
        return max(-big, min(big, out))

    return (widen(lo, True), widen(hi, False), nan)


def _exact(v: float, dtype: torch.dtype) -> bool:
    """Whether `v` is a value of `dtype` (then rounding to it leaves it as it is)."""
    if dtype == torch.float64:
        return True
    code = {torch.float32: "f", torch.float16: "e", torch.bfloat16: "f"}.get(dtype)
    if code is None:
        return False
    try:
        packed = struct.pack(code, v)
    except OverflowError:
        return False
    if struct.unpack(code, packed)[0] != v:
        return False
    return dtype != torch.bfloat16 or struct.unpack("<I", struct.pack("<f", v))[0] & 0xFFFF == 0


def _finfo_max(dtype: torch.dtype) -> float | None:
    try:
        return float(torch.finfo(dtype).max)
    except (TypeError, NotImplementedError, RuntimeError):  # packed fp4 has no finfo
        return None


# ---------------------------------------------------------------------------------------------------- rules


def _same(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return lookup(args[0])


def _abs(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    if r is None:
        return None
    lo, hi, nan = r
    if lo > hi:
        return r
    if lo >= 0:
        return r
    if hi <= 0:
        return (-hi, -lo, nan)
    return (0.0, max(-lo, hi), nan)


def _neg(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    return None if r is None else (-r[1], -r[0], r[2])


def _maximum(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return _pairwise(lookup(args[0]), lookup(args[1]), max)


def _minimum(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return _pairwise(lookup(args[0]), lookup(args[1]), min)


def _extreme(args: tuple, lookup: Lookup, pick: Callable[[float, float], float]) -> Range | None:
    """max/min: elementwise against a second tensor, else a reduction (its values lie in the input's)."""
    if len(args) > 1 and isinstance(args[1], torch.Tensor):
        return _pairwise(lookup(args[0]), lookup(args[1]), pick)
    return lookup(args[0])


def _pairwise(a: Range | None, b: Range | None, pick: Callable[[float, float], float]) -> Range | None:
    if a is None or b is None or a[0] > a[1] or b[0] > b[1]:
        return None
    return (pick(a[0], b[0]), pick(a[1], b[1]), a[2] or b[2])


def _corners(a: Range, b: Range, op: Callable[[float, float], float]) -> Range | None:
    if a[0] > a[1] or b[0] > b[1]:
        return None
    values, nan = [], a[2] or b[2]
    for x in (a[0], a[1]):
        for y in (b[0], b[1]):
            v = op(x, y)
            if math.isnan(v):
                nan = True
            else:
                values.append(v)
    if not values:
        return None
    return (min(values), max(values), nan)


def _scaled(args: tuple, kwargs: dict, lookup: Lookup) -> Range | None:
    """The second operand of add/sub, times `alpha`."""
    b = lookup(args[1])
    alpha = of_number(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
    if b is None or alpha is None:
        return None
    return _corners(b, alpha, _times)


def _add(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    a, b = lookup(args[0]), _scaled(args, kwargs, lookup)
    return None if a is None or b is None else _corners(a, b, lambda x, y: x + y)


def _sub(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    a, b = lookup(args[0]), _scaled(args, kwargs, lookup)
    return None if a is None or b is None else _corners(a, b, lambda x, y: x - y)


def _times(x: float, y: float) -> float:
    if (x == 0 and math.isinf(y)) or (y == 0 and math.isinf(x)):
        return math.nan
    return x * y


def _mul(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    a, b = lookup(args[0]), lookup(args[1])
    return None if a is None or b is None else _corners(a, b, _times)


def _quotient(a: Range | None, b: Range | None) -> Range | None:
    if a is None or b is None or a[0] > a[1] or b[0] > b[1]:
        return None
    nan = a[2] or b[2]
    if b[0] > 0 or b[1] < 0:
        return _corners(a, b, _over)
    if b[0] == 0 and b[1] >= 0 and a[0] >= 0:
        # A non-negative quotient over a divisor that may be zero: x / 0 is +inf, 0 / 0 NaN.
        low = 0.0 if math.isinf(b[1]) or b[1] == 0 else a[0] / b[1]
        return (low, INF, nan or a[0] == 0)
    return None


def _over(x: float, y: float) -> float:
    if math.isinf(x) and math.isinf(y):
        return math.nan
    if math.isinf(y):
        return 0.0
    return x / y


def _div(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    if kwargs.get("rounding_mode") == "floor":
        return _floor_divide(args, {}, out, lookup)
    if kwargs.get("rounding_mode") is not None or len(args) > 2:
        return None
    return _quotient(lookup(args[0]), lookup(args[1]))


def _floor_divide(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """Floor division by a positive number: floor(lo / d) to floor(hi / d)."""
    dividend, divisor = lookup(args[0]), of_number(args[1]) if len(args) > 1 else None
    if dividend is None or divisor is None or divisor[0] <= 0 or dividend[2] or dividend[0] > dividend[1]:
        return None
    if not all(math.isfinite(v) for v in dividend[:2]):
        return None
    return (float(math.floor(dividend[0] / divisor[0])), float(math.floor(dividend[1] / divisor[0])), False)


def _reciprocal(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return _quotient((1.0, 1.0, False), lookup(args[0]))


def _clamp(
    args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup, lower: Any, upper: Any
) -> Range | None:
    r = lookup(args[0])
    if r is None or r[0] > r[1]:
        return None
    lo, hi, nan = r
    if lower is not None:
        m = lookup(lower)
        if m is None or m[0] > m[1]:
            return None
        lo, hi, nan = max(lo, m[0]), max(hi, m[1]), nan or m[2]
    if upper is not None:
        m = lookup(upper)
        if m is None or m[0] > m[1]:
            return None
        lo, hi, nan = min(lo, m[0]), min(hi, m[1]), nan or m[2]
    return (lo, hi, nan)


def _clamp_both(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    lower = kwargs.get("min", args[1] if len(args) > 1 else None)
    upper = kwargs.get("max", args[2] if len(args) > 2 else None)
    return _clamp(args, kwargs, out, lookup, lower, upper)


def _clamp_min(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return _clamp(args, kwargs, out, lookup, args[1], None)


def _clamp_max(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return _clamp(args, kwargs, out, lookup, None, args[1])


def _sqrt(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    if r is None or r[0] > r[1]:
        return None
    return (math.sqrt(max(r[0], 0.0)), math.sqrt(r[1]) if r[1] >= 0 else 0.0, r[2] or r[0] < 0)


def _rsub(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """`other - alpha * self` (`1 - x` in Python)."""
    a, b = lookup(args[1]), lookup(args[0])
    alpha = of_number(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
    if a is None or b is None or alpha is None:
        return None
    scaled = _corners(b, alpha, _times)
    return None if scaled is None else _corners(a, scaled, lambda x, y: x - y)


def _power(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return INF


def _exp(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    if r is None or r[0] > r[1]:
        return r
    return (_power(math.e, r[0]), _power(math.e, r[1]), r[2])


def _log(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    if r is None or r[0] > r[1]:
        return r
    lo, hi, nan = r
    if hi < 0:
        return (INF, -INF, True)  # only NaN
    low = -INF if lo <= 0 else (INF if math.isinf(lo) else math.log(lo))
    return (low, INF if math.isinf(hi) else -INF if hi == 0 else math.log(hi), nan or lo < 0)


def _pow(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """A positive number to a tensor's power (`2 ** -x`), or a tensor of no negative value to a positive
    number's (`x ** 0.5`): monotone, so the ends map to the ends."""
    base, exponent = of_number(args[0]), of_number(args[1])
    if base is not None and exponent is None:
        r = lookup(args[1])
        if r is None or r[0] > r[1] or not base[0] > 0:
            return None
        ends = (_power(base[0], r[0]), _power(base[0], r[1]))
        return (min(ends), max(ends), r[2])
    if base is None and exponent is not None:
        r = lookup(args[0])
        if r is None or r[0] > r[1] or r[0] < 0 or not exponent[0] > 0:
            return None
        return (_power(r[0], exponent[0]), _power(r[1], exponent[0]), r[2])
    return None


def _compare(decide: Callable[[Range, Range], bool | None], itself: str) -> Callable:
    """A comparison rule. `itself` is what comparing a tensor with itself gives, element by element:
    "equal" (True but for NaN: `x == x`, `x <= x`), "unequal" (False but for NaN: `x != x`, which is how
    NaN checks are written) or "never" (`x < x`)."""

    def rule(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
        a, b = lookup(args[0]), lookup(args[1])
        if args[0] is args[1] and isinstance(args[0], torch.Tensor):
            return _compared_with_itself(a, itself)
        if a is None or b is None:
            return _EITHER
        if a[0] > a[1] or b[0] > b[1]:  # all NaN: every ordered comparison is False, != True
            return None
        answer = decide(a, b)
        return _EITHER if answer is None else (_TRUE if answer else _FALSE)

    return rule


def _compared_with_itself(r: Range | None, itself: str) -> Range:
    if itself == "never":
        return _FALSE
    if r is None or (r[2] and r[0] <= r[1]):
        return _EITHER  # numbers and NaN
    no_nan = not r[2]
    return _TRUE if no_nan == (itself == "equal") else _FALSE


def _nan_check(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """isnan: False where no element may be NaN, True where every one is."""
    return _compared_with_itself(lookup(args[0]), "unequal")


def _inf_check(sign: int) -> Callable:
    """isinf (`sign` 0), isposinf (1), isneginf (-1)."""

    def rule(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
        r = lookup(args[0])
        if r is None:
            return _EITHER
        lo, hi, nan = r
        if lo > hi:
            return _FALSE  # only NaN
        can_pos, can_neg = hi == INF, lo == -INF
        if not ((sign >= 0 and can_pos) or (sign <= 0 and can_neg)):
            return _FALSE
        every = (lo == hi == INF and sign >= 0) or (lo == hi == -INF and sign <= 0)
        return _TRUE if every and not nan else _EITHER

    return rule


def _nan_to_num(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    r = lookup(args[0])
    big = _finfo_max(out.dtype) if out.dtype.is_floating_point else None
    if r is None or big is None:
        return None
    picks = [
        kwargs.get(k, args[i] if len(args) > i else None)
        for i, k in ((1, "nan"), (2, "posinf"), (3, "neginf"))
    ]
    nan_value, pos_value, neg_value = (
        float(v) if v is not None else default for v, default in zip(picks, (0.0, big, -big), strict=True)
    )
    lo, hi, nan = r
    finite_lo, finite_hi = max(lo, -big), min(hi, big)
    values = [finite_lo, finite_hi] if finite_lo <= finite_hi else []
    values += [nan_value] if nan else []
    values += [pos_value] if hi == INF else []
    values += [neg_value] if lo == -INF else []
    return (min(values), max(values), False) if values else None


def _eq(a: Range, b: Range) -> bool | None:
    if a[1] < b[0] or b[1] < a[0]:
        return False  # NaN == x is False too
    if a[0] == a[1] == b[0] == b[1] and not (a[2] or b[2]):
        return True
    return None


def _ne(a: Range, b: Range) -> bool | None:
    answer = _eq(a, b)
    return None if answer is None else not answer


def _ordered(strict: bool, flip: bool) -> Callable[[Range, Range], bool | None]:
    """a < b (strict) or a <= b; with `flip`, b < a or b <= a. NaN compares False."""

    def decide(a: Range, b: Range) -> bool | None:
        if flip:
            a, b = b, a
        nan = a[2] or b[2]
        always = a[1] < b[0] if strict else a[1] <= b[0]
        never = a[0] >= b[1] if strict else a[0] > b[1]
        if always and not nan:
            return True
        if never:
            return False
        return None

    return decide


def _logical_not(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    if out.dtype != torch.bool:  # bitwise_not of an integer is ~x, not a negation
        return None
    r = fit(lookup(args[0]) or _EITHER, torch.bool)
    return None if r is None else (1.0 - r[1], 1.0 - r[0], False)


def _logical(conjunction: bool) -> Callable:
    def rule(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
        if out.dtype != torch.bool:
            return None
        a, b = (fit(lookup(v) or _EITHER, torch.bool) for v in args[:2])
        if a is None or b is None:
            return None
        if conjunction:
            return (min(a[0], b[0]), min(a[1], b[1]), False)
        return (max(a[0], b[0]), max(a[1], b[1]), False)

    return rule


def _quantifier(every: bool) -> Callable:
    """`all` (`every`) or `any`: decided by an empty input, and by one whose elements all agree."""
    unanimous, other = (_TRUE, _FALSE) if every else (_FALSE, _TRUE)

    def rule(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
        t = args[0]
        r = fit(lookup(t) or _EITHER, torch.bool)
        if r is None or not isinstance(t, torch.Tensor):
            return None
        if r == unanimous or t.numel() == 0:
            return unanimous
        return other if r == other and len(args) == 1 else _EITHER

    return rule


def _where(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    if len(args) < 3:
        return None
    condition = fit(lookup(args[0]) or _EITHER, torch.bool)
    a, b = lookup(args[1]), lookup(args[2])
    if condition == _TRUE:
        return a
    if condition == _FALSE:
        return b
    return None if a is None or b is None else joined(a, b, replaced=True)


def _put(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """`index_put` and `masked_fill`: the destination's values and the ones put in (a pad id put in at
    random positions among drawn ids)."""
    if len(args) < 3 or (len(args) > 3 and args[3] is True) or kwargs.get("accumulate"):
        return None  # accumulated: sums, not the values put
    destination, put = lookup(args[0]), lookup(args[2])
    return None if destination is None or put is None else joined(destination, put, replaced=True)


def _full(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return of_number(args[1] if len(args) > 1 else kwargs.get("fill_value"))


def _new_full(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return of_number(args[2] if len(args) > 2 else kwargs.get("fill_value"))


def _fill(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return lookup(args[1]) if len(args) > 1 else None


def _scalar_tensor(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return of_number(args[0])


def _finite(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """Normal noise: any finite value."""
    big = _finfo_max(out.dtype) if out.dtype.is_floating_point else None
    return None if big is None else (-big, big, False)


def _uniform(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    low = kwargs.get("from", args[1] if len(args) > 1 else 0.0)
    high = kwargs.get("to", args[2] if len(args) > 2 else 1.0)
    return (float(low), float(high), False)


def _arange(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    start, step = (0, 1) if len(args) < 2 else (args[0], args[2] if len(args) > 2 else kwargs.get("step", 1))
    if not (of_number(start) and of_number(step)) or out.numel() == 0:
        return None
    last = start + step * (out.numel() - 1)
    return (float(min(start, last)), float(max(start, last)), False)


def _randint(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """randint(high, size) or randint(low, high, size); randint_like(self, high) or (self, low, high);
    random_(self, from, to): integers in [low, high)."""
    bounds = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if not 1 <= len(bounds) <= 2:
        return None
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    return Drawn(low, high - 1) if high > low else None


def _randperm(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    return (0.0, float(args[0] - 1), False) if isinstance(args[0], int) and args[0] > 0 else None


def _remainder(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """A remainder takes its divisor's sign: of a positive divisor, within [0, divisor)."""
    divisor = lookup(args[1])
    if divisor is None or divisor[2] or divisor[0] <= 0 or math.isinf(divisor[1]):
        return None
    dividend = lookup(args[0])
    if dividend is not None and not dividend[2] and 0 <= dividend[0] and dividend[1] < divisor[0]:
        return dividend  # already within range: unchanged
    top = divisor[1] - 1 if not out.dtype.is_floating_point else divisor[1]
    return (0.0, float(top), False)


def _repeat_interleave(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """Of `self` repeated; the overload of a repeats tensor alone makes the indices [0, len(repeats))."""
    if len(args) > 1 or "repeats" in kwargs:
        return lookup(args[0])
    return (0.0, float(args[0].numel() - 1), False) if args[0].numel() else None


def _joined(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    parts = [lookup(t) for t in args[0]] if isinstance(args[0], list | tuple) and args[0] else [None]
    return None if None in parts else functools.reduce(joined, parts)


def _padded(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
    """constant_pad_nd(self, pad, value=0): the operand's values, and the value where a side grows."""
    inner = lookup(args[0])
    value = of_number(args[2] if len(args) > 2 else kwargs.get("value", 0))
    grows = any(p > 0 for p in args[1])
    return inner if inner is None or not grows else None if value is None else joined(inner, value)


def _const(value: float) -> Callable:
    def rule(args: tuple, kwargs: dict, out: torch.Tensor, lookup: Lookup) -> Range | None:
        return (value, value, False)

    return rule


# Ops whose result holds the draws of their operand as they were (`Drawn`), and the draws themselves.
_KEEPS_DRAWS = {
    *("randint", "randint_like", "random", "_to_copy", "clone", "contiguous", "copy", "lift_fresh"),
    *("constant_pad_nd", "cat", "stack", "where", "index_put", "masked_fill"),
}

_RULES: dict[str, Callable[..., Range | None]] = {
    **dict.fromkeys(("_to_copy", "clone", "contiguous", "lift_fresh", "lift_fresh_copy"), _same),
    "copy": lambda args, kwargs, out, lookup: lookup(args[1]),
    **dict.fromkeys(("amax", "amin"), _same),
    "max": lambda args, kwargs, out, lookup: _extreme(args, lookup, max),
    "min": lambda args, kwargs, out, lookup: _extreme(args, lookup, min),
    "maximum": _maximum,
    "minimum": _minimum,
    "abs": _abs,
    "neg": _neg,
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "reciprocal": _reciprocal,
    "sqrt": _sqrt,
    "rsub": _rsub,
    "exp": _exp,
    "log": _log,
    "pow": _pow,
    "clamp": _clamp_both,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "eq": _compare(_eq, "equal"),
    "ne": _compare(_ne, "unequal"),
    "lt": _compare(_ordered(strict=True, flip=False), "never"),
    "le": _compare(_ordered(strict=False, flip=False), "equal"),
    "gt": _compare(_ordered(strict=True, flip=True), "never"),
    "ge": _compare(_ordered(strict=False, flip=True), "equal"),
    "isnan": _nan_check,
    "isinf": _inf_check(0),
    "isposinf": _inf_check(1),
    "isneginf": _inf_check(-1),
    "nan_to_num": _nan_to_num,
    "logical_not": _logical_not,
    "bitwise_not": _logical_not,
    "logical_and": _logical(conjunction=True),
    "bitwise_and": _logical(conjunction=True),
    "logical_or": _logical(conjunction=False),
    "bitwise_or": _logical(conjunction=False),
    "all": _quantifier(every=True),
    "any": _quantifier(every=False),
    "where": _where,
    **dict.fromkeys(("index_put", "masked_fill"), _put),
    **dict.fromkeys(("full", "full_like"), _full),
    "new_full": _new_full,
    "fill": _fill,
    "scalar_tensor": _scalar_tensor,
    # Not written yet: a deterministic reference reads only what it wrote, so a buffer holds the union of
    # what is written into it.
    **dict.fromkeys(
        ("empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"),
        lambda args, kwargs, out, lookup: NOTHING,
    ),
    **dict.fromkeys(("randn", "randn_like", "normal"), _finite),
    **dict.fromkeys(("rand", "rand_like"), lambda args, kwargs, out, lookup: (0.0, 1.0, False)),
    "uniform": _uniform,
    "arange": _arange,
    **dict.fromkeys(("randint", "randint_like", "random"), _randint),
    "randperm": _randperm,
    "remainder": _remainder,
    "floor_divide": _floor_divide,
    # Rearranged, repeated or picked elements of the first operand.
    **dict.fromkeys(("repeat", "index_select", "gather", "index", "take", "flip", "roll"), _same),
    "repeat_interleave": _repeat_interleave,
    **dict.fromkeys(("cat", "stack"), _joined),
    "constant_pad_nd": _padded,
    **dict.fromkeys(("zeros", "zeros_like", "new_zeros", "zero"), _const(0.0)),
    **dict.fromkeys(("ones", "ones_like", "new_ones"), _const(1.0)),
}
