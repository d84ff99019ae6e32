"""One seed of the reproduction: base training on one fold, then every inference arm on the same episodes.

Seed ``k`` uses fold ``k % n_folds`` (like PASCAL-5i, the folds share one image pool and differ in which
5 of the 20 classes are novel). The scene pools are fixed (``train_data_seed`` / ``test_data_seed``),
so seeds differ in fold, network initialisation, training order and episodes.

1. Base training (no meta-learning): the dilated FCN learns CE + label smoothing on the 15 base classes
   + background of the training pool; novel-class pixels are ignored (255) and images without any base
   object are dropped (official ``StandardData``). The final weights are used (no checkpoint selection:
   the official code keeps the epoch with the best episodic mIoU on the novel classes, i.e. on the
   test classes; we do not select on the test split).
2. Features of the held-out test pool are extracted once (eval mode) and L2-normalised over channels
   (official ``norm_feat``).
3. For 1-shot and 5-shot, the same episodes on the novel classes are solved by every arm and scored by
   the accumulated per-class mIoU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from repri.classifier import RePRIConfig, downsample_mask, predict, run_repri, true_proportion
from repri.episodes import IoUAccumulator, binary_masks, fg_intersection_union, sample_episodes
from repri.model import IGNORE, DilatedFCN, FCNConfig, smoothed_ce
from repri.scenes import SceneConfig, fold_classes, load_scenes


def arms(adapt_iter: int, oracle_official_iter: int) -> dict[str, RePRIConfig]:
    """The inference arms (brief + notes): everything but the loss weights / pi is shared."""
    return {
        # prototype init + bias = mean query logit, no adaptation
        "init": RePRIConfig(adapt_iter=0),
        # CE on the support only (l2 = l3 = 0; pi is then never updated, as in the official code)
        "ce": RePRIConfig(adapt_iter=adapt_iter, weights=(1.0, 0.0, 0.0)),
        # CE + query entropy
        "ce_h": RePRIConfig(adapt_iter=adapt_iter, weights=(1.0, 0.0, "auto")),
        # full RePRI: CE + KL(p_hat || pi) + H, pi re-estimated at iteration 10
        "repri": RePRIConfig(adapt_iter=adapt_iter),
        # Oracle-RePRI: the same run with the true query proportion as pi
        "oracle": RePRIConfig(adapt_iter=adapt_iter, fb_type="oracle"),
        # the official scripts/oracle.sh settings: 300 iterations, weights [1, 1, 0.1]
        "oracle_official": RePRIConfig(
            adapt_iter=oracle_official_iter, fb_type="oracle", weights=(1.0, 1.0, 0.1)
        ),
    }


@dataclass(frozen=True)
class RunConfig:
    """Everything one seed needs (defaults = the cpu scale, which reproduce.py also spells out field by field)."""

    n_train: int = 1500
    """scenes in the training pool (shared by all seeds / folds)"""
    n_test: int = 1000
    """scenes in the test pool the episodes are drawn from"""
    size: int = 64
    """scene side in pixels"""
    object_scale: tuple[float, float] = (0.6, 0.9)
    """object size range as a fraction of the side (``SceneConfig.scale``; was (0.4, 0.65) in the first cpu run,
    where objects covered only ~10% of the pixels and the base net never left the all-background argmax)"""
    n_folds: int = 4
    """20 classes / 4 folds = 5 novel classes per fold (PASCAL-5i layout)"""
    fold: int | None = None
    """novel fold; None = seed % n_folds"""
    train_data_seed: int = 0
    test_data_seed: int = 1
    width: int = 48
    feature_dim: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    """dilations of the residual blocks of the stride-4 trunk (one block each)"""
    steps: int = 3200
    """base-training steps (official: 50 epochs of PASCAL from an ImageNet-pretrained backbone; 800 steps of 16
    scenes in the second cpu run)"""
    batch_size: int = 8
    """scenes per step (official batch_size 12); 8 x 3200 beat 16 x 1600 at about the same cost on the validation pool"""
    lr: float = 4e-3
    """AdamW lr, cosine schedule (official: SGD + Nesterov, lr 0.0025, fine-tuning a pretrained PSPNet;
    a from-scratch net under a ~1 min budget barely leaves the all-background solution with SGD)"""
    weight_decay: float = 1e-4
    """official weight_decay 1e-4"""
    smoothing: float = 0.1
    """label smoothing eps (official ``smoothing: True`` -> eps = 0.1)"""
    bg_weight: float = 0.2
    """loss weight of background pixels (official: 1.0, no class weights; README deviation 4)"""
    episodes: int = 300
    """episodes per shot setting"""
    shots: tuple[int, ...] = (1, 5)
    eval_batch: int = 100
    """tasks solved together (independent parameters; only a speed knob)"""
    min_pixels: int = 48
    """a class counts as present in an image when it covers at least this many pixels (of 64 x 64): the official
    2*32*32 of ``process_image``, for the base-training images, the query pool and the supports (protocol v4)"""
    adapt_iter: int = 50
    """official scripts/test.sh: adapt_iter 50"""
    oracle_official_iter: int = 300
    """official scripts/oracle.sh: adapt_iter 300"""
    arm_names: tuple[str, ...] = ("init", "ce", "ce_h", "repri", "oracle", "oracle_official")
    """arms run (``arms``); 'oracle_official' (300 iterations, official scripts/oracle.sh) is the arm the oracle
    claims read from the fifth cpu run on (before: smoke and full only)"""


def base_labels(labels: torch.Tensor, base: list[int]) -> torch.Tensor:
    """Scene labels (0 bg, k+1 class k) -> training targets: bg 0, base class b_j -> j + 1, others IGNORE."""
    # the table covers every label in the pool AND every base class: a small pool may miss its highest
    # classes (sizing it from labels.max() alone raised IndexError there); unlisted labels stay IGNORE
    top = max(int(labels.max()) if labels.numel() else 0, max(base, default=-1) + 1)
    lut = torch.full((top + 1,), IGNORE, dtype=torch.long)
    lut[0] = 0
    for j, c in enumerate(base):
        lut[c + 1] = j + 1
    return lut[labels]


def train_base(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    cfg: RunConfig,
    log: Callable[..., None] | None = None,
) -> tuple[DilatedFCN, list[float]]:
    """Standard (non-episodic) training with random flips (official augmentations hor/vert flip)."""
    model = DilatedFCN(
        num_classes, FCNConfig(width=cfg.width, feature_dim=cfg.feature_dim, dilations=tuple(cfg.dilations))
    )
    # channels_last: the same convolutions, ~15% faster on CPU (mkldnn); converted back after training
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
    curve, running = [], []
    model.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, len(x), (cfg.batch_size,))
        xb, yb = x[idx].contiguous(memory_format=torch.channels_last), y[idx]
        if torch.rand(()) < 0.5:  # horizontal flip (batch-wise, cheap)
            xb, yb = xb.flip(-1), yb.flip(-1)
        if torch.rand(()) < 0.5:  # vertical flip
            xb, yb = xb.flip(-2), yb.flip(-2)
        loss = smoothed_ce(model(xb), yb, cfg.smoothing, cfg.bg_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % 50 == 0 or step == cfg.steps:
            curve.append(float(np.mean(running)))
            running = []
            if log is not None:
                log(step=step, train_loss=curve[-1])
    model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    return model, curve


@torch.no_grad()
def base_miou(model: DilatedFCN, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Standard mIoU over base classes + background on held-out images (sanity check of base training;
    ``run`` reports it on the test pool as ``base_test_miou`` and never selects on it)."""
    inter, union = torch.zeros(num_classes), torch.zeros(num_classes)
    for i in range(0, len(x), 250):
        pred = model(x[i : i + 250]).argmax(1)
        gt = y[i : i + 250]
        valid = gt != IGNORE
        for k in range(num_classes):
            p, g = (pred == k) & valid, (gt == k) & valid
            inter[k] += (p & g).sum()
            union[k] += (p | g).sum()
    return float((inter / union.clamp_min(1)).mean())


