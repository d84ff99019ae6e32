"""Training tiny causal LMs: examples with a response mask, padded batches, one loss function, and a
pretrain-then-finetune loop.

Every loss in the LLM packages goes through ``token_cross_entropy``: the classifier is applied to
the final hidden states inside a *linear cross-entropy* (``xentlab.kernels.linear_cross_entropy``,
Cut Cross-Entropy, when that module is importable; a plain ``F.cross_entropy`` on materialised
logits otherwise), so the N x V logits never need to exist in the CCE path. ``lm_loss`` is the
usual next-token loss on the response tokens (mean, per-sequence sum, or per token); the
per-sequence sum is the negative sequence log-likelihood that NPO/DPO-style losses need.

Shapes: B sequences, T tokens, D hidden, V vocabulary. A batch is right-padded:
``input_ids`` (B, T), ``attention_mask`` (B, T), ``labels`` (B, T) with -100 on the prompt and on
padding. Position t predicts token t + 1 (``shift=1``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

IGNORE_INDEX = -100


# ----------------------------------------------------------------------------- examples, batches


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and a 0/1 mask of the tokens that are prediction targets."""

    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.loss_mask):
            raise ValueError(
                f"input_ids ({len(self.input_ids)}) and loss_mask ({len(self.loss_mask)}) differ"
            )
        if len(self.input_ids) < 2:
            raise ValueError("an example needs at least 2 tokens (one input, one target)")


def sft_example(tokenizer: Any, question: str, answer: str, *, system: str | None = None) -> Example:
    """A chat example whose loss covers only the response (`` answer</s>``), not the prompt."""
    from xentlab.data.tokenizer import encode_chat

    ids, n_prompt = encode_chat(tokenizer, question, answer, system)
    return Example(tuple(ids), tuple([0] * n_prompt + [1] * (len(ids) - n_prompt)))


def segments_example(tokenizer: Any, segments: Sequence[tuple[str, bool]]) -> Example:
    """An example built from text segments, each tokenized on its own and trained on or not.

    E.g. ``[(prompt, False), (reasoning, True), (refusal, True)]``; segment boundaries never
    merge into one token, so per-segment masks are exact.
    """
    ids: list[int] = []
    mask: list[int] = []
    for text, train in segments:
        seg = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += seg
        mask += [int(train)] * len(seg)
    return Example(tuple(ids), tuple(mask))


def text_examples(tokenizer: Any, text: str, seq_len: int, *, stride: int | None = None) -> list[Example]:
    """Pretraining examples: ``<s>`` + consecutive windows of ``seq_len - 1`` tokens of ``text``."""
    if seq_len < 3:
        raise ValueError(f"seq_len must be at least 3, got {seq_len}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    body = seq_len - 1
    stride = stride or body
    out = []
    for start in range(0, max(len(ids) - body, 0) + 1, stride):
        chunk = [tokenizer.bos_token_id, *ids[start : start + body]]
        if len(chunk) >= 2:
            out.append(Example(tuple(chunk), tuple([0] + [1] * (len(chunk) - 1))))
    return out


def collate(
    examples: Sequence[Example], pad_id: int, *, pad_to_multiple_of: int = 1
) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; ``labels`` = ids where the mask is 1, else -100.

    ``loss_mask[t]`` marks token t as a target, so the label of token t is kept at position t
    and the loss shifts (position t-1 predicts it).
    """
    if not examples:
        raise ValueError("cannot collate an empty batch")
    length = max(len(e.input_ids) for e in examples)
    length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    attn = torch.zeros((len(examples), length), dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        row = torch.tensor(e.input_ids, dtype=torch.long)
        ids[i, :n] = row
        attn[i, :n] = 1
        keep = torch.tensor(e.loss_mask, dtype=torch.bool)
        labels[i, :n] = torch.where(keep, row, torch.full_like(row, IGNORE_INDEX))
    return {"input_ids": ids, "attention_mask": attn, "labels": labels}


class BatchStream:
    """Batches for step s: a seeded permutation per epoch (``xentlab.train.EpochSampler``), padded.

    Deterministic in (seed, step), so a run is reproducible whatever happened before it. The
    examples are padded once into one tensor; each batch is trimmed to its longest row.
    """

    def __init__(
        self, examples: Sequence[Example], batch_size: int, *, pad_id: int, seed: int, device: Any = "cpu"
    ):
        from xentlab.train.loop import EpochSampler

        if not examples:
            raise ValueError("BatchStream needs at least one example")
        full = collate(examples, pad_id)
        self.tensors = {k: v.to(device) for k, v in full.items()}
        self.lengths = full["attention_mask"].sum(1).to(device)
        self.sampler = EpochSampler(len(examples), batch_size, seed, drop_last=False)
        self.batch_size = self.sampler.batch_size

    def __len__(self) -> int:
        return len(self.lengths)

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.sampler(step).to(self.lengths.device)
        width = int(self.lengths[idx].max())
        return {k: v[idx, :width] for k, v in self.tensors.items()}


def concat_batches(*batches: dict[str, torch.Tensor], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack right-padded batches of different widths into one (padding the narrower ones)."""
    width = max(b["input_ids"].shape[1] for b in batches)
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}
    out = {}
    for k, v in fill.items():
        out[k] = torch.cat([F.pad(b[k], (0, width - b[k].shape[1]), value=v) for b in batches])
    return out


