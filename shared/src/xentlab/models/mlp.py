"""A small configurable MLP: ``in -> [Linear -> (BatchNorm) -> act -> (Dropout)] x L -> head``.

The body (everything up to the last hidden layer) and the head (the final Linear) are separate
attributes, so a package can read the penultimate embedding (``model.embed(x)``) or swap the head for
its own (e.g. a distance layer), without re-implementing the MLP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of an MLP."""

    in_dim: int
    """number of input features"""
    hidden: Sequence[int] = field(default=(256, 256))
    """widths of the hidden layers (empty: a linear model)"""
    out_dim: int | None = 10
    """width of the output Linear (None: no head; ``forward`` returns the embedding)"""
    activation: str = "relu"
    """one of ACTIVATIONS"""
    batchnorm: bool = False
    """BatchNorm1d after each hidden Linear (before the activation, as in Keras' Dense+BN+Act)"""
    dropout: float = 0.0
    """dropout after each hidden activation"""
    head_bias: bool = True
    """bias of the output Linear"""


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {cfg.activation!r}")
        if cfg.in_dim < 1 or any(h < 1 for h in cfg.hidden) or (cfg.out_dim is not None and cfg.out_dim < 1):
            raise ValueError(f"layer widths must be >= 1: {cfg}")
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.in_dim
        for h in cfg.hidden:
            layers.append(nn.Linear(width, h))
            if cfg.batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[cfg.activation]())
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.embed_dim = width
        self.head = nn.Linear(width, cfg.out_dim, bias=cfg.head_bias) if cfg.out_dim is not None else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (the input itself for a model without hidden layers)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        return self.head(z) if self.head is not None else z


def build_mlp(
    in_dim: int,
    hidden: Sequence[int] = (256, 256),
    out_dim: int | None = 10,
    *,
    activation: str = "relu",
    batchnorm: bool = False,
    dropout: float = 0.0,
    head_bias: bool = True,
) -> MLP:
    """Shorthand for ``MLP(MLPConfig(...))``."""
    return MLP(
        MLPConfig(
            in_dim=in_dim,
            hidden=tuple(hidden),
            out_dim=out_dim,
            activation=activation,
            batchnorm=batchnorm,
            dropout=dropout,
            head_bias=head_bias,
        )
    )
