"""A uniform replay buffer for vectorised environments that stores every observation once.

Rows are time steps and columns are environments: row t holds (o_t, a_t, r_t, terminated_t, done_t) of
every env. The next observation of (t, e) is o_{t+1} of the same column, so observations are not stored
twice (a 1M-transition Atari buffer of 4x84x84 uint8 is 28 GB instead of 56 GB). Two cases differ:

* an episode that ended at t (SAME_STEP autoreset) has the next episode's first observation in row t+1.
  That is harmless after a termination (the bootstrap is masked by 1 - terminated), but a truncation
  (time limit) must bootstrap from the true last observation, which is kept aside for those rows;
* the newest row has no successor yet and is never sampled.
"""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    def __init__(
        self, capacity: int, num_envs: int, obs_shape: tuple[int, ...], obs_dtype=np.uint8, seed: int = 0
    ):
        if capacity < 2 * num_envs:
            raise ValueError(f"capacity {capacity} must hold at least two steps of {num_envs} envs")
        self.rows, self.num_envs = capacity // num_envs, num_envs
        self.obs = np.zeros((self.rows, num_envs, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((self.rows, num_envs), dtype=np.int64)
        self.rewards = np.zeros((self.rows, num_envs), dtype=np.float32)
        self.terminated = np.zeros((self.rows, num_envs), dtype=np.float32)
        self.truncated = np.zeros((self.rows, num_envs), dtype=bool)  # ended by a time limit, not terminated
        self.final_obs: dict[
            tuple[int, int], np.ndarray
        ] = {}  # (row, env) -> last obs of a truncated episode
        self.pos, self.full = 0, False
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Number of sampleable transitions (every stored row but the newest)."""
        return max((self.rows if self.full else self.pos) - 1, 0) * self.num_envs

    def add(self, obs, actions, rewards, terminated, truncated, final_obs=None) -> None:
        """One vector step: obs (N, ...) the observations the actions were taken in; final_obs the
        ``info["final_obs"]`` array of the vector env (needed for truncated episodes)."""
        t = self.pos
        for e in range(self.num_envs):  # the row is overwritten: forget its old truncation records
            self.final_obs.pop((t, e), None)
        self.obs[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = np.logical_and(truncated, np.logical_not(terminated))
        for e in np.flatnonzero(self.truncated[t]):
            self.final_obs[(t, int(e))] = np.asarray(final_obs[e], dtype=self.obs.dtype)
        self.pos = (t + 1) % self.rows
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        n_rows = (self.rows if self.full else self.pos) - 1
        if n_rows < 1:
            raise RuntimeError("the replay buffer needs at least two steps before sampling")
        # Row k-th oldest (excluding the newest): when full the oldest row is self.pos.
        k = self.rng.integers(0, n_rows, size=batch_size)
        rows = (self.pos + k) % self.rows if self.full else k
        envs = self.rng.integers(0, self.num_envs, size=batch_size)
        next_obs = self.obs[(rows + 1) % self.rows, envs]
        for i in np.flatnonzero(self.truncated[rows, envs]):
            next_obs[i] = self.final_obs[(int(rows[i]), int(envs[i]))]
        batch = {
            "obs": self.obs[rows, envs],
            "actions": self.actions[rows, envs],
            "rewards": self.rewards[rows, envs],
            "terminated": self.terminated[rows, envs],
            "next_obs": next_obs,
        }
        return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}

    def state_dict(self) -> dict:
        return {
            "obs": self.obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "final_obs": self.final_obs,
            "pos": self.pos,
            "full": self.full,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("obs", "actions", "rewards", "terminated", "truncated"):
            if state[key].shape != getattr(self, key).shape:
                raise ValueError(
                    f"replay {key} has shape {state[key].shape}, expected {getattr(self, key).shape}"
                )
            setattr(self, key, state[key])
        self.final_obs, self.pos, self.full = dict(state["final_obs"]), int(state["pos"]), bool(state["full"])
        self.rng.bit_generator.state = state["rng"]
