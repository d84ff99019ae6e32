"""One DQN agent whose value head is any of the five losses (in the style of cleanrl's dqn_atari.py).

Read `train` top to bottom: setup, the interaction loop (act epsilon-greedily, store, learn, copy the
target network, log, checkpoint), then evaluation. The loss object (hlgauss_rl.losses) decides the
network's output size, how Q is read from the outputs, the TD target and the loss; nothing else
changes between MSE, Huber, two-hot, C51 and HL-Gauss.
"""

from __future__ import annotations

import pickle
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from hlgauss_rl.envs import finished_episodes, make_vector_env
from hlgauss_rl.losses import make_loss
from hlgauss_rl.networks import make_network
from hlgauss_rl.replay import ReplayBuffer


@dataclass
class DQNConfig:
    """Every hyperparameter of a run. The defaults are the MinAtar DQN of Young & Tian (2019) with Adam,
    C51's categorical support (m = 51 on [-10, 10]; the paper's own Atari support could not be checked) and
    the paper's HL-Gauss sigma = 0.75 bin width."""

    env_id: str = "MinAtar/Breakout-v1"
    """gymnasium id: MinAtar/<Game>-v1 (cpu scale) or ALE/<Game>-v5 (full scale)"""
    loss: str = "hl_gauss"
    """value loss: mse | huber | two_hot | c51 | hl_gauss"""
    seed: int = 0
    total_steps: int = 100_000
    """environment steps, summed over the vectorised envs"""
    num_envs: int = 4
    """environments stepped together; the acting forward pass is batched over them"""
    network: str = "minatar"
    """minatar (Conv16-FC128) or nature (Mnih et al. 2015 CNN)"""
    width: int = 1
    """width multiplier of every layer (the network-size axis at full scale)"""
    buffer_size: int = 100_000
    """replay capacity in transitions"""
    batch_size: int = 32
    gamma: float = 0.99
    lr: float = 2.5e-4
    adam_eps: float = 3.125e-4
    """Adam epsilon, 0.01 / batch_size as in Dopamine's and cleanrl's C51"""
    max_grad_norm: float | None = None
    """global gradient-norm clip; None = no clipping (Dopamine's DQN does not clip)"""
    learning_starts: int = 5_000
    """environment steps of pure exploration before the first update"""
    train_frequency: int = 4
    """environment steps per gradient update (one update per 4 transitions, as in DQN)"""
    target_update_period: int = 1_000
    """environment steps between copies of the online network into the target network"""
    start_e: float = 1.0
    end_e: float = 0.1
    exploration_steps: int = 20_000
    """environment steps over which epsilon decays linearly from start_e to end_e"""
    exploration_warmup: int = 0
    """environment steps at start_e before the decay begins. 0: cleanrl's linear_schedule, which decays from
    step 0 (the cpu scale). Dopamine's JaxDQNAgent holds epsilon at 1 until min_replay_history (its
    linearly_decaying_epsilon gets warmup_steps = min_replay_history), so --scale full sets it to
    learning_starts"""
    v_min: float = -10.0
    v_max: float = 10.0
    num_bins: int = 51
    sigma_ratio: float = 0.75
    clip_rewards: bool = False
    """clip rewards to [-1, 1] for learning (Atari); returns are always reported unclipped"""
    max_episode_steps: int | None = None
    """time limit in agent steps (None: the environment's own)"""
    eval_episodes: int = 10
    eval_epsilon: float = 0.05
    """epsilon of the evaluation policy (cleanrl's evaluate uses 0.05)"""
    curve_points: int = 20
    """number of step bins of the returned learning curve"""
    log_every: int = 1_000
    """environment steps between TensorBoard / step-log rows"""
    tensorboard: bool = True
    checkpoint_every: int = 0
    """environment steps between checkpoints (0: never); a run restarted in the same run_dir resumes"""
    keep_checkpoint: bool = False
    """keep the last checkpoint after a finished run (it holds the replay buffer: it can be large)"""
    halt_at: int | None = None
    """testing aid: stop (as if interrupted) after this many steps, right after a checkpoint"""


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / max(duration, 1)
    return max(slope * t + start_e, end_e)


def exploration_epsilon(cfg: DQNConfig, step: int) -> float:
    """Training epsilon after `step` environment steps: start_e for the first `exploration_warmup` steps,
    then linear to end_e over `exploration_steps` (Dopamine's linearly_decaying_epsilon when the warm-up is
    its min_replay_history; cleanrl's linear_schedule when it is 0)."""
    return linear_schedule(
        cfg.start_e, cfg.end_e, cfg.exploration_steps, max(step - cfg.exploration_warmup, 0)
    )


