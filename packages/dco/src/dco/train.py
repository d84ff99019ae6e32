"""Fine-tuning with CE or DCO, with the exact test pass@N logged every few epochs.

One epoch is ``ceil(n_train / batch_size)`` optimizer steps for every method, so methods are
compared at equal step counts. The examples come from a seeded stream (a fresh permutation of the
train set per pass). CE (N' = 1) takes the next ``batch_size`` examples. DCO takes the next
examples whose gradient factor F(N', p_hat) is at least ``epsilon`` (computed by a no-grad forward
over up to ``candidate_factor * batch_size`` candidates): an example with F < epsilon would add
almost nothing to the gradient, so it is *replaced* by the next one in the stream to keep the
effective batch size (the paper's replacement rule as summarised by secondary sources; the value
of epsilon is not verified, see the README). When the candidates hold fewer than ``batch_size``
live examples the step uses the live ones; with none it is skipped (counted in the log).

The loss is the mean over the batch of l_DCO^{N'} (``dco.loss.dco_loss``) of the sequence
log-probability of the answer (its tokens and EOS), so N' = 1 is the sequence-level CE.
AdamW with a linear warm-up and then a constant learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TrainConfig:
    """n_prime: the DCO N' (1 = cross-entropy). epochs, batch_size, lr: AdamW schedule (warm-up over
    ``warmup_frac`` of the steps, then constant). epsilon: replace examples with F(N', p_hat) below it.
    candidate_factor: how many candidates per batch slot DCO may scan. eval_every: epochs between
    evaluations (epoch 0, i.e. the initial model, is evaluated too)."""

    n_prime: int = 1
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_frac: float = 0.02
    grad_clip: float | None = 1.0
    epsilon: float = 1e-3
    candidate_factor: int = 2
    eval_every: int = 3


class ExampleStream:
    """An endless seeded stream of train indices: a fresh permutation per pass over the data."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.passes, self.pos = n, seed, 0, 0
        self.perm = self._perm()

    def _perm(self) -> torch.Tensor:
        return torch.randperm(
            self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.passes)
        )

    def rewind(self, k: int) -> None:
        """Put the last k taken indices back (only within the current pass; otherwise they are dropped)."""
        if k <= self.pos:
            self.pos -= k

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos == self.n:
                self.passes, self.pos = self.passes + 1, 0
                self.perm = self._perm()
            m = min(k, self.n - self.pos)
            out.append(self.perm[self.pos : self.pos + m])
            self.pos, k = self.pos + m, k - m
        return torch.cat(out)


def _gather(
    tensors: dict[str, torch.Tensor], lengths: torch.Tensor, idx: torch.Tensor
) -> dict[str, torch.Tensor]:
    width = int(lengths[idx].max())
    return {k: v[idx, :width] for k, v in tensors.items()}


@torch.no_grad()
def _live_batch(
    model: Any, tensors: dict, lengths: torch.Tensor, stream: ExampleStream, bs: int, cfg: TrainConfig
):
    """The next ``bs`` stream examples with F(N', p_hat) >= epsilon, scanning chunks of ``bs``
    candidates (at most ``candidate_factor`` chunks). Returns (indices, number of examples replaced)."""
    from dco.loss import coverage_factor
    from xentlab.lm.train import sequence_logprob

    model.eval()
    live, dead = [], 0
    for _ in range(cfg.candidate_factor):
        cand = stream.take(bs)
        f = coverage_factor(sequence_logprob(model, _gather(tensors, lengths, cand)), cfg.n_prime).cpu()
        alive = f >= cfg.epsilon
        need = bs - sum(len(x) for x in live)
        pos = torch.nonzero(alive).squeeze(1)
        if len(pos) >= need:  # this chunk completes the batch: put the unused tail back
            cut = int(pos[need - 1]) + 1
            live.append(cand[:cut][alive[:cut]])
            dead += int((~alive[:cut]).sum())
            stream.rewind(len(cand) - cut)
            break
        live.append(cand[alive])
        dead += int((~alive).sum())
    model.train()
    return torch.cat(live), dead


def train(
    model: Any,
    tokenizer: Any,
    train_examples: list,
    cfg: TrainConfig,
    *,
    seed: int,
    evaluate: Callable[[int], dict[str, Any]],
    on_log: Callable[..., None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns [evaluate(epoch) for epoch in 0, eval_every, ..., epochs]."""
    from dco.loss import dco_loss
    from xentlab.lm.train import LMTrainConfig, collate, make_optimizer, sequence_logprob

    device = next(model.parameters()).device
    full = collate(train_examples, tokenizer.pad_token_id)
    tensors = {k: v.to(device) for k, v in full.items()}
    lengths = full["attention_mask"].sum(1).to(device)
    n = len(train_examples)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = steps_per_epoch * cfg.epochs
    opt, sched = make_optimizer(
        model,
        LMTrainConfig(
            steps=total,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_frac=cfg.warmup_frac,
            min_lr_frac=1.0,
        ),
    )
    stream = ExampleStream(n, seed)
    evals = [evaluate(0)]
    skipped = replaced = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        ep_loss, ep_live = 0.0, 0
        for _ in range(steps_per_epoch):
            if cfg.n_prime == 1:
                idx = stream.take(bs)
            else:
                idx, dead = _live_batch(model, tensors, lengths, stream, bs, cfg)
                replaced += dead
                if len(idx) == 0:
                    skipped += 1
                    sched.step()
                    continue
            batch = _gather(tensors, lengths, idx)
            log_p = sequence_logprob(model, batch)
            loss = dco_loss(log_p, cfg.n_prime)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            ep_loss += loss.item()
            ep_live += len(idx)
        if on_log:
            on_log(
                epoch=epoch,
                loss=ep_loss / steps_per_epoch,
                live_per_step=ep_live / steps_per_epoch,
                skipped_steps=skipped,
                replaced=replaced,
            )
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            evals.append(evaluate(epoch))
    model.eval()
    return evals
