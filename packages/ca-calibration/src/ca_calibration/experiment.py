"""One seed of the calibration study: train a classifier, fit the calibrators on an ID calibration set,
evaluate on the ID test set and two shifted test sets.

cpu scale (MNIST-5k, offline): 3,000 train / 1,000 calibration / 1,000 ID test images (stratified,
seeded split); a small CNN (8-16-32 channels) trained 30 epochs with Adam and plain CE (no label
smoothing, no augmentation; the ``CPU`` config of reproduce.py, ``RunConfig``'s own defaults differ) so
that it ends overconfident. Shifted sets:

* ``digits``: all 1,797 scikit-learn 8x8 digits, bilinearly upsampled to 20x20 and zero-padded to
  28x28 (MNIST's own 20x20-box-in-28x28 layout): a real cross-dataset shift;
* ``rotblur``: the ID test images rotated by 30 degrees and blurred (Gaussian, sigma 1 px).

full scale (``dataset="cifar10"``, from a local path): ResNet-18 (CIFAR stem) on 45k CIFAR-10 training
images, 5k held out for calibration, the CIFAR-10 test set as ID and the test set rotated+blurred and
contrast-reduced+noised as the two shifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ca_calibration.calibrator import AdaptiveTemperature, TemperatureScaling, fit_adaptive
from ca_calibration.features import TransformSpec, logits_and_features
from xentlab.data.images import (
    ImageSet,
    adjust_contrast,
    gaussian_blur,
    load_cifar,
    load_digits_images,
    load_mnist5k,
    random_crop_flip,
    resize,
    rotate,
    split_images,
)
from xentlab.metrics.calibration import calibration_report, confidence_correct, reliability_bins
from xentlab.models.cnn import build_cnn, build_resnet

METHODS = ("none", "ts", "ce", "ca", "ce_long", "ca_long")
"""uncalibrated, temperature scaling, per-sample calibrator + CE, per-sample calibrator + CA; the ``_long``
variants are the same calibrators trained ``long_factor`` times longer (an ablation of the budget)"""


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "mnist5k"
    """'mnist5k' (cpu) or 'cifar10' (full, from data_root)"""
    data_root: str | None = None
    n_train: int = 3000
    n_cal: int = 1000
    n_test: int = 1000
    widths: tuple[int, ...] = (16, 32, 64)
    model: str = "cnn"
    """'cnn' or 'resnet18' etc."""
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    """Adam learning rate of the classifier"""
    augment: bool = False
    rotation_deg: float = 15.0
    shift_px: int = 2
    contrast: float = 0.5
    cal_steps: int = 500
    """optimiser steps of the per-sample calibrators (official: 50k val images / batch 1000 x 10 epochs)"""
    cal_batch: int = 1000
    cal_lr: float = 1e-4
    long_factor: int = 10
    """the _long calibrators train for long_factor * cal_steps steps (0 disables them)"""
    official_init: bool = False
    """PyTorch's default init of the temperature layer (can start fully clamped at T = 0.1, see calibrator.py)"""
    ood_rotation: float = 30.0
    ood_blur: float = 1.0
    bins: tuple[int, ...] = (15, 25)


def _digits_as_mnist() -> ImageSet:
    d = load_digits_images()
    x = resize(d.x, 20)  # 8x8 -> 20x20 bilinear (antialias off when enlarging)
    x = F.pad(x, (4, 4, 4, 4)).clamp(0, 1)  # MNIST centres digits in a 20x20 box of a 28x28 frame
    return ImageSet(x, d.y)


