"""The digit classifiers of the phase-transition figure and the temperature fingerprint (official code).

Inputs are flat 64-d digits (8x8 images scaled to [0, 1]); outputs are 10 logits.

| name          | official source                                  | what it is                                        |
|---------------|--------------------------------------------------|---------------------------------------------------|
| linear        | experiments/ghostenvelope/models.py::Linear      | 64 -> 10                                          |
| mlp           | experiments/lrspike/run.py::SimpleMLP            | 64 -> 128 -> ReLU -> 10 (the lrspike model)       |
| mlp_ln        | experiments/phasetransition/run.py::MLPDigits    | 2 x (Linear 128, LayerNorm, GELU) -> 10           |
| cnn           | experiments/ghostenvelope/models.py::CNN         | conv 16, pool, conv 32, pool, fc 64 (GELU)        |
| cnn_bn        | ours: the CNN with BatchNorm2d after each conv   | (see below)                                       |
| transformer   | experiments/tfmbottlenecks/run.py::TinyTransformer | rows as 8 tokens + CLS, d 32, depth 2, 4 heads |
| mlp_gelu      | experiments/tempfingerprint/run.py::MLPDigits    | 64 -> 128 -> GELU -> 128 -> GELU -> 10 (no norm)  |
| ag_transformer| experiments/archgrid/run.py::Transformer         | one token: embed 64 -> 32, attention + GELU FFN   |
| ag_mlp_ln     | experiments/archgrid/run.py::MLPLN               | 3 x (Linear 64, LayerNorm, GELU) -> 10            |
| ag_cnn_bn     | experiments/archgrid/run.py::CNNBN               | Conv1d over the 64 pixels, BatchNorm1d, mean pool |

The first six are the phase-transition figure's; ``mlp_gelu`` is the temperature-fingerprint model;
the three ``ag_*`` models are the architecture grid's (Fig. 10), written as there (same layers, same
creation order, so a seeded init draws the same numbers).

The script that produced the paper's six-architecture figure (phasetransition/plot.py reads
exp7b_rho_deltamax_results.npz) is not in the official repository, so the models are taken from the
official experiments that define them. The only official CNN+BN (archgrid's CNNBN, a Conv1d over the
flattened pixels with mean pooling) reaches about 38% test accuracy in eval mode after the
phase-transition training recipe (its BatchNorm running statistics do not match its batch statistics),
which leaves nothing to retain; we use the 2-D CNN with BatchNorm2d instead.

The transformer's attention is written out (no fused kernel) so that torch.func.jvp can trace it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MLP(nn.Module):
    """The official lrspike MLP: 64 -> 128 -> ReLU -> 10."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, width)
        self.fc2 = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class MLPLayerNorm(nn.Module):
    """The official phase-transition MLP (phasetransition/run.py::MLPDigits, = ghostenvelope's MLP):
    64 -> 128 -> LayerNorm -> GELU -> 128 -> LayerNorm -> GELU -> 10."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.fc1, self.ln1 = nn.Linear(64, width), nn.LayerNorm(width)
        self.fc2, self.ln2 = nn.Linear(width, width), nn.LayerNorm(width)
        self.fc3 = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.ln1(self.fc1(x)))
        x = F.gelu(self.ln2(self.fc2(x)))
        return self.fc3(x)


class MLPGelu(nn.Module):
    """The temperature-fingerprint MLP (tempfingerprint/run.py::MLPDigits): two GELU layers of 128,
    no normalisation, exact (erf) GELU as F.gelu's default."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, width)
        self.fc2 = nn.Linear(width, width)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.gelu(self.fc2(F.gelu(self.fc1(x)))))


