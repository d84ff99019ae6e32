"""One fine-tuning arm at one seed: CE-tuning or Core-tuning from the shared SimCLR checkpoint.

Both arms share the checkpoint, the labelled subset, the network (classifier and contrastor built in the same
order, so the same seed gives the same initial heads), the augmentation, SGD (official lr 0.01; the cpu scale uses 0.1, see reproduce.py; momentum 0.9, Nesterov,
weight decay 1e-4, cosine annealing per epoch: the official optimiser and scheduler), the batch size and the
number of steps. They differ only in the loss:

* ``ce``:   cross-entropy of the classifier on the B original features (standard fine-tuning);
* ``core``: soft-label CE of the classifier on all 3B features (originals + hard-negative + hard-positive mixes)
            + eta * focal SupCon of the contrastor on the same 3B features (official ``train``).

Model selection uses a validation split of the labelled pool: the reported ``test_acc`` is the test accuracy of
the weights from the epoch of best validation accuracy (the official code keeps the best *test* accuracy over
epochs instead; we never evaluate the test set before training ends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from core_tuning.focal_supcon import TEMPERATURE, focal_supcon_loss
from core_tuning.mixup import HARD_NEGATIVE_FLOOR, feature_mixup, soft_cross_entropy
from core_tuning.model import FineTuneNet, build_backbone
from core_tuning.pretrain import PretrainConfig, load_pool, pretrained_backbone
from core_tuning.probe import frozen_features, linear_probe_accuracy
from xentlab.data.augment import AugmentConfig, augment

ARMS = ("ce", "core")
NUM_CLASSES = 10


@dataclass(frozen=True)
class RunConfig:
    """One fine-tuning unit. Defaults: the official README command where it applies."""

    arm: str = "core"
    """'ce' (CE-tuning) or 'core' (Core-tuning)"""
    pretrain: dict = field(default_factory=dict)
    """PretrainConfig fields (the checkpoint every unit starts from)"""
    n_labelled_per_class: int = 50
    """labelled training images per class, the first ones of each class in the pre-training pool"""
    n_val_per_class: int = 20
    """the next ones of each class in the pool: the validation split for epoch selection"""
    n_test_per_class: int = 100
    """test images per class, an independent draw (seed 1)"""
    epochs: int = 100
    batch_size: int = 256
    """the official effective batch (64 x 4 accumulation steps)"""
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    eta: float = 0.1
    """weight of focal SupCon (README command --eta_weight 0.1; the argparse default is 10)"""
    alpha: float = 1.0
    """Beta(alpha, alpha) of both mixes (--mixup_alpha 1)"""
    temperature: float = TEMPERATURE
    contrast_dim: int = 256
    negative_floor: float = HARD_NEGATIVE_FLOOR
    detach_originals: bool = True
    official_argmin: bool = False
    crop_scale: tuple[float, float] = (0.6, 1.0)
    """fine-tuning augmentation: random resized crop of this area range + horizontal flip"""


def labelled_splits(cfg: RunConfig, pre: PretrainConfig):
    """(train, val, test) as (x float [0,1], y int64) pairs; train and val are disjoint subsets of the pool."""
    from xentlab.data.shapes import ShapesConfig, load_shapes

    pool = load_pool(pre)
    y = pool.y.long()
    train_idx, val_idx = [], []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(y == c).view(-1)
        if len(idx) < cfg.n_labelled_per_class + cfg.n_val_per_class:
            raise ValueError(
                f"class {c} has {len(idx)} pool images, fewer than n_labelled_per_class + n_val_per_class"
            )
        train_idx.append(idx[: cfg.n_labelled_per_class])
        val_idx.append(idx[cfg.n_labelled_per_class : cfg.n_labelled_per_class + cfg.n_val_per_class])
    tr, va = torch.cat(train_idx), torch.cat(val_idx)
    test = load_shapes(ShapesConfig(n_per_class=cfg.n_test_per_class, size=pre.size), seed=1)
    x = pool.x.float()
    return (x[tr], y[tr]), (x[va], y[va]), (test.x.float(), test.y.long())


@torch.no_grad()
def evaluate(model: FineTuneNet, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 500):
    """(accuracy, features) with BatchNorm in eval mode."""
    model.eval()
    feats = torch.cat(
        [model.features(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    )
    acc = (model.classifier(feats).argmax(1).cpu() == y).float().mean().item()
    return acc, feats.cpu()


def class_cosines(feats: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cosine similarity of same-class pairs and of different-class pairs (the paper's intra-class scatter)."""
    f = F.normalize(feats.double(), dim=1)
    sim = f @ f.T
    same = y[:, None] == y[None, :]
    off = ~torch.eye(len(y), dtype=torch.bool)
    return float(sim[same & off].mean()), float(sim[~same].mean())


