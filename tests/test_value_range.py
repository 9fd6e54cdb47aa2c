"""Value ranges carried through the ops that guards are made of (`solgym.value_range`)."""

import math

import pytest
import torch

from solgym import value_range as vr

INF = math.inf
F32 = float(torch.finfo(torch.float32).max)


def point(v: float) -> vr.Range:
    return (v, v, False)


def through(name: str, *args, out_dtype=torch.float32, **kwargs) -> vr.Range | None:
    """Apply one rule to Python stand-ins: a tuple is a tensor's range, a number is a number."""
    tensors = [torch.empty(1, dtype=out_dtype, device="meta") if isinstance(a, tuple) else a for a in args]
    ranges = {id(t): a for t, a in zip(tensors, args, strict=True) if isinstance(a, tuple)}

    def lookup(v):
        return ranges.get(id(v)) if isinstance(v, torch.Tensor) else vr.of_number(v)

    return vr.transfer(name, tuple(tensors), kwargs, torch.empty(1, dtype=out_dtype, device="meta"), lookup)


def test_a_block_quantizer_global_scale_is_never_zero():
    # global_encode = clamp(448 * 6 / amax(|x|), max=finfo.max) for finite x: positive, so `== 0` is False.
    x = vr.unknown(torch.float32, infinite=False)
    amax = through("max", through("abs", x))
    assert amax == (0.0, F32, False)
    scale = through("div", point(2688.0), amax)
    assert scale[0] > 0 and scale[1] == INF
    clamped = through("clamp", scale, None, point(F32))
    assert clamped[1] == F32
    assert vr.decided(through("eq", clamped, 0.0, out_dtype=torch.bool), torch.bool) is False


def test_an_input_that_may_hold_infinities_leaves_the_guard_open():
    amax = through("max", through("abs", vr.unknown(torch.float32, infinite=True)))
    scale = through("div", point(2688.0), amax)
    assert scale[0] == 0  # 2688 / inf
    assert vr.decided(through("eq", scale, 0.0, out_dtype=torch.bool), torch.bool) is None


@pytest.mark.parametrize(
    ("name", "a", "b", "answer"),
    [
        ("eq", (1.0, 2.0, False), 3.0, False),
        ("eq", (1.0, 2.0, True), 3.0, False),  # NaN == 3 is False too
        ("ne", (1.0, 2.0, False), 3.0, True),
        ("eq", (1.0, 2.0, False), 1.5, None),
        ("lt", (1.0, 2.0, False), 3.0, True),
        ("lt", (1.0, 2.0, True), 3.0, None),  # NaN < 3 is False: not always True
        ("ge", (1.0, 2.0, True), 3.0, False),
        ("gt", (1.0, 2.0, False), 2.0, False),
        ("le", (1.0, 2.0, False), 2.0, True),
        ("eq", point(7.0), 7.0, True),
    ],
)
def test_comparisons_decide_only_what_every_element_agrees_on(name, a, b, answer):
    assert vr.decided(through(name, a, b, out_dtype=torch.bool), torch.bool) is answer


def test_division_by_a_possible_zero_may_be_infinite_and_zero_over_zero_nan():
    assert through("div", point(1.0), (0.0, 4.0, False)) == (0.25, INF, False)
    assert through("div", (0.0, 1.0, False), (0.0, 4.0, False))[2] is True
    assert through("div", (-1.0, 1.0, False), (-1.0, 1.0, False)) is None  # not modelled: no claim
    assert through("div", (2.0, 4.0, False), (-2.0, -1.0, False)) == pytest.approx(
        (-4.0, -1.0, False), rel=1e-6
    )


def test_rounding_widens_inexact_bounds_and_keeps_exact_ones():
    assert vr.fit(point(448.0), torch.float32) == point(448.0)
    assert vr.fit(point(F32), torch.float32) == point(F32)
    lo, hi, _ = vr.fit(point(0.1), torch.bfloat16)
    assert lo < 0.1 < hi
    # A positive bound below the smallest normal may round to zero; one past the largest value is
    # taken to saturate (no overflow: the module's assumption).
    assert vr.fit((1e-40, 1.0, False), torch.float32)[0] == 0.0
    assert vr.fit((1.0, 1e39, False), torch.float32)[1] == F32
    assert vr.fit((1.0, INF, False), torch.float32)[1] == INF


