"""Fine-tuning with CE or DCO, with the exact test pass@N logged every few epochs.

Two batch rules (``TrainConfig.batch_rule``):

* ``"refine"`` (the fine-tuning of the cpu protocol since the second fidelity audit): the official
  loop of the authors' code (allanraventos/refine @ 31a9e6e, ``refine/training/train.py``, the epoch
  loop, and ``filter_samples.py::filter_fn_NCO``). An epoch scans the candidates once: the unscanned
  tail of the previous epoch followed by a fresh seeded permutation, in full chunks of
  ``batch_size``. Each chunk gets a no-grad forward; the examples with F(N', p_hat) > ``epsilon``
  (strict, official ``--threshold``, default 0.1) join a buffer of live examples that persists
  across steps and epochs, the others are dropped (replaced). An optimizer step is taken whenever
  the buffer holds ``batch_size`` examples (never a partial batch), so DCO takes fewer steps than CE
  once examples become easy, and none when every example is. The lr schedule advances only with
  optimizer steps. CE (N' = 1, F = 1) keeps every candidate.
* ``"stream"`` (the previous rule, kept for the base pretraining, dco.base, whose length was chosen
  with it): ``ceil(n_train / batch_size)`` steps per epoch for every method from a seeded stream;
  DCO scans up to ``candidate_factor`` chunks per step, keeps F >= epsilon, trains on a partial
  batch when fewer are live and skips the step (scheduler still advancing) when none is.

The loss is the batch mean of l_DCO^{N'} (``dco.loss.dco_loss``) of the answer's sequence
log-probability (its tokens and EOS), so N' = 1 is the sequence-level CE; with ``length_norm`` each
example's loss is divided by its number of answer tokens first (the official default loss,
``refine/training/NCO.py::custom_loss_function1``: F * summed token NLL / valid tokens, whose
gradient equals that of l_DCO / L). AdamW with a linear warm-up and then a constant learning rate.
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
    ``warmup_frac`` of the steps, then constant). epsilon: replace examples with F(N', p_hat) below it
    ("refine": kept iff F > epsilon, the official ``--threshold``). candidate_factor: how many
    candidates per batch slot DCO may scan ("stream" only). eval_every: epochs between evaluations
    (epoch 0, i.e. the initial model, is evaluated too). batch_rule: "stream" | "refine" (module
    docstring). length_norm: divide each example's loss by its number of answer tokens (official
    custom_loss_function1). betas: AdamW's. warmup_steps: a fixed number of warm-up steps (official
    ``--num_warmup_steps``, default 20) instead of ``warmup_frac``."""

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
    batch_rule: str = "stream"
    length_norm: bool = False
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int | None = None

    def __post_init__(self):
        if self.batch_rule not in ("stream", "refine"):
            raise ValueError(f"batch_rule must be 'stream' or 'refine', got {self.batch_rule!r}")


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


class LiveBuffer:
    """The official candidate order and buffer of the "refine" rule (refine/training/train.py).

    Per epoch the order is the previous epoch's unscanned tail followed by a fresh permutation
    (seeded by (seed, epoch)); it is scanned in full chunks of ``bs`` while a full chunk remains
    (the rest is the next epoch's tail). ``live(chunk)`` (called lazily, i.e. with the weights of
    the latest step) returns one bool per candidate; the live ones join ``buffer``, which persists
    across epochs, and a batch of ``bs`` is yielded whenever the buffer holds that many. The
    official stale-tail branch is reproduced: when the order is used up exactly (its length a
    multiple of ``bs``) and its last chunk leaves the buffer short, train.py breaks out of the epoch
    without resetting ``sample_indices_unused``, so the next epoch again prepends the tail set
    before (``carry`` is kept; counted in ``stale``). It never happens with CE (every chunk fills
    the buffer); at cpu scale it does for DCO (README, "Re-selection under the official loop")."""

    def __init__(self, n: int, seed: int, bs: int):
        self.n, self.seed, self.bs = n, seed, bs
        self.carry: list[int] = []
        self.buffer: list[int] = []
        self.replaced = 0
        self.stale = 0  # epochs that ended on the official stale-tail branch

    def order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return self.carry + torch.randperm(self.n, generator=g).tolist()

    def epoch(self, epoch: int, live: Callable[[list[int]], list[bool]]):
        order, pos = self.order(epoch), 0
        while pos + self.bs <= len(order):
            cand = order[pos : pos + self.bs]
            pos += self.bs
            kept = [i for i, ok in zip(cand, live(cand), strict=True) if ok]
            self.replaced += len(cand) - len(kept)
            self.buffer += kept
            if len(self.buffer) >= self.bs:
                batch, self.buffer = self.buffer[: self.bs], self.buffer[self.bs :]
                yield batch
            elif pos == len(order):  # official: `if last_used >= len(sample_indices): break`, tail kept
                self.stale += 1
                return
        self.carry = order[pos:]


def is_live(f: torch.Tensor, epsilon: float) -> list[bool]:
    """The official filter (filter_samples.py::filter_fn_NCO): live iff F > threshold, strictly."""
    return (f > epsilon).tolist()


def batch_loss(log_p: torch.Tensor, n_prime: int, n_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of l_DCO^{N'}(log_p) (N' = 1: sequence CE), each divided by its number of
    answer tokens when ``n_tokens`` is given (official custom_loss_function1: d/d log_p = -F / L)."""
    from dco.loss import dco_loss

    per = dco_loss(log_p, n_prime, reduction="none")
    if n_tokens is not None:
        per = per / n_tokens.to(per.dtype)
    return per.mean()


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
            warmup_frac=cfg.warmup_frac if cfg.warmup_steps is None else cfg.warmup_steps / total,
            min_lr_frac=1.0,
            betas=tuple(cfg.betas),
        ),
    )
    evals = [evaluate(0)]

    def step(idx: torch.Tensor) -> float:
        batch = _gather(tensors, lengths, idx)
        log_p = sequence_logprob(model, batch)
        n_tok = (batch["labels"] != -100).sum(1) if cfg.length_norm else None
        loss = batch_loss(log_p, cfg.n_prime, n_tok)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at epoch {epoch}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        return loss.item()

    if cfg.batch_rule == "refine":
        from dco.loss import coverage_factor

        buf = LiveBuffer(n, seed, bs)
        steps = 0

        @torch.no_grad()
        def live(cand: list[int]) -> list[bool]:
            if cfg.n_prime == 1:  # F = 1 > epsilon for every example (epsilon < 1)
                return [True] * len(cand)
            model.eval()
            idx = torch.tensor(cand, device=device)
            f = coverage_factor(sequence_logprob(model, _gather(tensors, lengths, idx)), cfg.n_prime)
            model.train()
            return is_live(f, cfg.epsilon)

        for epoch in range(1, cfg.epochs + 1):
            model.train()
            losses = [step(torch.tensor(b, device=device)) for b in buf.epoch(epoch, live)]
            steps += len(losses)
            if on_log:
                row = {
                    "epoch": epoch,
                    "steps": steps,
                    "epoch_steps": len(losses),
                    "replaced": buf.replaced,
                    "stale_tail_epochs": buf.stale,
                }
                on_log(**row, **({"loss": sum(losses) / len(losses)} if losses else {}))
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                evals.append(evaluate(epoch))
        model.eval()
        return evals

    stream = ExampleStream(n, seed)
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
            ep_loss += step(idx)
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
