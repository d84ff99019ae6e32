"""Train one decoder-only LM on a mixture of families and score each family's test loss.

Model: ``xentlab.models.small_decoder`` (Llama-style block, tied embedding over the shared vocabulary),
the model ar-scaling, emo and lr-annealing-scaling use. N = non-embedding parameters (Kaplan et al.).
Training: a fixed token budget D (single pass over a fresh stream: no sequence is seen twice, as in the
paper's pre-training), AdamW with linear warm-up and cosine decay; family i supplies exactly p_i of the
training sequences (``families.mixture_stream``).

Test loss of a family: mean next-token cross-entropy (nats/token) on a fixed sample of that family (its
languages equally often), scored at positions t >= k (k = the source order), where the model sees the
whole context the next symbol depends on; the best achievable value is the family's exact entropy rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from multilingual_scaling.families import World, family_source, mixture_stream, sample_family
from xentlab.models.small_decoder import LMShape, seeded_decoder
from xentlab.train.schedules import warmup_cosine_lr

TEST_SEED = 2**40  # held-out sample seed: outside every training stream's seed range
# validation sample seed (disjoint from the test sample and every training stream): the only data the
# protocol pilot (scripts/pilot_noise.py) looks at, so that no choice is made on the test sample
VAL_SEED = 2**41


@dataclass(frozen=True)
class TrainConfig:
    """hidden, layers, heads: the model (SwiGLU width 4 * hidden). tokens: training budget D (all positions
    of every sequence). batch, seq_len: sequences per step and their length. lr: peak AdamW lr, warm-up
    over ``warmup`` of the steps, cosine to lr * final_lr_frac. test_seqs: test sequences per family."""

    hidden: int = 16
    layers: int = 2
    heads: int = 2
    tokens: int = 150_000
    batch: int = 16
    seq_len: int = 16
    lr: float = 1e-2
    warmup: float = 0.05
    final_lr_frac: float = 0.1
    beta2: float = 0.95
    test_seqs: int = 512


def lr_at(step: int, n_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up over cfg.warmup of the steps, then cosine from lr to lr * final_lr_frac."""
    return warmup_cosine_lr(step, n_steps, lr=cfg.lr, warmup=cfg.warmup, final_lr_frac=cfg.final_lr_frac)


@torch.no_grad()
def family_loss(model, test: torch.Tensor, order: int, chunk: int = 1024) -> float:
    """Mean CE (nats/token) of the targets at positions t >= order (see the module docstring)."""
    model.eval()
    total, count = 0.0, 0
    start = max(order, 1)
    for i in range(0, test.shape[0], chunk):
        x = test[i : i + chunk]
        lg = model(x).float()[:, start - 1 : -1]
        tg = x[:, start:]
        total += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tg.reshape(-1), reduction="sum").item()
        count += tg.numel()
    model.train()
    return total / count


def heldout_sets(world: World, cfg: TrainConfig, base_seed: int = TEST_SEED) -> list[torch.Tensor]:
    """One fixed held-out sample per family (the same for every mixture, model and seed): the test sample
    (``TEST_SEED``) or the validation sample (``VAL_SEED``)."""
    return [torch.from_numpy(sample_family(f, cfg.test_seqs, cfg.seq_len, base_seed + 17 * i))
            for i, f in enumerate(world.families)]  # fmt: skip


def train_mixture(world: World, ratios, cfg: TrainConfig, seed: int, stream_seed: int | None = None,
                  val_every: int = 0, score_val: bool = False) -> dict:  # fmt: skip
    """Train one model with sampling ratios ``ratios`` over world's families.

    ``seed`` fixes the initialisation (the same for every mixture of a seed: a paired design);
    ``stream_seed`` (default seed) the training stream. Returns N and every family's test loss; with
    ``val_every`` > 0 also ``val_curve``, [step, per-family VALIDATION losses] every ``val_every`` steps
    and at the end (the protocol pilot's convergence check; the study itself never uses it); with
    ``score_val`` also ``val_losses``, every family's final VALIDATION loss (the normaliser diagnostic).
    Scoring is read-only (no randomness, no update), so neither option changes the test losses."""
    shape = LMShape(vocab_size=world.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                    max_positions=cfg.seq_len)  # fmt: skip
    model = seeded_decoder(shape, seed)
    per_step = cfg.batch * cfg.seq_len
    n_steps = max(1, cfg.tokens // per_step)
    data, _ = mixture_stream(world, ratios, n_steps * cfg.batch, cfg.seq_len,
                             seed if stream_seed is None else stream_seed)  # fmt: skip
    data = torch.from_numpy(data)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=0.0)
    orders = [family_source(f).order for f in world.families]
    val = heldout_sets(world, cfg, VAL_SEED) if val_every > 0 else []
    curve = []
    for step in range(n_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, n_steps, cfg)
        x = data[step * cfg.batch : (step + 1) * cfg.batch]
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if val and ((step + 1) % val_every == 0 or step + 1 == n_steps):
            curve.append([step + 1, [family_loss(model, t, k) for k, t in zip(orders, val)]])
    losses = [family_loss(model, t, k) for k, t in zip(orders, heldout_sets(world, cfg))]
    if not all(np.isfinite(losses)):
        raise FloatingPointError(f"non-finite test loss {losses} (ratios {list(ratios)})")
    out = {"n_nonemb": model.non_embedding_params(), "losses": losses, "tokens": n_steps * per_step}
    if score_val:
        out["val_losses"] = [
            family_loss(model, t, k) for k, t in zip(orders, heldout_sets(world, cfg, VAL_SEED))
        ]
    return out | ({"val_curve": curve} if val else {})