def test_conversions_to_bool_and_integers():
    assert vr.fit((0.5, 3.0, False), torch.bool) == (1.0, 1.0, False)
    assert vr.fit((0.0, 3.0, False), torch.bool) == (0.0, 1.0, False)
    assert vr.fit((-2.7, 3.9, False), torch.int32) == (-2.0, 3.0, False)
    assert vr.fit((0.0, 1.0, True), torch.int32) == (
        float(torch.iinfo(torch.int32).min),
        float(2**31 - 1),
        False,
    )


def test_a_value_is_decided_only_by_one_point_without_nan():
    assert vr.decided(point(2.0), torch.float32) == 2.0
    assert vr.decided(point(3.0), torch.int64) == 3 and isinstance(vr.decided(point(3.0), torch.int64), int)
    assert vr.decided((2.0, 2.0, True), torch.float32) is None
    assert vr.decided((1.0, 2.0, False), torch.float32) is None
    assert vr.decided(vr.NOTHING, torch.float32) is None
    assert vr.decided(None, torch.float32) is None


def test_a_buffer_holds_the_union_of_what_is_written_into_it():
    buffer = through("empty")
    assert buffer == vr.NOTHING
    assert vr.union(buffer, (1.0, 2.0, False)) == (1.0, 2.0, False)
    assert vr.union((1.0, 2.0, False), (-3.0, 0.0, True)) == (-3.0, 2.0, True)


def test_fills_and_factories():
    assert through("full", [2, 3], 7.0) == point(7.0)
    assert through("new_full", (1.0, 2.0, False), [2], -1.5) == point(-1.5)
    assert through("ones_like", (5.0, 9.0, False)) == point(1.0)
    assert through("fill_", (5.0, 9.0, False), 0.0) == point(0.0)
    assert through("rand") == (0.0, 1.0, False)
    assert through("randn") == (-F32, F32, False)


def test_index_factories_and_the_ops_that_rearrange_indices():
    # What an entry point builds indices with: their ranges bound the rows a gather can name.
    def made(name, *args, n=10, dtype=torch.int64):
        return vr.transfer(name, args, {}, torch.empty(n, dtype=dtype, device="meta"), vr.of_number)

    assert made("arange", 10) == (0.0, 9.0, False)
    assert made("arange", 5, 25, 2) == (5.0, 23.0, False)
    assert made("arange", 9, -1, -1) == (0.0, 9.0, False)
    assert made("randint", 1024, [8]) == (0.0, 1023.0, False)
    assert made("randint", 3, 7, [8]) == (3.0, 6.0, False)
    assert made("randperm", 64) == (0.0, 63.0, False)
    wide = (0.0, 8191.0, False)
    assert through("remainder", wide, 1024, out_dtype=torch.int64) == (0.0, 1023.0, False)
    assert through("remainder", (0.0, 9.0, False), 1024, out_dtype=torch.int64) == (0.0, 9.0, False)
    assert through("remainder", wide, -4, out_dtype=torch.int64) is None  # a negative divisor's sign
    assert through("repeat", wide, [4], out_dtype=torch.int64) == wide
    assert through("cat", [(0.0, 3.0, False), (8.0, 9.0, False)]) is None  # a list: not stand-ins here


def test_constants_from_python_data():
    assert vr.of_data([1.0, [2.0, -3.0]], torch.float32) == (-3.0, 2.0, False)
    assert vr.of_data(float("nan"), torch.float32)[2] is True
    assert vr.of_data("text", torch.float32) is None


