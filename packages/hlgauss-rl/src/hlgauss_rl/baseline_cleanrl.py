"""A plain CleanRL-style DQN (cleanrl/dqn.py, gymnasium version), the speed baseline for our agent.

It follows cleanrl's loop as written there: one epsilon coin for all envs, `torch.Tensor(obs)` on every
step, a replay storing obs and next_obs (as stable-baselines3's ReplayBuffer does, re-implemented here
because SB3 is not a dependency), MSE on the max target, per-parameter target copy, a TensorBoard row
every 100 steps and the default (for-loop) Adam. Only the speed is compared: run it with the same
network, envs and hyperparameters as `hlgauss_rl.dqn.train(..., loss="mse")`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch.optim as optim

from hlgauss_rl.dqn import DQNConfig, linear_schedule
from hlgauss_rl.envs import make_vector_env
from hlgauss_rl.networks import make_network


class SimpleReplayBuffer:
    """What SB3's ReplayBuffer does for this case: obs and next_obs arrays, uniform (batch, env) sampling."""

    def __init__(self, buffer_size: int, n_envs: int, obs_shape, obs_dtype):
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.n_envs = n_envs
        self.observations = np.zeros((self.buffer_size, n_envs, *obs_shape), dtype=obs_dtype)
        self.next_observations = np.zeros((self.buffer_size, n_envs, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((self.buffer_size, n_envs, 1), dtype=np.int64)
        self.rewards = np.zeros((self.buffer_size, n_envs), dtype=np.float32)
        self.dones = np.zeros((self.buffer_size, n_envs), dtype=np.float32)
        self.pos, self.full = 0, False

    def add(self, obs, next_obs, action, reward, done):
        self.observations[self.pos] = np.array(obs)
        self.next_observations[self.pos] = np.array(next_obs)
        self.actions[self.pos] = np.array(action).reshape(self.n_envs, 1)
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int, device):
        upper = self.buffer_size if self.full else self.pos
        batch_inds = np.random.randint(0, upper, size=batch_size)
        env_inds = np.random.randint(0, self.n_envs, size=(len(batch_inds),))
        data = (
            self.observations[batch_inds, env_inds],
            self.actions[batch_inds, env_inds],
            self.next_observations[batch_inds, env_inds],
            self.dones[batch_inds, env_inds].reshape(-1, 1),
            self.rewards[batch_inds, env_inds].reshape(-1, 1),
        )
        return tuple(torch.tensor(d, device=device) for d in data)


def run_cleanrl_dqn(cfg: DQNConfig, run_dir: Path | str, device="cpu") -> dict:
    """cleanrl's dqn.py main loop (MSE), with our env factory and network; returns steps per second."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(Path(run_dir) / "tb_cleanrl"))
    envs = make_vector_env(cfg.env_id, cfg.num_envs, cfg.seed, max_episode_steps=cfg.max_episode_steps)
    obs_shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)
    q_network = make_network(cfg.network, obs_shape, n_actions, 1, cfg.width).to(device)
    optimizer = optim.Adam(q_network.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    target_network = make_network(cfg.network, obs_shape, n_actions, 1, cfg.width).to(device)
    target_network.load_state_dict(q_network.state_dict())
    rb = SimpleReplayBuffer(cfg.buffer_size, cfg.num_envs, obs_shape, envs.single_observation_space.dtype)

    start_time = time.time()
    obs, _ = envs.reset(seed=cfg.seed)
    n_iters = cfg.total_steps // cfg.num_envs
    for global_step in range(n_iters):
        epsilon = linear_schedule(cfg.start_e, cfg.end_e, cfg.exploration_steps, global_step * cfg.num_envs)
        if random.random() < epsilon:
            actions = np.array([envs.single_action_space.sample() for _ in range(envs.num_envs)])
        else:
            q_values = q_network(torch.Tensor(obs).to(device)).squeeze(-1)
            actions = torch.argmax(q_values, dim=1).cpu().numpy()

        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        if "final_info" in infos and "episode" in infos["final_info"]:
            for i in np.flatnonzero(infos["final_info"]["_episode"]):
                writer.add_scalar(
                    "charts/episodic_return", infos["final_info"]["episode"]["r"][i], global_step
                )

        real_next_obs = next_obs.copy()
        for idx, trunc in enumerate(truncations):
            if trunc:
                real_next_obs[idx] = infos["final_obs"][idx]
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        obs = next_obs

        step = global_step * cfg.num_envs
        if step > cfg.learning_starts and global_step % max(cfg.train_frequency // cfg.num_envs, 1) == 0:
            data_obs, data_actions, data_next_obs, data_dones, data_rewards = rb.sample(
                cfg.batch_size, device
            )
            with torch.no_grad():
                target_max, _ = target_network(data_next_obs).squeeze(-1).max(dim=1)
                td_target = data_rewards.flatten() + cfg.gamma * target_max * (1 - data_dones.flatten())
            old_val = q_network(data_obs).squeeze(-1).gather(1, data_actions).squeeze()
            loss = F.mse_loss(td_target, old_val)
            if global_step % 100 == 0:
                writer.add_scalar("losses/td_loss", loss, step)
                writer.add_scalar("losses/q_values", old_val.mean().item(), step)
                writer.add_scalar("charts/SPS", int(step / (time.time() - start_time)), step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        if global_step % max(cfg.target_update_period // cfg.num_envs, 1) == 0:
            for target_param, q_param in zip(target_network.parameters(), q_network.parameters()):
                target_param.data.copy_(q_param.data)

    wall = time.time() - start_time
    envs.close()
    writer.close()
    return {"sps": n_iters * cfg.num_envs / wall, "wall_s": wall}
