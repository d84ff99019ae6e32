"""A tiny GPT and an offline word-level corpus, for the convergence and filtering experiments.

The model returns its final hidden states; the loss (naive CE on materialised logits, or CCE on
the hidden states and the classifier) is chosen by the caller, so both runs share every other
line of code.  Plain PyTorch: no transformers import, so the smoke run stays fast.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class TinyGPTConfig:
    """vocab: classes of the LM head; hidden/layers/heads: the transformer; context: tokens per
    sequence."""

    vocab: int = 4096
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    context: int = 64


class Block(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.ln1 = nn.LayerNorm(cfg.hidden)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.ln2 = nn.LayerNorm(cfg.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden, 4 * cfg.hidden), nn.GELU(), nn.Linear(4 * cfg.hidden, cfg.hidden)
        )

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """GPT-2-shaped decoder; ``head`` (V x D, no bias) is the classifier C of the paper."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab, cfg.hidden)
        self.pos = nn.Embedding(cfg.context, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x)  # E: the hidden states the classifier reads


_WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def word_corpus(vocab: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Python's bundled documentation (``pydoc_data``, ~100k words), lower-cased words, digits
    and punctuation; the ``vocab - 1`` most frequent tokens plus ``<unk>``.  Returns train ids
    (first 90%), validation ids (last 10%) and the vocabulary."""
    from xentlab.data.tokenizer import pydoc_text

    words = _WORD.findall(pydoc_text().lower())
    counts = Counter(words)
    itos = ["<unk>"] + [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: vocab - 1]]
    stoi = {w: i for i, w in enumerate(itos)}
    ids = torch.tensor([stoi.get(w, 0) for w in words], dtype=torch.long)
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], itos


def batches(ids: torch.Tensor, batch: int, context: int, steps: int, seed: int):
    """``steps`` random (batch, context) windows, from a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        start = torch.randint(0, len(ids) - context, (batch,), generator=g)
        yield torch.stack([ids[s : s + context] for s in start.tolist()])
