"""PPO-lite for sequence-level rewards: RLHF-style PPO (Ziegler et al. 2019, arXiv 1909.08593,
Sec. 2; Stiennon et al. 2020, Eq. 1) with the learned critic replaced by a Monte-Carlo baseline.

KL-penalised return (the KL to the frozen reference policy enters the reward, as in RLHF PPO):

    R_i = r_i - beta * sum_t (log pi_old(y_t) - log pi_ref(y_t))          over response tokens t

Advantage (value baseline = the batch mean of R, or the mean R of the prompt's own samples as a
Monte-Carlo stand-in for the critic's V(prompt)), then optionally whitened exactly as trl's PPOTrainer
whitens its advantages, ``masked_whiten(advantages, mask)`` with shift_mean=True (trl/core.py; called in
trl/trainer/ppo_trainer.py after GAE): shift by the mean of the ADVANTAGES and divide by their own
Bessel-corrected std, with eps inside the square root:

    A_i = R_i - b_i,   b_i = mean_j R_j  or  mean of R over i's prompt group
    A_i <- (A_i - mean_j A_j) / sqrt(var_j(A_j) + eps),   var with the 1/(B-1) correction, eps = 1e-8

(Before this fix the centred returns were divided by std_j R_j + eps, the std of the RETURNS: the same
thing with the batch-mean baseline up to eps, but with the group baseline a per-batch factor
std(A)/std(R) < 1 smaller.) trl whitens over response TOKENS (each token its own entry, so a sequence
weighs by its length); here each sequence is one entry. The two agree when the responses have equal
lengths.

Clipped surrogate (Schulman et al. 2017, Eq. 7) on every response token, with the sequence
advantage, ratio rho_t = exp(log pi_theta - log pi_old), token-mean over the batch:

    L = - sum_{i,t} min(rho_t A_i, clip(rho_t, 1 - eps, 1 + eps) A_i) / #tokens

Differences from full PPO (documented by callers): no learned critic and no GAE (with gamma =
lambda = 1 and a constant value function, GAE's token advantage is the return minus the baseline;
we use the whole-sequence return on every token, i.e. the KL is not credited per position).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xentlab.data.cache import source_digest

# This file's source as imported (a part of the resume keys of the packages that train with it:
# securefix-rl; xentlab.data.cache, "The key rule").
SOURCE_DIGEST = source_digest(__file__)


@dataclass(frozen=True)
class PPOConfig:
    """clip: ratio clip range epsilon. beta: KL coefficient in the reward (0: no reference).
    whiten: whiten the advantages by their own batch mean and std (trl's ``masked_whiten``).
    eps: added to the advantages' variance under the square root (trl: 1e-8)."""

    clip: float = 0.2
    beta: float = 0.05
    whiten: bool = True
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.beta < 0 or self.eps <= 0:
            raise ValueError("clip and eps must be > 0, beta >= 0")


def kl_penalised_returns(
    rewards: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    response_mask: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, per-sequence KL estimate) from (B,) rewards and (B, T) log-probs of the sampled tokens.

    The KL estimate is the sampled sum of log pi_old - log pi_ref over the response (the k1
    estimator of KL(pi_old || pi_ref) of that sequence).
    """
    if rewards.dim() != 1 or rewards.shape[0] != old_logprobs.shape[0]:
        raise ValueError(f"rewards must be (B,)={old_logprobs.shape[:1]}, got {tuple(rewards.shape)}")
    mask = response_mask.to(old_logprobs.dtype)
    if ref_logprobs is None:
        if beta != 0.0:
            raise ValueError("beta > 0 needs ref_logprobs")
        kl = torch.zeros_like(rewards, dtype=old_logprobs.dtype)
    else:
        if ref_logprobs.shape != old_logprobs.shape:
            raise ValueError("ref_logprobs and old_logprobs must have the same shape")
        kl = ((old_logprobs - ref_logprobs) * mask).sum(-1)
    return rewards.to(old_logprobs.dtype) - beta * kl, kl


def ppo_advantages(
    returns: torch.Tensor, *, whiten: bool = True, eps: float = 1e-8, group_size: int | None = None
) -> torch.Tensor:
    """(B,) advantages: returns minus a value baseline, optionally whitened as trl's PPOTrainer does
    (``trl.core.masked_whiten(advantages, mask)``, shift_mean=True, all-ones mask over the B sequences):

        A <- (A - mean A) / sqrt(var A + eps),   var A = sum_i (A_i - mean A)^2 / (B - 1)

    i.e. the statistics of the advantages themselves (not of the returns), the unbiased variance
    (trl's ``masked_var(unbiased=True)``), eps added to the variance.

    Baseline: the batch mean (``group_size`` None), or, with rows laid out as consecutive groups of
    ``group_size`` samples of one prompt, the mean return of the prompt's group: a Monte-Carlo
    estimate of the prompt-conditioned value V(x) that PPO's critic learns."""
    if returns.dim() != 1 or returns.numel() < 2:
        raise ValueError("returns must be 1-D with at least 2 entries (a batch-mean baseline)")
    if group_size is None:
        a = returns - returns.mean()
    else:
        if group_size < 2 or returns.numel() % group_size:
            raise ValueError(f"group_size must be >= 2 and divide {returns.numel()}, got {group_size}")
        g = returns.view(-1, group_size)
        a = (g - g.mean(dim=1, keepdim=True)).reshape(-1)
    if whiten:
        mean = a.mean()  # 0 up to rounding after either baseline; trl subtracts it (shift_mean=True)
        var = (a - mean).pow(2).sum() / (a.numel() - 1)  # Bessel correction, as trl's masked_var
        a = (a - mean) * torch.rsqrt(var + eps)
    return a


def ppo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: PPOConfig = PPOConfig(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate of one (mini-)batch, token-mean, and statistics (clip fraction, ratio)."""
    if logprobs.shape != old_logprobs.shape or logprobs.shape != response_mask.shape:
        raise ValueError("logprobs, old_logprobs and response_mask must have the same shape")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(
            f"advantages must be (B,)={tuple(logprobs.shape[:1])}, got {tuple(advantages.shape)}"
        )
    mask = response_mask.to(logprobs.dtype)
    adv = advantages.to(logprobs.dtype).unsqueeze(1)
    ratio = torch.exp((logprobs - old_logprobs) * mask)  # 1 on masked positions
    clipped = torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip)
    per_token = -torch.min(ratio * adv, clipped * adv)
    n_tok = mask.sum().clamp(min=1.0)
    loss = (per_token * mask).sum() / n_tok
    with torch.no_grad():
        is_clipped = ((ratio < 1 - cfg.clip) & (adv < 0)) | ((ratio > 1 + cfg.clip) & (adv > 0))
        stats = {
            "clip_frac": float((is_clipped.to(mask.dtype) * mask).sum() / n_tok),
            "ratio_mean": float((ratio * mask).sum() / n_tok),
        }
    return loss, stats