def epsilon_greedy(
    q_net, loss_fn, obs: np.ndarray, epsilon: float, rng: np.random.Generator, device
) -> np.ndarray:
    """Per-env epsilon-greedy on Q = loss_fn.q_values(q_net(obs)); skips the forward pass if all explore."""
    n_actions = q_net.n_actions
    explore = rng.random(len(obs)) < epsilon
    actions = rng.integers(0, n_actions, size=len(obs))
    if not explore.all():
        with torch.inference_mode():
            q = loss_fn.q_values(q_net(torch.from_numpy(obs).to(device)))
        actions = np.where(explore, actions, q.argmax(dim=1).cpu().numpy())
    return actions


def evaluate(q_net, loss_fn, cfg: DQNConfig, episodes: int, epsilon: float, seed: int, device) -> list[float]:
    """Undiscounted, unclipped return of `episodes` episodes, one per environment (so that short
    episodes are not over-represented, as they would be if the first finished episodes were kept)."""
    envs = make_vector_env(cfg.env_id, episodes, seed, max_episode_steps=cfg.max_episode_steps)
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=[seed + i for i in range(episodes)])
    returns: dict[int, float] = {}
    while len(returns) < episodes:
        actions = (
            epsilon_greedy(q_net, loss_fn, obs, epsilon, rng, device)
            if q_net is not None
            else (rng.integers(0, envs.single_action_space.n, size=episodes))
        )
        obs, _, _, _, infos = envs.step(actions)
        for env_idx, ret, _ in finished_episodes(infos):
            returns.setdefault(env_idx, ret)
    envs.close()
    return [returns[i] for i in range(episodes)]


def _learning_curve(episodes: list[tuple[int, float]], total_steps: int, points: int) -> list[list[float]]:
    """Mean training-episode return per step bin: [[bin end step, mean return or None], ...]."""
    edges = np.linspace(0, total_steps, points + 1)
    curve = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        rets = [r for s, r in episodes if lo < s <= hi]
        curve.append([int(hi), float(np.mean(rets)) if rets else None])
    return curve


