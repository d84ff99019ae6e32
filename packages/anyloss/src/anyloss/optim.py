"""Keras' Adam, as the notebooks' ``tf.keras.optimizers.Adam(0.01)`` applies it.

Keras folds the bias correction into the step size and adds epsilon to the *uncorrected* sqrt(v)
("epsilon-hat" form of Kingma & Ba 2015, end of Sec. 2), with epsilon = 1e-7:

    m_t = b1 m + (1 - b1) g,   v_t = b2 v + (1 - b2) g^2,
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),   p -= lr_t m_t / (sqrt(v_t) + eps)

PyTorch's Adam adds eps = 1e-8 to the bias-corrected sqrt(v_t / (1 - b2^t)); the two differ where
sqrt(v) is ~eps, i.e. for tiny gradients (saturated amplification at L = 73). A per-step eps in
torch.optim.Adam cannot express this form exactly, hence this class (tested in float64 against the
formula above).
"""

from __future__ import annotations

import math

import torch


class KerasAdam(torch.optim.Optimizer):
    def __init__(
        self, params, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7
    ):
        if lr < 0 or eps < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"need lr >= 0, eps >= 0, 0 <= betas < 1; got lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                lr_t = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-lr_t)
        return loss
