"""One training run of CE, CE + OPL, TL or TL + OPL on an image set, clean or with label noise.

The recipe mirrors the official CIFAR script (``classification/cifar/train.py``): SGD with momentum
0.9 and weight decay 5e-4, a linear warm-up over the first epoch(s), step decay at milestones,
random-crop + flip augmentation, CE on the logits plus ``lambda * L_OPL`` on the pooled penultimate
features. Both arms of a comparison share the seed, so they start from the same weights and see
the same batches and the same noisy labels.

The label-noise arms of the paper's noise table (``label_noise/truncated_loss/main.py``) use the
truncated L_q loss (TL, ``opl.truncated``) as the base loss instead of CE, with ``0.1 * L_OPL``
(gamma 2) added for TL + OPL, SGD lr 0.01 without warm-up, weight decay 1e-4, x0.1 steps, and the
per-sample TL weights re-set every ``prune_every`` epochs from ``prune_start`` on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from opl.geometry import class_pair_matrix, pair_similarities
from opl.loss import OFFICIAL_GAMMA, OFFICIAL_LAMBDA, ce_plus_opl, orthogonal_projection_loss
from opl.truncated import OFFICIAL_K, OFFICIAL_Q, is_prune_epoch, pruning_weights, truncated_loss
from xentlab.data.images import (
    ImageSet,
    load_cifar,
    load_mnist5k,
    random_crop_flip,
    split_images,
    standardize,
)
from xentlab.data.label_noise import class_dependent_noise, next_class_mapping, uniform_noise
from xentlab.data.shapes import SHAPES, ShapesConfig, load_shapes
from xentlab.models.cnn import build_cnn, build_resnet


@dataclass(frozen=True)
class RunConfig:
    """Everything one unit needs (the experiment configs in reproduce.py are these fields)."""

    loss: str = "opl"
    """'ce' (baseline), 'opl' (CE + lam * L_OPL), 'tl' (truncated L_q) or 'tl_opl' (TL + lam * L_OPL)"""
    noise: float = 0.0
    """label-noise rate on the training labels (each selected label flips to another class)"""
    noise_type: str = "symmetric"
    """'symmetric' (to any other class, uniformly; the paper's "uniform") or 'pairflip' (class i to
    i + 1 mod K; the paper's "class dependent", ``noisify_pairflip`` of the official data/utils.py)"""
    dataset: str = "shapes"
    """'shapes' (xentlab.data.shapes), 'mnist5k', 'cifar10' or 'cifar100' (from data_root)"""
    data_root: str | None = None
    """local folder holding CIFAR (full scale only; never downloaded)"""
    n_train_per_class: int = 250
    """shapes/mnist5k: training images per class"""
    n_test_per_class: int = 100
    """shapes/mnist5k: test images per class"""
    image_size: int = 24
    """shapes: image side"""
    model: str = "cnn"
    """'cnn' (xentlab SmallCNN) or 'resnet<depth>' (e.g. resnet56, the paper's CIFAR-100 net)"""
    widths: tuple[int, ...] = (16, 32, 64)
    """SmallCNN stage widths (the last one is the feature dimension)"""
    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    """linear warm-up of the lr over the first epochs (official WarmUpLR, 1 epoch)"""
    milestones: tuple[int, ...] = (6, 9)
    """epochs at which the lr is multiplied by lr_decay (official: 60, 120, 160 of 200)"""
    lr_decay: float = 0.2
    augment: bool = True
    """random crop (padding 4 at 32 px, scaled to the image size) + horizontal flip"""
    gamma: float = OFFICIAL_GAMMA
    lam: float = OFFICIAL_LAMBDA
    tl_q: float = OFFICIAL_Q
    """truncated loss: the L_q exponent (official 0.7)"""
    tl_k: float = OFFICIAL_K
    """truncated loss: the truncation threshold on p_y (official 0.5)"""
    prune_start: int = 80
    """truncated loss: first (1-based) epoch before which the sample weights are re-set (official C-100: 80)"""
    prune_every: int = 10
    """truncated loss: re-set the weights before every epoch e (1-based) with e % prune_every == 0"""
    data_seed: int = 0
    """the dataset draw (fixed across seeds; the seed changes init, batches and the noisy labels)"""
    eval_batch: int = 1000
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "opl", "tl", "tl_opl"):
            raise ValueError(f"loss must be 'ce', 'opl', 'tl' or 'tl_opl', got {self.loss!r}")
        if self.noise_type not in ("symmetric", "pairflip"):
            raise ValueError(f"noise_type must be 'symmetric' or 'pairflip', got {self.noise_type!r}")
        if not 0.0 <= self.noise < 1.0:
            raise ValueError(f"noise must be in [0, 1), got {self.noise}")