@torch.no_grad()
def extract_features(model: DilatedFCN, x: torch.Tensor) -> torch.Tensor:
    feats = torch.cat([model.features(x[i : i + 250]) for i in range(0, len(x), 250)])
    return F.normalize(feats, dim=1)  # official norm_feat: L2 over channels


def evaluate_arms(
    feats: torch.Tensor,
    labels: torch.Tensor,
    novel: list[int],
    shots: int,
    cfg: RunConfig,
    rng: np.random.Generator,
) -> dict:
    """Every arm on the same episodes; returns mIoU per arm and diagnostics of the pi estimate."""
    ep = sample_episodes(labels, novel, cfg.episodes, shots, rng, cfg.min_pixels)
    h, w = feats.shape[-2:]
    size = tuple(labels.shape[-2:])
    arm_cfgs = {k: v for k, v in arms(cfg.adapt_iter, cfg.oracle_official_iter).items() if k in cfg.arm_names}
    acc = {name: IoUAccumulator() for name in arm_cfgs}
    pi_err = {"init": [], "final": []}
    for start in range(0, len(ep.query), cfg.eval_batch):
        q, s = ep.query[start : start + cfg.eval_batch], ep.support[start : start + cfg.eval_batch]
        c = torch.from_numpy(ep.cls[start : start + cfg.eval_batch])
        t = len(q)
        f_s = feats[torch.from_numpy(s).flatten()].view(t, shots, *feats.shape[1:])
        f_q = feats[torch.from_numpy(q)].unsqueeze(1)
        gt_s = binary_masks(labels[torch.from_numpy(s)], c)  # (t, shots, H, W)
        gt_q = binary_masks(labels[torch.from_numpy(q)], c).unsqueeze(1)  # (t, 1, H, W)
        gt_s_ds, gt_q_ds = downsample_mask(gt_s, (h, w)), downsample_mask(gt_q, (h, w))
        valid_q = (gt_q_ds != IGNORE).float()
        pi_true = true_proportion(gt_q_ds)
        for name, arm in arm_cfgs.items():
            with torch.enable_grad():
                res = run_repri(
                    f_s, f_q, gt_s_ds, valid_q, arm, pi_oracle=pi_true if arm.fb_type == "oracle" else None
                )
            pred = predict(f_q, res, arm.temperature, size)
            inter, union = fg_intersection_union(pred, gt_q[:, 0])
            acc[name].update(ep.cls[start : start + cfg.eval_batch], inter, union)
            if name == "repri":
                pi_err["init"].append((res.pi_init[:, 1] - pi_true[:, 1]).abs())
                pi_err["final"].append((res.pi_final[:, 1] - pi_true[:, 1]).abs())
    out = {f"miou_{shots}shot_{name}": 100.0 * a.miou() for name, a in acc.items()}
    if pi_err["init"]:
        out[f"pi_err_{shots}shot_init"] = float(torch.cat(pi_err["init"]).mean())
        out[f"pi_err_{shots}shot_final"] = float(torch.cat(pi_err["final"]).mean())
    out[f"class_iou_{shots}shot"] = {name: a.per_class() for name, a in acc.items()}
    return out


