"""One arm at one seed: train a student from scratch with CE, MaKD, or MaKD on shuffled aspect targets.

Recipe (configs/fine_grained/makd.yaml + mdistiller defaults): SGD, lr 0.01, momentum 0.9, weight
decay 1e-4, batch 16, lr x0.1 at 150/180/210 of 240 epochs (here at the same fractions of ``epochs``).
Every arm of one seed starts from the same weights (the student is built with the C + Q head in all
arms; the CE arm simply gives the aspect logits zero weight) and sees the same batches and crops.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from makd.loss import ALPHA, makd_loss, widen_head
from makd.oracle import NUISANCE_QUESTIONS, NUM_CLASSES, QUESTIONS, OracleConfig, make_aspect_data
from xentlab.data.images import _IMAGE_SUFFIXES, ImageSet, load_image_folder, random_crop_flip, standardize
from xentlab.models.cnn import build_cnn

ARMS = ("ce", "makd", "shuffled")


@dataclass(frozen=True)
class RunConfig:
    arm: str = "makd"
    """'ce' (alpha 0), 'makd', or 'shuffled' (MaKD with aspect-target rows permuted across images)"""
    alpha: float = ALPHA
    """weight of the aspect BCE term (paper: 4.0); ignored by the CE arm"""
    dataset: str = "shapes"
    """'shapes' (the oracle stand-in) or 'folder' (local ImageFolder + the authors' aspect JSON)"""
    n_train_per_class: int = 30
    n_val_per_class: int = 10
    n_test_per_class: int = 50
    image_size: int = 16
    data_seed: int = 0
    """the dataset draw (fixed across seeds; the seed changes init, batches and crops)"""
    train_root: str | None = None
    """folder: class-per-subfolder training images"""
    test_root: str | None = None
    """folder: class-per-subfolder test images (same class folder names)"""
    aspect_json: str | None = None
    """folder: the authors' JSON, {image file stem: [Q floats in [0, 1]]}"""
    widths: tuple[int, ...] = (16, 32, 64)
    """student SmallCNN widths (one conv per stage, batch norm)"""
    epochs: int = 40
    batch_size: int = 16
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    crop_padding: int = 2

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {self.arm!r}")
        if self.dataset not in ("shapes", "folder"):
            raise ValueError(f"dataset must be 'shapes' or 'folder', got {self.dataset!r}")


@dataclass(frozen=True)
class Data:
    train: ImageSet
    aspects: torch.Tensor
    val: ImageSet
    test: ImageSet
    num_classes: int
    test_margins: torch.Tensor | None = None
    """shapes: N_test x Q noise-free oracle margins (for the aspect-head diagnostic)"""


def _folder_files(root: Path) -> list[Path]:
    """The files load_image_folder reads, in its order (sorted class folders, sorted files)."""
    files = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files += sorted(p for p in d.glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    return files


def load_aspect_json(path: str | Path, stems: list[str]) -> torch.Tensor:
    """N x Q targets for the images named ``stems`` from the authors' {stem: [Q floats]} JSON."""
    table = json.loads(Path(path).read_text())
    missing = [s for s in stems if s not in table]
    if missing:
        raise KeyError(f"{len(missing)} training images have no entry in {path}, e.g. {missing[:3]}")
    t = torch.tensor([table[s] for s in stems], dtype=torch.float32)
    if t.ndim != 2:
        raise ValueError(f"aspect rows in {path} must all have the same length Q")
    if t.min() < 0 or t.max() > 1:
        raise ValueError(f"aspect targets in {path} must be probabilities in [0, 1]")
    return t


def load_data(cfg: RunConfig) -> Data:
    if cfg.dataset == "shapes":
        oc = OracleConfig(n_per_class=cfg.n_train_per_class, image_size=cfg.image_size)
        train = make_aspect_data(oc, 3 * cfg.data_seed)
        val = make_aspect_data(
            oc.__class__(**{**oc.__dict__, "n_per_class": cfg.n_val_per_class}), 3 * cfg.data_seed + 1
        )
        test = make_aspect_data(
            oc.__class__(**{**oc.__dict__, "n_per_class": cfg.n_test_per_class}), 3 * cfg.data_seed + 2
        )
        x_tr, x_va, x_te = standardize(train.images.x, val.images.x, test.images.x)
        return Data(ImageSet(x_tr, train.images.y), train.targets, ImageSet(x_va, val.images.y),
                    ImageSet(x_te, test.images.y), NUM_CLASSES, test.margins)  # fmt: skip
    if not (cfg.train_root and cfg.test_root and cfg.aspect_json):
        raise ValueError("dataset 'folder' needs train_root, test_root and aspect_json")
    train, names = load_image_folder(cfg.train_root, size=cfg.image_size)
    test, _ = load_image_folder(cfg.test_root, size=cfg.image_size, classes=names)
    aspects = load_aspect_json(
        cfg.aspect_json, [p.stem for p in _folder_files(Path(cfg.train_root).expanduser())]
    )
    # the paper trains on the whole training set and reports the test set: no validation split
    x_tr, x_te = standardize(train.x, test.x)
    empty = ImageSet(x_te[:0], test.y[:0])
    return Data(ImageSet(x_tr, train.y), aspects, empty, ImageSet(x_te, test.y), len(names))


def lr_milestones(epochs: int) -> list[int]:
    """MultiStepLR milestones (scheduler stepped once per epoch) for mdistiller's step decay at the same
    fractions of training. mdistiller (engine/utils.adjust_learning_rate, epochs counted from 1) uses
    lr = LR * 0.1 ** #{s in (150, 180, 210): epoch > s}, so with 240 epochs epoch 151 is the first at 1e-3;
    MultiStepLR with milestone m runs 0-based epoch m (1-based m + 1) at the decayed rate: m = 150."""
    return [math.ceil(epochs * f) for f in (150 / 240, 180 / 240, 210 / 240)]


@torch.no_grad()
def evaluate(model, data: ImageSet, num_classes: int, device) -> float:
    if not len(data):
        return float("nan")
    model.eval()
    logits = torch.cat(
        [model(data.x[i : i + 1000].to(device))[:, :num_classes].cpu() for i in range(0, len(data), 1000)]
    )
    model.train()
    return (logits.argmax(1) == data.y).float().mean().item()


def run(cfg: RunConfig, seed: int, device="cpu", log=None, progress=None) -> dict:
    data = load_data(cfg)
    c, q = data.num_classes, data.aspects.shape[1]
    aspects = data.aspects
    if cfg.arm == "shuffled":
        # control: the same marginal target distribution, but each image gets another image's answers
        perm = torch.from_numpy(np.random.default_rng([seed, 77]).permutation(len(aspects)))
        aspects = aspects[perm]
    alpha = 0.0 if cfg.arm == "ce" else cfg.alpha

    torch.manual_seed(seed)  # same init for every arm of this seed
    model = widen_head(build_cnn(data.train.x.shape[1], c, cfg.widths), c, q).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=lr_milestones(cfg.epochs), gamma=0.1)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all, t_all = data.train.x.to(device), data.train.y.to(device), aspects.to(device)
    n, steps = len(y_all), math.ceil(len(y_all) / cfg.batch_size)
    curve = []
    epochs = range(cfg.epochs)
    model.train()
    for epoch in progress(epochs, desc=cfg.arm) if progress else epochs:
        order = torch.randperm(n, generator=gen)
        tot = ce_tot = 0.0
        for b in range(steps):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            xb = random_crop_flip(x_all[idx], padding=cfg.crop_padding, flip=False, generator=gen)
            out = model(xb)
            loss = makd_loss(out, y_all[idx], t_all[idx], c, alpha=alpha)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}, batch {b}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item()
            ce_tot += F.cross_entropy(out[:, :c].detach(), y_all[idx]).item()
        sched.step()
        row = {"epoch": epoch + 1, "train_loss": tot / steps, "train_ce": ce_tot / steps}
        if len(data.val):
            row["val_acc"] = evaluate(model, data.val, c, device)
        curve.append(row)
        if log:
            log(step=epoch + 1, **row)
    out = {
        "test_acc": evaluate(model, data.test, c, device),
        "val_acc": evaluate(model, data.val, c, device),
        "final_train_ce": curve[-1]["train_ce"],
        "num_aspects": q,
        "curve": curve,
        "questions": list(QUESTIONS) if cfg.dataset == "shapes" else [],
    }
    if data.test_margins is not None:
        out.update(aspect_agreement(model, data, c, device))
    return out


@torch.no_grad()
def aspect_agreement(model, data: Data, num_classes: int, device) -> dict:
    """Diagnostic (shapes only): how often the sign of the student's aspect logit on a TEST image
    matches the oracle's noise-free answer (|margin| > 0.25), for class aspects and nuisance aspects.
    Chance is about 0.5; a CE student's untrained aspect logits sit near chance."""
    model.eval()
    z = model(data.test.x.to(device))[:, num_classes:].cpu()
    model.train()
    m = data.test_margins
    clear = m.abs() > 0.25
    agree = ((z > 0) == (m > 0)) & clear
    k = len(QUESTIONS) - len(NUISANCE_QUESTIONS)
    return {
        "aspect_agree_class": (agree[:, :k].sum() / clear[:, :k].sum()).item(),
        "aspect_agree_nuisance": (agree[:, k:].sum() / clear[:, k:].sum()).item(),
    }
