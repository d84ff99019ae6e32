"""Networks: the SimCLR pre-training net (backbone + projection head) and the fine-tuning net (official
``ResnetSSLModel``: the pretrained backbone, a bias-free linear classifier and a ``Contrastor``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xentlab.data.cache import source_digest
from xentlab.models.cnn import build_cnn

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the pre-training cache key (``core_tuning.pretrain.code_version``)"""


def build_backbone(widths: tuple[int, ...], convs_per_stage: int = 1) -> nn.Module:
    """xentlab's SmallCNN; ``.features(x)`` is the pooled post-ReLU feature h (``.feature_dim`` wide)."""
    return build_cnn(3, 10, widths, convs_per_stage=convs_per_stage)


class ProjectionHead(nn.Module):
    """SimCLR's MLP head g(h) = W2 ReLU(W1 h), used only for pre-training (NT-Xent is taken on g(h))."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Contrastor(nn.Module):
    """Official ``Contrastor``: Linear(d, d) - ReLU - Linear(d, contrast_dim), then L2 normalisation."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.input = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output(F.relu(self.input(h))), dim=1)


class FineTuneNet(nn.Module):
    """Backbone + bias-free classifier (official ``nn.Linear(2048, C, bias=False)``) + contrastor.

    Both arms build the same modules in the same order, so one seed gives both arms the same initial heads;
    CE-tuning simply never calls the contrastor."""

    def __init__(self, backbone: nn.Module, num_classes: int, contrast_dim: int):
        super().__init__()
        self.backbone = backbone
        dim = backbone.feature_dim
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        self.contrastor = Contrastor(dim, contrast_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
