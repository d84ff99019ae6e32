"""PSPNet-ResNet50 as the official RePRI code builds it (``src/model/pspnet.py`` + ``src/model/resnet.py``, themselves
from hszhao/semseg), with the same module names, so the released checkpoints load by key (``module.`` stripped).

* ``layer0``: the "deep base" stem: 3x3 s2 (3 -> 64), 3x3 (64 -> 64), 3x3 (64 -> 128), each + BN + ReLU, then a
  3x3 s2 max-pool (Sequential indices 0-9, as ``nn.Sequential(conv1, bn1, relu, conv2, bn2, relu, conv3, bn3,
  relu, maxpool)``).
* ``layer1``-``layer4``: ResNet-50 bottleneck stages (3, 4, 6, 3 blocks, stride on the 3x3 conv); in ``layer3`` /
  ``layer4`` every 3x3 conv gets dilation 2 / 4 and stride 1 and the projection shortcuts stride 1, so the
  output stride is 8 (417 x 417 -> 53 x 53).
* ``ppm``: pyramid pooling over bins (1, 2, 3, 6): adaptive average pool, 1x1 conv (2048 -> 512), BN, ReLU,
  bilinear upsampling (align_corners=True), concatenated with the input (4096 channels).
* ``bottleneck``: 3x3 conv (4096 -> 512) + BN + ReLU + Dropout2d(0.1): its output is the feature map that RePRI
  uses (``extract_features``); ``classifier`` (1x1 conv to the 16 training classes) is not used at test time.

``width`` scales every channel count (64 = the real network); tests use a tiny one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _stage(inplanes: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    """One ResNet stage; the first block carries the stride (here only layer2 strides) and the projection."""
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4)
        )
    layers = [Bottleneck(inplanes, planes, stride, dilation, downsample)]
    layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class PPM(nn.Module):
    def __init__(self, in_dim: int, reduction_dim: int, bins: Sequence[int]):
        super().__init__()
        self.features = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(in_dim, reduction_dim, 1, bias=False),
                nn.BatchNorm2d(reduction_dim),
                nn.ReLU(inplace=True),
            )
            for b in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [F.interpolate(f(x), size, mode="bilinear", align_corners=True) for f in self.features]
        return torch.cat([x, *pooled], 1)


class PSPNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 16,
        *,
        width: int = 64,
        blocks: Sequence[int] = (3, 4, 6, 3),
        bins: Sequence[int] = (1, 2, 3, 6),
        bottleneck_dim: int = 512,
        dropout: float = 0.1,
    ):
        super().__init__()
        w = width
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )  # fmt: skip
        self.layer1 = _stage(2 * w, w, blocks[0], 1, 1)
        self.layer2 = _stage(4 * w, 2 * w, blocks[1], 2, 1)
        self.layer3 = _stage(8 * w, 4 * w, blocks[2], 1, 2)  # dilated, stride 1 (output stride 8)
        self.layer4 = _stage(16 * w, 8 * w, blocks[3], 1, 4)
        fea_dim = 32 * w
        if fea_dim % len(bins):
            raise ValueError(f"{fea_dim} channels do not split into {len(bins)} pyramid bins")
        self.ppm = PPM(fea_dim, fea_dim // len(bins), bins)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(2 * fea_dim, bottleneck_dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(bottleneck_dim),
            nn.ReLU(inplace=True),
            nn.Dropout2d(p=dropout),
        )
        self.classifier = nn.Conv2d(bottleneck_dim, num_classes, 1)
        self.bottleneck_dim = bottleneck_dim

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.layer0(x)))))
        return self.bottleneck(self.ppm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base-class logits at the input size (bilinear, align_corners=True; zoom factor 8 on (H-1)/8+1 maps)."""
        return F.interpolate(self.classifier(self.extract_features(x)), x.shape[2:], mode="bilinear",
                             align_corners=True)  # fmt: skip


def load_official_checkpoint(model: PSPNet, path) -> dict:
    """Load an official RePRI checkpoint (``{'epoch', 'state_dict', 'optimizer'}``, keys prefixed ``module.`` by
    DistributedDataParallel) strictly; returns the metadata (epoch) for the record."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: expected {{'state_dict': ...}} (an official RePRI PSPNet checkpoint)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a PSPNet-ResNet50 checkpoint of this shape: {e}") from None
    return {"epoch": blob.get("epoch") if isinstance(blob.get("epoch"), int) else -1}
