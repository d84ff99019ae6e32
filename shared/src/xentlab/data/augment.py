"""SimCLR two-view augmentation, batched on tensors (GPU-free); used by the gsimclr and core-tuning packages.

G-SimCLR's official ``CustomAugment`` (both training notebooks): random horizontal flip (p = 0.5); with p = 0.5 colour jitter
of strength s = 0.2 (``random_brightness`` max_delta 0.8s, ``random_contrast`` and ``random_saturation`` in
[1 - 0.8s, 1 + 0.8s], ``random_hue`` max_delta 0.2s, then clip to [0, 1]); with p = 0.5 a "colour drop" that is a
no-op (it computes the greyscale image, then tiles and returns the input ``x``). No random crop. The notebook calls
it on a whole batch, so each coin flip and each jitter factor is drawn once per batch, not per image.

``AugmentConfig.official()`` is that recipe (the colour-drop bug replicated as ``grayscale_p = 0``, since the
paper's numbers were produced with it). gsimclr's cpu scale adds a random resized crop and a working greyscale, per
image (gsimclr README, Deviations). Saturation is approximated by blending with the luma image and hue by a rotation in
YIQ space (TF converts to HSV); both are monotone in the same factor and identity at factor 1 / delta 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class AugmentConfig:
    """One view's random transformation."""

    crop_scale: tuple[float, float] | None = None
    """area range of a random resized crop (aspect in [3/4, 4/3]); None: no crop (official)"""
    flip_p: float = 0.5
    """probability of a horizontal flip"""
    jitter_p: float = 0.5
    """probability of colour jitter"""
    jitter_strength: float = 0.2
    """s of the SimCLR colour jitter (0.2 in the notebooks)"""
    grayscale_p: float = 0.0
    """probability of a greyscale conversion (0: the notebook's colour drop is a no-op)"""
    per_batch: bool = True
    """one draw per batch (the notebook) instead of one per image"""

    @classmethod
    def official(cls) -> AugmentConfig:
        return cls()


def _uniform(n: int, lo: float, hi: float, device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=device) * (hi - lo) + lo


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _hue_rotate(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma (I, Q) plane of YIQ by 2*pi*delta, delta in hue turns like tf.image.adjust_hue."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]).to(x)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
    theta = 2 * math.pi * delta.view(-1, 1, 1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    i, q = yiq[:, 1:2], yiq[:, 2:3]
    yiq = torch.cat([yiq[:, :1], cos[:, None] * i - sin[:, None] * q, sin[:, None] * i + cos[:, None] * q], 1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)


def _crop(x: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
    n = len(x)
    area = torch.empty(n).uniform_(*scale)
    log_r = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3))
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    tx = (torch.rand(n) * 2 - 1) * (1 - w)  # crop centre in normalised coordinates, crop inside the image
    ty = (torch.rand(n) * 2 - 1) * (1 - h)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, tx, h, ty
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def augment(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """One random view of a (N, 3, H, W) batch in [0, 1]; uses the global torch RNG (seeded by the runner)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an N x 3 x H x W batch, got {tuple(x.shape)}")
    n = 1 if cfg.per_batch else len(x)
    dev = x.device
    if cfg.crop_scale is not None:
        x = _crop(x, cfg.crop_scale)
    flip = torch.rand(n, 1, 1, 1, device=dev) < cfg.flip_p
    x = torch.where(flip, x.flip(-1), x)
    s = cfg.jitter_strength
    jittered = x + _uniform(n, -0.8 * s, 0.8 * s, dev)  # brightness: additive delta
    mean = jittered.mean(dim=(2, 3), keepdim=True)
    jittered = (jittered - mean) * _uniform(
        n, 1 - 0.8 * s, 1 + 0.8 * s, dev
    ) + mean  # contrast, per channel mean
    gray = _gray(jittered)
    jittered = gray + (jittered - gray) * _uniform(n, 1 - 0.8 * s, 1 + 0.8 * s, dev)  # saturation
    jittered = _hue_rotate(jittered, _uniform(n, -0.2 * s, 0.2 * s, dev).view(-1))
    jittered = jittered.clamp(0, 1)
    x = torch.where(torch.rand(n, 1, 1, 1, device=dev) < cfg.jitter_p, jittered, x)
    grey = torch.rand(n, 1, 1, 1, device=dev) < cfg.grayscale_p
    return torch.where(grey, _gray(x).expand_as(x), x)
