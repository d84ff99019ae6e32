"""Train one encoder-decoder model of the ladder on the synthetic task; score held-out CE per target token.

One call = one (encoder depth, decoder depth) and one seed. Every model of a seed sees the SAME
stream of training batches (the stream's seed is the run seed, not the model shape) under the same
schedule, so the ladder differs only in N_e and N_d: the same token budget for every model, as the
brief and the notes ask. A model trained to a fixed token budget is not converged (the learning curve
is logged to show it); the fitted law describes loss at this budget, not at convergence.

Metric: teacher-forced cross-entropy per target token (EOS included, PAD excluded) on a fixed held-out
sample of ``test_sents`` sentences drawn with ``TEST_SEED`` (outside every training stream), the
quantity the paper calls the (per-token) log-perplexity. The Bayes-optimal model's loss on the same
sample (``Task.bayes_loss``) is returned with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from nmt_scaling.model import ModelShape, decoder_input, seeded_model
from nmt_scaling.task import PAD, Batch, Task, TaskConfig
from xentlab.train.schedules import warmup_cosine_lr

TEST_SEED = 2**40  # the held-out sample: outside every training stream's seed range


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    enc_layers, dec_layers: the depths (the scaled axes); d_model, heads, ffn: the shared layer shape.
    steps, batch: optimiser steps and sentences per step (the token budget is the target tokens of
        steps * batch sentences; identical for every model of a seed).
    lr: peak AdamW learning rate; warmup: fraction of steps of linear warm-up; then cosine decay to
        lr * final_lr_frac. beta2, weight_decay, clip: AdamW and gradient-norm clipping settings.
    test_sents: sentences of the fixed held-out sample; curve_sents: its first curve_sents sentences,
        scored at n_evals evenly spaced points of training (the learning curve).
    task: the language pair (TaskConfig fields), fixed for every seed and model.
    """

    enc_layers: int = 2
    dec_layers: int = 2
    d_model: int = 64
    heads: int = 4
    enc_ffn: int = 256
    dec_ffn: int = 256
    steps: int = 400
    batch: int = 32
    lr: float = 2e-3
    warmup: float = 0.05
    final_lr_frac: float = 0.1
    beta2: float = 0.98
    weight_decay: float = 0.0
    clip: float = 1.0
    test_sents: int = 2000
    curve_sents: int = 500
    n_evals: int = 4
    task: dict = field(default_factory=lambda: asdict(TaskConfig()))


def lr_at(step: int, n_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up over cfg.warmup of the steps, then cosine from lr to lr * final_lr_frac."""
    return warmup_cosine_lr(step, n_steps, lr=cfg.lr, warmup=cfg.warmup, final_lr_frac=cfg.final_lr_frac)


def _tensors(b: Batch, device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(b.src).to(device), torch.from_numpy(b.tgt).to(device)


@torch.no_grad()
def test_loss(model, src: torch.Tensor, tgt: torch.Tensor, chunk: int = 500) -> float:
    """Mean teacher-forced cross-entropy per target token (nats), PAD excluded, EOS included."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, src.shape[0], chunk):
        s, t = src[i : i + chunk], tgt[i : i + chunk]
        logits = model(s, decoder_input(t)).float()
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=PAD, reduction="sum"
        ).item()
        count += int((t != PAD).sum())
    model.train()
    return total / count


def train_one(
    cfg: TrainConfig, seed: int, device: torch.device | str = "cpu", log: Callable[..., None] | None = None
) -> dict:
    """Train one model; returns N_e, N_d, the final held-out loss, the Bayes loss and the curve."""
    device = torch.device(device)
    task = Task(TaskConfig(**cfg.task))
    if not 1 <= cfg.curve_sents <= cfg.test_sents:
        raise ValueError(f"need 1 <= curve_sents <= test_sents, got {cfg.curve_sents}, {cfg.test_sents}")
    test = task.sample(cfg.test_sents, TEST_SEED)
    t_src, t_tgt = _tensors(test, device)
    shape = ModelShape(cfg.enc_layers, cfg.dec_layers, task.src_vocab, task.tgt_vocab,
                       d_model=cfg.d_model, heads=cfg.heads, enc_ffn=cfg.enc_ffn, dec_ffn=cfg.dec_ffn)  # fmt: skip
    model = seeded_model(shape, seed).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay
    )
    evals = {int(round(cfg.steps * (i + 1) / cfg.n_evals)) for i in range(cfg.n_evals)}
    curve_steps, curve_loss = [], []
    tokens = 0
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, cfg)
        # a fresh batch per step from the run seed's stream: unlimited data, identical for every shape
        src, tgt = _tensors(task.sample(cfg.batch, seed * 1_000_003 + step), device)
        logits = model(src, decoder_input(tgt))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        tokens += int((tgt != PAD).sum())
        if step + 1 in evals:
            tl = test_loss(model, t_src[: cfg.curve_sents], t_tgt[: cfg.curve_sents])
            if not math.isfinite(tl):
                raise FloatingPointError(f"test loss is {tl} at step {step + 1}")
            curve_steps.append(step + 1)
            curve_loss.append(tl)
            if log is not None:
                log(step=step + 1, train_loss=loss.item(), test_loss=tl)
    final = test_loss(model, t_src, t_tgt)
    return {
        "n_enc": model.n_encoder(),
        "n_dec": model.n_decoder(),
        "final_loss": final,
        "bayes_test_loss": task.bayes_loss(test),
        "l_inf_true": task.l_inf,
        "train_tokens": tokens,
        "train_seconds": time.perf_counter() - t0,
        "curve_steps": curve_steps,
        "curve_loss": curve_loss,
        "shape": asdict(shape),
    }


__all__ = ["TEST_SEED", "TrainConfig", "lr_at", "test_loss", "train_one"]
