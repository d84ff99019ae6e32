"""Q-networks whose last layer has |A| x n_outputs units (n_outputs = 1 for regression, m for classification)."""

from __future__ import annotations

import torch
import torch.nn as nn


class QNetwork(nn.Module):
    """A conv torso and an MLP head; forward returns (B, |A|, n_outputs)."""

    def __init__(
        self, torso: nn.Module, torso_dim: int, hidden: int, n_actions: int, n_outputs: int, scale: float
    ):
        super().__init__()
        self.n_actions, self.n_outputs, self.scale = n_actions, n_outputs, scale
        self.network = nn.Sequential(
            torso,
            nn.Flatten(),
            nn.Linear(torso_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_actions * n_outputs),
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # uint8 observations are converted here, so the replay buffer stays 1 byte per pixel.
        return self.network(obs.float() * self.scale).view(-1, self.n_actions, self.n_outputs)


def minatar_network(in_channels: int, n_actions: int, n_outputs: int, width: int = 1) -> QNetwork:
    """Young & Tian (2019) MinAtar DQN: Conv 16@3x3 (stride 1) on the 10x10 grid, FC 128; `width` scales both."""
    c = 16 * width
    torso = nn.Sequential(nn.Conv2d(in_channels, c, 3, stride=1), nn.ReLU())
    return QNetwork(torso, c * 8 * 8, 128 * width, n_actions, n_outputs, scale=1.0)


def nature_network(in_channels: int, n_actions: int, n_outputs: int, width: int = 1) -> QNetwork:
    """Mnih et al. (2015) Nature CNN on 4x84x84 frames (Dopamine's DQN torso); `width` scales every layer.

    The network-size axis of the paper's scaling claim (Sec. 4.1 uses ResNets and SoftMoE; a width
    multiplier of the Nature CNN is our smaller stand-in, see the README)."""
    c1, c2, c3 = 32 * width, 64 * width, 64 * width
    torso = nn.Sequential(
        nn.Conv2d(in_channels, c1, 8, stride=4), nn.ReLU(),
        nn.Conv2d(c1, c2, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c2, c3, 3, stride=1), nn.ReLU(),
    )  # fmt: skip
    return QNetwork(torso, c3 * 7 * 7, 512 * width, n_actions, n_outputs, scale=1 / 255)


def make_network(
    kind: str, obs_shape: tuple[int, ...], n_actions: int, n_outputs: int, width: int = 1
) -> QNetwork:
    if kind == "minatar":
        if tuple(obs_shape[1:]) != (10, 10):
            raise ValueError(f"the MinAtar network expects (C, 10, 10) observations, got {obs_shape}")
        return minatar_network(obs_shape[0], n_actions, n_outputs, width)
    if kind == "nature":
        if tuple(obs_shape[1:]) != (84, 84):
            raise ValueError(f"the Nature CNN expects (C, 84, 84) observations, got {obs_shape}")
        return nature_network(obs_shape[0], n_actions, n_outputs, width)
    raise ValueError(f"unknown network {kind!r}; choose 'minatar' or 'nature'")
