"""M independent copies of the official notebooks' network, trained side by side on the same batches.

The official model (Keras) is ``Dense(h) -> BatchNormalization -> sigmoid -> Dense(1, sigmoid)`` with
h = 2 hidden units. Training one copy per loss function on identical mini-batches is the protocol of
the notebooks (every loss sees the same folds); stacking the copies into one module with a leading
"model" dimension changes nothing mathematically -- parameters are disjoint, the summed loss has
block-separable gradients and Adam's update is elementwise -- but runs M models for the Python
overhead of one, which is what makes the CPU budget. The copies are arranged as G groups of M models
(G = the CV folds of one dataset, each group with its own batch of its own training rows).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StackedMLP(nn.Module):
    """``forward(x [G, B, d]) -> p [G, M, B]``: sigmoid outputs of G x M independent Dense-BN-sigmoid-Dense
    nets; group g's M nets all see x[g]. A 2-d ``x [B, d]`` is treated as G = 1 and gives ``[M, B]``.

    BatchNorm follows Keras' defaults (momentum 0.99, epsilon 1e-3): batch statistics in training mode,
    moving averages in eval mode.
    """

    def __init__(
        self,
        num_models: int,
        in_dim: int,
        hidden: int = 2,
        num_groups: int = 1,
        bn_momentum: float = 0.99,
        bn_eps: float = 1e-3,
        init: str = "torch",
    ):
        super().__init__()
        if min(num_models, in_dim, hidden, num_groups) < 1:
            raise ValueError(f"need num_models, in_dim, hidden, num_groups >= 1; got {num_models}, {in_dim}, "
                             f"{hidden}, {num_groups}")  # fmt: skip
        if init not in ("torch", "keras"):
            raise ValueError(f"init must be 'torch' (untruncated He-normal) or 'keras', got {init!r}")
        g, m = num_groups, num_models
        # He-normal first layer (the notebooks' kernel_initializer), Glorot-uniform output layer (Keras' default).
        # Keras' he_normal is VarianceScaling(2, fan_in, "truncated_normal"): a normal truncated at 2 stddev, with
        # stddev = sqrt(2/fan_in) / 0.8796... (the std of a standard normal truncated at +-2) so that the variance
        # stays 2/fan_in. init="torch" (versions <= 2) drew an untruncated normal of the same variance.
        std = math.sqrt(2.0 / in_dim)
        if init == "keras":
            stddev = std / 0.87962566103423978
            w1 = nn.init.trunc_normal_(
                torch.empty(g, m, in_dim, hidden), 0.0, stddev, -2 * stddev, 2 * stddev
            )
        else:
            w1 = torch.randn(g, m, in_dim, hidden) * std
        self.w1 = nn.Parameter(w1)
        self.b1 = nn.Parameter(torch.zeros(g, m, 1, hidden))
        self.gamma = nn.Parameter(torch.ones(g, m, 1, hidden))
        self.beta = nn.Parameter(torch.zeros(g, m, 1, hidden))
        limit = math.sqrt(6.0 / (hidden + 1))
        self.w2 = nn.Parameter((torch.rand(g, m, hidden) * 2 - 1) * limit)
        self.b2 = nn.Parameter(torch.zeros(g, m, 1))
        self.register_buffer("running_mean", torch.zeros(g, m, 1, hidden))
        self.register_buffer("running_var", torch.ones(g, m, 1, hidden))
        self.momentum, self.eps = bn_momentum, bn_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.ndim == 2
        if squeeze:
            x = x[None]
        h = torch.einsum("gbd,gmdh->gmbh", x, self.w1) + self.b1  # [G, M, B, h]
        if self.training:
            mean = h.mean(dim=2, keepdim=True)
            var = h.var(dim=2, unbiased=False, keepdim=True)
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
        else:
            mean, var = self.running_mean, self.running_var
        h = torch.sigmoid(self.gamma * (h - mean) / torch.sqrt(var + self.eps) + self.beta)
        p = torch.sigmoid(torch.einsum("gmbh,gmh->gmb", h, self.w2) + self.b2)  # [G, M, B]
        return p[0] if squeeze else p
