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

    def forward(self, x: torch.Tensor, last_bn_rows: torch.Tensor | None = None) -> torch.Tensor:
        """``last_bn_rows [G, B]`` (bool, training mode only): the rows of each group's batch over which
        the LAST network's BatchNorm takes its batch statistics (and updates its moving ones); None = all
        rows. anyloss' bce_val network is the last one and fits on 80% of the training fold only, so its
        BatchNorm must not see the 20% hold-out rows on which its threshold is chosen. The other networks'
        statistics are computed exactly as without the mask (bit-identical outputs and gradients). A group
        whose batch has no selected row normalises with the whole batch's statistics (its loss is 0 then)
        and leaves the last network's moving statistics unchanged."""
        squeeze = x.ndim == 2
        if squeeze:
            x = x[None]
        h = torch.einsum("gbd,gmdh->gmbh", x, self.w1) + self.b1  # [G, M, B, h]
        if last_bn_rows is not None and tuple(last_bn_rows.shape) != (h.shape[0], h.shape[2]):
            raise ValueError(f"last_bn_rows must have shape [G, B] = {(h.shape[0], h.shape[2])}, "
                             f"got {tuple(last_bn_rows.shape)}")  # fmt: skip
        if self.training:
            mean = h.mean(dim=2, keepdim=True)
            var = h.var(dim=2, unbiased=False, keepdim=True)
            keep = None
            if last_bn_rows is not None:
                w = last_bn_rows.to(h.dtype)[:, :, None]  # [G, B, 1]
                count = w.sum(dim=1, keepdim=True)  # [G, 1, 1]
                h_last = h[:, -1]  # [G, B, h]
                m_last = (h_last * w).sum(dim=1, keepdim=True) / count.clamp_min(1)
                v_last = ((h_last - m_last) ** 2 * w).sum(dim=1, keepdim=True) / count.clamp_min(1)
                keep = count == 0  # [G, 1, 1]: no selected row in this group's batch
                m_last = torch.where(keep, mean[:, -1], m_last)
                v_last = torch.where(keep, var[:, -1], v_last)
                mean = torch.cat([mean[:, :-1], m_last[:, None]], dim=1)
                var = torch.cat([var[:, :-1], v_last[:, None]], dim=1)
            with torch.no_grad():
                old_mean, old_var = self.running_mean[:, -1].clone(), self.running_var[:, -1].clone()
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
                if keep is not None:
                    self.running_mean[:, -1] = torch.where(keep, old_mean, self.running_mean[:, -1])
                    self.running_var[:, -1] = torch.where(keep, old_var, self.running_var[:, -1])
        else:
            mean, var = self.running_mean, self.running_var
        h = torch.sigmoid(self.gamma * (h - mean) / torch.sqrt(var + self.eps) + self.beta)
        p = torch.sigmoid(torch.einsum("gmbh,gmh->gmb", h, self.w2) + self.b2)  # [G, M, B]
        return p[0] if squeeze else p
