"""The SPO objective: an alignment loss plus lambda times a self-supervised preference-degree loss.

Paper (Sec. 3): L_SPO = L_align + lambda * L_SSL, where L_SSL is the cross-entropy of a
classification module that predicts, from the LLM's representation of a response whose key content
was partly removed, how much was removed (its preference degree). Reconstruction choices (the
paper's code is empty; see the README's assumptions): the module is one linear layer on the mean of
the final hidden states over the response tokens, K = 4 classes (m = 0..3 key units removed), and
L_align is DPO (``xentlab.lm.preference.dpo_loss``) or IPO.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xentlab.lm.train import IGNORE_INDEX


def response_mean_pool(hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of hidden (B, T, D) over each row's response tokens (labels != -100): (B, D)."""
    if hidden.shape[:2] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree on (B, T)")
    mask = (labels != IGNORE_INDEX).to(hidden.dtype)
    counts = mask.sum(1, keepdim=True)
    if bool((counts == 0).any()):
        raise ValueError("every row needs at least one response token to pool over")
    return (hidden * mask.unsqueeze(-1)).sum(1) / counts


class DegreeHead(nn.Module):
    """Linear classifier of the preference degree (number of removed key units) from pooled states."""

    def __init__(self, hidden: int, n_classes: int):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.proj = nn.Linear(hidden, n_classes)

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.proj(response_mean_pool(hidden, labels))


def degree_loss(logits: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """L_SSL: mean cross-entropy of the degree logits (B, K) against the degree labels (B,)."""
    return F.cross_entropy(logits, degree)


def spo_objective(align: torch.Tensor, ssl: torch.Tensor | None, lam: float) -> torch.Tensor:
    """L_align + lambda * L_SSL (paper Sec. 3); just L_align when there is no degree batch."""
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    if ssl is None or lam == 0:
        return align
    return align + lam * ssl