# ----------------------------------------------------------------------------- the loss

_LCE: Callable[..., torch.Tensor] | None = None


def _linear_cross_entropy() -> Callable[..., torch.Tensor]:
    """``xentlab.kernels.linear_cross_entropy`` when it exists, else the plain fallback below.

    ``XENTLAB_LM_LOSS=plain`` forces the fallback (to compare the two, or to rule the kernel out).
    """
    global _LCE
    if _LCE is None:
        _LCE = _plain_linear_cross_entropy
        if os.environ.get("XENTLAB_LM_LOSS", "auto") != "plain":
            try:
                from xentlab.kernels import linear_cross_entropy  # Cut Cross-Entropy (cce package)

                _LCE = linear_cross_entropy
            except ImportError:
                pass
    return _LCE


def lm_loss_backend() -> str:
    """Which implementation ``token_cross_entropy`` uses: "cce" or "plain"."""
    return "plain" if _linear_cross_entropy() is _plain_linear_cross_entropy else "cce"


def _plain_linear_cross_entropy(
    e: torch.Tensor,
    c: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    softcap: float | None = None,
    reduction: str = "mean",
    shift: int = 0,
    impl: str = "auto",
) -> torch.Tensor:
    """Materialised logits + ``F.cross_entropy``, with the signature of the CCE function.

    e[..., t, :] predicts targets[..., t + shift]; logits are upcast to float32 as the usual
    baseline does. reduction "none" returns the loss per (shifted) target position, 0 where ignored.
    """
    if shift:
        e, targets = e[..., :-shift, :], targets[..., shift:]
    logits = e @ c.T
    if bias is not None:
        logits = logits + bias
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).to(acc),
        targets.reshape(-1),
        ignore_index=ignore_index,
        reduction=reduction,
    )
    return loss.view(targets.shape) if reduction == "none" else loss


def token_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Next-token cross-entropy from hidden states (B, T, D) and the classifier (V, D).

    -log softmax(h_t W^T + b)[y_{t+1}] for every t whose label y_{t+1} is not -100.
    reduction: "mean" over all target tokens of the batch (0 when there are none), "sum"
    per sequence (B,), "none" per position (B, T-1) with 0 at ignored positions.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if hidden.shape[:2] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree on (B, T)")
    fn = _linear_cross_entropy()
    valid = labels[:, 1:] != IGNORE_INDEX
    if reduction == "mean" and not bool(valid.any()):
        return hidden.sum() * 0.0  # keeps the graph; no target tokens in this batch
    per_token = fn(
        hidden.contiguous(),
        weight,
        labels.contiguous(),
        bias=bias,
        ignore_index=IGNORE_INDEX,
        softcap=softcap,
        reduction="none",
        shift=1,
    )
    per_token = per_token * valid  # exact zeros at ignored positions, whatever the backend returns
    if reduction == "none":
        return per_token
    if reduction == "sum":
        return per_token.sum(dim=1)
    return per_token.sum() / valid.sum()


def _unwrap(model: Any) -> Any:
    """The transformers causal-LM module under a peft wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def hidden_states(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Final hidden states (B, T, D) of a transformers causal LM (after its final norm)."""
    backbone = _unwrap(model).base_model
    out = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    return out.last_hidden_state


def lm_loss(model: Any, batch: dict[str, torch.Tensor], *, reduction: str = "mean") -> torch.Tensor:
    """The next-token loss of ``model`` on the labelled (response) tokens of ``batch``.

    "mean": token-level mean over the batch (what ``model(..., labels=...).loss`` computes);
    "sum": per-sequence sum, i.e. -log p(response | prompt) for each row (B,);
    "none": (B, T-1) per position.
    """
    inner = _unwrap(model)
    head = inner.get_output_embeddings()
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    return token_cross_entropy(
        hidden_states(model, batch),
        head.weight,
        batch["labels"],
        bias=getattr(head, "bias", None),
        softcap=softcap,
        reduction=reduction,
    )


