"""The pseudo labels of G-SimCLR (Sec. III-A): a denoising convolutional autoencoder, its bottleneck embeddings,
and KMeans with K = batch size clusters on them.

Official layout (CIFAR10/Autoencoder.ipynb): GaussianNoise(stddev=0.01) on the input; encoder of three
[conv3x3 - BatchNorm - ReLU - maxpool2] blocks at 32/64/128 channels (the last max-pool is the "retrieval" layer,
4x4x128 on CIFAR-10); decoder of three [upsample2 - conv3x3 - BatchNorm - ReLU] blocks at 128/64/32 channels and a
sigmoid conv3x3 to the image; Adam (Keras default lr 1e-3), MSE, batch 64 (it early-stopped at epoch 23 of 100).
The embedding of an image is the global average pool of its retrieval output (128-d); the training notebook then
fits ``KMeans(n_clusters=BATCH_SIZE, random_state=0)`` on the embeddings of the whole training set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

OFFICIAL_WIDTHS = (32, 64, 128)
OFFICIAL_NOISE_STD = 0.01


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DenoisingAutoencoder(nn.Module):
    """The official DAE with configurable widths; ``embed`` gives the pooled bottleneck ("retrieval") features."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = OFFICIAL_WIDTHS,
        noise_std: float = OFFICIAL_NOISE_STD,
    ):
        super().__init__()
        if not widths or min(widths) < 1 or noise_std < 0:
            raise ValueError(f"widths must be positive and noise_std >= 0, got {widths}, {noise_std}")
        self.noise_std = noise_std
        enc: list[nn.Module] = []
        c = in_channels
        for w in widths:
            enc += [*_block(c, w), nn.MaxPool2d(2)]
            c = w
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        for w in reversed(widths):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), *_block(c, w)]
            c = w
        dec += [nn.Conv2d(c, in_channels, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)
        self.feature_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise_std > 0:  # Keras GaussianNoise is active in training only
            x = x + self.noise_std * torch.randn_like(x)
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(N, widths[-1]) embeddings: global average pool of the bottleneck, in eval mode (no noise)."""
        was_training = self.training
        self.eval()
        out = torch.cat(
            [self.encoder(x[i : i + batch_size]).mean(dim=(2, 3)) for i in range(0, len(x), batch_size)]
        )
        self.train(was_training)
        return out


def train_autoencoder(
    model: DenoisingAutoencoder,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    log: Callable[..., None] | None = None,
) -> list[float]:
    """Adam + MSE reconstruction of the clean image from the noisy one; returns the mean loss per epoch.

    Batches come in data order without shuffling, as the notebook's ``.batch(64)`` dataset (Keras ``fit`` on a
    ``tf.data.Dataset`` does not shuffle it).
    """
    if epochs < 1 or len(x) < batch_size:
        raise ValueError(
            f"need epochs >= 1 and at least one batch of {batch_size}, got {epochs}, {len(x)} images"
        )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n_batches = len(x) // batch_size  # drop_remainder=True
    curve = []
    for epoch in range(epochs):
        total = 0.0
        for b in range(n_batches):
            xb = x[b * batch_size : (b + 1) * batch_size]
            loss = nn.functional.mse_loss(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        curve.append(total / n_batches)
        if log is not None:
            log(dae_epoch=epoch, dae_mse=curve[-1])
    return curve


def fit_kmeans(embeddings: np.ndarray, n_clusters: int, *, random_state: int = 0, n_init: int = 10):
    """The fitted ``KMeans(n_clusters=BATCH_SIZE, random_state=0)`` of the notebook, whose scikit-learn of 2020 ran
    n_init=10 restarts by default."""
    from sklearn.cluster import KMeans

    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) < n_clusters or n_clusters < 1:
        raise ValueError(
            f"need (N, D) embeddings with N >= n_clusters >= 1, got {embeddings.shape} and {n_clusters}"
        )
    return KMeans(n_clusters=n_clusters, random_state=random_state, n_init=n_init).fit(embeddings)


def kmeans_pseudo_labels(
    embeddings: np.ndarray, n_clusters: int, *, random_state: int = 0, n_init: int = 10
) -> np.ndarray:
    """KMeans cluster index per image (the official pseudo labels)."""
    return fit_kmeans(embeddings, n_clusters, random_state=random_state, n_init=n_init).labels_.astype(
        np.int64
    )
