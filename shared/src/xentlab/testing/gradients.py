"""Gradient checks in float64 (torch.autograd.gradcheck) with inputs prepared for it."""

from __future__ import annotations

from collections.abc import Callable

import torch


def check_gradients(
    fn: Callable[..., torch.Tensor],
    *inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    check_backward_ad: bool = True,
) -> bool:
    """Run ``torch.autograd.gradcheck`` on ``fn`` at ``inputs``.

    Floating tensors are cast to float64 and made leaves that require grad (finite differences in
    lower precision are too noisy to mean anything); integer tensors (targets, indices) and
    non-tensors are passed through unchanged. Raises on mismatch with torch's own report.
    """
    prepared = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            prepared.append(x.detach().to(torch.float64).requires_grad_(True))
        else:
            prepared.append(x)
    if not any(isinstance(x, torch.Tensor) and x.requires_grad for x in prepared):
        raise ValueError("check_gradients needs at least one floating-point tensor input")
    return torch.autograd.gradcheck(
        fn, tuple(prepared), eps=eps, atol=atol, rtol=rtol, check_backward_ad=check_backward_ad
    )
