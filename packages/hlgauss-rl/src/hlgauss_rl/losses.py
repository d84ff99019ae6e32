"""The five value losses compared in the paper (Sec. 3 and 4): MSE, Huber, two-hot, C51, HL-Gauss.

Every loss is a small object with one interface, so one DQN agent can use any of them:

* ``n_outputs``: outputs per action of the Q-network's last layer (1 for regression, m otherwise);
* ``q_values(out)``: (..., n_outputs) -> (...), the scalar Q used for acting and bootstrapping;
* ``td_target(next_out, rewards, dones, gamma)``: the Bellman target from the TARGET network's outputs
  at s' (B, A, n_outputs), without gradient. A scalar (B,) for MSE/Huber/two-hot/HL-Gauss:
  y = r + gamma * (1 - done) * max_a' Q_target(s', a'). A distribution (B, m) for C51;
* ``loss(out_taken, target)``: the mean loss over the batch for the taken action's outputs (B, n_outputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hlgauss_rl.targets import (
    DEFAULT_SIGMA_RATIO,
    atoms,
    bin_centres,
    c51_project,
    hl_gauss_edges,
    hl_gauss_probs,
    two_hot_probs,
)

LOSS_NAMES = ("mse", "huber", "two_hot", "c51", "hl_gauss")


class ValueLoss:
    name = "base"
    n_outputs = 1

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def td_target(self, next_out: torch.Tensor, rewards, dones, gamma: float) -> torch.Tensor:
        """Scalar DQN target y = r + gamma (1 - done) max_a' Q_target(s', a') (Mnih et al. 2015)."""
        next_q = self.q_values(next_out).max(dim=-1).values
        return rewards + gamma * (1.0 - dones) * next_q

    def to(self, device) -> ValueLoss:
        """Move the support tensors (if any) to `device`; returns self."""
        for attr in ("values", "edges"):
            if hasattr(self, attr):
                setattr(self, attr, getattr(self, attr).to(device))
        return self

    def prepare(self, target: torch.Tensor) -> torch.Tensor:
        """What `loss` compares against; categorical losses turn a scalar target into probabilities once."""
        return target

    def loss(self, out_taken: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MSELoss(ValueLoss):
    """Regression: (Q(s, a) - y)^2, the paper's "MSE" baseline (F.mse_loss as in cleanrl's dqn.py)."""

    name = "mse"

    def q_values(self, out):
        return out.squeeze(-1)

    def loss(self, out_taken, target):
        return F.mse_loss(out_taken.squeeze(-1), target)


class HuberLoss(MSELoss):
    """Huber with delta = 1 (Dopamine's DQN default; F.smooth_l1_loss with beta = 1 is the same)."""

    name = "huber"

    def loss(self, out_taken, target):
        return F.huber_loss(out_taken.squeeze(-1), target, delta=1.0)


class ClippedMSELoss(MSELoss):
    """An ablation, not one of the paper's losses: MSE on targets clipped to the categorical support.

    The categorical losses clip every target to [v_min, v_max]; this separates the effect of that
    clipping from the effect of the cross-entropy loss itself (cf. the paper's Sec. 5 ablations)."""

    name = "mse_clip"

    def __init__(self, v_min: float, v_max: float):
        self.v_min, self.v_max = v_min, v_max

    def prepare(self, target):
        return target.clamp(self.v_min, self.v_max)

    def loss(self, out_taken, target):
        return F.mse_loss(out_taken.squeeze(-1), target.clamp(self.v_min, self.v_max))


class _Categorical(ValueLoss):
    """Shared part of the cross-entropy losses: softmax over m logits, Q = sum_i p_i * value_i."""

    values: torch.Tensor  # the location of each class (bin centres or atoms)

    def __init__(self, num_bins: int):
        self.n_outputs = num_bins

    def q_values(self, out):
        return (out.softmax(dim=-1) * self.values.to(out)).sum(dim=-1)

    def target_probs(self, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, target):
        return target if target.ndim == 2 else self.target_probs(target)

    def loss(self, out_taken, target):
        """Cross-entropy -sum_i p_i log softmax(logits)_i (Sec. 3.1); target: scalars (B,) or probs (B, m)."""
        probs = target if target.ndim == out_taken.ndim else self.target_probs(target)
        return -(probs * out_taken.log_softmax(dim=-1)).sum(dim=-1).mean()


class HLGaussLoss(_Categorical):
    """HL-Gauss (Sec. 3.1, Appendix A): Gaussian targets with sigma = ratio * bin width on m bins."""

    name = "hl_gauss"

    def __init__(
        self, v_min: float, v_max: float, num_bins: int = 51, sigma_ratio: float = DEFAULT_SIGMA_RATIO
    ):
        super().__init__(num_bins)
        if not sigma_ratio > 0:
            raise ValueError(f"sigma_ratio must be > 0, got {sigma_ratio}")
        self.edges = hl_gauss_edges(v_min, v_max, num_bins)
        self.values = bin_centres(self.edges)
        self.sigma = sigma_ratio * (v_max - v_min) / num_bins

    def target_probs(self, target):
        return hl_gauss_probs(target, self.edges, self.sigma)


class TwoHotLoss(_Categorical):
    """Two-hot (Sec. 3.1): the scalar target split between its two neighbouring atoms."""

    name = "two_hot"

    def __init__(self, v_min: float, v_max: float, num_bins: int = 51):
        super().__init__(num_bins)
        self.values = atoms(v_min, v_max, num_bins)

    def target_probs(self, target):
        return two_hot_probs(target, self.values)


class C51Loss(_Categorical):
    """C51 (Bellemare et al. 2017): the projected distributional target, cross-entropy on the atoms."""

    name = "c51"

    def __init__(self, v_min: float, v_max: float, num_bins: int = 51):
        super().__init__(num_bins)
        self.values = atoms(v_min, v_max, num_bins)

    @torch.no_grad()
    def td_target(self, next_out, rewards, dones, gamma):
        # a* = argmax_a' Q_target(s', a') with Q the mean of the target network's distribution (Alg. 1).
        next_probs = next_out.softmax(dim=-1)  # (B, A, m)
        best = (next_probs * self.values.to(next_out)).sum(-1).argmax(dim=-1)
        p_star = next_probs[torch.arange(next_out.shape[0], device=next_out.device), best]
        return c51_project(p_star, rewards, dones, gamma, self.values)

    def target_probs(self, target):
        # A scalar target is a Dirac; its projection onto the atoms is the two-hot distribution.
        return two_hot_probs(target, self.values)


def make_loss(
    name: str, v_min: float, v_max: float, num_bins: int = 51, sigma_ratio: float = DEFAULT_SIGMA_RATIO
):
    """Build one of LOSS_NAMES (or the "mse_clip" ablation). Regression losses ignore num_bins."""
    if name == "mse":
        return MSELoss()
    if name == "huber":
        return HuberLoss()
    if name == "mse_clip":
        return ClippedMSELoss(v_min, v_max)
    if name == "two_hot":
        return TwoHotLoss(v_min, v_max, num_bins)
    if name == "c51":
        return C51Loss(v_min, v_max, num_bins)
    if name == "hl_gauss":
        return HLGaussLoss(v_min, v_max, num_bins, sigma_ratio)
    raise ValueError(f"unknown loss {name!r}; choose one of {LOSS_NAMES} or 'mse_clip'")
