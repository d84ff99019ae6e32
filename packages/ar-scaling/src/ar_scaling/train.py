"""Train one decoder-only transformer of the ladder on the Markov source and log its test-loss curve.

One call = one model size and one seed. The model is a small decoder-only transformer
(``xentlab.models.small_decoder``: Llama-style blocks, tied input/output embedding), as the paper's decoder-only
Transformers (Henighan et al. 2020; their sparse attention and exact shapes are not used here).

Size N is the number of NON-EMBEDDING parameters, as in the paper and Kaplan et al. (2020): all parameters
minus the token embedding (rotary positions have no parameters; the classifier is tied to the embedding).
Compute is estimated as C = 6 N D (D = training tokens processed; 2 N FLOPs per token forward, 4 N
backward; Kaplan et al. 2020 §2.1), the estimate the paper's compute axis uses [unverified for this
paper's exact convention; it is Kaplan's].

Loss: cross-entropy in nats/token on a fixed held-out sample of the source, scored only at positions
t >= k (k = the source's order), where the model sees the whole context the next symbol depends on, so
the best achievable loss is exactly the source's entropy rate (positions t < k have a strictly higher
Bayes loss and would bias the comparison with the entropy rate upwards).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig
from xentlab.models.small_decoder import DecoderLM, LMShape, seeded_decoder
from xentlab.train.schedules import warmup_cosine_lr

TEST_SEED = 2**40  # the held-out sample's seed: outside every training stream's seed range


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    hidden, layers, heads: the model shape (Llama-style block; SwiGLU width 4 * hidden).
    tokens: training tokens (D), all positions of every sequence counted.
    batch, seq_len: sequences per step and their length (batch * seq_len tokens per step).
    lr: peak AdamW learning rate; warmup: fraction of steps of linear warm-up; then cosine decay to
        lr * final_lr_frac at the last step (Kaplan et al. 2020 train with warm-up + cosine decay).
    weight_decay, beta2: AdamW settings.
    n_evals: log-spaced evaluation points along training (the learning curve for the L(C) frontier).
    test_seqs: sequences (of seq_len) in the fixed held-out sample, scored for the final loss.
    curve_seqs: its first curve_seqs sequences, scored at the n_evals points of the learning curve
        (cheaper; the curve only has to rank the sizes along the compute axis).
    """

    hidden: int = 32
    layers: int = 2
    heads: int = 2
    tokens: int = 500_000
    batch: int = 32
    seq_len: int = 16
    lr: float = 1e-2
    warmup: float = 0.05
    final_lr_frac: float = 0.1
    weight_decay: float = 0.0
    beta2: float = 0.95
    n_evals: int = 14
    test_seqs: int = 2048
    curve_seqs: int = 512


def build_model(cfg: TrainConfig, vocab_size: int, seed: int) -> DecoderLM:
    """The ladder's model for cfg, initialised from ``seed`` whatever ran before."""
    shape = LMShape(vocab_size=vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                    max_positions=cfg.seq_len)  # fmt: skip
    return seeded_decoder(shape, seed)


def lr_at(step: int, n_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up over cfg.warmup of the steps, then cosine from lr to lr * final_lr_frac."""
    return warmup_cosine_lr(step, n_steps, lr=cfg.lr, warmup=cfg.warmup, final_lr_frac=cfg.final_lr_frac)


def eval_steps(n_steps: int, n_evals: int) -> list[int]:
    """Log-spaced steps (after which the model is evaluated), always including the last one."""
    pts = np.unique(np.round(np.geomspace(4, n_steps, n_evals)).astype(int))
    return sorted({int(p) for p in pts if 1 <= p <= n_steps} | {n_steps})


@torch.no_grad()
def test_loss(model, test: torch.Tensor, order: int, chunk: int = 512) -> float:
    """Mean cross-entropy (nats/token) of the targets at positions t >= order (see module docstring)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, test.shape[0], chunk):
        x = test[i : i + chunk]
        logits = model(x).float()
        # logits at position t-1 predict token t; keep the targets t = order .. T-1
        lg = logits[:, max(order, 1) - 1 : -1]
        tg = x[:, max(order, 1) :]
        total += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tg.reshape(-1), reduction="sum").item()
        count += tg.numel()
    model.train()
    return total / count


def train_one(
    cfg: TrainConfig,
    source_cfg: MarkovSourceConfig,
    seed: int,
    device: torch.device | str = "cpu",
    log: Callable[..., None] | None = None,
) -> dict:
    """Train one model; returns N, the learning curve (tokens, compute, test loss) and the final loss.

    ``seed`` sets the model initialisation and the training stream; the source and the test sample
    are fixed by ``source_cfg`` (the same data distribution and the same test tokens for every seed).
    """
    device = torch.device(device)
    source = MarkovSource(source_cfg)
    if not 1 <= cfg.curve_seqs <= cfg.test_seqs:
        raise ValueError(f"need 1 <= curve_seqs <= test_seqs, got {cfg.curve_seqs}, {cfg.test_seqs}")
    test = torch.from_numpy(source.sample_batch(cfg.test_seqs, cfg.seq_len, TEST_SEED)).to(device)
    model = build_model(cfg, source.vocab_size, seed).to(device)
    n = model.non_embedding_params()
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay
    )
    per_step = cfg.batch * cfg.seq_len
    n_steps = max(1, cfg.tokens // per_step)
    evals = set(eval_steps(n_steps, cfg.n_evals))
    curve_tokens, curve_loss = [], []
    t0 = time.perf_counter()
    for step in range(n_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, n_steps, cfg)
        # a fresh stationary batch per step: an unlimited stream, no token is seen twice
        x = source.sample_batch(cfg.batch, cfg.seq_len, seed * 1_000_003 + step)
        x = torch.from_numpy(x).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step + 1 in evals:
            tl = test_loss(model, test[: cfg.curve_seqs], source.order)
            if not math.isfinite(tl):
                raise FloatingPointError(f"test loss is {tl} at step {step + 1} (N={n})")
            curve_tokens.append((step + 1) * per_step)
            curve_loss.append(tl)
            if log is not None:
                log(step=step + 1, tokens=(step + 1) * per_step, train_loss=loss.item(), test_loss=tl, n=n)
    final = test_loss(model, test, source.order)
    # the true model's loss on the same test positions: the finite-sample Bayes loss
    true_loss = float(-source.log_prob(test.cpu().numpy()).mean())
    return {
        "n_nonemb": n,
        "final_loss": final,
        "tokens": n_steps * per_step,
        "compute": 6.0 * n * n_steps * per_step,
        "entropy_rate": source.entropy_rate,
        "true_model_test_loss": true_loss,
        "train_seconds": time.perf_counter() - t0,
        "tokens_per_step": per_step,
        "curve_tokens": curve_tokens,
        "curve_loss": curve_loss,
        "config": asdict(cfg),
    }
