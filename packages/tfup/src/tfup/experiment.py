"""One TFUP unit: a target pool of shifted-style images, the zero-shot / TFUP / ablation / TFUP-T arms.

Task. Target images are ``captioned_shapes`` scenes whose two objects share one shape (e.g. "a red
star left of a blue star"), drawn in a shifted rendering style; the class is that shape (C = 8).
Pools are filtered from a generated set until ``n_target`` are found; the pool seed is
``pool_seed_offset + seed``; the pool with generator seed 999 (never reported) chose the style.
Class weights: the mean of the raw text features of ``len(TEMPLATES)`` caption-like prompts per
shape (the analogue of the GPT-3.5 prompt ensembles of the official code).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from tfup.clip import ClipConfig, TinyClip, get_clip
from tfup.method import (
    ImageAdapter,
    TextAdapter,
    cache_shots,
    cosine_lr,
    loader_batches,
    marginal_loss,
    n_loader_batches,
    select_cache,
    tfup_logits,
    zero_shot_pred,
    zero_shot_probs,
)
from xentlab.data.captioned_shapes import SHAPE_NAMES, CaptionedShapesConfig, Vocab, load_captioned_shapes

TEMPLATES = (
    "a red {s} left of a blue {s}",
    "a green {s} above a yellow {s}",
    "a purple {s} right of a orange {s}",
    "a blue {s} below a green {s}",
    "a yellow {s} left of a red {s}",
)
"""Prompt templates per class (caption-like, since the tiny text encoder only knows captions)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one (seed) unit does."""

    clip: dict = field(default_factory=dict)
    """overrides of ClipConfig"""
    style: str = "texture"
    """target rendering style (chosen on the seed-999 validation pool, see README)"""
    n_target: int = 1500
    """unlabelled target images N"""
    gen_groups: int = 17000
    """scenes generated per pool to find n_target same-shape ones"""
    pool_seed_offset: int = 1000
    alpha: float = 0.3
    beta: float = 1.0
    cache_proportion: float = 0.3
    training_proportion: float = 0.75
    # TFUP-T (configs/*.yaml and main.py)
    epochs: int = 30
    warmup_epochs: int = 5
    batch: int = 256
    lr: float = 0.012
    eps: float = 3e-3
    weight_decay: float = 0.1
    ratio_text: float = 0.5
    ratio_image: float = 0.2
    conf_threshold: float = 0.9
    marginal_weight: float = 0.3
    crop_scale: tuple[float, float] = (0.5, 1.0)
    """random-resized-crop area range of the strong view (dassl's is (0.08, 1) on 224 px photos)"""


def target_pool(cfg: RunConfig, pool_seed: int, n_shapes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, shape labels) of the first n_target same-shape scenes of the pool."""
    gen = CaptionedShapesConfig(n_groups=cfg.gen_groups, group_size=1, n_shapes=n_shapes, style=cfg.style)
    data = load_captioned_shapes(gen, seed=pool_seed)
    same = torch.nonzero(data.meaning[:, 1] == data.meaning[:, 4]).squeeze(1)
    if len(same) < cfg.n_target:
        raise ValueError(f"only {len(same)} same-shape scenes in {cfg.gen_groups}; raise gen_groups")
    keep = same[: cfg.n_target]
    return data.x[keep], data.meaning[keep, 1]


@torch.no_grad()
def class_weights(model: TinyClip, n_shapes: int) -> torch.Tensor:
    """C x D raw text weights: the mean over templates of the raw prompt features (get_clip_weights)."""
    vocab = Vocab()
    out = []
    for s in SHAPE_NAMES[:n_shapes]:
        out.append(model.encode_text(vocab.encode_batch([t.format(s=s) for t in TEMPLATES])).mean(0))
    return torch.stack(out)


def strong_view(x: torch.Tensor, scale: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (area in ``scale``, aspect in [3/4, 4/3]) + horizontal flip, back to full size."""
    n = len(x)
    area = torch.empty(n).uniform_(*scale, generator=gen)
    logr = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    sw = (area * logr.exp()).sqrt().clamp(max=1.0)
    sh = (area / logr.exp()).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - sw)
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - sh)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sw * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = sh, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def train_tfup_t(
    cfg: RunConfig,
    model: TinyClip,
    x: torch.Tensor,
    feats: torch.Tensor,
    w: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    refine_idx: torch.Tensor,
    refine_lab: torch.Tensor,
    gen: torch.Generator,
    labels: torch.Tensor | None = None,
) -> dict:
    """TFUP-T (main.py ``TFUP_T``), returning the LAST epoch's ``100 f' W'^T`` predictions.

    Warm-up epochs: CE on strong views of the refined set with its TFUP pseudo-labels. Main epochs:
    per batch of the whole pool, TFUP logits on the weak view (the un-augmented features) through the
    current adapters; samples whose softmax confidence exceeds 0.9 get the argmax as a pseudo-label;
    loss = CE(strong-view logits of those, pseudo-labels) + 0.3 * marginal loss (all strong logits).
    Batches as dassl's training loaders: a random order, the last partial batch dropped (``loader_batches``).
    Cosine schedule with T_max = epochs * (refine batches), stepped every batch of both phases
    (as the official code; the rate passes 0 and rises again in the main phase). ``labels`` is only
    used to log the per-epoch test accuracy curve, never to select an epoch.
    """
    text = TextAdapter(w, cfg.ratio_text)
    image = ImageAdapter(w.shape[1], 4, cfg.ratio_image)
    params = list(text.parameters()) + list(image.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)
    # T_max = MAX_EPOCH * len(refine_loader); dassl's training loaders drop the last partial batch
    t_max = cfg.epochs * n_loader_batches(len(refine_idx), cfg.batch)
    step, curve, conf_frac = 0, [], []

    def run_step(loss):
        nonlocal step
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.lr, t_max)

    for epoch in range(cfg.epochs):
        if epoch < cfg.warmup_epochs:
            for b in loader_batches(len(refine_idx), cfg.batch, gen):
                with torch.no_grad():
                    fs = model.encode_image(strong_view(x[refine_idx[b]], cfg.crop_scale, gen))
                logits = 100.0 * image(fs) @ text().t()
                run_step(F.cross_entropy(logits, refine_lab[b]))
        else:
            n_conf, n_seen = 0, 0
            for b in loader_batches(len(x), cfg.batch, gen):
                with torch.no_grad():
                    fs = model.encode_image(strong_view(x[b], cfg.crop_scale, gen))
                wt = text()
                with torch.no_grad():  # pseudo-labels carry no gradient (argmax)
                    weak = tfup_logits(image(feats[b]), wt, keys, values, cfg.alpha, cfg.beta)
                    conf, pseudo = F.softmax(weak, dim=1).max(1)
                    sel = conf > cfg.conf_threshold
                strong = 100.0 * image(fs) @ wt.t()
                ce = F.cross_entropy(strong[sel], pseudo[sel]) if sel.any() else strong.sum() * 0.0
                run_step(ce + cfg.marginal_weight * marginal_loss(strong))
                n_conf += int(sel.sum())
                n_seen += len(b)
            conf_frac.append(n_conf / n_seen)
        with torch.no_grad():
            pred = (image(feats) @ text().t()).argmax(1)
        if labels is not None:
            curve.append(float((pred == labels).float().mean()))
    return {"pred": pred, "curve": curve, "conf_frac": conf_frac}


