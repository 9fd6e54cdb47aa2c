"""solgym: GPU kernel optimisation as reinforcement-learning environments.

Every kernel problem is a Gymnasium env; an action is kernel source; the reward is the speed-of-light
(SOL) score, paid only after static analysis and runtime guards have rejected cheating code.
"""

from __future__ import annotations

from pathlib import Path

from solgym.problem import Definition, Problem, ProblemError, Workload, load_problem
from solgym.result import EvalResult, Status

__version__ = "0.1.0"

__all__ = [
    "Definition",
    "EvalResult",
    "Problem",
    "ProblemError",
    "Status",
    "Workload",
    "data_dir",
    "load_problem",
]


def data_dir(name: str) -> Path:
    """The shipped data directory `envs` or `rewards`: inside the installed package (a wheel puts them in
    `solgym/_data/`) or at the root of a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"solgym's {name}/ directory is missing from {here} and {here.parent}; reinstall solgym"
    )


from solgym import env as _env  # noqa: E402,F401 registers the envs
