"""The MaKD training loss and the widened student head.

MaKD (Lee et al., arXiv 2501.13341, Sec. 3) asks an MLLM Q yes/no questions ("aspects") about every
training image and keeps the MLLM's probability of "yes" as a soft target t in [0, 1]. The student's
classifier is widened from C to C + Q outputs: the first C are the class logits, the next Q are one
logit per aspect. The loss (official code, mdistiller/distillers/MaKD.py) is

    L = CE_WEIGHT * CE(s[:, :C], y) + ALPHA * BCEWithLogits(s[:, C:C+Q], t)     (mean over N x Q)

with CE_WEIGHT = 1.0 and ALPHA = 4.0 (configs/fine_grained/makd.yaml). The TEMPERATURE field of the
config is read but never used, so it does not appear here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

CE_WEIGHT = 1.0
ALPHA = 4.0


def split_logits(
    logits: torch.Tensor, num_classes: int, num_aspects: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class logits N x C, aspect logits N x Q) from the widened head's N x (C + Q) output."""
    if logits.ndim != 2 or logits.shape[1] != num_classes + num_aspects:
        raise ValueError(
            f"expected N x (C + Q) = N x {num_classes + num_aspects} logits, got {tuple(logits.shape)}"
        )
    return logits[:, :num_classes], logits[:, num_classes : num_classes + num_aspects]


def makd_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    aspect_target: torch.Tensor,
    num_classes: int,
    *,
    alpha: float = ALPHA,
    ce_weight: float = CE_WEIGHT,
) -> torch.Tensor:
    """CE_WEIGHT * CE on the class logits + ALPHA * mean BCE-with-logits on the aspect logits.

    logits: N x (C + Q) student output; target: N class indices; aspect_target: N x Q soft targets in
    [0, 1] (the MLLM's P(yes)). alpha = 0 gives plain cross-entropy on the first C logits.
    """
    if aspect_target.ndim != 2 or aspect_target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"aspect_target must be N x Q with N = {logits.shape[0]}, got {tuple(aspect_target.shape)}"
        )
    if target.shape != (logits.shape[0],):
        raise ValueError(f"target must have shape ({logits.shape[0]},), got {tuple(target.shape)}")
    if aspect_target.numel() and (aspect_target.min() < 0 or aspect_target.max() > 1):
        raise ValueError("aspect targets must lie in [0, 1] (probabilities of 'yes')")
    s_cls, s_asp = split_logits(logits, num_classes, aspect_target.shape[1])
    loss = ce_weight * F.cross_entropy(s_cls, target)
    if alpha != 0.0:
        # BCEWithLogits with reduction='mean' averages over all N * Q entries (official code)
        loss = loss + alpha * F.binary_cross_entropy_with_logits(s_asp, aspect_target.to(s_asp.dtype))
    return loss


def widen_head(model: nn.Module, num_classes: int, num_aspects: int) -> nn.Module:
    """Replace ``model.head`` (a Linear to C outputs) with a Linear to C + Q outputs (Sec. 3.2)."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError("widen_head needs a model whose `head` attribute is an nn.Linear")
    if head.out_features != num_classes:
        raise ValueError(f"head has {head.out_features} outputs, expected C = {num_classes}")
    if num_aspects < 1:
        raise ValueError(f"num_aspects must be >= 1, got {num_aspects}")
    model.head = nn.Linear(head.in_features, num_classes + num_aspects, bias=head.bias is not None)
    return model
