"""Classification metrics: accuracy and expected calibration error (torchmetrics underneath)."""

from __future__ import annotations

import torch


def accuracy(logits_or_preds: torch.Tensor, target: torch.Tensor) -> float:
    """Top-1 accuracy; accepts logits (N, C) or predicted labels (N,)."""
    preds = logits_or_preds.argmax(-1) if logits_or_preds.ndim == 2 else logits_or_preds
    if preds.shape != target.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} and targets {tuple(target.shape)} differ")
    return (preds == target).float().mean().item()


def ece(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15, norm: str = "l1") -> float:
    """Expected calibration error of the top-1 confidence with equal-width bins (Guo et al. 2017).

    ``probs`` are class probabilities (N, C). ``norm="l1"`` is the usual ECE, ``"max"`` the MCE.
    """
    # imported here: torchmetrics costs ~2 s to import, and every reproduce.py imports xentlab.metrics
    from torchmetrics.functional.classification import multiclass_calibration_error

    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, C), got {tuple(probs.shape)}")
    return multiclass_calibration_error(
        probs.float(), target, num_classes=probs.shape[1], n_bins=n_bins, norm=norm
    ).item()
