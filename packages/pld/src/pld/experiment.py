"""One student run: a fixed teacher (trained once, cached), then CE, KD, PLD or ListMLE on the student.

The recipe is the paper's CIFAR-100 one (Sec. 5.1): AdamW (beta 0.9 / 0.999), lr 1e-3 with cosine
annealing, weight decay 0.5, batch 128, random crop (+ horizontal flip on CIFAR) and per-channel
normalisation. The teacher logits are computed on the same augmented batch the student sees (the
teacher in eval mode, no gradient). Every arm of one seed starts from the same student weights and
sees the same batches and augmentation draws: the seed fixes both, and no loss consumes randomness.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pld.losses import kd_loss, listmle_loss, pld_loss
from xentlab.data import images as _images
from xentlab.data import shapes as _shapes
from xentlab.data.build_once import build_once
from xentlab.data.cache import atomic_write_bytes, cache_dir, code_key, source_digest
from xentlab.data.images import ImageSet, load_cifar, random_crop_flip, standardize
from xentlab.data.shapes import SHAPES, ShapesConfig, load_shapes
from xentlab.models import cnn as _cnn
from xentlab.models.cnn import build_cnn, build_resnet

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the teacher cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def teacher_code() -> str:
    """The code part of the teacher cache key: this module (data loading, ``build_model``, ``train``), the
    architectures (``xentlab.models.cnn``), the data (``xentlab.data.images``: CIFAR reading, crops, flips;
    ``xentlab.data.shapes.code_version()``: the shapes set) and the numpy / torch versions."""
    return code_key(SOURCE_DIGEST, _cnn.SOURCE_DIGEST, _images.SOURCE_DIGEST, _shapes.code_version(),
                    libraries=("numpy", "torch"))  # fmt: skip


def teacher_key(cfg: RunConfig) -> str:
    """The teacher's cache name: ``cfg.teacher_fields()`` (data, architecture, recipe, seed) and
    ``teacher_code()``."""
    blob = json.dumps({"cfg": cfg.teacher_fields(), "code": teacher_code()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


LOSSES = ("ce", "kd", "pld", "listmle")

# 12 geometric shapes + 8 letters with look-alike pairs (E/F, P/R, O/Q, C/G; O and C also resemble
# circle / ring / crescent), so that a teacher's non-top classes carry structure worth distilling
SHAPE_CLASSES: tuple[str, ...] = SHAPES + ("E", "F", "P", "R", "O", "Q", "C", "G")


@dataclass(frozen=True)
class RunConfig:
    """Everything one unit needs (the experiment configs in reproduce.py are these fields)."""

    loss: str = "pld"
    """student loss: 'ce', 'kd' (alpha CE + (1 - alpha) tau^2 KL), 'pld' or 'listmle' (PLD, uniform alpha)"""
    pld_tau: float = 1.0
    """PLD: tau_T of the teacher softmax weights"""
    kd_alpha: float = 0.1
    """KD: the CE weight alpha"""
    kd_tau: float = 2.0
    """KD: temperature"""
    dataset: str = "shapes"
    """'shapes' (xentlab.data.shapes, SHAPE_CLASSES) or 'cifar100' (from data_root)"""
    data_root: str | None = None
    """full scale: a local folder holding cifar-100-python/ (never downloaded)"""
    num_classes: int = 20
    """shapes: the first num_classes of SHAPE_CLASSES"""
    image_size: int = 16
    """shapes: image side"""
    n_train_per_class: int = 150
    n_val_per_class: int = 50
    """validation images per class (shapes: an independent draw; CIFAR: held out of the training set)"""
    n_test_per_class: int = 100
    """shapes: test images per class (CIFAR uses its 10,000 test images)"""
    student: str = "cnn:16,32"
    """'cnn:<w1>,<w2>,...' (xentlab SmallCNN, one conv per stage) or 'resnet<depth>'"""
    teacher: str = "cnn2:32,64,128"
    """as ``student``; 'cnn2:' has two convs per stage"""
    epochs: int = 20
    teacher_epochs: int = 30
    teacher_lr: float | None = None
    """the teacher's AdamW lr (None: ``lr``)"""
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.5
    """AdamW's decoupled weight decay (paper, Sec. 5.1: 0.5)"""
    crop_padding: int = 2
    flip: bool = False
    """horizontal flips (on for CIFAR; off for shapes, whose letters are not mirror-symmetric)"""
    teacher_seed: int = 0
    """the one teacher every seed distils from"""
    data_seed: int = 0
    """the dataset draw (fixed across seeds; the seed changes the student init, batches, augmentation)"""
    eval_batch: int = 1000
    train_limit: int | None = None
    """CIFAR: use only the first n training images (fixture tests)"""
    test_limit: int | None = None
    """CIFAR: use only the first n test images (fixture tests)"""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.dataset not in ("shapes", "cifar100"):
            raise ValueError(f"dataset must be 'shapes' or 'cifar100', got {self.dataset!r}")
        if self.dataset == "shapes" and not 2 <= self.num_classes <= len(SHAPE_CLASSES):
            raise ValueError(f"num_classes must be in [2, {len(SHAPE_CLASSES)}], got {self.num_classes}")

    def teacher_fields(self) -> dict:
        """What the teacher depends on (its cache key): data, architecture, recipe, seed."""
        fields = {"teacher_lr_resolved": self.teacher_lr or self.lr}
        skip = {"loss", "pld_tau", "kd_alpha", "kd_tau", "student", "epochs", "lr", "eval_batch"}
        fields.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip})
        return fields


