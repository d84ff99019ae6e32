"""Train one encoder-decoder model of the ladder on the synthetic task, to convergence; score held-out CE.

One call = one (encoder depth, decoder depth) and one seed. Every model of a seed draws the SAME
stream of training batches (the stream's seed is the run seed, not the model shape) under the same
schedule; each model trains until its VALIDATION loss stops improving (``nmt_scaling.stopping``: the
rule, written before the cpu rerun, is the same for every model), so the ladder is compared at (near)
convergence, as in the paper, not at a shared token budget.

Three disjoint samples of the language pair: the training stream (seeds ``seed * 1_000_003 + step``),
the validation sample (``valid_sents`` sentences from ``VALID_SEED``: early stopping and the choice of
the checkpoint only) and the test sample (``test_sents`` sentences from ``TEST_SEED``: scored ONCE, on
the best-validation checkpoint; this is the loss the law is fitted to).

Metric: teacher-forced cross-entropy per target token (EOS included, PAD excluded), the quantity the
paper calls the (per-token) log-perplexity. The Bayes-optimal model's loss on the test sample
(``Task.bayes_loss``) is returned with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from nmt_scaling.model import ModelShape, decoder_input, seeded_model
from nmt_scaling.stopping import EarlyStopping, StopRule
from nmt_scaling.task import PAD, Batch, Task, TaskConfig

TEST_SEED = 2**40  # the test sample: outside every training stream's seed range
VALID_SEED = 2**40 + 1  # the validation sample (early stopping only): a third, independent draw


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    enc_layers, dec_layers: the depths (the scaled axes); d_model, heads, ffn: the shared layer shape.
    batch: sentences per optimiser step (a fresh batch every step: unlimited data).
    lr: AdamW learning rate after ``warmup_steps`` of linear warm-up, then constant (``lr_at``): the
        schedule does not depend on when the run stops. beta2, weight_decay, clip:
        AdamW and gradient-norm clipping settings.
    max_steps, eval_every, patience, min_delta: the early-stopping rule (``nmt_scaling.stopping``) on
        the validation sample of ``valid_sents`` sentences.
    test_sents: sentences of the test sample, scored once on the best-validation checkpoint.
    task: the language pair (TaskConfig fields), fixed for every seed and model.
    """

    enc_layers: int = 2
    dec_layers: int = 2
    d_model: int = 64
    heads: int = 4
    enc_ffn: int = 256
    dec_ffn: int = 256
    batch: int = 64
    lr: float = 2e-3
    warmup_steps: int = 40
    beta2: float = 0.98
    weight_decay: float = 0.0
    clip: float = 1.0
    max_steps: int = 600
    eval_every: int = 25
    patience: int = 4
    min_delta: float = 0.003
    valid_sents: int = 500
    test_sents: int = 1000
    task: dict = field(default_factory=lambda: asdict(TaskConfig()))

    def stop_rule(self) -> StopRule:
        return StopRule(self.eval_every, self.patience, self.min_delta, self.max_steps)


def lr_at(step: int, lr: float, warmup_steps: int) -> float:
    """The learning rate of 0-based ``step``: linear warm-up to ``lr`` over ``warmup_steps`` steps, then
    constant. Training ends where the validation loss stops improving (``nmt_scaling.stopping``), so the
    schedule must not depend on a planned end: a cosine to the step cap would hand a model that stops
    early a learning rate set by the cap, and the anneal itself (not the model) would decide when the
    validation loss flattens (README, "Learning-rate schedule")."""
    if warmup_steps < 1 or lr <= 0:
        raise ValueError(f"need lr > 0 and warmup_steps >= 1, got {lr}, {warmup_steps}")
    return lr * min(1.0, (step + 1) / warmup_steps)


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
    """Train one model until the stopping rule fires (or the cap); returns N_e, N_d, the test loss of
    the best-validation checkpoint (``final_loss``), the stopping and best steps, the Bayes loss and
    the validation curve."""
    device = torch.device(device)
    task = Task(TaskConfig(**cfg.task))
    rule = cfg.stop_rule()
    valid = task.sample(cfg.valid_sents, VALID_SEED)
    v_src, v_tgt = _tensors(valid, device)
    test = task.sample(cfg.test_sents, TEST_SEED)
    shape = ModelShape(cfg.enc_layers, cfg.dec_layers, task.src_vocab, task.tgt_vocab,
                       d_model=cfg.d_model, heads=cfg.heads, enc_ffn=cfg.enc_ffn, dec_ffn=cfg.dec_ffn)  # fmt: skip
    model = seeded_model(shape, seed).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay
    )
    stopper = EarlyStopping(rule)
    tokens, step = 0, 0
    t0 = time.perf_counter()
    while step < rule.max_steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.lr, cfg.warmup_steps)
        # a fresh batch per step from the run seed's stream: unlimited data, identical for every shape
        src, tgt = _tensors(task.sample(cfg.batch, seed * 1_000_003 + step), device)
        logits = model(src, decoder_input(tgt))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        tokens += int((tgt != PAD).sum())
        step += 1
        if step % rule.eval_every == 0:
            vl = test_loss(model, v_src, v_tgt)
            if log is not None:
                log(step=step, train_loss=loss.item(), valid_loss=vl)
            if stopper.update(step, vl, model):
                break
    stopper.restore(model)  # the best-validation checkpoint is the model that is scored
    # the best checkpoint's loss on the two halves of the validation sample: a split-half estimate of
    # its sampling noise (the hard-pair pilot's noise floor, scripts/hard_pair_pilot.py)
    half = cfg.valid_sents // 2
    halves = (
        [test_loss(model, v_src[sl], v_tgt[sl]) for sl in (slice(0, half), slice(half, None))] if half else []
    )
    t_src, t_tgt = _tensors(test, device)
    final = test_loss(model, t_src, t_tgt)
    return {
        "n_enc": model.n_encoder(),
        "n_dec": model.n_decoder(),
        "final_loss": final,
        "best_valid_loss": stopper.best_loss,
        "best_step": stopper.best_step,
        "stop_step": step,
        "converged": stopper.converged,
        "bayes_test_loss": task.bayes_loss(test),
        "bayes_valid_loss": task.bayes_loss(valid),
        "best_valid_halves": halves,
        "l_inf_true": task.l_inf,
        "train_tokens": tokens,
        "train_seconds": time.perf_counter() - t0,
        "curve_steps": stopper.steps,
        "curve_valid": stopper.losses,
        "shape": asdict(shape),
    }


__all__ = ["TEST_SEED", "VALID_SEED", "TrainConfig", "lr_at", "test_loss", "train_one"]
