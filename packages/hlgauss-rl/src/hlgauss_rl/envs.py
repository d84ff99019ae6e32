"""Environment factories: MinAtar (cpu scale) and Atari through ale-py (full scale), as gymnasium envs.

Vectorised environments use gymnasium's SAME_STEP autoreset: the step that ends an episode returns the
first observation of the next one, and the true last observation in ``info["final_obs"]``.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

# Dopamine's Atari protocol (dopamine/discrete_domains/atari_lib.py, Machado et al. 2018): sticky actions
# with p = 0.25 (instead of no-op starts), 4-frame skip with a max over the last two frames, 84x84
# grayscale, 4-frame stack, no life-loss terminals, rewards clipped to [-1, 1] for learning, at most
# 27,000 agent steps (108,000 frames) per episode.
ATARI_STICKY_PROB = 0.25
ATARI_MAX_EPISODE_STEPS = 27_000


def _minatar_registered() -> None:
    import minatar.gym

    if "MinAtar/Breakout-v1" not in gym.registry:
        minatar.gym.register_envs()  # `import minatar` alone does not register the gym ids


def _ale_registered() -> None:
    import ale_py

    gym.register_envs(ale_py)


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


class ChannelsFirst(gym.ObservationWrapper):
    """MinAtar's (10, 10, C) bool grid as (C, 10, 10) uint8, the layout Conv2d wants, copied once here
    so that neither the replay buffer nor every update has to transpose."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        h, w, c = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)

    def observation(self, obs):
        return np.ascontiguousarray(obs.transpose(2, 0, 1), dtype=np.uint8)


def make_env(env_id: str, seed: int, max_episode_steps: int | None = None, clip_rewards: bool = False):
    """A thunk building one environment (for gym.vector.SyncVectorEnv). A partial of a top-level function,
    not a closure, so that a vector env can be pickled into a checkpoint."""
    return functools.partial(_build_env, env_id, seed, max_episode_steps, clip_rewards)


def _clip_reward(r: float) -> float:
    return float(np.clip(r, -1.0, 1.0))


def _build_env(env_id: str, seed: int, max_episode_steps: int | None, clip_rewards: bool) -> gym.Env:
    if env_id.startswith("MinAtar/"):
        _minatar_registered()
        env = gym.make(env_id, max_episode_steps=max_episode_steps)  # sticky actions p = 0.1 inside
        env = ChannelsFirst(env)
    elif is_atari(env_id):
        _ale_registered()
        env = gym.make(
            env_id,
            frameskip=1,
            repeat_action_probability=ATARI_STICKY_PROB,
            max_episode_steps=4 * (max_episode_steps or ATARI_MAX_EPISODE_STEPS),
        )
        env = gym.wrappers.AtariPreprocessing(
            env, noop_max=0, frame_skip=4, screen_size=84, terminal_on_life_loss=False, grayscale_obs=True
        )
        env = gym.wrappers.FrameStackObservation(env, 4)
    else:
        env = gym.make(env_id, max_episode_steps=max_episode_steps)
    env = gym.wrappers.RecordEpisodeStatistics(env)  # unclipped returns, recorded before clipping
    if clip_rewards:
        env = gym.wrappers.TransformReward(env, _clip_reward)
    env.action_space.seed(seed)
    return env


def make_vector_env(env_id: str, num_envs: int, seed: int, **kwargs) -> gym.vector.SyncVectorEnv:
    envs = gym.vector.SyncVectorEnv(
        [make_env(env_id, seed + i, **kwargs) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id}: DQN needs a discrete action space, got {envs.single_action_space}")
    return envs


def finished_episodes(infos: dict) -> list[tuple[int, float, int]]:
    """(env index, return, length) of every episode that ended in this vector step."""
    final = infos.get("final_info", {})
    if "episode" not in final:
        return []
    ep, mask = final["episode"], final["_episode"]
    return [(int(i), float(ep["r"][i]), int(ep["l"][i])) for i in np.flatnonzero(mask)]