def random_cache(pred: torch.Tensor, n_classes: int, shots: int, gen: torch.Generator):
    """Ablation: per class, ``shots`` random samples among those zero-shot predicts as that class."""
    idx, lab = [], []
    for c in range(n_classes):
        pool = torch.nonzero(pred == c).squeeze(1)
        take = pool[torch.randperm(len(pool), generator=gen)[:shots]]
        idx.append(take)
        lab.append(torch.full((len(take),), c, dtype=torch.long))
    return torch.cat(idx), torch.cat(lab)


def confidence_cache(f: torch.Tensor, w: torch.Tensor, shots: int):
    """Ablation: per class, the ``shots`` samples with the highest p_c (no prototype/KL step)."""
    p = zero_shot_probs(f, w)
    idx = [p[:, c].argsort(descending=True)[:shots] for c in range(w.shape[0])]
    lab = [torch.full((shots,), c, dtype=torch.long) for c in range(w.shape[0])]
    return torch.cat(idx), torch.cat(lab)


def run(cfg: RunConfig, seed: int, log: Callable | None = None, pool_seed: int | None = None,
        tfup_t: bool = True) -> dict:  # fmt: skip
    torch.manual_seed(seed)
    ccfg = ClipConfig(**cfg.clip)
    model = get_clip(ccfg, log)
    c = ccfg.n_shapes
    x, y = target_pool(cfg, cfg.pool_seed_offset + seed if pool_seed is None else pool_seed, c)
    with torch.no_grad():
        feats = torch.cat([model.encode_image(b) for b in x.split(500)])
        w = class_weights(model, c)
    acc = {}

    def score(logits):
        return float((logits.argmax(1) == y).float().mean())

    acc["zero_shot"] = score(feats @ F.normalize(w, dim=-1).t())
    k = cache_shots(len(x), c, cfg.cache_proportion)
    gen = torch.Generator().manual_seed(seed)

    def tfup_acc(idx, lab, msm=True):
        logits = tfup_logits(feats, w, feats[idx], F.one_hot(lab, c).float(), cfg.alpha, cfg.beta, msm)
        return score(logits), float((y[idx] == lab).float().mean()), logits

    idx, lab = select_cache(feats, w, k)
    acc["tfup"], acc["cache_label_acc"], logits = tfup_acc(idx, lab)
    acc["tfup_cosine"] = tfup_acc(idx, lab, msm=False)[0]
    zs_pred = zero_shot_pred(feats, w)
    acc["tfup_random_cache"], acc["random_cache_label_acc"], _ = tfup_acc(*random_cache(zs_pred, c, k, gen))
    acc["tfup_conf_only"], acc["conf_cache_label_acc"], _ = tfup_acc(*confidence_cache(feats, w, k))
    out = {**acc, "cache_shots": k, "n_target": len(x)}
    if tfup_t:
        # refined training set: the same selection with floor(0.75 N / C) (min 9, no cap) per class, each
        # labelled by TFUP's prediction (refine_few_shots_without_label with cache=False)
        r_idx, _ = select_cache(feats, w, cache_shots(len(x), c, cfg.training_proportion, hi=None))
        r_lab = logits.argmax(1)[r_idx]
        res = train_tfup_t(
            cfg, model, x, feats, w, feats[idx], F.one_hot(lab, c).float(), r_idx, r_lab, gen, y
        )
        out.update(tfup_t=float((res["pred"] == y).float().mean()), refine_label_acc=float((y[r_idx] == r_lab).float().mean()),
                   tfup_t_curve=res["curve"], conf_frac=res["conf_frac"])  # fmt: skip
    return out
