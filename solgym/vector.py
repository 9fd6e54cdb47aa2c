"""The vector env: `num_envs` kernel envs whose actions go to the evaluation pool as one batch.

`gym.make_vec("solgym/<problem>-v0", num_envs=N)` builds it (the registered `vector_entry_point`). A step
checks every action statically in this process, submits all that pass before waiting on any, so the
pool runs the batch in parallel across its GPUs, then gathers the results in order.

Autoreset mode: `AutoresetMode.NEXT_STEP` (Gymnasium's default). A sub-env whose episode ended is reset
by the following `step`, whose action for it is ignored; that step returns the reset observation with
reward 0 and neither flag set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from solgym.env import KernelEnv


class KernelVectorEnv(VectorEnv):
    """`num_envs` independent `KernelEnv`s (same constructor arguments, one shared pool) stepped as a
    batch. Each sub-env gets its own secret, so hidden draws differ across the batch."""

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        kwargs.pop("secret", None)  # one secret for every sub-env would repeat the same hidden draws
        # A pool object, or the name of the process-wide shared pool: either way one pool for the batch.
        self.envs = [KernelEnv(**kwargs) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.render_mode = kwargs.get("render_mode")
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._closed = False

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset every sub-env (an int seed seeds sub-env i with seed + i). `options` may carry `"problem"`
        for all, or `"reset_mask"` (bool per sub-env) to reset only some."""
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, dtype=bool)), dtype=bool)
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        observations, infos = [None] * self.num_envs, {}
        for i, env in enumerate(self.envs):
            if mask[i]:
                obs, info = env.reset(seed=seeds[i], options=options or None)
                self._needs_reset[i] = False
            else:
                obs, info = env._observation(), {}
            observations[i] = obs
            infos = self._add_info(infos, info, i)
        return self._batch(observations), infos

    def step(
        self, actions: Sequence[str]
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Submit every sub-env's action as one batch, then gather (NEXT_STEP autoreset)."""
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for {self.num_envs} envs")
        pending = [
            None if self._needs_reset[i] else env._submit(actions[i]) for i, env in enumerate(self.envs)
        ]
        observations = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            if pending[i] is None:
                obs, info = env.reset()
                self._needs_reset[i] = False
            else:
                obs, rewards[i], terminations[i], truncations[i], info = env._finish(pending[i])
                self._needs_reset[i] = terminations[i] or truncations[i]
            observations[i] = obs
            infos = self._add_info(infos, info, i)
        return self._batch(observations), rewards, terminations, truncations, infos

    def render(self) -> tuple[str | None, ...] | None:
        """The text of every sub-env ("ansi"), or None without a render mode."""
        if self.render_mode != "ansi":
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Close the sub-envs (the shared pool stays with its owner)."""
        for env in self.envs:
            env.close()

    def _batch(self, observations: list[dict[str, Any]]) -> dict[str, Any]:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, observations, out)
