"""Small image classifiers that expose their penultimate features: a plain CNN and a ResNet builder.

Both models follow one interface:

* ``model(x)`` returns logits ``(N, num_classes)`` (so ``xentlab.train.minibatch.predict`` works);
* ``model.forward_features(x)`` returns ``(features, logits)``, the features being the input of
  the final Linear layer (global-average-pooled, post-ReLU -- as in the CIFAR ResNets of He et al.
  2016, whose 64-d pooled output feature losses such as OPL act on);
* ``model.feature_dim`` and ``model.head`` (the final ``nn.Linear``).

``SmallCNN``: ``[conv3x3-BN-ReLU] x convs_per_stage -> maxpool`` per stage, then global average
pooling. ``ResNet``: basic-block ResNets, either CIFAR-style (``build_resnet(depth=20|32|44|56|110)``,
3 stages of 16/32/64 x width, depth = 6n + 2) or ResNet-18/34 layout (``build_resnet(18)``) with a
3x3 stem suited to 32x32 inputs (``stem="imagenet"`` for the 7x7/stride-2 + maxpool stem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of ``SmallCNN``."""

    in_channels: int = 1
    """input channels (1 grey, 3 RGB)"""
    num_classes: int = 10
    """width of the head"""
    widths: Sequence[int] = (32, 64, 128)
    """channels of each stage; each stage ends with a 2x2 max-pool"""
    convs_per_stage: int = 1
    """conv3x3-BN-ReLU blocks per stage"""
    batchnorm: bool = True
    """BatchNorm after each conv"""
    dropout: float = 0.0
    """dropout on the pooled features, before the head"""


class SmallCNN(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        if cfg.in_channels < 1 or cfg.num_classes < 1 or not cfg.widths or min(cfg.widths) < 1:
            raise ValueError(f"invalid CNN config: {cfg}")
        if cfg.convs_per_stage < 1 or not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"invalid CNN config: {cfg}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        c = cfg.in_channels
        for w in cfg.widths:
            for _ in range(cfg.convs_per_stage):
                layers.append(nn.Conv2d(c, w, 3, padding=1, bias=not cfg.batchnorm))
                if cfg.batchnorm:
                    layers.append(nn.BatchNorm2d(w))
                layers.append(nn.ReLU(inplace=True))
                c = w
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.feature_dim = c
        self.head = nn.Linear(c, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected N x {self.cfg.in_channels} x H x W input, got {tuple(x.shape)}")
        return self.pool(self.body(x)).flatten(1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(self.dropout(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def build_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    widths: Sequence[int] = (32, 64, 128),
    *,
    convs_per_stage: int = 1,
    batchnorm: bool = True,
    dropout: float = 0.0,
) -> SmallCNN:
    """Shorthand for ``SmallCNN(CNNConfig(...))``."""
    return SmallCNN(CNNConfig(in_channels, num_classes, tuple(widths), convs_per_stage, batchnorm, dropout))


# --------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """Two conv3x3-BN layers with an identity (or 1x1 conv-BN projection) shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def conv_stem(kind: str, in_channels: int, width: int) -> nn.Sequential:
    """The ResNet stem: "cifar" (3x3 stride-1 conv, for 28x28 / 32x32 inputs) or "imagenet"
    (7x7 stride-2 conv + 3x3 stride-2 max-pool, He et al. 2016); conv-BN-ReLU either way."""
    if kind == "cifar":
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
    if kind == "imagenet":
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
    raise ValueError(f"stem must be 'cifar' or 'imagenet', got {kind!r}")


class ResNetBase(nn.Module):
    """What every ResNet here shares: stages of residual blocks (stride 2 at the start of every stage
    but the first), global average pooling, a Linear head, torchvision's initialisation
    (Kaiming-normal fan_out convs, BatchNorm 1/0, the head with nn.Linear's default), and the
    feature interface of this module. Subclasses build the stem and call ``_assemble``."""

    def _assemble(
        self,
        stem: nn.Module,
        block: type[nn.Module],
        stages: Sequence[tuple[int, int]],
        *,
        in_channels: int,
        num_classes: int,
        c_in: int,
    ) -> None:
        """``stages``: (number of blocks, block width) per stage; ``block(c_in, width, stride)`` outputs
        ``width * block.expansion`` channels (1 for basic blocks, 4 for bottlenecks)."""
        self.stem = stem
        self.in_channels = in_channels
        built, c = [], c_in
        for i, (n, w) in enumerate(stages):
            layers = []
            for j in range(n):
                layers.append(block(c, w, 2 if (j == 0 and i > 0) else 1))
                c = w * getattr(block, "expansion", 1)
            built.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*built)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c
        self.head = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected N x {self.in_channels} x H x W input, got {tuple(x.shape)}")
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


class ResNet(ResNetBase):
    """A basic-block ResNet: stem, stages of ``blocks[i]`` blocks at ``widths[i]`` channels (stride 2
    at the start of every stage but the first), global average pooling, Linear head."""

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int],
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        stem: str = "cifar",
    ):
        super().__init__()
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1 or min(widths) < 1:
            raise ValueError(f"blocks {blocks} and widths {widths} must be non-empty, equal length, positive")
        self._assemble(
            conv_stem(stem, in_channels, widths[0]),
            BasicBlock,
            list(zip(blocks, widths)),
            in_channels=in_channels,
            num_classes=num_classes,
            c_in=widths[0],
        )


def build_resnet(
    depth: int = 20,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width: int = 16,
    stem: str | None = None,
) -> ResNet:
    """A ResNet by depth.

    * ``depth = 6n + 2`` (20, 32, 44, 56, 110): the CIFAR ResNets of He et al. (2016, Sec. 4.2),
      three stages of n blocks at width, 2*width, 4*width channels (width 16 in the paper).
    * ``depth = 18 or 34``: the ImageNet layout (2-2-2-2 / 3-4-6-3 blocks at 64..512 channels, scaled by
      ``width / 64``), with a CIFAR-style 3x3 stem unless ``stem="imagenet"``.
    """
    if depth in (18, 34):
        blocks = (2, 2, 2, 2) if depth == 18 else (3, 4, 6, 3)
        w = width if width != 16 else 64  # width defaults to 16 for CIFAR nets; 64 is ResNet-18's
        return ResNet(blocks, (w, 2 * w, 4 * w, 8 * w), in_channels=in_channels, num_classes=num_classes,
                      stem=stem or "cifar")  # fmt: skip
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, 110, ...) or 18/34, got {depth}")
    n = (depth - 2) // 6
    return ResNet((n, n, n), (width, 2 * width, 4 * width), in_channels=in_channels, num_classes=num_classes,
                  stem=stem or "cifar")  # fmt: skip


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
