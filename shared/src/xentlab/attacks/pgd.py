"""Projected gradient ascent in an L_inf ball (Madry et al., 2018), for evaluation and for training.

``x_{t+1} = Proj_{B_inf(x, eps) ∩ [lo, hi]}( x_t + step_size * sign(grad_x L(model(x_t), y)) )``

The objective ``L`` is cross-entropy by default; adversarial-training methods pass their own inner
objective (TRADES: KL to the clean prediction; smooth adversarial comp-sum: the score-difference
distance) as ``objective(logits_adv, y) -> scalar`` (a closure may capture the clean logits).

The helper never changes the model's train/eval mode and never accumulates gradients into the model's
parameters (it differentiates with ``torch.autograd.grad`` w.r.t. the input only).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _ce_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # summed (not averaged) so each example's step does not shrink with the batch size
    return F.cross_entropy(logits, y, reduction="sum")


def pgd_linf(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    objective: Objective | None = None,
    random_start: str | None = "uniform",
    clamp: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return adversarial inputs (detached) with ``|x_adv - x|_inf <= eps``.

    random_start: "uniform" (U[-eps, eps], Madry's PGD), "normal" (0.001 * N(0, 1), TRADES' start),
    or None (start at x). clamp: the valid input range, e.g. (0, 1) for pixel data; None for
    standardised tabular features.
    """
    if eps < 0 or step_size <= 0 or steps < 0:
        raise ValueError(f"need eps >= 0, step_size > 0, steps >= 0; got {eps}, {step_size}, {steps}")
    if random_start not in ("uniform", "normal", None):
        raise ValueError(f"random_start must be 'uniform', 'normal' or None, got {random_start!r}")
    objective = objective or _ce_sum
    x = x.detach()
    if eps == 0 or (steps == 0 and random_start is None):
        return x.clone()
    if random_start == "uniform":
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        x_adv = x + eps * noise
    elif random_start == "normal":
        x_adv = x + 0.001 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    else:
        x_adv = x.clone()
    x_adv = _project(x_adv, x, eps, clamp)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = objective(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = _project(x_adv, x, eps, clamp)
    return x_adv.detach()


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clamp) -> torch.Tensor:
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if clamp is not None:
        x_adv = x_adv.clamp(clamp[0], clamp[1])
    return x_adv


@torch.no_grad()
def _count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(dim=1) == y).sum())


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    batch_size: int = 512,
    random_start: str | None = "uniform",
    clamp: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """(clean accuracy, accuracy under PGD-``steps`` with CE) of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    clean = robust = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        clean += _count_correct(model, xb, yb)
        xa = pgd_linf(
            model, xb, yb, eps=eps, step_size=step_size, steps=steps,
            random_start=random_start, clamp=clamp, generator=gen,
        )  # fmt: skip
        robust += _count_correct(model, xa, yb)
    model.train(was_training)
    return clean / len(x), robust / len(x)