def train(cfg: DQNConfig, run_dir: Path | str, log: Callable[..., None] | None = None, device="cpu") -> dict:
    """Train one agent; returns final evaluation returns, the learning curve and timing."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    ckpt_path = run_dir / "checkpoint.pt"

    # Seeding: python, numpy and torch from cfg.seed; the envs through reset(seed=...).
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    # Environments.
    envs = make_vector_env(
        cfg.env_id,
        cfg.num_envs,
        cfg.seed,
        max_episode_steps=cfg.max_episode_steps,
        clip_rewards=cfg.clip_rewards,
    )
    obs_shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)

    # Loss, online and target networks (same initial weights), optimiser, replay.
    loss_fn = make_loss(cfg.loss, cfg.v_min, cfg.v_max, cfg.num_bins, cfg.sigma_ratio).to(device)
    q_net = make_network(cfg.network, obs_shape, n_actions, loss_fn.n_outputs, cfg.width).to(device)
    target_net = make_network(cfg.network, obs_shape, n_actions, loss_fn.n_outputs, cfg.width).to(device)
    target_net.load_state_dict(q_net.state_dict())
    # fused Adam: one kernel per step instead of ~10 ops per parameter tensor (same update rule).
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr, eps=cfg.adam_eps, fused=True)
    rb = ReplayBuffer(cfg.buffer_size, cfg.num_envs, obs_shape, np.uint8, seed=cfg.seed)

    global_step, n_updates, episodes = 0, 0, []  # episodes: (step, return)
    obs, _ = envs.reset(seed=[cfg.seed * 1000 + i for i in range(cfg.num_envs)])
    if ckpt_path.exists():  # resume an interrupted run exactly where its last checkpoint left it
        ckpt = torch.load(ckpt_path, weights_only=False)  # our own file: it pickles envs and the replay
        if ckpt["config"] != {k: v for k, v in asdict(cfg).items() if k != "halt_at"}:
            raise ValueError(f"{ckpt_path} was written with another config; delete it to start afresh")
        q_net.load_state_dict(ckpt["q_net"])
        target_net.load_state_dict(ckpt["target_net"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rb.load_state_dict(ckpt["replay"])
        envs, obs, rng = pickle.loads(ckpt["envs"]), ckpt["obs"], ckpt["rng"]
        global_step, n_updates, episodes = ckpt["global_step"], ckpt["n_updates"], ckpt["episodes"]
        random.setstate(ckpt["python_rng"])
        torch.set_rng_state(ckpt["torch_rng"])

    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
        writer.add_text(
            "hyperparameters",
            "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in asdict(cfg).items()),
        )

    start_step, start_time, train_time = global_step, time.perf_counter(), 0.0
    last_loss, last_q = float("nan"), float("nan")
    while global_step < cfg.total_steps:
        # Act: epsilon-greedy on the expected value of the head (Q-hat = sum_i p_i z_i for classification).
        epsilon = exploration_epsilon(cfg, global_step)
        actions = epsilon_greedy(q_net, loss_fn, obs, epsilon, rng, device)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        global_step += cfg.num_envs
        for _, ret, _ in finished_episodes(infos):
            episodes.append((global_step, ret))
            if writer:
                writer.add_scalar("charts/episodic_return", ret, global_step)

        # Store (s, a, r, terminated); the replay finds s' in the next row (or in final_obs).
        rb.add(obs, actions, rewards, terminated, truncated, infos.get("final_obs"))
        obs = next_obs  # with SAME_STEP autoreset this is already the next episode's first observation

        # Learn: one update per `train_frequency` environment steps once `learning_starts` have passed.
        t0 = time.perf_counter()
        while (
            global_step > cfg.learning_starts
            and n_updates < (global_step - cfg.learning_starts) // cfg.train_frequency
        ):
            data = rb.sample(cfg.batch_size, device)
            with torch.no_grad():
                target = loss_fn.td_target(
                    target_net(data["next_obs"]), data["rewards"], data["terminated"], cfg.gamma
                )
            out_taken = q_net(data["obs"])[torch.arange(cfg.batch_size, device=device), data["actions"]]
            loss = loss_fn.loss(out_taken, target)
            optimizer.zero_grad()
            loss.backward()
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            n_updates += 1
            if n_updates % 100 == 0:  # .item() synchronises: not every update
                last_loss, last_q = loss.item(), loss_fn.q_values(out_taken.detach()).mean().item()
        train_time += time.perf_counter() - t0

        # Copy the online network into the target network every `target_update_period` steps.
        if (
            global_step // cfg.target_update_period
            != (global_step - cfg.num_envs) // cfg.target_update_period
        ):
            target_net.load_state_dict(q_net.state_dict())

        if global_step // cfg.log_every != (global_step - cfg.num_envs) // cfg.log_every:
            sps = (global_step - start_step) / (time.perf_counter() - start_time)
            recent = [r for _, r in episodes[-20:]]
            row = {
                "td_loss": last_loss,
                "q_values": last_q,
                "epsilon": epsilon,
                "sps": sps,
                "episodic_return": float(np.mean(recent)) if recent else float("nan"),
            }
            if writer:
                for k, v in row.items():
                    writer.add_scalar(
                        ("charts/" if k in ("epsilon", "sps", "episodic_return") else "losses/") + k,
                        v,
                        global_step,
                    )
            if log:
                log(step=global_step, loss=cfg.loss, env=cfg.env_id, **row)

        if (
            cfg.checkpoint_every
            and global_step // cfg.checkpoint_every != (global_step - cfg.num_envs) // cfg.checkpoint_every
        ):
            torch.save(
                {
                    "config": {k: v for k, v in asdict(cfg).items() if k != "halt_at"},
                    "q_net": q_net.state_dict(),
                    "target_net": target_net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "replay": rb.state_dict(),
                    "envs": pickle.dumps(envs),
                    "obs": obs,
                    "rng": rng,
                    "python_rng": random.getstate(),
                    "torch_rng": torch.get_rng_state(),
                    "global_step": global_step,
                    "n_updates": n_updates,
                    "episodes": episodes,
                },
                ckpt_path.with_suffix(".tmp"),
            )
            ckpt_path.with_suffix(".tmp").replace(ckpt_path)  # atomic: never a half-written checkpoint
            if cfg.halt_at is not None and global_step >= cfg.halt_at:
                envs.close()
                if writer:
                    writer.close()
                return {"halted_at": global_step}

    wall = time.perf_counter() - start_time
    envs.close()

    # Evaluation episodes with a near-greedy policy, and the random policy on the same seeds.
    eval_seed = 10_000 + cfg.seed * 100
    eval_returns = []
    if cfg.eval_episodes > 0:
        eval_returns = evaluate(q_net, loss_fn, cfg, cfg.eval_episodes, cfg.eval_epsilon, eval_seed, device)
    if writer:
        if eval_returns:
            writer.add_scalar("eval/mean_return", float(np.mean(eval_returns)), global_step)
        writer.close()
    if ckpt_path.exists() and not cfg.keep_checkpoint:
        ckpt_path.unlink()
    last = [r for _, r in episodes[-max(1, len(episodes) // 10) :]]  # the last 10% of training episodes
    return {
        "eval_return": float(np.mean(eval_returns)) if eval_returns else float("nan"),
        "eval_returns": eval_returns,
        "train_return_last10pct": float(np.mean(last)) if episodes else float("nan"),
        "episodes": len(episodes),
        "param_norm": float(torch.sqrt(sum(p.detach().double().pow(2).sum() for p in q_net.parameters()))),
        "updates": n_updates,
        "sps": (global_step - start_step) / wall,
        "train_time_s": train_time,
        "wall_s": wall,
        "curve": _learning_curve(episodes, cfg.total_steps, cfg.curve_points),
    }
