"""Distance heads for the harmonic loss (Baek et al. 2025; Miller-Golub et al., arXiv 2603.10225).

A head holds one prototype w_c per class (the weight of a bias-free Linear, shape [V, N]) and maps an
embedding x to distances d_c(x). The harmonic probabilities are

    p_c = d_c^(-n) / sum_j d_j^(-n) = softmax_c(-n log d_c),

n being the harmonic exponent, and the loss is NLL on ``log(p + 1e-8)`` (as in the public
implementation of the paper's layers: the 1e-8 floor bounds the per-example loss by ~18.4). Dividing d
by min_c d_c (done there for some heads) leaves p unchanged and is omitted.

Distances (eps as in that implementation):

* euclidean: the *squared* distance ||w||^2 + ||x||^2 - 2 w.x + 1e-4
* cosine: 1 - cos(x, w) + 1e-4 (F.normalize form)
* manhattan: sum |x - w| + 1e-4
* minkowski (p = 1.5): (sum (|x - w| + eps)^p + eps)^(1/p), eps = 1e-4
* chebyshev: the softmax-weighted mean of |x - w| / std_k |x - w| (a smooth max of std-normalised
  differences; eps = 1e-8)
* bray_curtis: sum |x - w| / (|sum (x + w)| + eps), eps = 1e-4
* mahalanobis_diag: sqrt(sum_k P_k (x - w)_k^2 + eps), P_k = exp(clamp(l_k, -10, 10)) + eps, l = 0 at init
* mahalanobis_full: sqrt((x-w)^T P (x-w) + eps), P = L L^T + eps I with L lower-triangular (diagonal
  clamped to >= eps), L = 0.1 I at init, eps = 1e-6 -- that implementation's "cholesky" variant. Its
  "standard" variant (an unconstrained learnable P, symmetrised) is not used: at Adam lr 1e-3 its P
  loses positive-definiteness within a few epochs on digits and accuracy collapses to chance (11.7%
  in our trial), whereas L L^T is positive semi-definite by construction.

Every distance is clamped to [eps, 1e6] before the power, as there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
        if kind == "euclidean":
            d = (w * w).sum(1)[None, :] + (x * x).sum(1)[:, None] - 2 * x @ w.T + 1e-4
            eps = 1e-4
        elif kind == "cosine":
            d = 1 - F.normalize(x, dim=-1) @ F.normalize(w, dim=-1).T + 1e-4
            eps = 1e-4
        elif kind == "manhattan":
            d = (x[:, None, :] - w[None]).abs().sum(-1) + 1e-4
            eps = 1e-4
        elif kind == "minkowski":
            eps, p = 1e-4, 1.5
            diff = ((x[:, None, :] - w[None]).abs() + eps).clamp(eps, 1e6)
            d = ((diff**p).sum(-1) + eps).clamp_min(eps) ** (1 / p)
        elif kind == "chebyshev":
            eps = 1e-8
            diff = (x[:, None, :] - w[None]).abs()
            z = diff / (diff.std(dim=-1, keepdim=True) + eps)
            d = (torch.softmax(z, dim=-1) * z).sum(-1)
        elif kind == "bray_curtis":
            eps = 1e-4
            num = (x[:, None, :] - w[None]).abs().sum(-1)
            den = ((x.sum(1)[:, None] + w.sum(1)[None, :]).abs() + eps).clamp_min(10 * eps)
            d = num / den
        elif kind == "mahalanobis_diag":
            eps = 1e-6
            prec = torch.exp(self.log_diag.clamp(-10, 10)) + eps
            d = torch.sqrt((((x[:, None, :] - w[None]) ** 2) * prec).sum(-1).clamp_min(0) + eps)
        else:  # mahalanobis_full
            eps = 1e-6
            eye = torch.eye(len(self.chol), device=x.device, dtype=x.dtype)
            lower = torch.tril(self.chol)
            lower = (
                lower - torch.diag_embed(lower.diagonal()) + torch.diag_embed(lower.diagonal().clamp_min(eps))
            )
            prec = lower @ lower.T + eps * eye
            diff = x[:, None, :] - w[None]
            d = torch.sqrt(torch.einsum("bvn,nm,bvm->bv", diff, prec, diff).clamp_min(0) + eps)
        return d.clamp(eps, 1e6)

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
