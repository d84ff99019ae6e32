"""Per-token statistics of a causal LM on given token sequences (``com_pro_dis.py``'s ``cal_ppl``).

For each sequence x_0..x_{L-1} and each position i >= 1: log P_M(x_i | x_<i) and the mean and variance
of log P_M(z | x_<i) under z ~ P_M(. | x_<i) (Min-K%++). Computed in float64 from the model's logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TokenStats:
    """Arrays over the scored positions 1..L-1 of one sequence (``ids`` are the scored tokens)."""

    ids: np.ndarray
    logp: np.ndarray
    mu: np.ndarray
    var: np.ndarray


@torch.no_grad()
def token_stats(
    model: Any, seqs: Sequence[Sequence[int]], *, batch_size: int = 64, pad_id: int = 0, device: Any = "cpu"
) -> list[TokenStats]:
    """TokenStats for every sequence (batched, right-padded; the model is put in eval mode)."""
    if any(len(s) < 2 for s in seqs):
        raise ValueError("every sequence needs at least 2 tokens (one context, one scored token)")
    model.eval()
    out: list[TokenStats] = []
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, s in enumerate(chunk):
            ids[r, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
            attn[r, : len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits[:, :-1]
        lp = torch.log_softmax(logits.double(), dim=-1)
        target = ids[:, 1:].to(lp.device)
        tok = lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        p = lp.exp()
        mu = (p * lp).sum(-1)
        var = ((p * lp.square()).sum(-1) - mu.square()).clamp_min(0.0)
        for r, s in enumerate(chunk):
            n = len(s) - 1
            out.append(
                TokenStats(
                    ids=np.asarray(s[1:], dtype=np.int64),
                    logp=tok[r, :n].cpu().numpy(),
                    mu=mu[r, :n].cpu().numpy(),
                    var=var[r, :n].cpu().numpy(),
                )
            )
    return out
