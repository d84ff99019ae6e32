"""3D CutMix for the second network's unsupervised input (official ``Trainer.cut_mix`` / ``rand_bbox``).

One ``lam ~ Beta(4, 4)`` per batch sets the box size ``int(W * sqrt(1 - lam))`` by
``int(H * sqrt(1 - lam))`` over the first two spatial axes; the box spans the whole third (depth)
axis. Each sample gets its own box centre, ``cx ~ U{W // 8, ..., W - 1}``, clipped to the volume, and
its box is filled from sample ``perm[i]`` of the *unmixed* batch (``perm`` a random permutation of
the batch). The other network's pseudo-label logits are mixed with the same boxes, so the
CBC loss sees matching inputs and targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Boxes:
    """Per-sample boxes [x1, x2) x [y1, y2) x (all depth), and the source sample of each."""

    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    perm: np.ndarray
    lam: float


def rand_boxes(shape: tuple[int, ...], rng: np.random.Generator, beta: float = 4.0) -> Boxes:
    """Draw the official boxes for a batch of ``shape`` [B, C, W, H, D]."""
    if len(shape) != 5:
        raise ValueError(f"expected a [B, C, W, H, D] batch shape, got {shape}")
    b, _, w, h, _ = shape
    lam = float(rng.beta(beta, beta))
    cut_rat = np.sqrt(1.0 - lam)
    cut_w, cut_h = int(w * cut_rat), int(h * cut_rat)
    cx = rng.integers(int(w / 8), w, size=b)
    cy = rng.integers(int(h / 8), h, size=b)
    return Boxes(
        x1=np.clip(cx - cut_w // 2, 0, w),
        y1=np.clip(cy - cut_h // 2, 0, h),
        x2=np.clip(cx + cut_w // 2, 0, w),
        y2=np.clip(cy + cut_h // 2, 0, h),
        perm=rng.permutation(b),
        lam=lam,
    )


def apply_cutmix(tensors: list[torch.Tensor], boxes: Boxes) -> list[torch.Tensor]:
    """Mix every tensor [B, ...] (volumes [B, C, W, H, D] or labels [B, W, H, D]) with the same boxes.

    The spatial axes are the last three; a label tensor without a channel axis works as well.
    """
    out = []
    for t in tensors:
        if t.ndim not in (4, 5):
            raise ValueError(f"expected [B, C, W, H, D] or [B, W, H, D], got {tuple(t.shape)}")
        mixed = t.clone()
        for i in range(t.shape[0]):
            j = int(boxes.perm[i])
            x1, x2, y1, y2 = int(boxes.x1[i]), int(boxes.x2[i]), int(boxes.y1[i]), int(boxes.y2[i])
            mixed[i, ..., x1:x2, y1:y2, :] = t[j, ..., x1:x2, y1:y2, :]
        out.append(mixed)
    return out
