"""The calibrator's input: how the classifier's softmax on transformed copies treats the original top-4.

Official ``run_cal.py``: with ``top_idx_1`` the 4 highest-scoring classes of the original image and
``p_t`` the softmax of transformed copy t (t = 2, 3, 4: rotation, greyscale, colour jitter in the
paper), the features are ``cat[p_2[top_idx_1], p_3[top_idx_1], p_4[top_idx_1]]`` -- 3 x 4 = 12 numbers,
ordered by transform, then by the original's rank.

Our images are grey digits, so the three transforms are the digit analogues (a deviation, see the
README): a fixed rotation (the paper's rotation), a shift of the frame (geometric, like rotation), and
a contrast reduction (the photometric analogue of greyscale / colour jitter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from xentlab.data.images import adjust_contrast, rotate

TOP_K = 4


@dataclass(frozen=True)
class TransformSpec:
    """Deterministic transforms applied to every image (same for calibration and test sets)."""

    rotation_deg: float = 15.0
    shift_px: int = 2
    contrast: float = 0.5

    def transforms(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        def rot(x):
            return rotate(x, self.rotation_deg)

        def shift(x):
            # move the picture shift_px right and down, filling with zeros (background)
            s = self.shift_px
            out = torch.zeros_like(x)
            out[..., s:, s:] = x[..., : x.shape[-2] - s, : x.shape[-1] - s]
            return out

        def contrast(x):
            return adjust_contrast(x, self.contrast)

        return [rot, shift, contrast]


def transform_features(
    logits: torch.Tensor, transformed_logits: Sequence[torch.Tensor], k: int = TOP_K
) -> torch.Tensor:
    """(N, len(transformed_logits) * k) features: each transform's softmax at the original's top-k classes."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {tuple(logits.shape)}")
    if k > logits.shape[1]:
        raise ValueError(f"top-{k} needs at least {k} classes, got {logits.shape[1]}")
    top_idx = logits.topk(k, dim=1).indices
    cols = []
    for z in transformed_logits:
        if z.shape != logits.shape:
            raise ValueError(
                f"transformed logits {tuple(z.shape)} differ from the original {tuple(logits.shape)}"
            )
        cols.append(torch.gather(torch.softmax(z, dim=1), 1, top_idx))
    return torch.cat(cols, dim=1)


@torch.no_grad()
def logits_and_features(model: torch.nn.Module, x: torch.Tensor, spec: TransformSpec, batch: int = 1000):
    """The classifier's logits on ``x`` and the 12 calibrator features (model in eval mode)."""
    model.eval()

    def run(images):
        return torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])

    z = run(x)
    zt = [run(t(x)) for t in spec.transforms()]
    return z, transform_features(z, zt)
