"""Train one small decoder on the Markov source under one lr schedule; validation loss every few steps.

Per seed, every schedule starts from the SAME initial weights (``build_model`` forks the RNG with the
seed) and sees the SAME training stream (batch k is drawn with seed ``seed * 1_000_003 + k``), so the
runs of a seed differ only in their lr. The validation sample is fixed for all seeds and schedules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig
from xentlab.models.small_decoder import DecoderLM, LMShape, seeded_decoder

VAL_SEED = 2**40  # outside every training stream's seed range


@dataclass(frozen=True)
class TrainConfig:
    """hidden, layers, heads: model shape. steps, batch, seq_len: optimiser steps and batch shape.
    peak_lr, warmup (steps), final_frac: the schedules (see schedules.make_schedule).
    eval_every: validation period in steps. val_seqs: sequences in the fixed validation sample.
    beta2, weight_decay: AdamW."""

    hidden: int = 32
    layers: int = 2
    heads: int = 2
    steps: int = 1200
    batch: int = 16
    seq_len: int = 16
    peak_lr: float = 1e-2
    warmup: int = 60
    final_frac: float = 0.1
    eval_every: int = 20
    val_seqs: int = 512
    beta2: float = 0.95
    weight_decay: float = 0.0


def build_model(cfg: TrainConfig, vocab: int, seed: int) -> DecoderLM:
    shape = LMShape(vocab_size=vocab, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                    max_positions=cfg.seq_len)  # fmt: skip
    return seeded_decoder(shape, seed)


@torch.no_grad()
def val_loss(model, val: torch.Tensor, order: int) -> float:
    """Mean cross-entropy (nats/token) at positions t >= order, where the whole context is visible."""
    model.eval()
    logits = model(val).float()
    k = max(order, 1)
    out = F.cross_entropy(logits[:, k - 1 : -1].reshape(-1, logits.shape[-1]), val[:, k:].reshape(-1)).item()
    model.train()
    return out


def train_schedule(cfg: TrainConfig, source_cfg: MarkovSourceConfig, lr: np.ndarray, seed: int,
                   device: torch.device | str = "cpu") -> dict:  # fmt: skip
    """Train with the per-step lr array ``lr``; returns the eval steps (1-based) and validation losses."""
    if len(lr) != cfg.steps:
        raise ValueError(f"lr has {len(lr)} entries, expected cfg.steps = {cfg.steps}")
    device = torch.device(device)
    source = MarkovSource(source_cfg)
    val = torch.from_numpy(source.sample_batch(cfg.val_seqs, cfg.seq_len, VAL_SEED)).to(device)
    model = build_model(cfg, source.vocab_size, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=float(lr[0]), betas=(0.9, cfg.beta2),
                            weight_decay=cfg.weight_decay)  # fmt: skip
    steps, losses = [], []
    for k in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = float(lr[k])
        x = torch.from_numpy(source.sample_batch(cfg.batch, cfg.seq_len, seed * 1_000_003 + k)).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (k + 1) % cfg.eval_every == 0 or k + 1 == cfg.steps:
            v = val_loss(model, val, source.order)
            if not math.isfinite(v):
                raise FloatingPointError(f"validation loss is {v} at step {k + 1}")
            steps.append(k + 1)
            losses.append(v)
    return {"steps": steps, "loss": losses, "n_nonemb": model.non_embedding_params(),
            "entropy_rate": source.entropy_rate}  # fmt: skip
