"""Gradient reversal layer (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation").

Forward: the identity, R(x) = x. Backward: dR/dx = -lambda * I, i.e. the gradient reaching x is the
upstream gradient multiplied by -lambda (Ganin & Lempitsky, Eq. 12-13). Put between a feature
extractor and a domain (here: language) classifier, one optimiser step then trains the classifier to
predict the domain while it pushes the features to *hide* it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = lambd
        return x.view_as(x)  # identity; a view so autograd records this node

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output * (-ctx.lambd), None  # no gradient for lambda (a schedule, not a parameter)


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """The identity in the forward pass; multiplies the incoming gradient by ``-lambd`` in the backward pass."""
    lambd = float(lambd)
    if not math.isfinite(lambd):
        raise ValueError(f"lambda must be finite, got {lambd}")
    return _GradientReversal.apply(x, lambd)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``.lambd`` every step to follow a schedule."""

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd:g}"