def load_data(cfg: RunConfig) -> tuple[ImageSet, ImageSet, int]:
    """(train, test, num_classes), images standardised with training statistics."""
    if cfg.dataset == "shapes":
        shapes = ShapesConfig(classes=SHAPES[:10], n_per_class=cfg.n_train_per_class, size=cfg.image_size)
        train = load_shapes(shapes, seed=2 * cfg.data_seed)
        test = load_shapes(shapes.replace(n_per_class=cfg.n_test_per_class), seed=2 * cfg.data_seed + 1)
        k = shapes.num_classes
    elif cfg.dataset == "mnist5k":
        parts = split_images(
            load_mnist5k(),
            {"train": 10 * cfg.n_train_per_class, "test": 10 * cfg.n_test_per_class},
            seed=cfg.data_seed,
        )
        train, test, k = parts["train"], parts["test"], 10
    elif cfg.dataset in ("cifar10", "cifar100"):
        if not cfg.data_root:
            raise ValueError(f"dataset {cfg.dataset} needs data_root (a local folder with the CIFAR batches)")
        train = load_cifar(cfg.data_root, which=cfg.dataset, train=True)
        test = load_cifar(cfg.data_root, which=cfg.dataset, train=False)
        k = 10 if cfg.dataset == "cifar10" else 100
    else:
        raise ValueError(f"unknown dataset {cfg.dataset!r}")
    x_tr, x_te = standardize(train.x, test.x)
    return ImageSet(x_tr, train.y), ImageSet(x_te, test.y), k


def build_model(cfg: RunConfig, in_channels: int, num_classes: int) -> torch.nn.Module:
    if cfg.model == "cnn":
        return build_cnn(in_channels, num_classes, cfg.widths)
    if cfg.model.startswith("resnet"):
        return build_resnet(int(cfg.model[len("resnet") :]), in_channels=in_channels, num_classes=num_classes)
    raise ValueError(f"unknown model {cfg.model!r}")


