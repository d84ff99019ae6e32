"""Tri-BCE (paper Sec. 3.5; official `add_loss`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tri_bce(logit: torch.Tensor, logit_d: torch.Tensor, logit_s: torch.Tensor, y: torch.Tensor,
            detach_weights: bool = False) -> torch.Tensor:  # fmt: skip
    """L = BCE(y_hat) + w_D * BCE(y_D) + w_S * BCE(y_S), w_* = max(0, BCE(y_*) - BCE(y_hat)).

    Each BCE is the batch mean. As in the official code the weights are NOT detached, so the gradient
    also flows through w_D and w_S (``detach_weights=True`` is an ablation, not the paper's method).
    """
    if not (logit.shape == logit_d.shape == logit_s.shape == y.shape):
        raise ValueError(
            f"shapes differ: logit {tuple(logit.shape)}, logit_d {tuple(logit_d.shape)}, "
            f"logit_s {tuple(logit_s.shape)}, y {tuple(y.shape)}"
        )
    y = y.to(logit.dtype)
    loss = F.binary_cross_entropy_with_logits(logit, y)
    loss_d = F.binary_cross_entropy_with_logits(logit_d, y)
    loss_s = F.binary_cross_entropy_with_logits(logit_s, y)
    w_d = torch.clamp(loss_d - loss, min=0.0)
    w_s = torch.clamp(loss_s - loss, min=0.0)
    if detach_weights:
        w_d, w_s = w_d.detach(), w_s.detach()
    return loss + w_d * loss_d + w_s * loss_s
