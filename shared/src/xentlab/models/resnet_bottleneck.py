"""Bottleneck ResNets (ResNet-50/101/152, He et al. 2016, Table 1) without torchvision.

The layout is torchvision's ``resnet50`` ("v1.5": the stride-2 of a stage sits on the 3x3 conv of its
first block): a stem, four stages of (3, 4, 6, 3) bottleneck blocks (1x1 reduce -> 3x3 -> 1x1 expand x4,
each conv followed by BatchNorm, ReLU after the residual sum) at base widths 64/128/256/512, global
average pooling, a Linear head. Initialisation as torchvision: Kaiming-normal (fan_out, ReLU) convs,
BatchNorm weight 1 / bias 0, the head with nn.Linear's default.

``stem="small"`` is the usual modification for 28x28 / 32x32 inputs (e.g. the harmonic-loss paper's
``ResNet50Wrapper``): a 3x3 stride-1 convolution and no max-pool, instead of the 7x7 stride-2 conv +
3x3 stride-2 max-pool of ``stem="imagenet"``.

Same interface as ``xentlab.models.cnn.ResNet``: ``model(x)`` -> logits, ``model.features(x)`` -> the
pooled ``feature_dim``-d features (2048 for ResNet-50), ``model.forward_features(x)``, ``model.head``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xentlab.models.cnn import ResNetBase, conv_stem

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class Bottleneck(nn.Module):
    """1x1 (c_in -> w), 3x3 stride s (w -> w), 1x1 (w -> 4w), each with BatchNorm; projection shortcut
    (1x1 stride s + BatchNorm) when the shape changes; ReLU after the sum."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class BottleneckResNet(ResNetBase):
    def __init__(
        self,
        blocks: Sequence[int] = DEPTHS[50],
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        base_width: int = 64,
        stem: str = "imagenet",
    ):
        super().__init__()
        if not blocks or min(blocks) < 1 or base_width < 1 or in_channels < 1 or num_classes < 1:
            raise ValueError(
                f"invalid ResNet: blocks {blocks}, width {base_width}, in {in_channels}, K {num_classes}"
            )
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        self._assemble(
            conv_stem("cifar" if stem == "small" else "imagenet", in_channels, base_width),
            Bottleneck,
            [(n, base_width * 2**i) for i, n in enumerate(blocks)],
            in_channels=in_channels,
            num_classes=num_classes,
            c_in=base_width,
        )


def build_bottleneck_resnet(
    depth: int = 50,
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    stem: str = "imagenet",
    base_width: int = 64,
) -> BottleneckResNet:
    """ResNet-50/101/152 (``stem="small"`` for 28x28 / 32x32 inputs)."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")
    return BottleneckResNet(
        DEPTHS[depth], in_channels=in_channels, num_classes=num_classes, base_width=base_width, stem=stem
    )
