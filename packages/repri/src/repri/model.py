"""The base learner: a small dilated FCN trained with plain cross-entropy on base classes + background.

RePRI uses no meta-learning (Sec. 3.1 of the paper; ``src/train.py`` of the official code): a standard
segmentation network (PSPNet-ResNet50 there) is trained with CE over the base classes plus background,
with label smoothing (eps = 0.1, the off-class mass spread as eps / (K - 1)). Pixels of classes that
are not base classes carry the ignore label 255. At test time only ``features`` is used: the
classifier head is discarded and replaced by RePRI's per-episode prototype classifier.

Our network mirrors PSPNet's structure at a small scale: a strided stem down to stride 4 (16 x 16
features on 64 x 64 scenes; PSPNet keeps stride 8 with dilated layer3/layer4), residual dilated 3x3
blocks (``FCNConfig.dilations``: 1, 2, 4, 8 at cpu scale) that grow the receptive field without striding,
a small pyramid pooling module, a 3x3 bottleneck with BN + ReLU + Dropout2d(0.1) whose output is the
feature map, and a 1x1 classifier whose logits are bilinearly upsampled (align_corners=True) to the image
size for the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = 255


def _cbr(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DilatedBlock(nn.Module):
    """A residual 3x3 dilated conv block (the role of PSPNet's dilated layer3/layer4)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv(x))


class PPM(nn.Module):
    """Pyramid pooling (PSPNet): pooled context at several bin sizes, upsampled and concatenated."""

    def __init__(self, channels: int, bins: tuple[int, ...]) -> None:
        super().__init__()
        red = channels // len(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(channels, red, 1, bias=False),
                nn.BatchNorm2d(red),
                nn.ReLU(),
            )
            for b in bins
        )
        self.out_channels = channels + red * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(br(x), size, mode="bilinear", align_corners=True) for br in self.branches]
        return torch.cat([x, *pooled], 1)


@dataclass(frozen=True)
class FCNConfig:
    """Widths of the small dilated FCN."""

    width: int = 48
    """channels of the stride-4 trunk"""
    feature_dim: int = 64
    """channels of the bottleneck features RePRI works on (PSPNet: 512)"""
    dilations: tuple[int, ...] = (2, 4)
    """one residual 3x3 block per entry, with that dilation (PSPNet: the dilated layer3 / layer4 stacks)"""
    bins: tuple[int, ...] = (1, 2, 4)
    """pyramid pooling bins (PSPNet: 1, 2, 3, 6 on 53 x 53 maps)"""
    dropout: float = 0.1
    """Dropout2d after the bottleneck (official ``dropout: 0.1``)"""


class DilatedFCN(nn.Module):
    """64 x 64 image -> (feature_dim, 16, 16) features -> num_classes logits at the input size."""

    def __init__(self, num_classes: int, cfg: FCNConfig = FCNConfig()) -> None:
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(_cbr(3, w // 2, stride=2), _cbr(w // 2, w, stride=2))
        self.trunk = nn.Sequential(*(DilatedBlock(w, d) for d in cfg.dilations))
        self.ppm = PPM(w, cfg.bins)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(self.ppm.out_channels, cfg.feature_dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(cfg.feature_dim),
            nn.ReLU(inplace=True),
            nn.Dropout2d(cfg.dropout),
        )
        self.classifier = nn.Conv2d(cfg.feature_dim, num_classes, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.ppm(self.trunk(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.features(x))
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=True)


def smoothed_ce(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 0.1, bg_weight: float = 1.0
) -> torch.Tensor:
    """Label-smoothed CE averaged over non-ignored pixels (official ``compute_loss`` + ``cross_entropy``).

    The target distribution is ``1 - eps`` on the label and ``eps / (K - 1)`` on each other class
    (note: not the ``eps / K`` convention of ``F.cross_entropy(label_smoothing=...)``).
    logits: (B, K, H, W); target: (B, H, W) int64 with IGNORE for ignored pixels.
    ``bg_weight`` (our deviation; 1.0 = official, unweighted): pixels labelled background (class 0) get this
    weight and the mean is the weighted mean ``sum w_i l_i / sum w_i`` (the convention of
    ``F.cross_entropy(weight=...)``).
    """
    k = logits.shape[1]
    valid = target != IGNORE
    # -sum_c soft_c log p_c with soft_c = eps/(K-1) off the label and 1-eps on it, written without the (B, K, H, W)
    # one-hot: = -(eps/(K-1)) sum_c log p_c - (1 - eps - eps/(K-1)) log p_y (same value; ~3x cheaper on CPU,
    # where the full-resolution loss was ~30% of a training step)
    logp = F.log_softmax(logits, 1)
    off = eps / (k - 1)
    logp_y = logp.gather(1, (target.clamp(max=k - 1) * valid).unsqueeze(1)).squeeze(1)
    loss = -off * logp.sum(1) - (1 - eps - off) * logp_y
    if bg_weight == 1.0:
        return loss[valid].mean()
    w = torch.where(target == 0, bg_weight, 1.0)[valid]
    return (w * loss[valid]).sum() / w.sum()
