"""Distance heads for the harmonic loss (Baek et al. 2025; Miller-Golub et al., arXiv 2603.10225).

A head holds one prototype w_c per class (the weight of a bias-free Linear, shape [V, N]) and maps an
embedding x to distances d_c(x). The harmonic probabilities are

    p_c = d_c^(-n) / sum_j d_j^(-n) = softmax_c(-n log d_c),

n being the harmonic exponent, and the loss is NLL on ``log(p + 1e-8)`` (as in the public
implementation of the paper's layers: the 1e-8 floor bounds the per-example loss by ~18.4). Dividing d
by min_c d_c (done there for some heads) leaves p unchanged and is omitted.

Distances (vision/models/distlayers.py of the implementation; eps = 1e-4 for every head, the value that
its ``SimpleImageMLP_WithDistLayer`` and its vision config (``shared_distance_params``) pass to every
layer, which overrides the layer classes' own defaults of 1e-8 (Chebyshev) and 1e-6 (Mahalanobis)):

* euclidean: the *squared* distance ||w||^2 + ||x||^2 - 2 w.x + eps (no clamp there)
* cosine: 1 - cos(x, w) + eps (F.normalize form; no clamp)
* manhattan: sum |x - w| + eps (no clamp)
* minkowski (p = 1.5): dist = (sum clamp(|x - w| + eps, eps, 1e6)^p + eps)^(1/p), returned as
  clamp(dist + eps, min=eps)
* chebyshev: the softmax-weighted mean of z = |x - w| / (std_k |x - w| + eps) (a smooth max of
  std-normalised differences), returned as clamp(d + eps, eps, 1e6)
* bray_curtis: sum |x - w| / clamp(|sum (x + w)| + eps, min=10 eps), returned as clamp(d + eps, eps, 1e6)
* mahalanobis_diag: sqrt(sum_k P_k (x - w)_k^2 + eps), P_k = exp(clamp(l_k, -10, 10)) + eps, l = 0 at init;
  returned as clamp(d + eps, eps, 1e6)
* mahalanobis_full: sqrt((x-w)^T P (x-w) + eps), P = L L^T + eps I with L lower-triangular (diagonal
  clamped to >= eps), L = 0.1 I at init -- that implementation's "cholesky" variant; returned as
  clamp(d + eps, eps, 1e6). Its "standard" variant (an unconstrained learnable P, symmetrised) is not
  used: at Adam lr 1e-3 its P loses positive-definiteness within a few epochs on digits and accuracy
  collapses to chance (11.7% in our trial), whereas L L^T is positive semi-definite by construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-4  # the eps the implementation's MLP and vision config pass to every distance layer

DISTANCES = (
    "euclidean",
    "cosine",
    "manhattan",
    "minkowski",
    "chebyshev",
    "bray_curtis",
    "mahalanobis_diag",
    "mahalanobis_full",
)


class DistanceHead(nn.Module):
    """Prototype head: ``forward(x) -> distances [B, V]``; ``logits(x)`` gives log(p + 1e-8)."""

    def __init__(self, in_features: int, num_classes: int, distance: str, n: float = 1.0):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if n <= 0:
            raise ValueError(f"the harmonic exponent n must be > 0, got {n}")
        self.distance, self.n = distance, n
        # prototypes initialised as nn.Linear(in, V, bias=False) does (Kaiming-uniform)
        self.weight = nn.Parameter(nn.Linear(in_features, num_classes, bias=False).weight.detach().clone())
        if distance == "mahalanobis_diag":
            self.log_diag = nn.Parameter(torch.zeros(in_features))
        if distance == "mahalanobis_full":
            self.chol = nn.Parameter(torch.eye(in_features) * 0.1)

    @property
    def prototypes(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        kind = self.distance
        eps = EPS
        # Euclidean, cosine and Manhattan: returned unclamped, as there
        if kind == "euclidean":
            return (w * w).sum(1)[None, :] + (x * x).sum(1)[:, None] - 2 * x @ w.T + eps
        if kind == "cosine":
            return 1 - F.normalize(x, dim=-1) @ F.normalize(w, dim=-1).T + eps
        if kind == "manhattan":
            return (x[:, None, :] - w[None]).abs().sum(-1) + eps
        if kind == "minkowski":
            p = 1.5
            diff = ((x[:, None, :] - w[None]).abs() + eps).clamp(eps, 1e6)
            d = ((diff**p).sum(-1) + eps).clamp_min(eps) ** (1 / p)
            return (d + eps).clamp_min(eps)  # no upper clamp in this layer
        if kind == "chebyshev":
            diff = (x[:, None, :] - w[None]).abs()
            z = diff / (diff.std(dim=-1, keepdim=True) + eps)
            d = (torch.softmax(z, dim=-1) * z).sum(-1)
        elif kind == "bray_curtis":
            num = (x[:, None, :] - w[None]).abs().sum(-1)
            den = ((x.sum(1)[:, None] + w.sum(1)[None, :]).abs() + eps).clamp_min(10 * eps)
            d = num / den
        elif kind == "mahalanobis_diag":
            prec = torch.exp(self.log_diag.clamp(-10, 10)) + eps
            d = torch.sqrt((((x[:, None, :] - w[None]) ** 2) * prec).sum(-1).clamp_min(0) + eps)
        else:  # mahalanobis_full
            eye = torch.eye(len(self.chol), device=x.device, dtype=x.dtype)
            lower = torch.tril(self.chol)
            lower = (
                lower - torch.diag_embed(lower.diagonal()) + torch.diag_embed(lower.diagonal().clamp_min(eps))
            )
            prec = lower @ lower.T + eps * eye
            diff = x[:, None, :] - w[None]
            d = torch.sqrt(torch.einsum("bvn,nm,bvm->bv", diff, prec, diff).clamp_min(0) + eps)
        return (d + eps).clamp(eps, 1e6)  # the layers' `dist_clamped` step

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """log(p + 1e-8) with p_c ∝ d_c^(-n), computed as a softmax of -n log d (stable)."""
        p = torch.softmax(-self.n * torch.log(self(x)), dim=-1)
        return torch.log(p + 1e-8)


class HarmonicClassifier(nn.Module):
    """An MLP body followed by a distance head; ``forward`` returns log-probabilities for NLL."""

    def __init__(self, body: nn.Module, head: DistanceHead):
        super().__init__()
        self.body, self.head = body, head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.logits(self.body(x))
