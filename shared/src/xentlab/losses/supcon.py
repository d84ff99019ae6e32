"""Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", Eq. 2, L^sup_out).

For a batch of embeddings z_i (L2-normalised) with labels y_i, anchors i, positives
P(i) = {p != i : y_p = y_i} and the contrast set A(i) = {a != i}:

    L = mean over anchors with |P(i)| > 0 of
        -1/|P(i)| * sum_{p in P(i)} log( exp(z_i . z_p / tau) / sum_{a in A(i)} exp(z_i . z_a / tau) )

The mean over anchors that have at least one positive is what LASE's official ``supcon_loss`` does
(praxelhq/lase, models/lase.py); anchors without a positive are left out rather than counted as 0. It
has no extra (tau / base_tau) factor (Khosla's reference code has one; with base_tau = tau it is 1).
A batch in which no anchor has a positive gives 0 (with a graph, so ``backward`` still works).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


def supcon_loss(
    features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07, *, normalize: bool = True
) -> torch.Tensor:
    """SupCon over a (B, D) batch with (B,) integer labels; ``temperature`` is tau (0.07 in Khosla et al.).

    ``normalize=False`` skips the L2 normalisation (the caller has normalised already).
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (B, D), got shape {tuple(features.shape)}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must be (B,) with B={features.shape[0]}, got shape {tuple(labels.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = F.normalize(features, dim=1) if normalize else features
    logits = z @ z.T / temperature
    b = logits.shape[0]
    self_mask = torch.eye(b, dtype=torch.bool, device=logits.device)
    # log of the denominator over A(i): every other sample (the anchor itself is excluded)
    log_denom = torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    log_prob = logits - log_denom
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return features.sum() * 0.0
    mean_log_prob_pos = (log_prob * pos).sum(1)[has_pos] / n_pos[has_pos]
    return -mean_log_prob_pos.mean()
