"""The SOL score, its clamp, the degenerate-baseline rule and the physics floor (DESIGN §6, §11.4)."""

from __future__ import annotations

import pytest

from solgym.score import below_physics_floor, fraction_of_sol, reward, sol_score, speedup


def test_score_is_half_at_the_baseline():
    assert sol_score(10.0, 2.0, 10.0).value == pytest.approx(0.5)


def test_score_is_one_at_the_speed_of_light():
    assert sol_score(2.0, 2.0, 10.0).value == pytest.approx(1.0)


def test_score_follows_the_formula_between():
    # 1 / (1 + (6 - 2) / (10 - 2)) = 2/3
    assert sol_score(6.0, 2.0, 10.0).value == pytest.approx(2 / 3)


def test_score_is_clamped_to_one_below_the_speed_of_light():
    assert sol_score(1.9, 2.0, 10.0).value == 1.0


def test_slow_kernels_score_towards_zero_never_below():
    s = sol_score(1e6, 2.0, 10.0).value
    assert 0.0 <= s < 1e-4


def test_baseline_below_the_speed_of_light_is_degenerate_and_reported():
    s = sol_score(10.0, 12.0, 10.0)
    assert s.degenerate
    assert "at or below" in s.note
    assert s.value == pytest.approx(0.5)  # still 0.5 at the baseline


def test_degenerate_score_reaches_one_five_percent_under_the_baseline():
    assert sol_score(9.5, 12.0, 10.0).value == pytest.approx(1.0)
    assert 0.5 < sol_score(9.8, 12.0, 10.0).value < 1.0


def test_degenerate_rule_meets_the_plain_formula_at_the_gap_floor():
    # gap exactly 5% of T_b: both rules give the same number.
    plain = 1 / (1 + (9.7 - 9.5) / 0.5)
    assert sol_score(9.7, 9.5, 10.0).value == pytest.approx(plain)
    assert not sol_score(9.7, 9.4, 10.0).degenerate


def test_invalid_times_are_errors():
    with pytest.raises(ValueError):
        sol_score(float("nan"), 1.0, 2.0)
    with pytest.raises(ValueError):
        sol_score(1.0, 1.0, 0.0)


def test_physics_floor_uses_the_margin():
    assert below_physics_floor(0.89, 1.0)
    assert not below_physics_floor(0.9, 1.0)
    assert not below_physics_floor(0.5, 1.0, margin=0.6)
    assert not below_physics_floor(0.0, 0.0)


def test_reward_is_the_mean_of_scored_workloads():
    assert reward([0.5, 1.0, None], all_passed=True) == pytest.approx(0.75)


def test_any_failure_makes_the_reward_zero():
    assert reward([1.0, 1.0], all_passed=False) == 0.0


def test_nothing_scored_gives_zero():
    assert reward([None], all_passed=True) == 0.0


def test_speedup_and_fraction_of_sol():
    assert speedup(2.0, 10.0) == 5.0
    assert fraction_of_sol(4.0, 1.0) == 0.25
    assert speedup(0.0, 1.0) is None
