"""LDR-KL and ALDR-KL (Zhu, Ying & Yang, ICML 2023) and the baselines of the package, device-agnostic.

Facts below are from the official code (Optimization-AI/ICML2023_LDR, ``loss.py``); the code is ours.

LDR-KL (``LDRLoss_V1``; paper Eq. for the KL-regularised label-DRO loss):

    s = softplus(f) / mean_k softplus(f_k)                    (positive scores with mean 1)
    d_k = s_k - s_y + c * 1[k != y]                           (margin c = 0.1)
    l(x, y) = lambda * log( (1/K) sum_k exp(d_k / lambda) )   (lambda = 10)
            = max_{p in simplex} sum_k p_k d_k - lambda * KL(p || uniform)

computed with the max-subtraction (log-mean-exp) trick. As lambda -> 0 it tends to the
Crammer-Singer hinge max_k d_k (p concentrates on the worst class); as lambda -> inf to the mean of d.

ALDR-KL (``ALDRLoss_V1``): a per-example lambda_i, kept for every training example (initialised to
lambda_0 = 10) and updated each time the example is visited:

    s = f / (||f||_1 / K)                                     (softplus first only for CIFAR-100)
    p_i = softmax(s / lambda_i_old) + 1e-5, renormalised
    KL_i = sum_k p_ik log(K p_ik)
    lambda_i <- lambda_0 - lambda_0 * KL_i / (alpha * log K)  (detached; alpha = 2, so lambda_i >= lambda_0 / 2)
    l_i = lambda_i * log mean_k exp(d_ik / lambda_i) - alpha log K / (2 lambda_0) * (lambda_i - lambda_0)^2

The quadratic term is constant w.r.t. the model (lambda_i is detached), as in the official code.

Baselines, in the official forms: CE; GCE (1 - p_y^q)/q (q = 0.7); SCE as the official code defines it,
(1 - b) * CE + b * A * (1 - p_y) with A = 4 (b = 0.5); Crammer-Singer max(0, max_k d_k) on raw scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must be [batch, classes], got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] or target.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"target must be int64 of shape [{logits.shape[0]}], got {target.dtype} {tuple(target.shape)}"
        )


def margin_differences(scores: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """d_k = s_k - s_y + margin * 1[k != y], a [batch, K] tensor (0 at k = y)."""
    d = scores - scores.gather(1, target[:, None]) + margin
    return d.scatter(1, target[:, None], 0.0)


def log_mean_exp(z: torch.Tensor) -> torch.Tensor:
    """log((1/K) sum_k exp(z_k)) per row, stable (max subtracted, as the official code does)."""
    return torch.logsumexp(z, dim=1) - math.log(z.shape[1])


def softplus_normalized(logits: torch.Tensor) -> torch.Tensor:
    """s = softplus(f) / mean_k softplus(f_k): LDR-KL's positive, mean-one scores."""
    sp = F.softplus(logits)
    return sp / sp.mean(dim=1, keepdim=True)


def l1_normalized(logits: torch.Tensor) -> torch.Tensor:
    """s = f / (||f||_1 / K): ALDR-KL's scores (no softplus, as in the official tabular runs)."""
    return logits / (logits.abs().sum(dim=1, keepdim=True) / logits.shape[1])


def ldr_kl_from_scores(scores: torch.Tensor, target: torch.Tensor, lam, margin: float) -> torch.Tensor:
    """Per-row lambda * log mean_k exp(d_k / lambda); ``lam`` a float or a [batch, 1] tensor."""
    d = margin_differences(scores, target, margin)
    lam_row = lam.reshape(-1) if torch.is_tensor(lam) else lam
    return lam_row * log_mean_exp(d / lam)


def ldr_kl_loss(
    logits: torch.Tensor, target: torch.Tensor, lam: float = 10.0, margin: float = 0.1
) -> torch.Tensor:
    """LDR-KL (mean over the batch) on softplus-normalised scores."""
    _check(logits, target)
    if lam <= 0:
        raise ValueError(f"lambda must be > 0, got {lam}")
    return ldr_kl_from_scores(softplus_normalized(logits), target, lam, margin).mean()


class ALDRKLLoss(nn.Module):
    """ALDR-KL with per-example adaptive lambda. ``forward(logits, target, ids)``; ``ids`` index the
    training set (0..num_examples-1). The lambdas are a buffer, so they follow ``.to(device)`` and
    ``state_dict``."""

    def __init__(
        self,
        num_examples: int,
        lam0: float = 10.0,
        alpha: float = 2.0,
        margin: float = 0.1,
        softplus: bool = False,
    ):
        super().__init__()
        if num_examples < 1 or lam0 <= 0 or alpha <= 0:
            raise ValueError(
                f"need num_examples >= 1, lam0 > 0, alpha > 0; got {num_examples}, {lam0}, {alpha}"
            )
        self.lam0, self.alpha, self.margin, self.softplus = lam0, alpha, margin, softplus
        self.register_buffer("lambdas", torch.full((num_examples,), float(lam0)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        _check(logits, target)
        k = logits.shape[1]
        f = F.softplus(logits) if self.softplus else logits
        s = l1_normalized(f)
        lam_old = self.lambdas[ids][:, None]
        p = torch.softmax(s / lam_old, dim=1) + 1e-5  # +1e-5 keeps log finite (official)
        p = p / p.sum(dim=1, keepdim=True)
        kl = (p * torch.log(k * p)).sum(dim=1, keepdim=True)
        log_k = math.log(k)
        lam = (self.lam0 - self.lam0 * kl / (self.alpha * log_k)).detach()
        self.lambdas[ids] = lam.squeeze(1)
        extra = -self.alpha * log_k / (2 * self.lam0) * (lam - self.lam0) ** 2
        loss = ldr_kl_from_scores(s, target, lam, self.margin) + extra.squeeze(1)
        return loss.mean()


def crammer_singer_loss(scores: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """max(0, max_k (s_k - s_y + margin * 1[k != y])) per row (official ``CSLoss``), mean."""
    _check(scores, target)
    return margin_differences(scores, target, margin).max(dim=1).values.clamp_min(0).mean()


def gce_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    """Generalised CE (Zhang & Sabuncu 2018): (1 - p_y^q) / q, mean."""
    _check(logits, target)
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return (-torch.expm1(q * log_p) / q).mean()


def sce_loss(
    logits: torch.Tensor, target: torch.Tensor, balance: float = 0.5, a: float = 4.0
) -> torch.Tensor:
    """The official code's SCE: (1 - b) * CE + b * A * (1 - p_y), mean. (A * (1 - p_y) is the reverse
    CE -sum_k p_k log onehot_k of Wang et al. 2019 with log 0 := -A.)"""
    _check(logits, target)
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return ((1 - balance) * (-log_p) + balance * a * (1 - log_p.exp())).mean()
