"""One unit: train a tiny MQA decoder with one positional scheme at context ``train_len`` on a seeded
Markov source, then (a) evaluate it at several lengths (length extrapolation) and (b) evaluate it at
``train_len`` with its KV cache read through uniform and staircase quantisers (SAQ).

Losses are reported as the EXCESS over the source's true conditional log-loss, in bits per token,
on the same tokens: excess = mean_t [-log2 p_model(x_t | x_<t) + log2 p_true(x_t | x_{t-k..t-1})].
This removes the different share of high-entropy first positions at different lengths, so the
excess at 64, 128 and 256 tokens is comparable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genai_probopt.kv_quant import Staircase, mean_cache_bits
from genai_probopt.model import ModelConfig, MQADecoder
from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig

LN2 = math.log(2.0)

# The quantised-cache schedules compared (edges are ages in tokens; see kv_quant.Staircase).
SCHEDULES = {
    "uniform8": Staircase((), (8,)),
    "uniform4": Staircase((), (4,)),
    "uniform2": Staircase((), (2,)),
    "saq_8_4_2": Staircase((8, 24), (8, 4, 2)),
    "saq_16_8_4_2": Staircase((2, 6, 14), (16, 8, 4, 2)),
}


@dataclass(frozen=True)
class RunConfig:
    """pos: positional scheme (model.POS_SCHEMES). train_len: training context. steps, batch, lr:
    AdamW training (cosine decay to 0, warm-up ``warmup`` steps). eval_lens: lengths for the
    extrapolation test; eval_tokens: tokens scored per length. saq_seqs: length-train_len sequences
    for the KV-quantisation test, scored at query positions >= saq_from. source: MarkovSourceConfig
    fields (the source is fixed across seeds; the seed changes init and data)."""

    pos: str = "rope_alibi_harmonic"
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    train_len: int = 64
    steps: int = 300
    batch: int = 32
    lr: float = 3e-3
    warmup: int = 20
    eval_lens: tuple[int, ...] = (64, 128, 256)
    eval_tokens: int = 16384
    saq_seqs: int = 256
    saq_from: int = 32
    source: dict = field(default_factory=lambda: dict(vocab_size=32, order=2, support=4, seed=0))


def excess_bits(model: MQADecoder, src: MarkovSource, x: np.ndarray, start: int, kv_schedule=None) -> float:
    """Mean excess log-loss (bits/token) over the predictions of positions start+1..T-1 of x (B, T);
    start >= source order so that the true conditional is defined."""
    ids = torch.from_numpy(x)
    with torch.no_grad():
        logp = F.log_softmax(model(ids[:, :-1], kv_schedule=kv_schedule), dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0].double().numpy()  # (B, T-1): predicts x_1..x_{T-1}
    true_nll = -src.log_prob(x)  # (B, T - k): x_k..x_{T-1}
    k = src.order
    model_part = nll[:, start:]  # predicts x_{start+1}..
    true_part = true_nll[:, start + 1 - k :]
    return float((model_part - true_part).mean() / LN2)


def run(cfg: RunConfig, seed: int, log=None, progress=None) -> dict:
    t0 = time.time()
    src = MarkovSource(MarkovSourceConfig(**cfg.source))
    mc = ModelConfig(
        vocab_size=src.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, pos=cfg.pos
    )
    torch.manual_seed(seed)
    model = MQADecoder(mc)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
        ),
    )
    it = range(cfg.steps) if progress is None else progress(range(cfg.steps), desc=cfg.pos)
    curve = []
    for step in it:
        # training data: a fresh batch per step, seeds disjoint from the evaluation seeds below
        x = torch.from_numpy(src.sample_batch(cfg.batch, cfg.train_len + 1, seed=1_000_000 * seed + step))
        loss = F.cross_entropy(model(x[:, :-1]).reshape(-1, src.vocab_size), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == cfg.steps - 1:
            curve.append([step, loss.item() / LN2])
            if log is not None:
                log(step=step, train_bits=loss.item() / LN2)
    model.eval()
    out: dict = {"train_curve": curve, "source_entropy_bits": float(src.entropy_rate_bits)}
    eval_seed = 2_000_000_000 + seed  # held-out sequences, never used for training
    # (a) length extrapolation: the same number of scored tokens at every length
    for n in cfg.eval_lens:
        x = src.sample_batch(max(1, cfg.eval_tokens // n), n + 1, seed=eval_seed + n)
        out[f"excess_bits_{n}"] = excess_bits(model, src, x, start=src.order)
    base = cfg.eval_lens[0]
    for n in cfg.eval_lens[1:]:
        out[f"increase_{n}"] = out[f"excess_bits_{n}"] - out[f"excess_bits_{base}"]
    # (b) quantised KV cache at the training context, scored at query positions >= saq_from
    x = src.sample_batch(cfg.saq_seqs, cfg.train_len + 1, seed=eval_seed + 7)
    fp = excess_bits(model, src, x, start=cfg.saq_from)
    out["kv_fp_excess_bits"] = fp
    positions = range(cfg.saq_from, cfg.train_len)
    for name, s in SCHEDULES.items():
        out[f"kv_{name}_penalty"] = excess_bits(model, src, x, start=cfg.saq_from, kv_schedule=s) - fp
        out[f"kv_{name}_bits"] = mean_cache_bits(s, positions, mc.head_dim)
    out["kv_fp_bits"] = 16.0
    out["wall_s_unit"] = time.time() - t0
    return out
