"""The naive linear cross-entropy: materialise the N x V logits, then ``F.cross_entropy``.

This is the baseline of the paper's Table 1 ("Baseline": ``F.cross_entropy((e @ c.T).float())``)
and, called on float64 inputs, the oracle of the tests.  Same arguments and semantics as
:func:`xentlab.kernels.linear_cross_entropy`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def naive_linear_cross_entropy(
    e: torch.Tensor,
    c: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    softcap: float | None = None,
    reduction: str = "mean",
    shift: int = 0,
) -> torch.Tensor:
    shift = int(shift)
    if shift:
        # e[..., t, :] predicts targets[..., t + shift] (official docstring of ``shift``)
        e = e[..., :-shift, :]
        targets = targets[..., shift:]
    out_shape = targets.shape
    logits = e.reshape(-1, e.shape[-1]) @ c.T
    if bias is not None:
        logits = logits + bias
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    # the upcast of the official baseline; float64 stays float64 for the oracle
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32
    loss = F.cross_entropy(
        logits.to(acc), targets.reshape(-1), ignore_index=ignore_index, reduction=reduction
    )
    return loss.view(out_shape) if reduction == "none" else loss
