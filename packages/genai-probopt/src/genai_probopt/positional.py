"""Positional encodings: RoPE, ALiBi with geometric (Press et al.) or harmonic head slopes.

Li (2024, arXiv 2410.18441, abstract) proposes "a factored combination of rotary positional encoding
(RoPE) and attention with linear biases (ALiBi) with a harmonic series". The body of the paper could
not be read from this machine, so the formulas below are the plain reading of that sentence and are
marked [unverified] in the README:

* RoPE (Su et al. 2021) rotates queries and keys by position, so q_i . k_j depends on i - j;
* ALiBi (Press et al. 2022) adds -m_h (i - j) to the attention logit of head h (j <= i);
* the combination applies both: logit_h(i, j) = RoPE(q_i) . RoPE(k_j) / sqrt(d) - m_h (i - j);
* "harmonic series": m_h = 1 / h for heads h = 1..H, instead of Press et al.'s geometric
  m_h = 2^(-8 h / H).
"""

from __future__ import annotations

import torch

# RoPE is the shared implementation of the small decoder (the same half-split layout), re-exported here
from xentlab.models.small_decoder import apply_rope, rope_angles

__all__ = ["alibi_bias", "apply_rope", "causal_mask", "geometric_slopes", "harmonic_slopes", "rope_angles"]


def harmonic_slopes(heads: int) -> torch.Tensor:
    """ALiBi slopes m_h = 1/h, h = 1..heads (the harmonic series 1, 1/2, 1/3, ...)."""
    if heads < 1:
        raise ValueError(f"heads must be >= 1, got {heads}")
    return 1.0 / torch.arange(1, heads + 1, dtype=torch.float64)


def geometric_slopes(heads: int) -> torch.Tensor:
    """Press et al. (2022, Sec. 3) slopes m_h = 2^(-8 h / H), h = 1..H (exact for any H; the paper's
    interpolation for non-powers of two is not needed for the H used here)."""
    if heads < 1:
        raise ValueError(f"heads must be >= 1, got {heads}")
    return 2.0 ** (-8.0 * torch.arange(1, heads + 1, dtype=torch.float64) / heads)


def alibi_bias(slopes: torch.Tensor, length: int) -> torch.Tensor:
    """(H, T, T) additive attention bias: -m_h (i - j) for j <= i and -inf above the diagonal
    (the causal mask folded in, so the bias alone defines the allowed keys)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    pos = torch.arange(length, dtype=slopes.dtype)
    dist = pos[:, None] - pos[None, :]  # i - j
    bias = -slopes[:, None, None] * dist
    return bias.masked_fill(dist < 0, float("-inf"))


def causal_mask(length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, T, T): 0 on and below the diagonal, -inf above (the bias of the RoPE-only model)."""
    pos = torch.arange(length)
    return torch.zeros(1, length, length, dtype=dtype).masked_fill(pos[None, :] > pos[:, None], float("-inf"))