def load_sets(cfg: RunConfig, seed: int) -> dict[str, ImageSet]:
    """train / cal / id / two shifted test sets, images in [0, 1]."""
    if cfg.dataset == "mnist5k":
        parts = split_images(
            load_mnist5k(), {"train": cfg.n_train, "cal": cfg.n_cal, "id": cfg.n_test}, seed=seed
        )
        test = parts["id"]
        shifted = rotate(test.x, cfg.ood_rotation)
        parts["rotblur"] = ImageSet(gaussian_blur(shifted, cfg.ood_blur).clamp(0, 1), test.y)
        parts["digits"] = _digits_as_mnist()
        return parts
    if cfg.dataset == "cifar10":
        if not cfg.data_root:
            raise ValueError("dataset cifar10 needs data_root (a local folder with the CIFAR-10 batches)")
        full = load_cifar(cfg.data_root, which="cifar10", train=True)
        parts = split_images(full, {"train": len(full) - cfg.n_cal, "cal": cfg.n_cal}, seed=seed)
        test = load_cifar(cfg.data_root, which="cifar10", train=False)
        parts["id"] = test
        parts["rotblur"] = ImageSet(
            gaussian_blur(rotate(test.x, cfg.ood_rotation), cfg.ood_blur).clamp(0, 1), test.y
        )
        g = torch.Generator().manual_seed(seed)
        noisy = adjust_contrast(test.x, 0.4) + 0.08 * torch.randn(test.x.shape, generator=g)
        parts["contrastnoise"] = ImageSet(noisy.clamp(0, 1), test.y)
        return parts
    raise ValueError(f"unknown dataset {cfg.dataset!r}")


def train_classifier(cfg: RunConfig, train: ImageSet, num_classes: int, seed: int, device, log=None):
    in_ch = train.x.shape[1]
    if cfg.model == "cnn":
        model = build_cnn(in_ch, num_classes, cfg.widths)
    else:
        model = build_resnet(int(cfg.model[len("resnet") :]), in_channels=in_ch, num_classes=num_classes)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    x, y = train.x.to(device), train.y.to(device)
    n = len(y)
    steps = math.ceil(n / cfg.batch_size)
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        for b in range(steps):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            xb = random_crop_flip(x[idx], padding=4, generator=gen) if cfg.augment else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        if log:
            log(step=epoch + 1, train_loss=total / steps)
    model.eval()
    return model


def run(cfg: RunConfig, seed: int, device=None, log=None) -> dict:
    device = device or torch.device("cpu")
    sets = load_sets(cfg, seed)
    k = int(sets["train"].y.max()) + 1
    model = train_classifier(cfg, sets["train"], k, seed, device, log)
    spec = TransformSpec(cfg.rotation_deg, cfg.shift_px, cfg.contrast)

    cached = {}
    for name in ("cal", *[s for s in sets if s not in ("train", "cal")]):
        z, a = logits_and_features(model, sets[name].x.to(device), spec)
        cached[name] = (z.cpu(), a.cpu(), sets[name].y)

    z_cal, a_cal, y_cal = cached["cal"]
    ts = TemperatureScaling().fit(z_cal, y_cal)
    calibrators, records = {}, {}
    variants = [("ce", "ce", cfg.cal_steps), ("ca", "ca", cfg.cal_steps)]
    if cfg.long_factor > 0:
        variants += [
            ("ce_long", "ce", cfg.cal_steps * cfg.long_factor),
            ("ca_long", "ca", cfg.cal_steps * cfg.long_factor),
        ]
    for name, objective, steps in variants:
        # same architecture and the same initial weights for both objectives (a paired comparison)
        torch.manual_seed(10_000 + seed)
        cal = AdaptiveTemperature(input_dim=a_cal.shape[1], official_init=cfg.official_init)
        records[name] = fit_adaptive(cal, z_cal, a_cal, y_cal, objective=objective, steps=steps,
                                     batch_size=cfg.cal_batch, lr=cfg.cal_lr, seed=seed)  # fmt: skip
        calibrators[name] = cal

    out: dict = {"ts_temperature": ts.temperature.item()}
    for objective, rec in records.items():
        for key, v in rec.items():
            out[f"{objective}cal_{key}"] = v
    reliability: dict = {}
    with torch.no_grad():
        for name, (z, a, y) in cached.items():
            if name == "cal":
                continue
            probs = {"none": z.softmax(1), "ts": ts(z).softmax(1)}
            probs.update({name: c(z, a).softmax(1) for name, c in calibrators.items()})
            for method, p in probs.items():
                rep = calibration_report(p, y, bins=cfg.bins)
                for key, v in rep.items():
                    out[f"{name}_{method}_{key}"] = v
                conf, corr = confidence_correct(p, y)
                b = reliability_bins(conf, corr, 15)
                reliability[f"{name}/{method}"] = {
                    "count": b.count.tolist(),
                    "confidence": [None if v != v else float(v) for v in b.confidence],
                    "accuracy": [None if v != v else float(v) for v in b.accuracy],
                }
    out["reliability"] = reliability
    return out