N_CLASSES = 20
"""classes of the scene generator (``scenes.CLASSES``): 15 base + 5 novel per fold"""


def fold_of(cfg: RunConfig, seed: int) -> int:
    """The novel fold of a seed: ``cfg.fold``, or ``seed % n_folds`` when it is None."""
    return seed % cfg.n_folds if cfg.fold is None else cfg.fold


def base_classes(cfg: RunConfig, fold: int) -> tuple[list[int], list[int]]:
    """(base, novel) class ids of ``fold`` (5 novel classes, the other 15 are base)."""
    novel = fold_classes(N_CLASSES, cfg.n_folds, fold)
    return [c for c in range(N_CLASSES) if c not in novel], novel


def base_training_pool(cfg: RunConfig, base: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The base-training images and targets: the training pool (``train_data_seed``) with novel-class pixels
    IGNORE, kept only where a base class covers >= ``min_pixels`` pixels (``keep_base_images``, official
    ``StandardData`` / ``process_image``). Draws nothing from
    torch's random stream (the scenes come from their own numpy generator), so ``run`` and the tuning script
    (scripts/tune_base.py) train on the same stream after ``torch.manual_seed(seed)``."""
    x_tr, lab_tr = load_scenes(
        SceneConfig(n_images=cfg.n_train, size=cfg.size, scale=tuple(cfg.object_scale)), cfg.train_data_seed
    )
    y_tr = base_labels(lab_tr, base)
    keep = keep_base_images(y_tr, len(base), cfg.min_pixels)
    return x_tr[keep], y_tr[keep]


def keep_base_images(y: torch.Tensor, n_base: int, min_pixels: int) -> torch.Tensor:
    """(N,) bool: the images of base targets ``y`` (N, H, W; 0 bg, 1..n_base, IGNORE) where ONE base class covers
    >= ``min_pixels`` pixels. Official ``dataset/utils.py`` ``process_image`` (``make_dataset(train_list, base
    classes)`` in ``StandardData``): a class is kept for an image when it covers >= 2*32*32 px, the image when a
    class is kept; ``min_pixels`` is that threshold scaled to our scenes (README deviation 1). Protocol v4; up to v3
    any base pixel kept the image."""
    counts = torch.stack([(y == j).flatten(1).sum(1) for j in range(1, n_base + 1)], 1)
    return (counts >= min_pixels).any(1)


def run(cfg: RunConfig, seed: int, log: Callable[..., None] | None = None) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2021]))
    fold = fold_of(cfg, seed)
    base, novel = base_classes(cfg, fold)
    t0 = time.perf_counter()
    x_tr, y_tr = base_training_pool(cfg, base)
    x_te, lab_te = load_scenes(
        SceneConfig(n_images=cfg.n_test, size=cfg.size, scale=tuple(cfg.object_scale)), cfg.test_data_seed
    )
    t_data = time.perf_counter() - t0

    model, curve = train_base(x_tr, y_tr, len(base) + 1, cfg, log)
    t_train = time.perf_counter() - t0 - t_data
    out: dict = {
        "fold": fold,
        "n_train_used": len(x_tr),
        # base-class mIoU on the TEST pool (x_te), reported only: nothing selects on it (the last weights are
        # kept; base training was tuned on a separate validation pool, README). Named base_val_miou before the
        # fourth cpu run, although it was always the test pool.
        "base_test_miou": 100.0 * base_miou(model, x_te, base_labels(lab_te, base), len(base) + 1),
        "train_loss_final": curve[-1],
        "train_curve": curve,
    }
    feats = extract_features(model, x_te)
    for shots in cfg.shots:
        out.update(evaluate_arms(feats, lab_te, novel, shots, cfg, rng))
    out["time_data_s"], out["time_train_s"] = t_data, t_train
    out["time_eval_s"] = time.perf_counter() - t0 - t_data - t_train
    return out


FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
