"""Focal SupCon: Core-tuning's contrastive regulariser (the paper's focal contrastive loss; official
``focal_SupConLoss``).

For N L2-normalised contrastor outputs z (the 3B original and mixed features of one batch), tau = 0.07:

    log p_ij = z_i.z_j / tau - log sum_{k != i} exp(z_i.z_k / tau)
    l_i      = -(tau / tau_base) * (1 / N) * sum_{j in P(i)} (1 - p_ij) * log p_ij
    L        = sum_i l_i / |{i : P(i) non-empty}|

P(i) = every j != i whose soft label equals i's (the official code turns each soft-label vector into one number
and label-encodes it, so only *identical* vectors are positives). Two details of the official averaging are kept
on purpose: the inner sum is divided by N (``.mean(1)`` over all columns), not by |P(i)| as in SupCon, and the
outer sum is divided by the number of anchors that have a positive. The focal weight (1 - p_ij) is not detached
(the official code differentiates through it). tau_base = tau, so the prefactor is 1.
"""

from __future__ import annotations

import torch

TEMPERATURE = 0.07
"""tau (and base_temperature) hard-coded in the official ``focal_SupConLoss``"""


def soft_label_groups(soft_labels: torch.Tensor, decimals: int = 6) -> torch.Tensor:
    """One integer id per row; rows get the same id iff their soft-label vectors are identical.

    Rows are rounded to ``decimals`` first so that float noise from different summation orders cannot split a
    group (the mixes that share a label are built by the same arithmetic, so this only guards, never merges two
    labels that differ by more than 1e-6)."""
    if soft_labels.ndim != 2:
        raise ValueError(f"soft_labels must be (N, C), got shape {tuple(soft_labels.shape)}")
    rounded = torch.round(soft_labels.detach().double() * 10**decimals)
    return torch.unique(rounded, dim=0, return_inverse=True)[1]


def focal_supcon_loss(
    z: torch.Tensor,
    soft_labels: torch.Tensor,
    temperature: float = TEMPERATURE,
    base_temperature: float = TEMPERATURE,
) -> torch.Tensor:
    """Focal SupCon of (N, D) normalised features ``z`` with (N, C) soft labels (positives: identical rows).

    Returns 0 (with a graph) when no anchor has a positive, as the official code does (it replaces the 0/0 NaN)."""
    if z.ndim != 2:
        raise ValueError(f"z must be (N, D), got shape {tuple(z.shape)}")
    if soft_labels.ndim != 2 or soft_labels.shape[0] != z.shape[0]:
        raise ValueError(f"soft_labels must be (N, C) with N={z.shape[0]}, got {tuple(soft_labels.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z.shape[0]
    groups = soft_label_groups(soft_labels)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = z @ z.T / temperature
    # log p_ij over the denominator k != i (the official logits_mask); -inf on the diagonal drops the anchor
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    pos = (groups[:, None] == groups[None, :]) & ~self_mask
    # the focal factor 1 - p_ij (easy positives, p_ij near 1, weigh less); -expm1 is 1 - exp without the
    # cancellation when p_ij is within 1e-6 of 1 (common at tau = 0.07)
    weight = -torch.expm1(log_prob)
    # mean over all N columns, as the official .mean(1); where() keeps the masked (diagonal) terms out of the graph
    per_anchor = -(temperature / base_temperature) * torch.where(pos, weight * log_prob, 0.0).sum(1) / n
    n_anchors = int((pos.sum(1) > 0).sum())
    if n_anchors == 0:
        return z.sum() * 0.0
    return per_anchor.sum() / n_anchors
