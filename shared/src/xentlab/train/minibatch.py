"""Epoch-based mini-batch training on in-memory tensors (small tabular / digit experiments).

``fit_epochs`` runs ``epochs`` passes over ``(x, y)`` in seeded random order (or in the stored order,
as some reference code does), calling ``loss_fn(model, xb, yb, idx)`` per batch, where ``idx`` are the
rows' indices in ``x`` (per-sample state such as ALDR's adaptive lambda needs them). Optional
per-epoch callback and step-wise learning-rate milestones. ``predict`` evaluates in batches in eval
mode and restores the previous mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    drop_last: bool = False,
    lr_milestones: Sequence[int] = (),
    lr_gamma: float = 0.1,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train in place; returns the mean training loss of each epoch.

    ``lr_milestones``: epochs at whose start every param group's lr is multiplied by ``lr_gamma``.
    Raises FloatingPointError on a non-finite loss (a diverged run should not pass silently).
    """
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    n = len(x)
    gen = torch.Generator().manual_seed(seed)
    n_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
    n_batches = max(n_batches, 1)
    history = []
    model.train()
    for epoch in range(epochs):
        if epoch in lr_milestones:
            for group in optimizer.param_groups:
                group["lr"] *= lr_gamma
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            if len(idx) == 0:
                continue
            idx_dev = idx.to(x.device)
            loss = loss_fn(model, x[idx_dev], y[idx_dev], idx_dev)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}, batch {b}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        history.append(total / n_batches)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode (batched); the previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out
