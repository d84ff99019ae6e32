"""Adam's proposed direction and the rho-controller that caps its step length at rho_a.

This follows the official experiments/lrspike/run.py (AdamCore, run_one):

* Adam proposes p = m_hat / (sqrt(v_hat) + eps); its step is Delta theta = -lr * p, of length
  tau = lr * ||p||. The moments m, v are updated every step exactly as in Adam.
* rho_a is measured along v = p / ||p|| with one JVP (ghosts.radius).
* The controller keeps tau <= rho_a: if lr * ||p|| > rho_a it uses lr_eff = rho_a / ||p|| (so the
  step has length exactly rho_a, r = 1); otherwise the step is left unchanged. Only the step length
  is capped; the direction and the moments are those of plain Adam.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class AdamDirection:
    """Adam (betas 0.9/0.999, eps 1e-8 outside the square root) split into propose / apply.

    ``propose()`` reads ``p.grad`` of every parameter, updates the moments and returns Adam's
    direction p (a list aligned with the parameters) and its global norm ||p||; ``apply(p, lr)``
    moves the parameters by -lr * p. Equivalent to torch.optim.Adam when lr is fixed.
    """

    def __init__(
        self, params: Iterable[torch.Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("AdamDirection needs at least one trainable parameter")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def propose(self) -> tuple[list[torch.Tensor], float]:
        self.t += 1
        bc1 = 1.0 - self.beta1**self.t
        bc2 = 1.0 - self.beta2**self.t
        direction, sq = [], 0.0
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad.detach() if p.grad is not None else torch.zeros_like(p)
            m.mul_(self.beta1).add_(g, alpha=1.0 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
            d = (m / bc1) / ((v / bc2).sqrt() + self.eps)
            direction.append(d)
            sq += float(d.double().pow(2).sum())
        return direction, math.sqrt(sq)

    @torch.no_grad()
    def apply(self, direction: list[torch.Tensor], lr: float) -> None:
        if len(direction) != len(self.params):
            raise ValueError(
                f"direction has {len(direction)} tensors, optimiser has {len(self.params)} parameters"
            )
        for p, d in zip(self.params, direction):
            p.add_(d, alpha=-lr)


def capped_lr(lr: float, p_norm: float, rho: float) -> float:
    """The learning rate the rho-controller uses: rho_a / ||p|| if lr * ||p|| > rho_a, else lr.

    The step length lr_eff * ||p|| is therefore min(tau, rho_a) (official run_one, mode "rho_ctrl").
    """
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be finite and >= 0, got {lr}")
    if not (math.isfinite(p_norm) and p_norm >= 0):
        raise ValueError(f"||p|| must be finite and >= 0, got {p_norm}")
    if not rho > 0:  # also rejects NaN
        raise ValueError(f"rho_a must be > 0, got {rho}")
    if lr * p_norm > rho:
        return rho / p_norm
    return lr