@dataclass(frozen=True)
class Data:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int


def load_data(cfg: RunConfig) -> Data:
    """Train / validation / test sets, standardised per channel with training statistics."""
    if cfg.dataset == "shapes":
        shapes = ShapesConfig(
            classes=SHAPE_CLASSES[: cfg.num_classes], n_per_class=cfg.n_train_per_class, size=cfg.image_size
        )
        base = 3 * cfg.data_seed
        train = load_shapes(shapes, seed=base)
        val = load_shapes(shapes.replace(n_per_class=cfg.n_val_per_class), seed=base + 1)
        test = load_shapes(shapes.replace(n_per_class=cfg.n_test_per_class), seed=base + 2)
        k = cfg.num_classes
    else:
        if not cfg.data_root:
            raise ValueError("dataset cifar100 needs data_root (a local folder with cifar-100-python/)")
        full = load_cifar(cfg.data_root, which="cifar100", train=True)
        test = load_cifar(cfg.data_root, which="cifar100", train=False)
        if cfg.train_limit:
            full = full.subset(range(min(cfg.train_limit, len(full))))
        if cfg.test_limit:
            test = test.subset(range(min(cfg.test_limit, len(test))))
        # hold out n_val_per_class * 100 training images (a seeded split) for validation; the paper
        # trains on all 50,000 and reports the test set (it has no validation split)
        n_val = min(cfg.n_val_per_class * 100, len(full) // 5)  # 0: no validation split
        order = torch.from_numpy(np.random.default_rng(cfg.data_seed).permutation(len(full)))
        val, train = full.subset(order[:n_val]), full.subset(order[n_val:])
        k = 100
    x_tr, x_va, x_te = standardize(train.x, val.x, test.x)
    return Data(ImageSet(x_tr, train.y), ImageSet(x_va, val.y), ImageSet(x_te, test.y), k)


def build_model(spec: str, in_channels: int, num_classes: int) -> torch.nn.Module:
    """'cnn:16,32' / 'cnn2:32,64,128' (SmallCNN with 1 / 2 convs per stage) or 'resnet<depth>'."""
    if spec.startswith(("cnn:", "cnn2:")):
        kind, widths = spec.split(":")
        return build_cnn(in_channels, num_classes, [int(w) for w in widths.split(",")],
                         convs_per_stage=2 if kind == "cnn2" else 1)  # fmt: skip
    if spec.startswith("resnet"):
        return build_resnet(int(spec[len("resnet") :]), in_channels=in_channels, num_classes=num_classes)
    raise ValueError(f"unknown model {spec!r}")


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch: int, device) -> torch.Tensor:
    """Logits of ``x`` in eval mode (CPU tensor)."""
    was_training = model.training
    model.eval()
    chunks = [model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)]
    out = torch.cat(chunks) if chunks else torch.empty(0, model.head.out_features)
    model.train(was_training)
    return out


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(1) == y).float().mean().item()