def test_logic_and_reductions_of_masks():
    true, false, either = (1.0, 1.0, False), (0.0, 0.0, False), (0.0, 1.0, False)
    assert through("logical_and", false, either, out_dtype=torch.bool) == false
    assert through("logical_or", true, either, out_dtype=torch.bool) == true
    assert through("logical_not", true, out_dtype=torch.bool) == false
    assert through("bitwise_not", (0.0, 255.0, False), out_dtype=torch.uint8) is None  # ~x, not a negation
    assert through("any", false, out_dtype=torch.bool) == false
    assert through("all", either, out_dtype=torch.bool) == either
    assert through("where", true, (1.0, 2.0, False), (5.0, 6.0, False)) == (1.0, 2.0, False)
    assert through("where", either, (1.0, 2.0, False), (5.0, 6.0, False)) == (1.0, 6.0, False)


def test_unmodelled_ops_make_no_claim():
    assert through("sin", (0.0, 1.0, False)) is None
    assert not vr.covers("sin") and vr.covers("mul_") and vr.covers("clamp_min")


def test_monotone_functions_map_their_ends():
    # RetNet's decay, log(1 - 2 ** (-5 - arange(h))): negative, which turns a +inf fill into -inf.
    heads = (0.0, 7.0, False)
    exponent = through("rsub", heads, -5)
    assert exponent == (-12.0, -5.0, False)
    powered = through("pow", 2, exponent)
    assert powered == (2.0**-12, 2.0**-5, False)
    decay = through("log", through("rsub", powered, 1))
    assert decay[1] < 0 and decay[0] == pytest.approx(math.log(1 - 2.0**-5), rel=1e-6)
    assert through("exp", (-INF, 0.0, False)) == (0.0, 1.0, False)
    assert through("exp", (0.0, 1.0, True))[2] is True  # NaN stays possible
    assert through("log", (-1.0, 1.0, False))[2] is True  # a log of a negative is NaN
    assert through("log", (-2.0, -1.0, False)) == (INF, -INF, True)  # only NaN
    assert through("pow", (0.0, 4.0, False), 0.5) == (0.0, 2.0, False)
    assert through("pow", (-1.0, 4.0, False), 0.5) is None  # a root of a negative
    assert through("pow", -2, (0.0, 1.0, False)) is None  # a negative base


def test_nan_and_infinity_checks():
    finite, nan_only = (-1.0, 1.0, False), (INF, -INF, True)
    some_nan, unbounded = (-1.0, 1.0, True), (-INF, INF, False)
    bools = torch.bool
    assert through("isnan", finite, out_dtype=bools) == vr._FALSE
    assert through("isnan", nan_only, out_dtype=bools) == vr._TRUE
    assert through("isnan", some_nan, out_dtype=bools) == vr._EITHER
    assert through("isinf", finite, out_dtype=bools) == vr._FALSE
    assert through("isinf", some_nan, out_dtype=bools) == vr._FALSE
    assert through("isinf", unbounded, out_dtype=bools) == vr._EITHER
    assert through("isinf", point(-INF), out_dtype=bools) == vr._TRUE
    assert through("isposinf", (-INF, 0.0, False), out_dtype=bools) == vr._FALSE
    assert through("isneginf", (-INF, 0.0, False), out_dtype=bools) == vr._EITHER
    assert through("isneginf", point(-INF), out_dtype=bools) == vr._TRUE
    assert through("nan_to_num", (-INF, 2.0, True)) == (-F32, 2.0, False)
    assert through("nan_to_num", (1.0, INF, True), 5.0, 9.0) == (1.0, F32, False)
    assert through("nan_to_num", (INF, INF, True), 5.0, 9.0) == (5.0, 9.0, False)


@pytest.mark.parametrize(
    ("name", "r", "answer"),
    [
        ("eq", (-1.0, 1.0, False), True),  # x == x: True but for NaN
        ("ne", (-1.0, 1.0, False), False),  # x != x: the NaN check
        ("ne", (INF, -INF, True), True),
        ("ne", (-1.0, 1.0, True), None),
        ("le", (-1.0, 1.0, False), True),
        ("lt", (-1.0, 1.0, True), False),  # x < x: never
    ],
)
def test_a_tensor_compared_with_itself(name, r, answer):
    t = torch.empty(1, device="meta")
    out = torch.empty(1, dtype=torch.bool, device="meta")
    result = vr.transfer(name, (t, t), {}, out, lambda v: r if v is t else vr.of_number(v))
    assert vr.decided(result, torch.bool) is answer


