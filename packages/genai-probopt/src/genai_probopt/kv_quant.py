"""Staircase adaptive quantisation (SAQ) of a KV cache, and the uniform baselines.

Li (2024, arXiv 2410.18441, abstract): "staircase adaptive quantization (SAQ) of key-value (KV)
cache for multi-query attention (MQA) ... to have gradual quantization degradation". The body of the
paper (bucket sizes, bit levels, the quantiser of its reference [16]) could not be read here; this
module implements the plain reading [unverified]:

* the cached key/value vector of a token is stored with a bit width that depends on its age
  a = t - j (t = the position of the query that reads the cache, j = the token's position): recent
  tokens keep more bits, older ones fewer, in steps ("staircase"), e.g. the cpu run's ``saq_8_4_2``:
  8 bits for a < 8, 4 bits for 8 <= a < 24, 2 bits beyond (``experiment.SCHEDULES``);
* every stored vector is quantised per token, asymmetric min-max, round-to-nearest over its head
  dimension: s = (max - min) / (2^b - 1), q = round((x - min) / s), x_hat = q s + min. Its error is
  at most s / 2 per element. The scale and zero point are kept in 16-bit floats (32 bits per vector).

A token that ages into a lower bucket is quantised again from its full-precision value (not from its
previous, already-quantised value); this is a simulation choice listed in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FULL_BITS = 16  # a bit width >= this means "not quantised" (counted as a 16-bit float in memory)


def quantize_dequantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-vector (last dim) asymmetric min-max uniform quantisation with 2^bits levels, returned
    dequantised. bits >= FULL_BITS returns x unchanged. A constant vector is returned exactly."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    if bits >= FULL_BITS:
        return x
    lo = x.amin(-1, keepdim=True)
    hi = x.amax(-1, keepdim=True)
    levels = 2**bits - 1
    scale = (hi - lo) / levels
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round((x - lo) / safe), 0, levels)
    return torch.where(scale > 0, q * safe + lo, x)


@dataclass(frozen=True)
class Staircase:
    """A bit width per age bucket. ``edges`` are the ages where the next step starts (increasing),
    ``bits`` has one more entry than ``edges``: bits[0] for a < edges[0], ..., bits[-1] for
    a >= edges[-1]. Uniform b-bit quantisation is ``Staircase((), (b,))``."""

    edges: tuple[int, ...]
    bits: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.bits) != len(self.edges) + 1:
            raise ValueError(f"need len(bits) == len(edges) + 1, got {self.bits} and {self.edges}")
        if any(b < 1 for b in self.bits):
            raise ValueError(f"bit widths must be >= 1, got {self.bits}")
        if any(e <= 0 for e in self.edges) or list(self.edges) != sorted(set(self.edges)):
            raise ValueError(f"edges must be strictly increasing positive ages, got {self.edges}")

    def bits_for_age(self, age: torch.Tensor) -> torch.Tensor:
        """Bit width of a cached token of the given age(s) (int tensor)."""
        idx = torch.bucketize(age, torch.tensor(self.edges, dtype=age.dtype), right=True)
        return torch.tensor(self.bits, dtype=torch.long)[idx]

    def level_masks(self, length: int) -> list[tuple[int, torch.Tensor]]:
        """[(bits, (T, T) bool mask of the (query i, key j) pairs, j <= i, read at that width)]."""
        pos = torch.arange(length)
        age = pos[:, None] - pos[None, :]
        b = self.bits_for_age(age.clamp(min=0))
        causal = age >= 0
        return [(w, (b == w) & causal) for w in sorted(set(self.bits))]

    def cache_bits(self, cache_len: int, head_dim: int) -> float:
        """Mean stored bits per cached element when the cache holds ``cache_len`` tokens (ages
        0..cache_len-1), the 32 bits of scale + zero point per quantised vector included."""
        if cache_len < 1:
            raise ValueError(f"cache_len must be >= 1, got {cache_len}")
        per_token = self.bits_for_age(torch.arange(cache_len)).double()
        overhead = torch.where(per_token >= FULL_BITS, 0.0, 32.0 / head_dim)
        stored = torch.where(per_token >= FULL_BITS, float(FULL_BITS), per_token)
        return float((stored + overhead).mean())

    def label(self) -> str:
        if not self.edges:
            return f"uniform-{self.bits[0]}b"
        parts = [f"{b}b" for b in self.bits]
        return "SAQ " + "/".join(parts) + " @ ages " + ",".join(str(e) for e in self.edges)


def mean_cache_bits(schedule: Staircase, positions: range, head_dim: int) -> float:
    """Mean over the query positions t in ``positions`` of cache_bits(t + 1): the average memory of
    the cache read by the evaluated predictions."""
    return sum(schedule.cache_bits(t + 1, head_dim) for t in positions) / len(positions)
