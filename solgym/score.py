"""The SOL score and the reward of an evaluation (DESIGN §6, §11.4): pure functions of times in ms.

    S = 1 / (1 + (T_k - T_SOL) / (T_b - T_SOL))

is 0.5 when the kernel matches the scoring baseline T_b and 1 at the speed of light T_SOL; solgym clamps
it to [0, 1]. Two cases need a rule:

- **Degenerate baseline.** When T_b is at or below T_SOL (or barely above it) the gap the formula divides
  by vanishes and the score jumps between 0 and 1. The gap is floored at `MIN_GAP_FRACTION` x T_b and the
  anchor moved to T_b - gap, so the score stays 0.5 at the baseline, rises smoothly to 1 at 5 % faster
  than the baseline, and coincides with the plain formula wherever the real gap is wider than the floor.
  Such scores are flagged `degenerate` with the reason: a T_b at or under T_SOL means the bound or the
  anchor is stale, which a maintainer should look at.
- **Below the speed of light.** A time below (1 - margin) x T_SOL is physically impossible: the caller
  turns it into `REWARD_HACK`, never into a score of 1 (`below_physics_floor`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# DESIGN §11.4: a measured time below 0.9 x T_SOL is a reward hack.
PHYSICS_MARGIN = 0.1
# The smallest gap T_b - T_SOL the score divides by, as a fraction of T_b.
MIN_GAP_FRACTION = 0.05


@dataclass(frozen=True)
class Score:
    """A clamped SOL score in [0, 1], with `degenerate` set (and `note` saying why) when the baseline
    left too small a gap to the speed of light for the plain formula."""

    value: float
    degenerate: bool = False
    note: str = ""


def sol_score(
    latency_ms: float, t_sol_ms: float, t_baseline_ms: float, *, min_gap_fraction: float = MIN_GAP_FRACTION
) -> Score:
    """The SOL score of a kernel time against its speed of light and scoring baseline (all in ms)."""
    for name, value in (("latency_ms", latency_ms), ("t_sol_ms", t_sol_ms), ("t_baseline_ms", t_baseline_ms)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite time >= 0, got {value}")
    if t_baseline_ms <= 0:
        raise ValueError(
            "t_baseline_ms must be positive: a baseline that takes no time cannot anchor a score"
        )
    gap = t_baseline_ms - t_sol_ms
    floor = min_gap_fraction * t_baseline_ms
    degenerate = gap < floor
    note = ""
    if degenerate:
        note = (
            f"degenerate baseline: T_b {t_baseline_ms:.6g} ms is {'at or below' if gap <= 0 else 'within 5% of'} "
            f"T_SOL {t_sol_ms:.6g} ms; gap floored at {min_gap_fraction:g} x T_b (the bound or the anchor may be stale)"
        )
        gap = floor
    anchor = t_baseline_ms - gap
    value = 1.0 / (1.0 + (latency_ms - anchor) / gap) if latency_ms > anchor else 1.0
    return Score(min(1.0, max(0.0, value)), degenerate, note)


def below_physics_floor(latency_ms: float, t_sol_ms: float, margin: float = PHYSICS_MARGIN) -> bool:
    """True when a measured time is below (1 - margin) x T_SOL: faster than the hardware can go."""
    return t_sol_ms > 0 and latency_ms < (1.0 - margin) * t_sol_ms


def speedup(latency_ms: float, t_baseline_ms: float) -> float | None:
    """T_b / T_k, None when the kernel time is zero."""
    return t_baseline_ms / latency_ms if latency_ms > 0 else None


def fraction_of_sol(latency_ms: float, t_sol_ms: float) -> float | None:
    """T_SOL / T_k: 1.0 at the speed of light."""
    return t_sol_ms / latency_ms if latency_ms > 0 else None


def reward(scores: Iterable[float | None], *, all_passed: bool) -> float:
    """The reward of an evaluation: the mean SOL score of its scored workloads, 0 when any workload
    failed or none could be scored (a workload without a baseline carries None and is not averaged)."""
    if not all_passed:
        return 0.0
    values = [s for s in scores if s is not None]
    return sum(values) / len(values) if values else 0.0
