"""Orthogonal Projection Loss (Ranasinghe et al., ICCV 2021, Eqs. 1-3), as in the official code.

For a mini-batch of penultimate features f_i with labels y_i, after L2-normalising every row
(``F.normalize``; the official ``no_norm=False``):

    s_pos = sum_{i != j, y_i = y_j} <f_i, f_j>  / (#{i != j, y_i = y_j} + 1e-6)     (Eq. 1)
    s_neg = sum_{y_i != y_j} |<f_i, f_j>|       / (#{y_i != y_j}        + 1e-6)     (Eq. 2)
    L_OPL = (1 - s_pos) + gamma * s_neg                                              (Eq. 3)

and the training loss is ``CE + lambda * L_OPL``. s_neg uses the absolute cosine (the paper's |.|;
``classification/cifar/losses.py``). The 1e-6 in the denominators is the official code's guard for a
batch with no positive (or no negative) pair, where that term is then 0.

Defaults: gamma = 0.5 and lambda = 1.0 are the official CIFAR-100 setting (``cifar/scripts/train.sh``:
``-opl_ratio 1.0 -opl_gamma 0.5``). The official class default ``gamma=2`` (and train.py's
``-opl_gamma`` default 2, ``-opl_ratio`` 0.1) are *not* what the paper's CIFAR-100 run used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

OFFICIAL_GAMMA = 0.5  # classification/cifar/scripts/train.sh
OFFICIAL_LAMBDA = 1.0


def orthogonal_projection_loss(
    features: torch.Tensor, labels: torch.Tensor, gamma: float = OFFICIAL_GAMMA, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(L_OPL, s_pos, s_neg)`` for a batch (Eqs. 1-3); all three are differentiable scalars."""
    if features.ndim != 2:
        raise ValueError(f"features must be (B, D), got shape {tuple(features.shape)}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must be (B,) with B={features.shape[0]}, got {tuple(labels.shape)}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    f = F.normalize(features, p=2, dim=1)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    mask_pos = (same & ~eye).to(f.dtype)  # same class, i != j
    mask_neg = (~same).to(f.dtype)  # different class
    dot = f @ f.T  # cosine similarities
    s_pos = (mask_pos * dot).sum() / (mask_pos.sum() + eps)
    s_neg = (mask_neg * dot).abs().sum() / (mask_neg.sum() + eps)
    return (1.0 - s_pos) + gamma * s_neg, s_pos, s_neg


class OrthogonalProjectionLoss(nn.Module):
    """Module form of ``orthogonal_projection_loss``; ``forward`` returns ``(loss, s_pos, s_neg)``."""

    def __init__(self, gamma: float = OFFICIAL_GAMMA):
        super().__init__()
        self.gamma = gamma

    def forward(self, features: torch.Tensor, labels: torch.Tensor):
        return orthogonal_projection_loss(features, labels, self.gamma)


def ce_plus_opl(
    logits: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    lam: float = OFFICIAL_LAMBDA,
    gamma: float = OFFICIAL_GAMMA,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The total training loss ``CE + lam * L_OPL`` (train.py: ``base_loss + opl_ratio * op_loss``)."""
    ce = F.cross_entropy(logits, labels)
    opl, s_pos, s_neg = orthogonal_projection_loss(features, labels, gamma)
    total = ce + lam * opl
    return total, {"ce": ce.item(), "opl": opl.item(), "s_pos": s_pos.item(), "s_neg": s_neg.item()}
