"""Train one decoder-only transformer of the ladder on the Markov source to convergence (early stopping
on a validation sample), and score the best-validation checkpoint on the test sample.

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

Training to convergence. The paper's L(N) is read from models trained at or near convergence
(early-stopped where they would overfit) [unverified: the reading notes say so; the PDF was not read].
Here every model trains until its VALIDATION loss stops improving, by a rule fixed before the cpu run:
the validation sample (``VAL_SEED``, disjoint from the test sample and from every training stream) is
scored every ``eval_every`` steps; the run stops when ``patience`` consecutive evaluations have not
improved on the reference loss by more than ``min_delta`` (the reference is the last loss that did;
Keras-style ``EarlyStopping(min_delta, patience)``), or at the token cap ``tokens``. The checkpoint
with the lowest validation loss seen at any evaluation is kept in memory, and ONLY that checkpoint is
scored on the test sample: the test tokens never influence when a run stops or which weights count.

Learning-rate schedule with a variable length: linear warm-up, then cosine decay to
lr * final_lr_frac at the token CAP (not at the unknown stopping step), so the lr at step t does not
depend on when the run will stop, and a run that reaches the cap ends fully annealed like a
fixed-length run (Kaplan et al. 2020 train with a linear warm-up, then cosine decay to zero [recalled,
not re-read here]; that Henighan et al. use the same is [unverified]; ours decays to ``final_lr_frac``
of the peak, 10% in the cpu config: README deviation 10). ``schedule="constant"`` (lr held after warm-up) is the
other variable-length option; it is kept for pilots and tests, the ladders use the cosine.
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
from xentlab.train.early_stopping import EarlyStopping
from xentlab.train.schedules import warmup_cosine_lr

TEST_SEED = 2**40  # the test sample's seed: outside every training stream's seed range
VAL_SEED = 2**40 + 1  # the validation sample (early stopping, learning curves): disjoint from test


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    hidden, layers, heads: the model shape (Llama-style block; SwiGLU width 4 * hidden).
    tokens: the token CAP (D_max), all positions of every sequence counted; a run stops here at the
        latest. The tokens actually processed (D) are reported per run.
    batch, seq_len: sequences per step and their length (batch * seq_len tokens per step).
    lr: peak AdamW learning rate; warmup: linear warm-up over this fraction of the CAP's steps;
        schedule: "cosine" = cosine decay from lr to lr * final_lr_frac at the cap (module docstring),
        "constant" = lr held after the warm-up.
    weight_decay, beta2: AdamW settings.
    eval_every: steps between validation evaluations (the early-stopping clock).
    patience, min_delta: stop after `patience` consecutive evaluations without an improvement of more
        than `min_delta` nats on the reference validation loss (module docstring).
    val_seqs: sequences in the fixed validation sample.
    n_evals: log-spaced steps over the cap at which the validation loss is also recorded (the learning
        curve for the L(C) frontier; points after the stop are not reached).
    test_seqs: sequences in the fixed test sample, scored once, at the best-validation checkpoint.
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
    schedule: str = "cosine"
    weight_decay: float = 0.0
    beta2: float = 0.95
    eval_every: int = 100
    patience: int = 5
    min_delta: float = 0.002
    val_seqs: int = 1024
    n_evals: int = 14
    test_seqs: int = 2048

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.eval_every < 1 or self.patience < 1 or self.min_delta < 0:
            raise ValueError(
                f"need eval_every >= 1, patience >= 1, min_delta >= 0; got {self.eval_every}, "
                f"{self.patience}, {self.min_delta}"
            )
        if self.val_seqs < 1 or self.test_seqs < 1:
            raise ValueError(f"need val_seqs, test_seqs >= 1, got {self.val_seqs}, {self.test_seqs}")


def build_model(cfg: TrainConfig, vocab_size: int, seed: int) -> DecoderLM:
    """The ladder's model for cfg, initialised from ``seed`` whatever ran before."""
    shape = LMShape(vocab_size=vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                    max_positions=cfg.seq_len)  # fmt: skip
    return seeded_decoder(shape, seed)


