"""A small decoder-only transformer (Llama-style block) in plain PyTorch, for tiny-LM experiments.

Why not ``xentlab.models.tiny_lm`` (Hugging Face): at tiny sizes (5k-300k non-embedding parameters,
windows of 16-64 tokens) the HF model's per-call overhead (mask building, rotary caches, output
objects) costs more than the arithmetic; measured on a contended 2-core box, a 2-layer width-16 Llama
from tiny_lm ran about 27 ms per 512-token step, this block about 16 ms (1.7x). The block is the one
tiny_lm's "llama" preset builds (pre-RMSNorm, rotary position embedding on queries and keys, causal
softmax attention, SwiGLU MLP, tied input/output embedding, no biases, N(0, 0.02) init; unlike
tiny_lm's preset, every head has its own keys/values and the MLP is 4d wide by default). The tests
check causality, the parameter count and the rotary relative-position property; it is not compared
weight-for-weight with ``transformers``' Llama.

Rotary (relative) positions rather than GPT-2's learned absolute ones: on Markov sources a model needs
a "previous token" attention pattern, and in ar-scaling's pilots tiny_lm's GPT-2 sat near the order-1
loss after 150k tokens where a rotary model of the same width was learning fast.

Used by ar-scaling (the scaling ladder) and emo (the synthetic-source runs). ``sample`` draws unbiased
(ancestral, temperature-1) continuations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LMShape:
    """vocab_size, hidden (d), layers, heads (d % heads == 0, head dim even for rotary), intermediate
    (SwiGLU width; None = 4 d), max_positions, init_std, rope_theta, norm_eps."""

    vocab_size: int
    hidden: int
    layers: int
    heads: int
    intermediate: int | None = None
    max_positions: int = 64
    init_std: float = 0.02
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.hidden, self.layers, self.heads) < 1:
            raise ValueError("vocab_size, hidden, layers and heads must be positive")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(f"hidden={self.hidden} / heads={self.heads} must be an even integer head dim")

    @property
    def ffn(self) -> int:
        return self.intermediate or 4 * self.hidden

    @property
    def non_embedding_params(self) -> int:
        """Per layer: attention 4 d^2, SwiGLU 3 d f, two RMSNorm gains 2 d; plus the final norm d."""
        d = self.hidden
        return self.layers * (4 * d * d + 3 * d * self.ffn + 2 * d) + d


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_angles(length: int, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of the rotary angles p * theta^(-2i/d) (Su et al. 2021, RoFormer Eq. 34), (length, head_dim),
    in the half-split layout of Llama."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(length, dtype=torch.float32), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def _rope_cache(shape: LMShape) -> tuple[torch.Tensor, torch.Tensor]:
    return rope_angles(shape.max_positions, shape.hidden // shape.heads, shape.rope_theta)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the last dim of x (..., T, head_dim) by the angles of its position (``rope_angles``)."""
    return x * cos + _rotate_half(x) * sin


class Block(nn.Module):
    def __init__(self, s: LMShape):
        super().__init__()
        d, f = s.hidden, s.ffn
        self.heads = s.heads
        self.attn_norm = RMSNorm(d, s.norm_eps)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d, s.norm_eps)
        self.gate_up = nn.Linear(d, 2 * f, bias=False)
        self.down = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (b, heads, t, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class DecoderLM(nn.Module):
    """Token embedding -> blocks -> RMSNorm -> tied classifier. ``forward(ids) -> logits``."""

    def __init__(self, shape: LMShape):
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab_size, shape.hidden)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.layers))
        self.norm = RMSNorm(shape.hidden, shape.norm_eps)
        cos, sin = _rope_cache(shape)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=shape.init_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.shape.max_positions:
            raise ValueError(f"sequence length {t} > max_positions={self.shape.max_positions}")
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.norm(x) @ self.embed.weight.T

    def non_embedding_params(self) -> int:
        """Every parameter except the (tied) token embedding: Kaplan et al. (2020)'s N."""
        return sum(p.numel() for p in self.parameters()) - self.embed.weight.numel()


def seeded_decoder(shape: LMShape, seed: int) -> DecoderLM:
    """A ``DecoderLM`` initialised from ``seed`` alone: the global torch RNG is forked, so the weights
    do not depend on what ran before and the caller's random stream is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DecoderLM(shape)


@torch.no_grad()
def sample(
    model: DecoderLM, prompts: torch.Tensor, new_tokens: int, generator: torch.Generator
) -> torch.Tensor:
    """Ancestral sampling at temperature 1 (no top-k / top-p): ``prompts`` (B, P) -> (B, P + new_tokens).

    The next-token distribution is taken in float64 so that ``torch.multinomial`` sees exactly
    normalised probabilities; a window longer than ``max_positions`` keeps its last positions.
    """
    if new_tokens < 0:
        raise ValueError(f"new_tokens must be >= 0, got {new_tokens}")
    was_training = model.training
    model.eval()
    x = prompts
    for _ in range(new_tokens):
        probs = torch.softmax(model(x[:, -model.shape.max_positions :])[:, -1].double(), dim=-1)
        x = torch.cat([x, torch.multinomial(probs, 1, generator=generator)], dim=1)
    model.train(was_training)
    return x
