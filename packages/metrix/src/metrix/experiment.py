"""Train an embedding with the contrastive loss (baseline) or contrastive + Metrix (embed / feature mode) on
seen glyph classes and measure Recall@K on disjoint, unseen classes (the deep-metric-learning protocol)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metrix.losses import (
    ancneg_pairs,
    contrastive_loss,
    embed_metrix_loss,
    mix,
    mixed_pair_loss,
    pair_distance,
    posneg_triples,
)

MODES = ("baseline", "embed", "feature")


@dataclass
class RunConfig:
    """One arm at one seed."""

    mode: str = "baseline"  # "baseline" contrastive, or + Metrix in "embed" or "feature" mode
    alpha: float = 2.0  # lam ~ Beta(alpha, alpha) (official --alpha 2.0)
    w_posneg: float = 0.4  # weight of scheme (i), pos-neg mixing (train.py, both modes)
    w_ancneg_embed: float = 0.3  # weight of scheme (ii) in embed mode (train.embed_metrix_contrastive)
    w_ancneg_feature: float = 0.4  # weight of scheme (ii) in feature mode (train.feature_metrix_contrastive)
    # data: procedural glyph classes (xentlab.data.shapes); train and test classes are disjoint
    n_train_classes: int = 30
    n_test_classes: int = 30
    n_per_class: int = 40
    image_size: int = 16
    # model: small CNN trunk -> GAP + GMP -> linear embedding -> L2 norm (the official head, on a small trunk)
    channels: int = 32
    embedding_size: int = 64
    # optimisation (official: Adam, wd 1e-4, StepLR(step 10, gamma 0.1), batch 100, grad value clip 10)
    batch_size: int = 100
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_decay_step: int = 10
    lr_decay_gamma: float = 0.1
    clip_value: float = 10.0
    recall_ks: tuple[int, ...] = (1, 2, 4)


# 12 shapes + 10 digits + 52 letters; the first 60 of a fixed permutation are used
GLYPH_CLASSES: tuple[str, ...] = (
    "circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "ring", "crescent", "arrow",
    "heart", "bowtie",
) + tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")  # fmt: skip


def load_split(cfg: RunConfig) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(train images, labels), (test images, labels) over disjoint class sets; one fixed class split (seed 0).

    The two class sets are rendered with different generator seeds (train 0, test 1). With one seed for both,
    test image i had exactly the pose, colours, texture and background of training image i and the same class
    index, so nuisance patterns memorised for training class k reappeared in test class k (fixed in audit 2;
    experiment version 2)."""
    from xentlab.data.shapes import ShapesConfig, load_shapes

    n_tr, n_te = cfg.n_train_classes, cfg.n_test_classes
    if n_tr + n_te > len(GLYPH_CLASSES) or min(n_tr, n_te) < 2:
        raise ValueError(f"need 2 <= train/test classes and train + test <= {len(GLYPH_CLASSES)}")
    order = np.random.default_rng(0).permutation(len(GLYPH_CLASSES))
    out = []
    for start, n, data_seed in ((0, n_tr, 0), (n_tr, n_te, 1)):
        classes = tuple(GLYPH_CLASSES[i] for i in order[start : start + n])
        shapes = ShapesConfig(classes=classes, n_per_class=cfg.n_per_class, size=cfg.image_size)
        data = load_shapes(shapes, data_seed)
        out.append((data.x, data.y))
    return out[0], out[1]


