"""The (experiment, seed) units that reproduce.py declares; each returns metrics and artifacts.

Top-level functions so that the runner's worker processes can pickle them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import fields

import numpy as np

from hlgauss_rl.atari_scores import human_normalised
from hlgauss_rl.baseline_cleanrl import run_cleanrl_dqn
from hlgauss_rl.dqn import DQNConfig, evaluate, train
from hlgauss_rl.mdp import MDPConfig, run_mdp_study


def _dqn_config(cfg: dict, seed: int) -> DQNConfig:
    known = {f.name for f in fields(DQNConfig)}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"unknown DQN config keys {sorted(unknown)}")
    return DQNConfig(**{**cfg, "seed": seed})


def mdp_unit(cfg: dict, seed: int, ctx) -> dict:
    """(a) Ground-truth MDP: RMSE(Q_hat - Q*) of every loss, on one generated MDP and dataset per seed."""
    mdp_cfg = MDPConfig(**{k: tuple(v) if k == "losses" else v for k, v in cfg.items()})
    out = run_mdp_study(mdp_cfg, seed, log=ctx.log)
    out.pop("config")
    return out


def minatar_unit(cfg: dict, seed: int, ctx) -> dict:
    """(b) One DQN run on MinAtar with one loss; final evaluation return and the learning curve."""
    dqn_cfg = _dqn_config(cfg, seed)
    out = train(dqn_cfg, ctx.unit_dir, log=ctx.log, device=ctx.device)
    extra = {}
    if np.isfinite(out["train_return_last10pct"]):  # undefined when no training episode ended (smoke)
        extra["train_return_last10pct"] = out["train_return_last10pct"]
    return {
        "eval_return": out["eval_return"],
        **extra,
        "sps": out["sps"],
        "updates": out["updates"],
        "curve": out["curve"],
        "eval_returns": out["eval_returns"],
    }


def random_policy_unit(cfg: dict, seed: int, ctx) -> dict:
    """The uniform random policy's return on the evaluation protocol of the agents (epsilon = 1)."""
    dqn_cfg = _dqn_config(cfg, seed)
    returns = evaluate(None, None, dqn_cfg, cfg.get("eval_episodes", 10), 1.0, 10_000 + seed * 100, "cpu")
    return {"return": float(np.mean(returns)), "returns": returns}


def sps_unit(cfg: dict, seed: int, ctx) -> dict:
    """Environment steps per second: our agent (MSE head) against the plain CleanRL-style DQN, with the
    same network, envs and hyperparameters, run back to back in the ABBA order (ours, cleanrl, cleanrl,
    ours) so that a drift in machine load affects both alike."""
    dqn_cfg = _dqn_config({**cfg, "loss": "mse", "eval_episodes": 0}, seed)
    sps = {"ours": [], "cleanrl": []}
    for i, who in enumerate(("ours", "cleanrl", "cleanrl", "ours")):
        run_dir = ctx.unit_dir / f"sps_{i}"
        if who == "ours":
            sps[who].append(train(dqn_cfg, run_dir, device=ctx.device)["sps"])
        else:
            sps[who].append(run_cleanrl_dqn(dqn_cfg, run_dir, device=ctx.device)["sps"])
        shutil.rmtree(run_dir, ignore_errors=True)  # TensorBoard files of a timing run are not results
    ours, base = float(np.mean(sps["ours"])), float(np.mean(sps["cleanrl"]))
    ctx.log(step=None, sps_ours=ours, sps_cleanrl=base)
    return {"sps_ours": ours, "sps_cleanrl": base, "sps_ratio": ours / base}


def atari_unit(cfg: dict, seed: int, ctx) -> dict:
    """--scale full: one Dopamine-style DQN run on one Atari game; the human-normalised final score."""
    cfg = dict(cfg)
    game = cfg.pop("game")
    dqn_cfg = _dqn_config({**cfg, "env_id": f"ALE/{game}-v5"}, seed)
    t0 = time.perf_counter()
    out = train(dqn_cfg, ctx.unit_dir, log=ctx.log, device=ctx.device)
    return {
        "eval_return": out["eval_return"],
        "hns": human_normalised(out["eval_return"], game),
        "sps": out["sps"],
        "wall_s": time.perf_counter() - t0,
        "curve": out["curve"],
    }
