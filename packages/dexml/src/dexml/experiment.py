"""The XMC task built from a procedural taxonomy, and one dual-encoder training run.

Task (the WordNet design of the research notes, on xentlab.data.taxonomy instead of WordNet):
input = a concept's gloss (train also: its example sentences), labels = its ancestors (hypernym
closure) at depth >= ``skip_levels`` (the most generic levels are dropped), label text = the ancestor's
name + the first words of its gloss. Concepts are split into train/test, so every test text is unseen.
One shared tower encodes inputs and labels; s = cos / tau; every label is a negative at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from dexml.losses import compute_loss
from xentlab.data.taxonomy import Taxonomy, TaxonomyConfig, make_taxonomy
from xentlab.metrics.ranking import ndcg_at_k, precision_at_k
from xentlab.models.hashed_text import HashedFeaturizer, HashedTextTower, HashingConfig, TowerConfig

SAMPLE_SEED_OFFSET = (
    7_919  # positive sampling of the loss_sample arms: its own stream, apart from batch order
)


@dataclass(frozen=True)
class RunConfig:
    loss: str = "ds"
    """one of dexml.losses.LOSSES: softmax | bce | ds | ds_sample | softmax_sample"""
    # --- data ---
    n_domains: int = 4
    depth: int = 6
    """leaf depth of the taxonomy"""
    branching: tuple[int, int] = (2, 4)
    skip_levels: int = 2
    """ancestors at depth < skip_levels are not labels (the most generic levels)"""
    test_frac: float = 0.2
    """fraction of the input concepts held out for test"""
    use_examples: bool = True
    """add each train concept's example sentences as extra train points"""
    min_label_train: int = 2
    """keep labels with at least this many train points"""
    label_gloss_words: int = 10
    """label text = name + first this-many gloss words"""
    # --- model (paper: shared DistilBERT, CLS; here a hashed bag-of-ngrams tower) ---
    n_buckets: int = 2**16
    emb_dim: int = 128
    hidden: tuple[int, ...] = (256,)
    out_dim: int = 128
    tau: float = 0.05
    """temperature on cosine scores (official config)"""
    # --- optimisation (notes: AdamW 1e-3, 8 epochs; official optimizer_bundles.py: AdamW, weight decay 0.01
    # except biases, linear warm-up over `warmup` of the steps then linear decay to 0, per step) ---
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    """fraction of all steps with linear warm-up (configs/dual-encoder.yaml: warmup 0.1)"""
    epochs: int = 8
    batch_size: int = 256


@dataclass
class XMCData:
    train_texts: list[str]
    train_targets: torch.Tensor  # (N_train, L) bool
    test_texts: list[str]
    test_targets: torch.Tensor  # (N_test, L) bool
    label_texts: list[str]
    label_concepts: list[int]


def build_xmc(tax: Taxonomy, cfg: RunConfig, seed: int) -> XMCData:
    """Inputs: concepts deep enough to have a label; split by concept; labels: ancestors at depth >= skip."""
    rng = np.random.default_rng([seed, 0xDE])
    inputs = [c for c in tax.concepts if c.depth > cfg.skip_levels]
    is_test = np.zeros(len(inputs), bool)
    is_test[rng.permutation(len(inputs))[: int(round(cfg.test_frac * len(inputs)))]] = True

    def positives(c) -> list[int]:
        return [a for a in c.ancestors if tax.concepts[a].depth >= cfg.skip_levels]

    train_pts: list[tuple[str, list[int]]] = []
    test_pts: list[tuple[str, list[int]]] = []
    for c, t in zip(inputs, is_test):
        if t:
            test_pts.append((c.gloss, positives(c)))
        else:
            train_pts.append((c.gloss, positives(c)))
            if cfg.use_examples:
                train_pts += [(e, positives(c)) for e in c.examples]
    counts: dict[int, int] = {}
    for _, ps in train_pts:
        for p in ps:
            counts[p] = counts.get(p, 0) + 1
    labels = sorted(p for p, n in counts.items() if n >= cfg.min_label_train)
    col = {p: j for j, p in enumerate(labels)}

    def dense(points):
        points = [(t, [col[p] for p in ps if p in col]) for t, ps in points]
        points = [(t, js) for t, js in points if js]  # a point needs >= 1 kept label
        y = torch.zeros(len(points), len(labels), dtype=torch.bool)
        for i, (_, js) in enumerate(points):
            y[i, js] = True
        return [t for t, _ in points], y

    train_texts, train_y = dense(train_pts)
    test_texts, test_y = dense(test_pts)
    label_texts = []
    for p in labels:
        c = tax.concepts[p]
        gloss_words = c.gloss.split()[1 : 1 + cfg.label_gloss_words]  # drop the leading article
        label_texts.append(" ".join([c.name, *gloss_words]))
    return XMCData(train_texts, train_y, test_texts, test_y, label_texts, labels)