class Embedder(nn.Module):
    """CNN trunk -> feature map; head = GAP + GMP, linear, L2 norm (as in net/feature_resnet.py).
    ``trunk`` and ``head`` are separate so that feature mode can mix the feature maps in between."""

    def __init__(self, channels: int, embedding_size: int, in_ch: int = 3):
        super().__init__()
        c = channels

        def block(i, o, pool):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()] + (
                [nn.MaxPool2d(2)] if pool else []
            )

        self.trunk = nn.Sequential(*block(in_ch, c, True), *block(c, c, True), *block(c, 2 * c, False),
                                   *block(2 * c, 2 * c, False))  # fmt: skip
        self.embedding = nn.Linear(2 * c, embedding_size)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")  # official _initialize_weights
        nn.init.zeros_(self.embedding.bias)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        pooled = fmap.amax(dim=(2, 3)) + fmap.mean(dim=(2, 3))
        return F.normalize(self.embedding(pooled), dim=1, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def metrix_step_loss(
    model: Embedder, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig, scheme: int, lam: float
):
    """Clean contrastive loss + weighted Metrix loss of the drawn scheme (train.py, *_metrix_contrastive)."""
    fmap = model.trunk(x)
    emb = model.head(fmap)
    loss = contrastive_loss(emb, y)
    if cfg.mode == "baseline":
        return loss
    t = posneg_triples(y) if scheme == 0 else ancneg_pairs(y)
    if cfg.mode == "embed":
        w = cfg.w_posneg if scheme == 0 else cfg.w_ancneg_embed
        return loss + w * embed_metrix_loss(emb, t, lam)
    if cfg.mode == "feature":
        w = cfg.w_posneg if scheme == 0 else cfg.w_ancneg_feature
        if len(t) == 0:
            return loss
        # mix the last feature maps (before pooling), then pool + embed + normalise (feature_resnet.forward)
        mixed = model.head(mix(fmap[t.x], fmap[t.n], lam))
        return loss + w * mixed_pair_loss(pair_distance(emb[t.a], mixed), lam, t.weight)
    raise ValueError(f"unknown mode {cfg.mode!r} (expected one of {MODES})")


@torch.no_grad()
def embed_all(model: nn.Module, x: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    model.eval()
    out = torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)])
    model.train()
    return out


def recall_at_k(emb: torch.Tensor, labels: torch.Tensor, ks=(1, 2, 4)) -> dict[int, float]:
    """Fraction of queries whose K nearest other items (cosine) contain one of the same class
    (``evaluate_cos`` + ``calc_recall_at_k``; every test image is a query against all the others)."""
    emb = F.normalize(emb, dim=1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-float("inf"))
    nn_idx = sim.topk(max(ks), dim=1).indices
    hit = labels[nn_idx] == labels[:, None]
    return {k: hit[:, :k].any(1).float().mean().item() for k in ks}


def run(cfg: RunConfig, seed: int, device="cpu", log=None, progress=None) -> dict:
    """Train one arm at one seed; R@K in % on the unseen classes after the last epoch, plus curves."""
    if cfg.mode not in MODES:
        raise ValueError(f"unknown mode {cfg.mode!r} (expected one of {MODES})")
    (x_tr, y_tr), (x_te, y_te) = load_split(cfg)
    torch.manual_seed(seed)  # identical init for every arm at this seed
    model = Embedder(cfg.channels, cfg.embedding_size, in_ch=x_tr.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_decay_step, gamma=cfg.lr_decay_gamma)
    batch_rng = torch.Generator().manual_seed(seed)  # identical batches for every arm at this seed
    mix_rng = random.Random(seed)  # scheme choice (random.randint(0, 1) in train.py)
    lam_rng = np.random.default_rng(seed)  # lam ~ Beta(alpha, alpha), one per iteration
    curve, losses = [], []
    epochs = range(cfg.epochs)
    for epoch in progress(epochs, desc=cfg.mode) if progress else epochs:
        perm = torch.randperm(len(x_tr), generator=batch_rng)  # random sampling, drop_last (CUB/Cars setup)
        ep_loss = []
        for i in range(0, len(perm) - cfg.batch_size + 1, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            scheme, lam = mix_rng.randint(0, 1), float(lam_rng.beta(cfg.alpha, cfg.alpha))
            loss = metrix_step_loss(model, x_tr[idx].to(device), y_tr[idx].to(device), cfg, scheme, lam)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
            opt.step()
            ep_loss.append(loss.item())
        sched.step()
        r = recall_at_k(embed_all(model, x_te, device), y_te, cfg.recall_ks)
        curve.append(100 * r[1])
        losses.append(float(np.mean(ep_loss)))
        if log:
            log(step=epoch + 1, loss=losses[-1], test_r1=curve[-1])
    r = recall_at_k(embed_all(model, x_te, device), y_te, cfg.recall_ks)
    out = {f"r{k}": 100 * v for k, v in r.items()}
    out.update(r1_curve=curve, loss_curve=losses)
    return out