def run(
    cfg: RunConfig,
    seed: int,
    *,
    device,
    log: Callable[..., None],
    progress=lambda it, **kw: it,
    score_test: bool = True,
) -> dict:
    """Fine-tune one arm; ``score_test=False`` (the protocol pilot) never touches the test set."""
    if cfg.arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {cfg.arm!r}")
    t0 = time.time()
    pre = PretrainConfig(**{k: tuple(v) if k == "widths" else v for k, v in cfg.pretrain.items()})
    ckpt = pretrained_backbone(pre, device, log)
    t_ft = time.time()
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = labelled_splits(cfg, pre)

    backbone = build_backbone(pre.widths, pre.convs_per_stage)
    backbone.load_state_dict(ckpt["state_dict"])
    # strength of the checkpoint: linear probe fitted on the labelled training split, scored on validation
    probe_val_acc = linear_probe_accuracy(frozen_features(backbone, x_tr), y_tr.numpy(),
                                          frozen_features(backbone, x_va), y_va.numpy())  # fmt: skip
    model = FineTuneNet(backbone, NUM_CLASSES, cfg.contrast_dim).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=True)  # fmt: skip
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)  # stepped once per epoch, as official
    aug = AugmentConfig(crop_scale=tuple(cfg.crop_scale), flip_p=0.5, jitter_p=0.0, grayscale_p=0.0,
                        per_batch=False)  # fmt: skip
    rng = np.random.default_rng(seed)
    val_acc0, _ = evaluate(model, x_va, y_va, device)
    curves = {k: [] for k in ("ce_loss", "con_loss", "val_acc", "train_acc")}
    best_val, best_epoch, best_state = -1.0, -1, None
    for epoch in progress(range(cfg.epochs), desc=cfg.arm):
        model.train()
        order = torch.from_numpy(rng.permutation(len(x_tr)))
        ce_l, con_l, correct = [], [], 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if (
                len(idx) < 2
            ):  # a 1-sample batch has no pairs to mix and breaks BatchNorm; never hit at our sizes
                continue
            xb, yb = augment(x_tr[idx], aug).to(device), y_tr[idx].to(device)
            h = model.features(xb)
            if cfg.arm == "ce":
                logits = model.classifier(h)
                ce = F.cross_entropy(logits, yb)
                con = torch.zeros((), device=device)
            else:
                mixed = feature_mixup(h, yb, NUM_CLASSES, alpha=cfg.alpha, negative_floor=cfg.negative_floor,
                                      detach_originals=cfg.detach_originals,
                                      official_argmin=cfg.official_argmin)  # fmt: skip
                logits = model.classifier(mixed.features)
                ce = soft_cross_entropy(logits, mixed.soft_labels)
                con = focal_supcon_loss(model.contrastor(mixed.features), mixed.soft_labels, cfg.temperature)
            loss = ce + cfg.eta * con
            opt.zero_grad()
            loss.backward()
            opt.step()
            ce_l.append(ce.item())
            con_l.append(con.item())
            correct += int((logits[: len(yb)].argmax(1) == yb).sum())  # the first B rows are the originals
        sched.step()
        val_acc, _ = evaluate(model, x_va, y_va, device)
        for k, v in (("ce_loss", np.mean(ce_l)), ("con_loss", np.mean(con_l)), ("val_acc", val_acc),
                     ("train_acc", correct / len(order))):  # fmt: skip
            curves[k].append(float(v))
        if val_acc > best_val:  # first epoch of the best validation accuracy
            best_val, best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log(step=epoch, ce=curves["ce_loss"][-1], con=curves["con_loss"][-1], val_acc=val_acc)
    if not np.isfinite(curves["ce_loss"] + curves["con_loss"]).all():
        raise FloatingPointError(f"loss became non-finite for arm {cfg.arm}, seed {seed}")
    out = {
        "best_val_acc": best_val,
        "best_epoch": best_epoch + 1,
        "final_val_acc": curves["val_acc"][-1],
        "final_train_acc": curves["train_acc"][-1],
        "val_acc_before_finetuning": val_acc0,
        "pretrain_probe_val_acc": probe_val_acc,
    }
    if score_test:  # the test set is scored once, after training
        final_test_acc, _ = evaluate(model, x_te, y_te, device)
        model.load_state_dict(best_state)
        test_acc, feats = evaluate(model, x_te, y_te, device)
        intra, inter = class_cosines(feats, y_te)
        out.update(test_acc=test_acc, final_test_acc=final_test_acc, test_intra_class_cos=intra,
                   test_inter_class_cos=inter)  # fmt: skip
    if "cpu_s" in ckpt:  # absent in cache files written before it was recorded
        out["pretrain_cpu_s"] = float(ckpt["cpu_s"])
    return {
        **out,
        "final_con_loss": curves["con_loss"][-1],
        "pretrain_final_ntxent": float(ckpt["curve"][-1]),
        "pretrain_time_s": float(ckpt["time_s"]),
        "finetune_time_s": time.time() - t_ft,
        "time_s": time.time() - t0,
        "curves": curves,
        "pretrain_curve": [float(v) for v in ckpt["curve"]],
    }
