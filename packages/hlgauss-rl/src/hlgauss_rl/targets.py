"""Categorical target distributions for value learning (Farebrother et al. 2024, Sec. 3.1).

Three ways to turn a scalar (or a distribution of scalars) into a categorical target:

* HL-Gauss (Imani & White 2018; the paper's Appendix A): a Gaussian N(y, sigma^2) integrated over
  `m` bins whose EDGES are ``linspace(v_min, v_max, m + 1)``; predictions use the bin CENTRES.
* Two-hot (Schrittwieser et al. 2020): the mass of y split between the two nearest ATOMS
  ``linspace(v_min, v_max, m)`` so that the expectation is exactly y.
* The C51 projection (Bellemare et al. 2017, Algorithm 1): the distributional Bellman target
  r + gamma * z_i, with probabilities p_i, projected onto the same atoms.

Two-hot and the C51 projection share one kernel: an atom z_j receives ``max(0, 1 - |x - z_j| / dz)``
of a unit mass at x (Bellemare et al. 2017, Eq. 7). Two-hot is the projection of a Dirac.
"""

from __future__ import annotations

import math

import torch

# The paper's recommended smoothing: sigma = 0.75 * bin width (Sec. 3.1 and Appendix A; "spreads the
# probability mass to approximately 6 locations").
DEFAULT_SIGMA_RATIO = 0.75


def _check_support(v_min: float, v_max: float, num: int, what: str) -> None:
    if not (math.isfinite(v_min) and math.isfinite(v_max)) or v_max <= v_min:
        raise ValueError(f"need finite v_min < v_max, got v_min={v_min}, v_max={v_max}")
    if num < 2:
        raise ValueError(f"need at least 2 {what}, got {num}")


def hl_gauss_edges(v_min: float, v_max: float, num_bins: int, dtype=torch.float32) -> torch.Tensor:
    """Bin edges z_0..z_m = linspace(v_min, v_max, m + 1) (Appendix A, ``support``)."""
    _check_support(v_min, v_max, num_bins, "bins")
    return torch.linspace(v_min, v_max, num_bins + 1, dtype=dtype)


def bin_centres(edges: torch.Tensor) -> torch.Tensor:
    """c_i = (z_{i-1} + z_i) / 2. Some public copies get this wrong (e.g. (z[:-1] - z[1:]) / 2)."""
    return (edges[:-1] + edges[1:]) / 2


def atoms(v_min: float, v_max: float, num_atoms: int, dtype=torch.float32) -> torch.Tensor:
    """Support points of two-hot and C51: linspace(v_min, v_max, m) (Bellemare et al. 2017, Sec. 4)."""
    _check_support(v_min, v_max, num_atoms, "atoms")
    return torch.linspace(v_min, v_max, num_atoms, dtype=dtype)


def hl_gauss_probs(target: torch.Tensor, edges: torch.Tensor, sigma: float) -> torch.Tensor:
    """HL-Gauss target distribution, shape ``target.shape + (m,)``.

    p_i(y) = [erf((z_i - y) / (sqrt(2) sigma)) - erf((z_{i-1} - y) / (sqrt(2) sigma))]
             / [erf((z_m - y) / (sqrt(2) sigma)) - erf((z_0 - y) / (sqrt(2) sigma))]

    i.e. the mass of N(y, sigma^2) in each bin, renormalised to the support (Appendix A). y is clipped
    to [z_0, z_m] first: the Appendix A snippet does not clip, and a y far outside the support gives a
    0/0 normaliser (NaN). Clipping keeps the normaliser >= erf((z_m - z_0) / (sqrt(2) sigma)) > 0.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not torch.is_floating_point(target):
        raise TypeError(f"target must be a floating tensor, got {target.dtype}")
    edges = edges.to(device=target.device, dtype=target.dtype)
    y = target.clamp(edges[0], edges[-1]).unsqueeze(-1)
    cdf = torch.special.erf((edges - y) / (math.sqrt(2.0) * sigma))
    normaliser = cdf[..., -1:] - cdf[..., :1]
    return (cdf[..., 1:] - cdf[..., :-1]) / normaliser


def _triangle(points: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Share of a unit mass at each point given to each atom: max(0, 1 - |x - z_j| / dz).

    Shape ``points.shape + (m,)``. For x in [z_0, z_{m-1}] exactly the two neighbouring atoms get mass,
    (z_{k+1} - x) / dz and (x - z_k) / dz, which sum to 1 and have mean x (Bellemare et al. 2017, Eq. 7).
    """
    dz = support[1] - support[0]
    return (1 - (points.unsqueeze(-1) - support).abs() / dz).clamp(min=0)


def two_hot_probs(target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Two-hot target, shape ``target.shape + (m,)``; y is clipped to [z_0, z_{m-1}] first."""
    if not torch.is_floating_point(target):
        raise TypeError(f"target must be a floating tensor, got {target.dtype}")
    support = support.to(device=target.device, dtype=target.dtype)
    return _triangle(target.clamp(support[0], support[-1]), support)


def c51_project(
    next_probs: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    support: torch.Tensor,
) -> torch.Tensor:
    """Categorical projection of the distributional Bellman target (Bellemare et al. 2017, Algorithm 1).

    next_probs: (B, m) probabilities of the target network at (s', a*); rewards, dones: (B,).
    Each atom z_i moves to T z_i = clip(r + gamma * (1 - done) * z_i, v_min, v_max) and its mass p_i
    is split between the atoms l = floor(b_i) and l + 1 around b_i = (T z_i - v_min) / dz, in the
    proportions (l + 1 - b_i) and (b_i - l): the triangle kernel of Eq. 7, in O(B m) with a scatter.
    Returns (B, m); each row sums to sum(p).
    """
    m = support.numel()
    if next_probs.ndim != 2 or next_probs.shape[-1] != m:
        raise ValueError(f"next_probs must be (B, {m}), got {tuple(next_probs.shape)}")
    support = support.to(device=next_probs.device, dtype=next_probs.dtype)
    not_done = 1.0 - dones.to(next_probs.dtype)
    tz = rewards.to(next_probs.dtype).unsqueeze(-1) + gamma * not_done.unsqueeze(-1) * support  # (B, m)
    b = (tz.clamp(support[0], support[-1]) - support[0]) / (support[1] - support[0])
    # l <= m - 2 so that l + 1 is an atom; b = m - 1 (the top atom) then puts weight b - l = 1 on it.
    # Unlike a ceil-based upper index, this needs no special case when b is an integer.
    lower = b.floor().clamp(0, m - 2)
    w_upper = b - lower
    out = torch.zeros_like(next_probs)
    out.scatter_add_(1, lower.long(), next_probs * (1 - w_upper))
    out.scatter_add_(1, lower.long() + 1, next_probs * w_upper)
    return out