class CNN(nn.Module):
    """ghostenvelope's CNN on the 8x8 image: two conv + max-pool stages, then a 64-unit layer."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 8, 8)
        x = F.max_pool2d(F.gelu(self.c1(x)), 2)
        x = F.max_pool2d(F.gelu(self.c2(x)), 2)
        return self.fc2(F.gelu(self.fc1(x.flatten(1))))


class CNNBatchNorm(CNN):
    """The CNN above with BatchNorm2d after each convolution (our construction, see the table)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(16), nn.BatchNorm2d(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 8, 8)
        x = F.max_pool2d(F.gelu(self.bn1(self.c1(x))), 2)
        x = F.max_pool2d(F.gelu(self.bn2(self.c2(x))), 2)
        return self.fc2(F.gelu(self.fc1(x.flatten(1))))


class _Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x)) with a GELU FFN of width 4d."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} must be divisible by heads {heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyTransformer(nn.Module):
    """tfmbottlenecks' TinyTransformer: the 8 image rows as tokens, a CLS token, learned positions."""

    def __init__(self, d: int = 32, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed_row = nn.Linear(8, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 9, d))
        self.blocks = nn.ModuleList([_Block(d, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = torch.cat([self.cls.expand(b, -1, -1), self.embed_row(x.reshape(b, 8, 8))], dim=1) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))


class ArchgridTransformer(nn.Module):
    """archgrid's Transformer: the whole image is ONE token (embed 64 -> 32), then a pre-LN block with
    single-head attention (qkv with bias) and a GELU FFN of width 4 * 32, no final norm. With one
    token the attention weights are softmax over a single score, i.e. 1, so q and k get no gradient;
    the block reduces to x + out(v) + FFN, as in the official code."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        # creation order as in the official class, so torch.manual_seed(seed) gives the same init
        self.embed = nn.Linear(64, dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)
        self.ffn1 = nn.Linear(dim, dim * 4)
        self.ffn2 = nn.Linear(dim * 4, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)
        self.scale = dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).unsqueeze(1)  # (B, 1, dim)
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        att = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        x = x + self.out(att @ v)
        x = x + self.ffn2(F.gelu(self.ffn1(self.norm2(x))))
        return self.head(x.squeeze(1))


class ArchgridMLPLayerNorm(nn.Module):
    """archgrid's MLPLN: three (Linear 64, LayerNorm, GELU) layers, then a linear head."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.fc1, self.norm1 = nn.Linear(64, dim), nn.LayerNorm(dim)
        self.fc2, self.norm2 = nn.Linear(dim, dim), nn.LayerNorm(dim)
        self.fc3, self.norm3 = nn.Linear(dim, dim), nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.fc1(x)))
        x = F.gelu(self.norm2(self.fc2(x)))
        x = F.gelu(self.norm3(self.fc3(x)))
        return self.head(x)


class ArchgridCNNBatchNorm(nn.Module):
    """archgrid's CNNBN: the 64 pixels as a 1-channel sequence, two (Conv1d k3, BatchNorm1d, ReLU)
    layers of 32 channels, mean pooling over the 64 positions, a linear head."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, dim, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(dim)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)  # (B, 1, 64)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean(dim=-1))  # = AdaptiveAvgPool1d(1)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "linear": Linear,
    "mlp": MLP,
    "mlp_ln": MLPLayerNorm,
    "cnn": CNN,
    "cnn_bn": CNNBatchNorm,
    "transformer": TinyTransformer,
    "mlp_gelu": MLPGelu,
    "ag_transformer": ArchgridTransformer,
    "ag_mlp_ln": ArchgridMLPLayerNorm,
    "ag_cnn_bn": ArchgridCNNBatchNorm,
}

# Display names as in the paper's figure (experiments/phasetransition/plot.py).
DISPLAY_NAMES = {
    "linear": "Linear",
    "mlp": "MLP",
    "mlp_ln": "MLP+LayerNorm",
    "cnn": "CNN",
    "cnn_bn": "CNN+BatchNorm",
    "transformer": "TinyTransformer",
    "mlp_gelu": "MLP (GELU)",
    "ag_transformer": "Transformer",
    "ag_mlp_ln": "MLP+LN",
    "ag_cnn_bn": "CNN+BN",
}


def build_model(name: str) -> nn.Module:
    """A freshly initialised model (seed torch before calling for a reproducible init)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]()
