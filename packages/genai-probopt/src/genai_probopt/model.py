"""A tiny multi-query-attention (MQA) decoder whose positional scheme is a switch.

The block follows ``xentlab.models.small_decoder`` (pre-RMSNorm, SwiGLU MLP, tied embedding, no
biases, N(0, 0.02) init), with two changes needed here: one shared key/value head for all query heads
(MQA, Shazeer 2019, the setting of the paper's SAQ proposal) and the positional scheme chosen by
``pos``:

* ``"rope"``: rotary queries/keys, causal mask only;
* ``"alibi"``: no rotation, ALiBi bias with Press et al.'s geometric slopes;
* ``"rope_alibi_harmonic"``: rotary queries/keys plus ALiBi bias with harmonic slopes 1/h (the
  proposal, see ``positional``).

``forward(ids, kv_schedule=None)`` optionally reads the keys/values through a simulated quantised
cache (``kv_quant.Staircase``): the key of token j seen by the query at position i is quantised at
the bit width of its age i - j. Keys are quantised after the rotation, as they are stored in a RoPE
KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genai_probopt.kv_quant import Staircase, quantize_dequantize
from genai_probopt.positional import (
    alibi_bias,
    apply_rope,
    causal_mask,
    geometric_slopes,
    harmonic_slopes,
    rope_angles,
)

POS_SCHEMES = ("rope", "alibi", "rope_alibi_harmonic")


@dataclass(frozen=True)
class ModelConfig:
    """vocab_size; hidden d; layers; heads (query heads; one shared K/V head); pos in POS_SCHEMES;
    ffn = SwiGLU width (None = 4 d); rope_theta; init_std."""

    vocab_size: int = 32
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    pos: str = "rope_alibi_harmonic"
    ffn: int | None = None
    rope_theta: float = 10000.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.pos not in POS_SCHEMES:
            raise ValueError(f"pos must be one of {POS_SCHEMES}, got {self.pos!r}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(f"hidden={self.hidden} / heads={self.heads} must be an even head dim")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def mqa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor,
    kv_schedule: Staircase | None = None,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v with one K/V head shared by all query heads.

    q (B, H, T, d); k, v (B, 1, T, d); bias (H or 1, T, T) with -inf on the masked pairs. With a
    schedule, the (i, j) logit and value use the key/value of token j quantised at the width of age
    i - j: one quantised copy per width, selected per pair by the schedule's masks.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    if kv_schedule is None:
        p = torch.softmax(q @ k.transpose(-1, -2) * scale + bias, dim=-1)
        return p @ v
    masks = kv_schedule.level_masks(q.shape[-2])
    kq = [quantize_dequantize(k, b) for b, _ in masks]
    vq = [quantize_dequantize(v, b) for b, _ in masks]
    logits = sum(m.to(q.dtype) * (q @ kb.transpose(-1, -2)) for (_, m), kb in zip(masks, kq))
    p = torch.softmax(logits * scale + bias, dim=-1)
    return sum((p * m.to(q.dtype)) @ vb for (_, m), vb in zip(masks, vq))


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        d, f = c.hidden, c.ffn or 4 * c.hidden
        self.c = c
        self.attn_norm = RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, 2 * c.head_dim, bias=False)  # MQA: a single K/V head
        self.o = nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d)
        self.gate_up = nn.Linear(d, 2 * f, bias=False)
        self.down = nn.Linear(f, d, bias=False)

    def forward(self, x, bias, rope, kv_schedule):
        b, t, d = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(b, t, self.c.heads, self.c.head_dim).transpose(1, 2)
        k, v = self.kv(h).view(b, t, 1, 2 * self.c.head_dim).transpose(1, 2).chunk(2, dim=-1)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        a = mqa_attention(q, k, v, bias, kv_schedule)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class MQADecoder(nn.Module):
    """Embedding -> blocks -> RMSNorm -> tied classifier; any sequence length (no learned positions)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab_size, c.hidden)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.hidden)
        slopes = {"rope": None, "alibi": geometric_slopes, "rope_alibi_harmonic": harmonic_slopes}[c.pos]
        self.slopes = None if slopes is None else slopes(c.heads).float()
        self._cache: dict[int, tuple] = {}
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=c.init_std)

    def _positional(self, t: int):
        if t not in self._cache:
            bias = causal_mask(t) if self.slopes is None else alibi_bias(self.slopes, t)
            rope = rope_angles(t, self.c.head_dim, self.c.rope_theta) if "rope" in self.c.pos else None
            self._cache[t] = (bias, rope)
        return self._cache[t]

    def forward(self, ids: torch.Tensor, kv_schedule: Staircase | None = None) -> torch.Tensor:
        bias, rope = self._positional(ids.shape[1])
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x, bias, rope, kv_schedule)
        return self.norm(x) @ self.embed.weight.T