def student_loss(cfg: RunConfig, s: torch.Tensor, t: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
    if cfg.loss == "ce":
        return F.cross_entropy(s, y)
    if cfg.loss == "kd":
        return kd_loss(s, t, y, alpha=cfg.kd_alpha, tau=cfg.kd_tau)
    if cfg.loss == "pld":
        return pld_loss(s, t, y, tau=cfg.pld_tau)
    return listmle_loss(s, t, y)


def train(
    model: torch.nn.Module,
    data: Data,
    cfg: RunConfig,
    epochs: int,
    lr: float,
    seed: int,
    device,
    loss_fn,
    teacher: torch.nn.Module | None = None,
    log=None,
    progress=None,
    desc: str = "",
    tau: float | None = None,
) -> list[dict]:
    """AdamW + per-step cosine annealing (Sec. 5.1); returns a per-epoch curve (train loss, val acc,
    and with a teacher its mean label probability / accuracy on the augmented batches; ``tau``: PLD's
    tau_T, for the mean alpha_1)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total))
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = data.train.x.to(device), data.train.y.to(device)
    if teacher is not None:
        teacher.eval()
    model.train()
    curve, step = [], 0
    epoch_iter = range(epochs)
    for epoch in progress(epoch_iter, desc=desc) if progress else epoch_iter:
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        diag = {"teacher_py": 0.0, "teacher_acc": 0.0, "alpha1": 0.0}
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            xb, yb = x_all[idx], y_all[idx]
            xb = random_crop_flip(xb, padding=cfg.crop_padding, flip=cfg.flip, generator=gen)
            t = None
            if teacher is not None:
                with torch.no_grad():
                    t = teacher(xb)
                    # diagnostics: how sure the teacher is of the label on the augmented training batches,
                    # and (PLD) alpha_1, the weight PLD puts on its CE step
                    q = F.softmax(t, 1)
                    diag["teacher_py"] += q.gather(1, yb[:, None]).mean().item()
                    diag["teacher_acc"] += (t.argmax(1) == yb).float().mean().item()
                    if cfg.loss == "pld" and tau is not None:
                        diag["alpha1"] += F.softmax(t / tau, 1).gather(1, yb[:, None]).mean().item()
            loss = loss_fn(model(xb), t, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}, batch {b}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.item()
        row = {"epoch": epoch + 1, "train_loss": loss_sum / steps_per_epoch}
        if teacher is not None:
            row.update({f"train_{k}": v / steps_per_epoch for k, v in diag.items() if k != "alpha1" or tau})
        if len(data.val):  # full scale trains on all of CIFAR's training set, as the paper: no validation
            row["val_acc"] = accuracy(predict(model, data.val.x, cfg.eval_batch, device), data.val.y)
        curve.append(row)
        if log:
            log(step=step, **row)
    model.eval()
    return curve


def get_teacher(cfg: RunConfig, data: Data, device, log=None) -> tuple[torch.nn.Module, dict]:
    """The teacher of this config: trained once with CE (same recipe, ``teacher_epochs``, seed
    ``teacher_seed``) and cached under the xentlab cache by a hash of everything it depends on, its code
    included (``teacher_key``).

    ``xentlab.data.build_once`` builds it: parallel units wait on a file lock while the first one trains it,
    with one torch thread whatever the unit's ``--threads``, and the global RNG states (which the training
    reseeds) are restored after it. ``<key>.json`` (curve, CPU time) is written first, then ``<key>.pt`` is
    renamed into place: the .pt marks a complete entry. Returns (model, info); info holds its training CPU
    seconds, so a run can account for it even when the cache already had it.
    """
    in_ch = data.train.x.shape[1]
    key = teacher_key(cfg)
    folder = cache_dir("pld", "teachers")
    meta_path = folder / f"{key}.json"

    def build(tmp):
        t0 = time.process_time()
        torch.manual_seed(cfg.teacher_seed)
        fresh = build_model(cfg.teacher, in_ch, data.num_classes).to(device)
        curve = train(fresh, data, cfg, cfg.teacher_epochs, cfg.teacher_lr or cfg.lr, cfg.teacher_seed, device,
                      lambda s, t, y: F.cross_entropy(s, y), log=log)  # fmt: skip
        buf = io.BytesIO()  # through a buffer: torch.save(path) would put the file's name in the zip
        torch.save({k: v.cpu() for k, v in fresh.state_dict().items()}, buf)
        info = {"train_cpu_s": time.process_time() - t0, "curve": curve, "config": cfg.teacher_fields()}
        atomic_write_bytes(meta_path, json.dumps(info, default=str).encode())
        tmp.write_bytes(buf.getvalue())

    path = build_once(folder / f"{key}.pt", build)
    model = build_model(cfg.teacher, in_ch, data.num_classes).to(device)
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    model.eval()
    info = json.loads(meta_path.read_text())
    return model, info


def rank_agreement(s: torch.Tensor, t: torch.Tensor) -> dict[str, float]:
    """How well the student's class ranking follows the teacher's, averaged over examples:
    top-1 agreement, Spearman correlation of the full logit vectors, and the overlap of the top-5 sets."""
    top1 = (s.argmax(1) == t.argmax(1)).float().mean().item()

    def ranks(z):
        return z.argsort(1).argsort(1).double()

    rs, rt = ranks(s), ranks(t)
    rs, rt = rs - rs.mean(1, keepdim=True), rt - rt.mean(1, keepdim=True)
    spearman = ((rs * rt).sum(1) / (rs.norm(dim=1) * rt.norm(dim=1))).mean().item()
    k = min(5, s.shape[1])
    ts, tt = s.topk(k, 1).indices, t.topk(k, 1).indices
    overlap = (ts.unsqueeze(2) == tt.unsqueeze(1)).any(2).float().mean().item()
    return {"agree_top1": top1, "spearman": spearman, f"top{k}_overlap": overlap}


def run(cfg: RunConfig, seed: int, device=None, log=None, progress=None) -> dict:
    """Train one student arm at one seed against the cached teacher; metrics on val and test."""
    device = device or torch.device("cpu")
    data = load_data(cfg)
    teacher, tinfo = get_teacher(cfg, data, device)
    t_test = predict(teacher, data.test.x, cfg.eval_batch, device)

    torch.manual_seed(seed)  # the same student init for every arm of this seed
    student = build_model(cfg.student, data.train.x.shape[1], data.num_classes).to(device)
    curve = train(student, data, cfg, cfg.epochs, cfg.lr, seed, device,
                  lambda s, t, y: student_loss(cfg, s, t, y),
                  teacher=teacher, tau=cfg.pld_tau if cfg.loss == "pld" else None, log=log, progress=progress, desc=cfg.loss)  # fmt: skip
    s_test = predict(student, data.test.x, cfg.eval_batch, device)
    out = {
        "test_acc": accuracy(s_test, data.test.y),
        "test_nll": F.cross_entropy(s_test, data.test.y).item(),
        "teacher_test_acc": accuracy(t_test, data.test.y),
        "teacher_train_cpu_s": float(tinfo["train_cpu_s"]),
        "curve": curve,
    }
    # the teacher is run on the CE arm's batches too (for these diagnostics only; CE does not use it)
    last = curve[-1] if curve else {}
    for key in ("train_teacher_py", "train_teacher_acc", "train_alpha1"):
        if key in last:
            out[key] = float(np.mean([r[key] for r in curve]))
    if len(data.val):
        out["val_acc"] = accuracy(predict(student, data.val.x, cfg.eval_batch, device), data.val.y)
        out["teacher_val_acc"] = accuracy(predict(teacher, data.val.x, cfg.eval_batch, device), data.val.y)
    out.update({f"test_{k}": v for k, v in rank_agreement(s_test, t_test).items()})
    return out
