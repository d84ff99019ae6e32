"""The PACS loss (arXiv 2509.02522, Sec. 3; official ``src/pacs/pacs_core_algos.py``).

RLVR recast as supervised learning: the verifiable outcome R in {0, 1} of each sampled response is
a label, and a score psi parameterised by the policy is fitted to it with a (class-balanced)
binary cross-entropy. For prompt q with n sampled responses y_1..y_n:

    implicit reward  r_i = beta * sum_t [log pi_theta(y_i,t) - log pi_old(y_i,t)]    (reward_method "1")
                     r_i = beta * sum_t log pi_theta(y_i,t) / |y_i|                  (reward_method "2")
    RLOO advantage   psi_i = r_i - 1/(n-1) sum_{j != i} r_j                          (adv "rloo")
    loss             mean_i w_i * BCEWithLogits(psi_i, R_i)

Class-balanced weights (``weight_mode="question"``): inside each group, when both outcomes occur,
w_c = n / (2 * count_c) (sklearn's ``compute_class_weight('balanced')``), else w = 1. The mean runs
over every response of the (mini-)batch, as ``torch.nn.BCEWithLogitsLoss(weight=w)`` does.

At the first update of a rollout pi_theta = pi_old, so r = psi = 0 and, since
d BCE / d psi = sigmoid(psi) - R, the gradient is w_i (0.5 - R_i) grad psi_i / B: correct samples
are pushed up and incorrect ones down, each against the group's leave-one-out mean (the paper's
"recovers the policy gradient" analysis).

One deliberate deviation: the official code sums ``log_prob - old_log_prob`` over the whole padded
response dimension, without ``response_mask``; we multiply by the mask, so padding positions never
enter the score (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ADV_ESTIMATORS = ("rloo", "grpo", "naive")
WEIGHT_MODES = ("question", "only_positive", "only_negative")


@dataclass(frozen=True)
class PACSConfig:
    """beta: scale of the implicit reward (official 1.0; 2.0 in the second script).
    reward_method: "1" (log-ratio sum, default) or "2" (length-normalised log-prob).
    adv_estimator: "rloo" (default), "grpo" ((r - mean)/(std + 1e-6), Bessel std), "naive" (psi = r).
    norm_adv_by_std: for "grpo": divide by the std (official default True).
    use_weight / weight_mode: class weights (official: True / "question")."""

    beta: float = 1.0
    reward_method: str = "1"
    adv_estimator: str = "rloo"
    norm_adv_by_std: bool = True
    use_weight: bool = True
    weight_mode: str = "question"

    def __post_init__(self) -> None:
        if str(self.reward_method) not in ("1", "2"):
            raise ValueError(f"reward_method must be '1' or '2', got {self.reward_method!r}")
        if self.adv_estimator not in ADV_ESTIMATORS:
            raise ValueError(f"adv_estimator must be one of {ADV_ESTIMATORS}, got {self.adv_estimator!r}")
        if self.weight_mode not in WEIGHT_MODES:
            raise ValueError(f"weight_mode must be one of {WEIGHT_MODES}, got {self.weight_mode!r}")


def implicit_reward(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    beta: float = 1.0,
    reward_method: str = "1",
) -> torch.Tensor:
    """(B,) implicit reward r_hat of each response (official ``compute_reward``, masked)."""
    mask = response_mask.to(logprobs.dtype)
    if str(reward_method) == "1":
        return beta * ((logprobs - old_logprobs) * mask).sum(-1)
    if str(reward_method) == "2":
        return beta * (logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    raise ValueError(f"reward_method must be '1' or '2', got {reward_method!r}")


def _groups(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.dim() != 1 or x.numel() % n:
        raise ValueError(f"expected a 1-D tensor with a multiple of n={n} entries, got {tuple(x.shape)}")
    return x.view(-1, n)


def rloo_advantage(reward: torch.Tensor, n: int) -> torch.Tensor:
    """psi_i = r_i - mean_{j != i} r_j within each group of n (official ``compute_rloo_outcome_advantage``)."""
    if n < 2:
        raise ValueError("RLOO needs n >= 2 samples per prompt")
    r = _groups(reward, n)
    loo_mean = (r.sum(dim=1, keepdim=True) - r) / (n - 1)
    return (r - loo_mean).reshape(-1)


def grpo_advantage(
    reward: torch.Tensor, n: int, *, norm_by_std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """(r - mean) / (std + 1e-6) within each group, Bessel std (official ``compute_grpo_outcome_advantage``)."""
    r = _groups(reward, n)
    adv = r - r.mean(dim=1, keepdim=True)
    if norm_by_std:
        adv = adv / (r.std(dim=1, keepdim=True) + eps)
    return adv.reshape(-1)


def class_weights(labels: torch.Tensor, n: int, mode: str = "question") -> torch.Tensor:
    """(B,) BCE weights (official ``compute_weight``).

    "question": per group with both classes, w_c = n / (n_classes * count_c) with 2 classes, i.e.
    sklearn's 'balanced' weights; a group with one class keeps w = 1. "only_positive" /
    "only_negative": w = 1 on the label-1 / label-0 responses, 0 on the others.
    """
    y = _groups(labels.float(), n)
    if mode == "question":
        pos = y.sum(dim=1, keepdim=True)
        neg = n - pos
        both = (pos > 0) & (neg > 0)
        w = torch.where(y > 0.5, n / (2 * pos.clamp(min=1)), n / (2 * neg.clamp(min=1)))
        return torch.where(both, w, torch.ones_like(w)).reshape(-1)
    if mode == "only_positive":
        return (y > 0.5).float().reshape(-1)
    if mode == "only_negative":
        return (y <= 0.5).float().reshape(-1)
    raise ValueError(f"weight_mode must be one of {WEIGHT_MODES}, got {mode!r}")


def pacs_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    outcome: torch.Tensor,
    n: int,
    cfg: PACSConfig = PACSConfig(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """The PACS loss of a (mini-)batch of whole groups (rows g*n..g*n+n-1 share a prompt).

    logprobs (with grad), old_logprobs, response_mask: (B, T) aligned per token; outcome: (B,)
    verifiable rewards in {0, 1} (the labels). Returns the loss and the mean |psi| / weight stats.
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != response_mask.shape:
        raise ValueError("logprobs, old_logprobs and response_mask must have the same shape")
    if outcome.shape != logprobs.shape[:1]:
        raise ValueError(f"outcome must be (B,)={tuple(logprobs.shape[:1])}, got {tuple(outcome.shape)}")
    labels = outcome.to(logprobs.dtype)
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("PACS labels (verifiable rewards) must be 0 or 1")
    reward = implicit_reward(
        logprobs, old_logprobs, response_mask, beta=cfg.beta, reward_method=cfg.reward_method
    )
    if cfg.adv_estimator == "rloo":
        psi = rloo_advantage(reward, n)
    elif cfg.adv_estimator == "grpo":
        psi = grpo_advantage(reward, n, norm_by_std=cfg.norm_adv_by_std)
    else:
        psi = reward
    weight = class_weights(labels, n, cfg.weight_mode) if cfg.use_weight else None
    # BCEWithLogitsLoss(weight=w)(psi, R) = mean_i w_i * [softplus(psi_i) - R_i psi_i]
    loss = F.binary_cross_entropy_with_logits(psi, labels, weight=weight, reduction="mean")
    stats = {"psi_abs": float(psi.detach().abs().mean()), "reward_hat": float(reward.detach().mean())}
    return loss, stats