def cap_steps(cfg: TrainConfig) -> int:
    """Optimizer steps at the token cap."""
    return max(1, cfg.tokens // (cfg.batch * cfg.seq_len))


def lr_at(step: int, n_steps: int, cfg: TrainConfig) -> float:
    """lr at ``step`` of a run whose schedule spans ``n_steps`` (the cap): linear warm-up over
    cfg.warmup of the steps, then cosine from lr to lr * final_lr_frac, or constant."""
    if cfg.schedule == "constant":
        warm = max(1, int(round(cfg.warmup * n_steps)))
        return cfg.lr * min(1.0, (step + 1) / warm)
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
    """Train one model to convergence; returns N, the stopping point, the validation learning curve and
    the test loss of the best-validation checkpoint (``final_loss``).

    ``seed`` sets the model initialisation and the training stream; the source and the validation and
    test samples are fixed by ``source_cfg`` (the same data distribution and the same held-out tokens for
    every seed).
    """
    device = torch.device(device)
    source = MarkovSource(source_cfg)
    val = torch.from_numpy(source.sample_batch(cfg.val_seqs, cfg.seq_len, VAL_SEED)).to(device)
    model = build_model(cfg, source.vocab_size, seed).to(device)
    n = model.non_embedding_params()
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay
    )
    per_step = cfg.batch * cfg.seq_len
    n_cap = cap_steps(cfg)
    curve_at = set(eval_steps(n_cap, cfg.n_evals))
    stopper = EarlyStopping(cfg.patience, cfg.min_delta)
    best_val, best_step, best_state = math.inf, 0, None
    curve_tokens, curve_loss = [], []
    stopped_early, last_val = False, math.nan
    t0 = time.perf_counter()
    step = 0
    for step in range(1, n_cap + 1):
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1, n_cap, cfg)
        # a fresh stationary batch per step: an unlimited stream, no token is seen twice
        x = source.sample_batch(cfg.batch, cfg.seq_len, seed * 1_000_003 + step - 1)
        x = torch.from_numpy(x).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        on_clock = step % cfg.eval_every == 0
        if not (on_clock or step in curve_at or step == n_cap):
            continue
        vl = test_loss(model, val, source.order)
        if not math.isfinite(vl):
            raise FloatingPointError(f"validation loss is {vl} at step {step} (N={n})")
        last_val = vl
        if step in curve_at:
            curve_tokens.append(step * per_step)
            curve_loss.append(vl)
        if vl < best_val:  # the checkpoint that counts: lowest validation loss at any evaluation
            best_val, best_step = vl, step
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if log is not None:
            log(step=step, tokens=step * per_step, train_loss=loss.item(), val_loss=vl,
                lr=opt.param_groups[0]["lr"], n=n)  # fmt: skip
        if on_clock and stopper.update(vl):
            stopped_early = step < n_cap
            break
    stop_step = step
    model.load_state_dict(best_state)
    test = torch.from_numpy(source.sample_batch(cfg.test_seqs, cfg.seq_len, TEST_SEED)).to(device)
    final = test_loss(model, test, source.order)
    # the true model's loss on the same held-out positions: the finite-sample Bayes losses
    true_test = float(-source.log_prob(test.cpu().numpy()).mean())
    true_val = float(-source.log_prob(val.cpu().numpy()).mean())
    return {
        "n_nonemb": n,
        "final_loss": final,
        "best_val_loss": best_val,
        "stop_val_loss": last_val,
        "tokens": stop_step * per_step,
        "best_tokens": best_step * per_step,
        "cap_tokens": n_cap * per_step,
        "stopped_early": stopped_early,
        "compute": 6.0 * n * stop_step * per_step,
        "entropy_rate": source.entropy_rate,
        "true_model_test_loss": true_test,
        "true_model_val_loss": true_val,
        "train_seconds": time.perf_counter() - t0,
        "tokens_per_step": per_step,
        "curve_tokens": curve_tokens,
        "curve_loss": curve_loss,
        "config": asdict(cfg),
    }
