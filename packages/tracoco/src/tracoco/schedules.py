"""The official schedules: poly learning rate and the sigmoid ramp-up of the unsupervised weight."""

from __future__ import annotations

import math


def poly_lr(base_lr: float, iteration: int, total: int, power: float = 0.9) -> float:
    """``base_lr * (1 - iteration / total) ** power`` (official ``PolyLR.get_lr``).

    The official loop increments the iteration counter *before* asking for the rate, so the first
    step uses ``iteration = 1`` and the last ``iteration = total`` (rate 0).
    """
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    if not 0 <= iteration <= total:
        raise ValueError(f"iteration must be in [0, {total}], got {iteration}")
    return base_lr * (1 - iteration / total) ** power


def sigmoid_rampup(current: float, length: float) -> float:
    """``exp(-5 (1 - clip(current, 0, length) / length)^2)`` (Laine & Aila 2017; official ``sigmoid``)."""
    if length == 0:
        return 1.0
    current = min(max(current, 0.0), length)
    phase = 1.0 - current / length
    return float(math.exp(-5.0 * phase * phase))


def consistency_weight(
    iteration: int, final_weight: float, rampup_epochs: float, iters_per_epoch: int, start_epoch: float = 0
) -> float:
    """The unsupervised weight at a (1-based) iteration (official ``ConsistencyWeight``).

    The ramp-up is defined in epochs of the labelled set: ``rampup_epochs * iters_per_epoch``
    iterations, where one epoch is one pass over the labelled volumes (``labelled // labelled_bs``
    iterations in the official two-stream sampler). Before ``start_epoch`` the weight is 0.
    """
    start = start_epoch * iters_per_epoch
    if iteration <= start:
        return 0.0
    return final_weight * sigmoid_rampup(iteration - start, rampup_epochs * iters_per_epoch)