def lr_at(cfg: RunConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs``, then step decay at the milestones.

    Warm-up as the official ``WarmUpLR``: its constructor sets lr = 0 and it steps after every batch, so
    the b-th (0-based) warm-up batch runs at ``lr * b / (warmup_epochs * steps_per_epoch)``. A milestone m
    multiplies the lr by ``lr_decay`` from 0-based epoch m on (after m finished epochs; ``MultiStepLR``
    stepped once per epoch, as the label-noise main.py does). The CIFAR train.py's ``step(epoch)`` with
    1-based epochs decays one epoch earlier, so its 60/120/160 are 59/119/159 here (reproduce.py FULL)."""
    epoch = step // steps_per_epoch
    if epoch < cfg.warmup_epochs:
        return cfg.lr * step / (cfg.warmup_epochs * steps_per_epoch)
    return cfg.lr * cfg.lr_decay ** sum(epoch >= m for m in cfg.milestones)


@torch.no_grad()
def embed(model: torch.nn.Module, x: torch.Tensor, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features and logits of ``x`` in eval mode (CPU tensors)."""
    model.eval()
    feats, logits = [], []
    for i in range(0, len(x), batch):
        f, z = model.forward_features(x[i : i + batch].to(device))
        feats.append(f.cpu())
        logits.append(z.cpu())
    model.train()
    return torch.cat(feats), torch.cat(logits)


def noisy_labels(y: torch.Tensor, num_classes: int, rate: float, kind: str, seed: int) -> torch.Tensor:
    """The training labels under the official noise models (``data/utils.py`` of the label-noise code).

    symmetric: T[i, i] = 1 - rate, T[i, j] = rate / (K - 1) for j != i (``noisify_multiclass_symmetric``);
    pairflip:  T[i, i] = 1 - rate, T[i, (i + 1) mod K] = rate (``noisify_pairflip``).
    """
    if rate == 0:
        return y
    if kind == "symmetric":
        return uniform_noise(y, num_classes, rate, seed=seed, exclude_true=True)
    if kind == "pairflip":
        return class_dependent_noise(y, next_class_mapping(num_classes), rate, seed=seed)
    raise ValueError(f"unknown noise type {kind!r}")


@torch.no_grad()
def prune(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig, pad: int, gen
) -> torch.Tensor:
    """TL's pruning step: one pass over the training set in eval mode, ``w_i = [p_i > k]``.

    As the official code, the pass reads the training loader, so the images carry one draw of the
    training augmentation; the labels are the (noisy) training labels.
    """
    model.eval()
    weights = []
    for i in range(0, len(x), cfg.eval_batch):
        xb = x[i : i + cfg.eval_batch]
        if cfg.augment:
            xb = random_crop_flip(xb, padding=pad, generator=gen)
        weights.append(pruning_weights(model.forward_features(xb)[1], y[i : i + cfg.eval_batch], cfg.tl_k))
    model.train()
    return torch.cat(weights)


def run(cfg: RunConfig, seed: int, device=None, log=None, progress=None) -> dict:
    """Train one arm; return metrics (accuracy, s_pos, s_neg on the test set) and artifacts."""
    device = device or torch.device("cpu")
    train, test, k = load_data(cfg)
    y_clean = train.y
    y_train = noisy_labels(y_clean, k, cfg.noise, cfg.noise_type, seed=1000 + seed)
    flipped = y_train != y_clean
    truncated = cfg.loss in ("tl", "tl_opl")

    model = build_model(cfg, train.x.shape[1], k).to(device)
    # official: SGD(lr, momentum=0.9, weight_decay=5e-4) on all parameters
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    n = len(train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    gen = torch.Generator().manual_seed(seed)
    pad = max(1, round(4 * train.x.shape[-1] / 32))
    x_all, y_all = train.x.to(device), y_train.to(device)
    weights = torch.ones(n, device=device)  # TL's per-sample weights (all 1 until the first pruning)
    base = "tl" if truncated else "ce"
    curve: list[dict] = []
    step = 0
    epochs = range(cfg.epochs)
    for epoch in progress(epochs, desc=cfg.loss) if progress else epochs:
        if truncated and is_prune_epoch(epoch, cfg.prune_start, cfg.prune_every):
            weights = prune(model, x_all, y_all, cfg, pad, gen)
        order = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, base: 0.0, "s_pos": 0.0, "s_neg": 0.0}
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            xb, yb = x_all[idx], y_all[idx]
            if cfg.augment:
                xb = random_crop_flip(xb, padding=pad, generator=gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step, steps_per_epoch)
            feats, logits = model.forward_features(xb)
            if cfg.loss == "opl":
                loss, parts = ce_plus_opl(logits, feats, yb, lam=cfg.lam, gamma=cfg.gamma)
            elif truncated:
                # official: criterion(outputs, targets, indexes) + opl_ratio * aux(features, targets);
                # OPL sees every sample of the batch, pruned or not
                loss = truncated_loss(logits, yb, weights[idx], cfg.tl_q, cfg.tl_k)
                opl, sp, sn = orthogonal_projection_loss(feats, yb, cfg.gamma)
                parts = {"tl": loss.item(), "s_pos": sp.item(), "s_neg": sn.item()}
                if cfg.loss == "tl_opl":
                    loss = loss + cfg.lam * opl
            else:
                loss = F.cross_entropy(logits, yb)
                with torch.no_grad():  # monitored only: the batch geometry the CE arm drifts to
                    _, sp, sn = orthogonal_projection_loss(feats, yb, cfg.gamma)
                parts = {"ce": loss.item(), "s_pos": sp.item(), "s_neg": sn.item()}
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}, batch {b}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            sums["loss"] += loss.item()
            for key in (base, "s_pos", "s_neg"):
                sums[key] += parts[key]
        _, z_te = embed(model, test.x, cfg.eval_batch, device)
        row = {k_: v / steps_per_epoch for k_, v in sums.items()}
        row.update(epoch=epoch + 1, test_acc=(z_te.argmax(1) == test.y).float().mean().item())
        if truncated:
            row.update(_weight_stats(weights.cpu(), flipped))
        curve.append(row)
        if log:
            log(step=step, **row)

    f_te, z_te = embed(model, test.x, cfg.eval_batch, device)
    s_pos, s_neg = pair_similarities(f_te, test.y)
    _, z_tr = embed(model, train.x, cfg.eval_batch, device)
    pred_tr = z_tr.argmax(1)
    out = {
        "test_acc": (z_te.argmax(1) == test.y).float().mean().item(),
        "test_s_pos": s_pos,
        "test_s_neg": s_neg,
        "train_acc_clean_labels": (pred_tr == y_clean).float().mean().item(),
        "noise_rate_realised": flipped.float().mean().item(),
        "curve": curve,
        "class_pair_cos": class_pair_matrix(f_te, test.y, k),
    }
    if flipped.any():
        # memorisation: share of flipped training labels the network reproduces
        out["noisy_fit"] = (pred_tr[flipped] == y_train[flipped]).float().mean().item()
    if truncated:
        out.update(_weight_stats(weights.cpu(), flipped))
    return out


def _weight_stats(weights: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """How well TL's last pruning separated the labels: the kept share overall, of the clean-labelled
    and of the flipped samples (defined whenever both kinds exist, unlike a precision)."""
    kept = weights > 0
    stats = {"kept_frac": kept.float().mean().item()}
    if (~flipped).any():
        stats["kept_clean_frac"] = kept[~flipped].float().mean().item()
    if flipped.any():
        stats["kept_noisy_frac"] = kept[flipped].float().mean().item()
    return stats
