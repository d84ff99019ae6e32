"""A ground-truth test of the paper's mechanism: value learning from noisy targets (Sec. 5, "noisy targets").

The paper attributes part of HL-Gauss's advantage to robustness to noisy targets. Here that is tested
where the truth is known: a random finite MDP, Q* from value iteration, a fixed offline dataset whose
rewards carry heavy-tailed (Student-t) noise, and fitted Q-iteration (TD with a periodically copied
target network) with each of the five losses. The metric is RMSE(Q_hat - Q*) over all (s, a).
This is a mechanism test in the paper's spirit, not a number from the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from hlgauss_rl.losses import LOSS_NAMES, make_loss


@dataclass
class MDPConfig:
    """The generated MDP, its dataset, and the fitted Q-iteration run (identical for every loss)."""

    n_states: int = 50
    n_actions: int = 4
    gamma: float = 0.9
    branching: int = 5  # next states reachable from each (s, a), with Dirichlet(1) probabilities
    samples_per_pair: int = 20  # transitions per (s, a) in the fixed offline dataset
    noise_scale: float = 1.0  # reward noise = noise_scale * Student-t(noise_df); 0 = noise-free control
    noise_df: float = 2.0  # nu = 2: finite mean, infinite variance (heavy-tailed)
    hidden: int = 64  # one hidden layer on one-hot state features
    num_bins: int = 51  # m for two-hot / C51 / HL-Gauss
    sigma_ratio: float = 0.75  # HL-Gauss sigma / bin width (the paper's value)
    support_margin: float = 1.0  # categorical support = [min Q* - margin, max Q* + margin]
    lr: float = 1e-2  # Adam, the same for every loss
    iterations: int = 50  # fitted-Q iterations (target-network copies); gamma^50 = 0.5%
    steps_per_iteration: int = 25  # full-batch Adam steps on each iteration's frozen targets
    eval_every: int = 5  # iterations between RMSE evaluations for the learning curve
    losses: tuple[str, ...] = (*LOSS_NAMES, "mse_clip")  # the five losses and the clipping ablation


def make_random_mdp(cfg: MDPConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P (S, A, S) with `branching` random successors per (s, a); mean rewards R (S, A) ~ U[-1, 1]."""
    S, A = cfg.n_states, cfg.n_actions
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            succ = rng.choice(S, size=cfg.branching, replace=False)
            P[s, a, succ] = rng.dirichlet(np.ones(cfg.branching))
    R = rng.uniform(-1.0, 1.0, size=(S, A))
    return P, R


def value_iteration(P: np.ndarray, R: np.ndarray, gamma: float, tol: float = 1e-12) -> np.ndarray:
    """Q* as the fixed point of Q = R + gamma * P max_a' Q (a gamma-contraction, so it converges)."""
    Q = np.zeros_like(R)
    for _ in range(100_000):
        Q_new = R + gamma * P @ Q.max(axis=1)
        if np.abs(Q_new - Q).max() < tol:
            return Q_new
        Q = Q_new
    raise RuntimeError("value iteration did not converge")


def sample_dataset(P, R, cfg: MDPConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`samples_per_pair` transitions (s, a, r, s') for every (s, a); r = R(s, a) + scale * t_nu."""
    S, A = R.shape
    s = np.repeat(np.arange(S), A * cfg.samples_per_pair)
    a = np.tile(np.repeat(np.arange(A), cfg.samples_per_pair), S)
    cdf = P[s, a].cumsum(axis=1)
    s_next = (rng.random(len(s))[:, None] > cdf).sum(axis=1).clip(max=S - 1)
    noise = cfg.noise_scale * rng.standard_t(cfg.noise_df, size=len(s)) if cfg.noise_scale > 0 else 0.0
    return {"s": s, "a": a, "r": R[s, a] + noise, "s_next": s_next}


def fitted_q_iteration(loss_name: str, data, q_star: np.ndarray, cfg: MDPConfig, seed: int) -> dict:
    """Train one Q-network on the fixed dataset with `loss_name`; RMSE to Q* along the way and at the end."""
    S, A = q_star.shape
    v_min, v_max = float(q_star.min()) - cfg.support_margin, float(q_star.max()) + cfg.support_margin
    loss_fn = make_loss(loss_name, v_min, v_max, cfg.num_bins, cfg.sigma_ratio)
    k = loss_fn.n_outputs

    def make_net():
        torch.manual_seed(seed)  # the same initial weights for every loss with the same output size
        return nn.Sequential(nn.Linear(S, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, A * k))

    q_net = make_net()
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    # One-hot state features: the network only ever sees the S distinct inputs, so it is evaluated once
    # on all of them and indexed per transition (the same gradients as a batch of all transitions).
    states = torch.eye(S)
    s, a, s_next = (torch.as_tensor(data[key]) for key in ("s", "a", "s_next"))
    r = torch.as_tensor(data["r"], dtype=torch.float32)
    no_done = torch.zeros(len(s))  # a continuing MDP: no terminal states
    q_true = torch.as_tensor(q_star, dtype=torch.float32)

    def rmse() -> float:
        with torch.no_grad():
            q_hat = loss_fn.q_values(q_net(states).view(S, A, k))
        return float((q_hat - q_true).pow(2).mean().sqrt())

    curve = [(0, rmse())]
    for it in range(1, cfg.iterations + 1):
        # Fitted Q-iteration (Ernst et al. 2005): freeze the current network as the target network,
        # compute every transition's TD target once, then regress/classify onto them.
        with torch.no_grad():
            target = loss_fn.td_target(q_net(states).view(S, A, k)[s_next], r, no_done, cfg.gamma)
            target = loss_fn.prepare(target)  # HL-Gauss / two-hot probabilities, computed once
            idx_s, idx_a = s, a
            if target.ndim == 2:
                # Cross-entropy is linear in the target distribution and every (s, a) has the same number
                # of transitions, so the mean CE over the transitions equals the mean over (s, a) pairs of
                # the CE against the pair's mean target distribution: the same loss and gradients, 20x cheaper.
                pair = s * A + a
                target = torch.zeros(S * A, k).index_add_(0, pair, target) / cfg.samples_per_pair
                idx_s, idx_a = torch.arange(S * A) // A, torch.arange(S * A) % A
        for _ in range(cfg.steps_per_iteration):
            out_taken = q_net(states).view(S, A, k)[idx_s, idx_a]
            loss = loss_fn.loss(out_taken, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if it % cfg.eval_every == 0:
            curve.append((it, rmse()))
    return {"rmse": curve[-1][1] if curve[-1][0] == cfg.iterations else rmse(), "curve": curve}


def run_mdp_study(cfg: MDPConfig, seed: int, log=None) -> dict:
    """One seed: one MDP and dataset (drawn from `seed`), every loss trained on the same data."""
    rng = np.random.default_rng(seed)
    P, R = make_random_mdp(cfg, rng)
    q_star = value_iteration(P, R, cfg.gamma)
    data = sample_dataset(P, R, cfg, rng)
    out: dict = {
        "q_star_min": float(q_star.min()),
        "q_star_max": float(q_star.max()),
        "reward_noise_abs_max": float(np.abs(data["r"] - R[data["s"], data["a"]]).max()),
    }
    curves = {}
    for name in cfg.losses:
        res = fitted_q_iteration(name, data, q_star, cfg, seed)
        out[f"rmse_{name}"] = res["rmse"]
        curves[name] = res["curve"]
        if log is not None:
            log(step=cfg.iterations, loss=name, rmse=res["rmse"])
    out["curves"] = curves
    out["config"] = asdict(cfg)
    return out
