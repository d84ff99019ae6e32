"""The networks of the official LAF code (``Model.py``), device-agnostic.

* ``LAFCNN``: the official CNN for 28x28 grey images -- conv5x5(1->16)-ReLU-maxpool2, conv5x5(16->32)-
  ReLU-maxpool2, ``fc1`` Linear(32*7*7 -> 256) whose output is the **embedding** (no activation), and
  ``fc2`` = Linear(256 -> 128) -> Linear(128 -> 10) (no activation between them, as in the official code).
  ``input_size`` adapts ``fc1`` to other square inputs (8x8 digits: 32*2*2 -> 256).
* ``LAFResNet``: ResNet-18 features (xentlab's builder) -> ``fc1`` Linear(512 -> 256) embedding ->
  ``fc2`` Linear(256 -> 10) (official ``ResNet``: torchvision resnet18 without its fc, on 224x224
  inputs; ours uses the CIFAR 3x3 stem on 32x32 inputs, see the README).
* ``VAE``: the representation VAE of both, encoder 256 -> 128 -> 32 -> (mu, log sigma^2) with
  ``sigma = exp(0.5 * linear)``, reparameterised sample, decoder latent -> 32 -> 128 -> 256 with a
  sigmoid output.

Every classifier returns ``(logits, embedding)``, like the official ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xentlab.models.cnn import build_resnet

EMBED_DIM = 256


class LAFCNN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        side = input_size // 4
        if side < 1:
            raise ValueError(f"input_size must be >= 4, got {input_size}")
        self.fc1 = nn.Linear(32 * side * side, EMBED_DIM)
        self.fc2 = nn.Sequential(nn.Linear(EMBED_DIM, 128), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv2(self.conv1(x)).flatten(1)
        e = self.fc1(h)
        return self.fc2(e), e


class LAFResNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.backbone = build_resnet(18, in_channels=in_channels, num_classes=num_classes)
        self.fc1 = nn.Linear(self.backbone.feature_dim, EMBED_DIM)
        self.fc2 = nn.Linear(EMBED_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.fc1(self.backbone.features(x))
        return self.fc2(e), e


class VAE(nn.Module):
    def __init__(self, latent_dims: int = 8, dim: int = EMBED_DIM):
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(dim, 128), nn.Linear(128, 32)
        self.mu, self.log_var = nn.Linear(32, latent_dims), nn.Linear(32, latent_dims)
        self.dec = nn.Sequential(
            nn.Linear(latent_dims, 32), nn.ReLU(), nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, dim)
        )

    def forward(self, e: torch.Tensor):
        """(reconstruction, z, mu, sigma), as the official ``VariationalAutoencoder.forward``."""
        h = F.relu(self.enc2(F.relu(self.enc1(e))))
        mu = self.mu(h)
        sigma = torch.exp(0.5 * self.log_var(h))
        z = mu + sigma * torch.randn_like(sigma)
        return torch.sigmoid(self.dec(z)), z, mu, sigma
