"""GRPO (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, Sec. 4.1, Eq. 3) as trl implements it.

Advantages (outcome supervision, Sec. 4.1.2): within each prompt's group of n samples,

    A_i = (r_i - mean(r)) / (std(r) + eps)

with Bessel's std (``torch.std``; trl's ``nanstd``) and eps = 1e-4 (trl's constant). ``scale="none"``
drops the division (Dr. GRPO), ``scale="batch"`` uses the batch std (trl's ``scale_rewards``).

Per-token clipped surrogate (PPO's, with the sequence advantage on every token), ratio
rho_t = exp(log pi_theta - log pi_old):

    l_t = -min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A) + beta * KL_t
    KL_t = exp(log pi_ref - log pi_theta) - (log pi_ref - log pi_theta) - 1       (k3, Eq. 4)
           (times rho_t when ``kl_correction``: trl 1.16's default ``use_bias_correction_kl``,
           which makes the off-policy KL gradient unbiased; DeepSeek-V3.2)

Token aggregation (``loss_type``; trl's names, installed trl 1.16 default "dapo"):
    "dapo"     sum of l_t over all response tokens / number of response tokens in the whole
               generation batch (``num_items``; defaults to this batch's count)
    "bnpo"     sum over tokens / this batch's token count
    "grpo"     per-sequence mean over its tokens, then mean over sequences (the paper's Eq. 3)
    "dr_grpo"  sum over tokens / (B * max_completion_length)
At beta = 0 (trl's default, and the PACS paper's GRPO baseline: ``use_kl_loss=False``) no
reference model is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_TYPES = ("dapo", "bnpo", "grpo", "dr_grpo")


@dataclass(frozen=True)
class GRPOConfig:
    """epsilon / epsilon_high: lower / upper clip range of the ratio (epsilon_high None: symmetric).
    beta: k3 KL coefficient (0: off). kl_correction: multiply the KL by the ratio (trl's default).
    loss_type: token aggregation (see module docstring).
    scale: "group" | "batch" | "none" advantage scaling. adv_eps: added to the std."""

    epsilon: float = 0.2
    epsilon_high: float | None = None
    beta: float = 0.0
    kl_correction: bool = True
    loss_type: str = "dapo"
    scale: str = "group"
    adv_eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.scale not in ("group", "batch", "none"):
            raise ValueError(f"scale must be 'group', 'batch' or 'none', got {self.scale!r}")
        if self.epsilon < 0 or self.beta < 0:
            raise ValueError("epsilon and beta must be >= 0")


def group_advantages(
    rewards: torch.Tensor, n: int, *, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """(B,) advantages from (B,) rewards laid out as consecutive groups of n (row g*n + j)."""
    if rewards.dim() != 1 or rewards.numel() % n:
        raise ValueError(f"rewards must be 1-D with a multiple of n={n} entries, got {tuple(rewards.shape)}")
    if n < 2:
        raise ValueError("group advantages need n >= 2 samples per prompt")
    r = rewards.float().view(-1, n)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (
            r.std(dim=1, keepdim=True) + eps
        )  # torch.std is Bessel-corrected, as trl's nanstd
    elif scale == "batch":
        centred = centred / (rewards.float().std() + eps)
    elif scale != "none":
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centred.reshape(-1)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: GRPOConfig = GRPOConfig(),
    *,
    ref_logprobs: torch.Tensor | None = None,
    num_items: float | torch.Tensor | None = None,
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO loss of one (mini-)batch and a few statistics (clip fraction, KL, ratio).

    logprobs / old_logprobs / ref_logprobs / response_mask: (B, T), aligned per token;
    advantages: (B,). ``num_items``: the token count of the whole generation batch for "dapo".
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != response_mask.shape:
        raise ValueError("logprobs, old_logprobs and response_mask must have the same shape")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(
            f"advantages must be (B,)={tuple(logprobs.shape[:1])}, got {tuple(advantages.shape)}"
        )
    mask = response_mask.to(logprobs.dtype)
    eps_high = cfg.epsilon if cfg.epsilon_high is None else cfg.epsilon_high
    adv = advantages.to(logprobs.dtype).unsqueeze(1)
    # masked positions get ratio 1 (their log-probs are 0 or garbage); they are masked out below anyway
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - cfg.epsilon, 1 + eps_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    stats: dict[str, float] = {}
    if cfg.beta != 0.0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs")
        d = (ref_logprobs - logprobs) * mask
        kl = torch.exp(d) - d - 1  # k3 estimator of KL(pi_theta || pi_ref), Schulman (2020)
        stats["kl"] = float((kl.detach() * mask).sum() / mask.sum().clamp(min=1.0))
        if cfg.kl_correction:
            kl = kl * ratio
        per_token = per_token + cfg.beta * kl
    n_tok = mask.sum().clamp(min=1.0)
    if cfg.loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif cfg.loss_type == "bnpo":
        loss = (per_token * mask).sum() / n_tok
    elif cfg.loss_type == "dapo":
        denom = n_tok if num_items is None else torch.as_tensor(num_items, dtype=mask.dtype).clamp(min=1.0)
        loss = (per_token * mask).sum() / denom
    else:  # dr_grpo
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
    with torch.no_grad():
        is_clipped = ((ratio < 1 - cfg.epsilon) & (adv < 0)) | ((ratio > 1 + eps_high) & (adv > 0))
        stats["clip_frac"] = float((is_clipped.float() * mask).sum() / n_tok)
        stats["ratio_mean"] = float((ratio * mask).sum() / n_tok)
    return loss, stats
