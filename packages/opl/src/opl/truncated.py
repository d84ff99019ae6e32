"""Truncated L_q loss (Zhang & Sabuncu, NeurIPS 2018), the base loss of OPL's label-noise table.

OPL's label-noise code (``label_noise/truncated_loss/TruncatedLoss.py`` in kahnchana/opl, borrowed
from AlanChou/Truncated-Loss) trains with the *truncated* generalised cross-entropy. With
``p = softmax(z)_y`` the probability of the (possibly noisy) label,

    L_q(p)       = (1 - p^q) / q                                   (GCE, Zhang & Sabuncu Eq. 6)
    L_trunc(p)   = L_q(k)  if p <= k,  else  L_q(p)                (Eq. 9)

and the truncation is optimised with one 0/1 weight per training sample (Eq. 11):

    loss(batch)  = mean_i  w_i * (L_q(p_i) - L_q(k))

The constant ``-L_q(k)`` has no gradient; a pruned sample (w_i = 0) contributes 0 but still counts in
the batch mean (the official ``torch.mean`` over the whole batch). The weights start at 1 and are
re-set every few epochs (the "pruning" step) to ``w_i = [L_q(p_i) < L_q(k)] = [p_i > k]``, where p_i
comes from a forward pass over the training set. Official values: q = 0.7, k = 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OFFICIAL_Q = 0.7  # TruncatedLoss(q=0.7, k=0.5)
OFFICIAL_K = 0.5


def lq(p: torch.Tensor, q: float) -> torch.Tensor:
    """The generalised cross-entropy L_q(p) = (1 - p^q) / q (-> -log p as q -> 0; = 1 - p at q = 1)."""
    return (1.0 - p.pow(q)) / q


def _label_prob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2:
        raise ValueError(f"logits must be (B, K), got shape {tuple(logits.shape)}")
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"targets must be (B,) with B={logits.shape[0]}, got {tuple(targets.shape)}")
    return F.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)


def truncated_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    q: float = OFFICIAL_Q,
    k: float = OFFICIAL_K,
) -> torch.Tensor:
    """Batch mean of ``w_i * (L_q(p_i) - L_q(k))`` (Eq. 11 with the official mean reduction)."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")
    if not 0.0 < k < 1.0:
        raise ValueError(f"k must be in (0, 1), got {k}")
    p = _label_prob(logits, targets)
    if weights.shape != p.shape:
        raise ValueError(f"weights must be (B,) = {tuple(p.shape)}, got {tuple(weights.shape)}")
    w = weights.to(p.dtype)
    return (w * (lq(p, q) - lq(torch.tensor(k, dtype=p.dtype), q))).mean()


@torch.no_grad()
def pruning_weights(logits: torch.Tensor, targets: torch.Tensor, k: float = OFFICIAL_K) -> torch.Tensor:
    """The pruning step: ``w_i = 1`` if ``L_q(p_i) < L_q(k)``, i.e. ``p_i > k`` (``update_weight``)."""
    return (_label_prob(logits, targets) > k).float()


def is_prune_epoch(epoch: int, start: int, every: int) -> bool:
    """Official schedule: before 0-based ``epoch`` when ``epoch + 1 >= start`` and ``(epoch + 1) % every == 0``."""
    return every > 0 and epoch + 1 >= start and (epoch + 1) % every == 0