def make_optimizer(model: torch.nn.Module, cfg: RunConfig, total_steps: int):
    """AdamW + per-step LR schedule as the official ``BaseOptimizerBundle``: no weight decay on parameters
    named ``bias`` / ``layernorm`` or of shape (1,), ``cfg.weight_decay`` on the rest; lr rises linearly
    from 0 over ``int(warmup * total_steps)`` steps, then falls linearly to 0 at ``total_steps``
    (``transformers.get_linear_schedule_with_warmup``)."""

    def no_decay(name: str, p: torch.Tensor) -> bool:
        return any(k in name.lower() for k in ("bias", "layernorm", "layer_norm")) or p.shape == (1,)

    params = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in params if no_decay(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in params if not no_decay(n, p)], "weight_decay": cfg.weight_decay},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    return opt, get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), total_steps)


def run(
    cfg: RunConfig,
    seed: int,
    device: torch.device | str = "cpu",
    log: Callable[..., None] | None = None,
    progress: Callable | None = None,
) -> dict:
    """Train the shared tower with ``cfg.loss`` and return test P@1, P@5, nDCG@5 (fractions in [0, 1])."""
    device = torch.device(device)
    tax = make_taxonomy(
        TaxonomyConfig(n_domains=cfg.n_domains, depth=cfg.depth, branching=cfg.branching), seed
    )
    data = build_xmc(tax, cfg, seed)
    feat = HashedFeaturizer(HashingConfig(n_buckets=cfg.n_buckets))
    train_c, test_c, label_c = (feat.corpus(t) for t in (data.train_texts, data.test_texts, data.label_texts))
    label_ids, label_off = (t.to(device) for t in label_c.batch())

    torch.manual_seed(seed)
    tower = HashedTextTower(
        TowerConfig(n_buckets=cfg.n_buckets, emb_dim=cfg.emb_dim, hidden=cfg.hidden, out_dim=cfg.out_dim)
    ).to(device)
    gen = torch.Generator().manual_seed(seed)  # batch order: the same for every arm at a seed
    # the sampled arms draw their positives from a generator of their own, so that drawing them does not
    # shift the batch order: every arm sees the same batches in every epoch (paired comparisons)
    sample_gen = torch.Generator().manual_seed(seed + SAMPLE_SEED_OFFSET)
    n = len(train_c)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    opt, sched = make_optimizer(tower, cfg, total_steps=steps_per_epoch * cfg.epochs)
    epochs = range(cfg.epochs)
    if progress is not None:
        epochs = progress(epochs, desc=cfg.loss)
    step = 0
    for epoch in epochs:
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size].numpy()
            q = tower(*(t.to(device) for t in train_c.batch(idx)))
            lab = tower(label_ids, label_off)  # all labels, with gradient (shared encoder)
            sim = q @ lab.T / cfg.tau
            loss = compute_loss(cfg.loss, sim, data.train_targets[idx].to(device), sample_gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            step += 1
        if log is not None:
            log(step=step, epoch=epoch, loss=total / steps_per_epoch)

    tower.eval()
    with torch.no_grad():
        lab = tower(label_ids, label_off)
        q = tower(*(t.to(device) for t in test_c.batch()))
        scores = (q @ lab.T).cpu()
    y = data.test_targets
    return {
        "p_at_1": precision_at_k(scores, y, 1),
        "p_at_5": precision_at_k(scores, y, 5),
        "ndcg_at_5": ndcg_at_k(scores, y, 5),
        "n_train": n,
        "n_test": len(test_c),
        "n_labels": len(data.label_texts),
        "mean_positives": float(data.train_targets.sum(1).double().mean()),
        "final_loss": total / steps_per_epoch,
    }