def sequence_logprob(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """log p(labelled tokens | preceding tokens) per sequence (B,): minus the summed loss."""
    return -lm_loss(model, batch, reduction="sum")


# ----------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class LMTrainConfig:
    """One training phase.

    steps: optimiser steps. batch_size: sequences per step. lr: peak AdamW learning rate,
    reached after ``warmup_frac * steps`` linear warm-up steps, then cosine decay to
    ``min_lr_frac * lr``. weight_decay, betas: AdamW. grad_clip: max global grad norm (None: off).
    replay_batch: rows per step drawn from a second ("replay") example set, e.g. pretraining text
    mixed into fine-tuning so that general language is not forgotten. log_every: history period.

    These defaults (betas (0.9, 0.95), eps 1e-8, warm-up then cosine) are a small-LM pretraining recipe,
    NOT the PyTorch / Hugging Face ``Trainer`` defaults (betas (0.9, 0.999), linear decay to 0, no decay
    on bias / norm). A phase that reproduces a paper's recipe sets them explicitly and its README says so
    (prob-unlearn's cpu unlearning had silently used these betas; fixed by its fidelity audit).
    """

    steps: int = 200
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    grad_clip: float | None = 1.0
    replay_batch: int = 0
    log_every: int = 25


def lr_lambda(cfg: LMTrainConfig) -> Callable[[int], float]:
    """Multiplier of the peak lr at step s: linear warm-up, then cosine to ``min_lr_frac``."""
    warm = max(1, round(cfg.warmup_frac * cfg.steps)) if cfg.warmup_frac > 0 else 0

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, cfg.steps - warm)
        return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return f


def make_optimizer(model: Any, cfg: LMTrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (no decay on norms, biases and embeddings' 1-d params) and its warm-up/cosine schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))


def fit(
    model: Any,
    loss_fn: Callable[[Any, int], torch.Tensor | tuple[torch.Tensor, dict[str, float]]],
    cfg: LMTrainConfig,
    *,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    callback: Callable[[int], bool | None] | None = None,
    progress: Callable | None = None,
) -> list[dict[str, float]]:
    """The generic loop: ``loss_fn(model, step)`` -> loss (or (loss, extra logs)), AdamW + schedule.

    ``callback(step_done)`` runs after every step; returning True stops training early. Raises
    FloatingPointError on a non-finite loss (a diverged run must not pass silently). Returns the
    logged history (every ``cfg.log_every`` steps and the last).
    """
    opt, sched = make_optimizer(model, cfg)
    history: list[dict[str, float]] = []
    model.train()
    steps = range(cfg.steps)
    for step in progress(steps) if progress else steps:
        out = loss_fn(model, step)
        loss, extra = out if isinstance(out, tuple) else (out, {})
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        done = step + 1
        if cfg.log_every and (done % cfg.log_every == 0 or done == cfg.steps):
            row = {"step": done, "loss": loss.item(), "lr": sched.get_last_lr()[0], **extra}
            history.append(row)
            if on_log:
                on_log(done, row)
        if callback is not None and callback(done):
            break
    model.eval()
    return history


def fit_lm(
    model: Any,
    examples: Sequence[Example],
    cfg: LMTrainConfig,
    *,
    pad_id: int,
    seed: int = 0,
    replay: Sequence[Example] = (),
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    progress: Callable | None = None,
) -> list[dict[str, float]]:
    """Next-token training on ``examples`` (their masked tokens), optionally mixing in replay rows."""
    device = next(model.parameters()).device
    stream = BatchStream(examples, cfg.batch_size, pad_id=pad_id, seed=seed, device=device)
    replay_stream = None
    if cfg.replay_batch and replay:
        replay_stream = BatchStream(replay, cfg.replay_batch, pad_id=pad_id, seed=seed + 7919, device=device)

    def loss_fn(m: Any, step: int) -> torch.Tensor:
        batch = stream(step)
        if replay_stream is not None:
            batch = concat_batches(batch, replay_stream(step), pad_id=pad_id)
        return lm_loss(m, batch)

    return fit(model, loss_fn, cfg, on_log=on_log, progress=progress)


def pretrain_then_finetune(
    model: Any,
    pretrain: Sequence[Example],
    finetune: Sequence[Example],
    pretrain_cfg: LMTrainConfig,
    finetune_cfg: LMTrainConfig,
    *,
    pad_id: int,
    seed: int = 0,
    on_log: Callable[[str, int, dict[str, float]], None] | None = None,
    progress: Callable | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Phase 1: language modelling on ``pretrain`` text. Phase 2: supervised fine-tuning on the
    responses of ``finetune``, with ``finetune_cfg.replay_batch`` pretraining rows per step."""

    def logger(phase: str):
        return (lambda s, row: on_log(phase, s, row)) if on_log else None

    hist_pre = (
        fit_lm(
            model,
            pretrain,
            pretrain_cfg,
            pad_id=pad_id,
            seed=seed,
            on_log=logger("pretrain"),
            progress=progress,
        )
        if pretrain_cfg.steps > 0
        else []
    )
    hist_ft = fit_lm(
        model,
        finetune,
        finetune_cfg,
        pad_id=pad_id,
        seed=seed + 1,
        replay=pretrain,
        on_log=logger("finetune"),
        progress=progress,
    )
    return {"pretrain": hist_pre, "finetune": hist_ft}


@torch.no_grad()
def mean_loss(model: Any, examples: Sequence[Example], *, pad_id: int, batch_size: int = 64) -> float:
    """Token-level mean loss over ``examples`` (eval mode; the previous mode is restored)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[i : i + batch_size], pad_id).items()}
        per = lm_loss(model, batch, reduction="none")
        total += per.sum().item()
        count += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    model.train(was)
    return total / max(count, 1)