@pytest.mark.parametrize(
    ("n", "per_row", "values"),
    [(16, 1, 64), (1024, 1, 64), (40960, 1, 50000), (32, 4, 32), (8, 2, 8), (256, 8, 64)],
)
def test_distinct_drawn_is_rarely_above_what_uniform_draws_name(n, per_row, values):
    # Against simulated draws (k distinct per row, as top-k picks): the estimate is below the mean and at
    # most a few percent of draws fall under it, so a bound through it errs low.
    generator = torch.Generator().manual_seed(0)
    rows = n // per_row
    counts = []
    for _ in range(400):
        if per_row == 1:
            picks = torch.randint(0, values, (rows,), generator=generator)
        else:
            picks = torch.rand(rows, values, generator=generator).topk(per_row, dim=-1).indices
        counts.append(picks.unique().numel())
    estimate = vr.distinct_drawn(n, per_row, values)
    mean = sum(counts) / len(counts)
    assert estimate <= mean
    assert sum(c < estimate for c in counts) / len(counts) <= 0.05
    assert estimate >= mean - 4 * max(1.0, (sum((c - mean) ** 2 for c in counts) / len(counts)) ** 0.5)


def test_draws_are_kept_through_copies_casts_and_shifts_only():
    drawn = vr.Drawn(0, 63)
    assert drawn == (0.0, 63.0, False) and drawn.per_row == 1
    assert isinstance(through("_to_copy", drawn, out_dtype=torch.int32), vr.Drawn)
    assert isinstance(through("add", drawn, 7, out_dtype=torch.int64), vr.Drawn)
    assert not isinstance(through("mul", drawn, 2, out_dtype=torch.int64), vr.Drawn)
    assert not isinstance(through("add", drawn, drawn, out_dtype=torch.int64), vr.Drawn)
    assert isinstance(through("randint", 64, [8], out_dtype=torch.int64), vr.Drawn)


def test_draws_padded_or_joined_with_a_few_values_count_those_values_besides_the_draws():
    drawn = vr.Drawn(0, 63)
    # A blank id put before the labels (`F.pad(labels, (1, 0), value=blank)`): 65 values, not 2049.
    padded = through("constant_pad_nd", drawn, [1, 0], 2048, out_dtype=torch.int64)
    assert padded == (0.0, 2048.0, False) and padded.values == 64 and padded.extra == 1
    inside = through("constant_pad_nd", drawn, [1, 0], 0, out_dtype=torch.int64)
    assert inside == (0.0, 63.0, False) and inside.extra == 0
    assert through("constant_pad_nd", drawn, [-1, 0], 2048, out_dtype=torch.int64).extra == 0  # a crop
    assert vr.joined(vr.joined(drawn, (7.0, 7.0, False)), (-1.0, -1.0, False)).extra == 1
    assert vr.joined(padded, drawn).extra == 1  # the same draws: no more values
    assert not isinstance(vr.joined(drawn, (0.0, 100.0, False)), vr.Drawn)
    assert not isinstance(vr.joined(drawn, vr.Drawn(0, 9)), vr.Drawn)
    shifted = through("add", padded, 5, out_dtype=torch.int64)
    assert shifted.draws == (5.0, 68.0) and shifted.extra == 1


def test_a_pad_id_put_among_draws_keeps_them():
    # `ids[rand < 0.3] = 0`, `torch.where(mask, 0, ids)`, `ids.masked_fill(mask, 0)` of ids drawn in [1, 63]:
    # a gather through them names the draws and one value more, not every id of the range.
    drawn = vr.Drawn(1, 63)
    either = vr.unknown(torch.bool, infinite=False)
    for put in (
        through("index_put", drawn, [either], 0, out_dtype=torch.int64),
        through("where", either, 0, drawn, out_dtype=torch.int64),
        through("masked_fill", drawn, either, 0, out_dtype=torch.int64),
    ):
        assert isinstance(put, vr.Drawn) and put == (0.0, 63.0, False) and put.extra == 1
    assert through("index_put", drawn, [either], 0, True, out_dtype=torch.int64) is None  # accumulated
