"""The TraCoCo training loop (official ``Code/VnetLA/train.py``, ``Trainer.train_epoch``), and its ablations.

Per iteration, with a batch of ``labelled_bs`` labelled + ``unlabelled_bs`` unlabelled volumes, each
cut into two translated crops (x: first crops, x': translated crops, with known overlaps), and
U = uniform input noise in [-0.2, 0.2] drawn afresh for every forward pass:

for network k in (1, 2), with the other network k' as the pseudo-labeller:

1. ``z = f_k(x + U)``, ``z' = f_k(x' + U)``; TC loss = KL on the overlaps and the
   negative-entropy regulariser on the same overlaps;
2. supervised loss ``0.5 (CE + Dice)`` of ``z`` on the labelled rows;
3. pseudo-labels ``f_k'(x)`` on the clean batch without gradient (the other network stays in train
   mode, as in the official code); network 2 gets ``x`` and the pseudo-labels CutMixed with the same
   boxes (network 1 gets them unmixed);
4. CBC loss of ``f_k(x_mix + U)`` against the pseudo-labels on the unlabelled rows;
5. ``L_k = L_sup + w(t) (L_CBC + 0.3 L_TC + 0.1 L_negent)``, with ``w`` the sigmoid ramp-up.

Both losses are built before either network steps; both networks then step with SGD at the poly
learning rate. ``method="no_tc"`` drops step 1 (no translated crops, no TC, no regulariser);
``method="supervised"`` trains one network on the labelled volumes only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from tracoco.augment import CropBatch, make_batch
from tracoco.crops import two_stream_batches
from tracoco.cutmix import apply_cutmix, rand_boxes
from tracoco.losses import cbc_loss, negative_entropy, supervised_loss, translation_consistency
from tracoco.models import build_network
from tracoco.schedules import consistency_weight, poly_lr

METHODS = ("tracoco", "no_tc", "supervised")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (defaults: the official Left Atrium configuration)."""

    method: str = "tracoco"
    """'tracoco' (full method), 'no_tc' (without translation consistency) or 'supervised'"""
    network: str = "vnet"
    """a name from tracoco.models.NETWORKS"""
    crop: tuple[int, int, int] = (112, 112, 80)
    """training patch size (official LA: 112 x 112 x 80)"""
    iterations: int = 9000
    """SGD iterations (official LA: 9000 with 8 or 16 labels)"""
    labelled_bs: int = 2
    """labelled volumes per batch (official: half of batch_size 4)"""
    unlabelled_bs: int = 2
    """unlabelled volumes per batch"""
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_power: float = 0.9
    """poly learning-rate exponent"""
    unsup_weight: float = 1.0
    """final unsupervised weight (official LA: 0.3 with 8 labels, 1.0 with 16)"""
    rampup_epochs: float = 40.0
    """sigmoid ramp-up length in epochs of the labelled set"""
    threshold: float = 0.65
    """CBC positive confidence threshold"""
    neg_threshold: float = 0.1
    """CBC negative threshold"""
    spatial_weight: float = 0.3
    """weight of the translation-consistency KL"""
    hyp: float = 0.1
    """weight of the negative-entropy regulariser (official BraTS: 0.05)"""
    input_noise: float = 0.2
    """half-width of the uniform input noise (official BraTS: 0.05)"""
    clamp_input: bool = False
    """clamp noisy inputs to [0, 1] (official BraTS code does, LA does not)"""
    logit_clamp: bool = True
    """official quirk: clamp the overlap logits to [1e-6, 1] before the TC softmax"""
    kl_softmax_axis: str = "x"
    """official quirk 'x' (softmax over the first spatial axis of the overlap) or 'class'"""
    entropy_prob_clamp: float | None = None
    """clamp of p in the negative entropy (official BraTS: 1e-7, LA: none)"""
    cutmix_beta: float = 4.0
    """CutMix lam ~ Beta(b, b)"""
    log_every: int = 25

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.kl_softmax_axis not in ("x", "class"):
            raise ValueError(f"kl_softmax_axis must be 'x' or 'class', got {self.kl_softmax_axis!r}")
        self.crop = tuple(int(c) for c in self.crop)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


class VolumeSource(Protocol):
    """Anything that hands out (image [X, Y, Z], label [X, Y, Z]) numpy volumes by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class ArraySource:
    """Volumes held in memory as arrays [N, X, Y, Z]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[i], self.labels[i]


@dataclass
class TrainResult:
    nets: list[nn.Module]
    history: list[dict] = field(default_factory=list)


def _noisy(x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    noise = torch.zeros_like(x).uniform_(-cfg.input_noise, cfg.input_noise)
    out = x + noise
    return out.clamp(0.0, 1.0) if cfg.clamp_input else out


def model_loss(
    student: nn.Module,
    teacher: nn.Module,
    batch: CropBatch,
    cfg: TrainConfig,
    weight: float,
    rng: np.random.Generator,
    *,
    cutmix: bool,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One network's TraCoCo loss (steps 1-5 of the module docstring)."""
    lb = cfg.labelled_bs
    x = batch.image
    sup_out = student(_noisy(x, cfg))
    stats: dict[str, float] = {}
    unsup_extra = sup_out.new_zeros(())
    if cfg.method == "tracoco":
        cons_out = student(_noisy(batch.cons_image, cfg))
        tc, overlaps = translation_consistency(
            sup_out,
            cons_out,
            batch.ranges_a,
            batch.ranges_b,
            logit_clamp=cfg.logit_clamp,
            softmax_axis=cfg.kl_softmax_axis,
        )
        reg = negative_entropy(overlaps, cfg.entropy_prob_clamp)
        unsup_extra = cfg.spatial_weight * tc + cfg.hyp * reg
        stats.update(tc=tc.item(), negent=reg.item())
    sup, sup_stats = supervised_loss(sup_out[:lb], batch.label[:lb])
    stats.update(sup_stats)
    with torch.no_grad():
        pseudo = teacher(x)  # clean input; the teacher stays in train mode (official)
    x_u = x
    if cutmix:
        boxes = rand_boxes(tuple(x.shape), rng, cfg.cutmix_beta)
        x_u, pseudo = apply_cutmix([x, pseudo], boxes)
    unsup_out = student(_noisy(x_u, cfg))
    cbc, cbc_stats = cbc_loss(unsup_out[lb:], pseudo[lb:], cfg.threshold, cfg.neg_threshold)
    stats.update(cbc_stats, cbc=cbc.item())
    loss = sup + weight * (cbc + unsup_extra)
    stats["loss"] = loss.item()
    return loss, stats


def train(
    cfg: TrainConfig,
    labelled: VolumeSource,
    unlabelled: VolumeSource | None,
    seed: int,
    device: torch.device | str = "cpu",
    log: Callable[..., None] | None = None,
    progress: Callable[[range], Sequence[int]] | None = None,
) -> TrainResult:
    """Train per ``cfg.method``; returns the network(s) after the last iteration and the step log.

    Randomness: torch's global generator (initialisation, input noise; seed it before calling) and
    a numpy generator seeded with ``seed`` (sampling, augmentation, crops, CutMix).
    """
    semi = cfg.method != "supervised"
    if semi and (unlabelled is None or len(unlabelled) < cfg.unlabelled_bs):
        raise ValueError(f"method {cfg.method!r} needs at least {cfg.unlabelled_bs} unlabelled volumes")
    rng = np.random.default_rng(seed)
    device = torch.device(device)
    nets = [build_network(cfg.network).to(device) for _ in range(2 if semi else 1)]
    opts = [
        torch.optim.SGD(n.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        for n in nets
    ]
    n_lab = len(labelled)
    n_unl = len(unlabelled) if semi else 0
    iters_per_epoch = max(n_lab // cfg.labelled_bs, 1)
    batches = two_stream_batches(
        range(n_lab), range(n_lab, n_lab + n_unl), cfg.labelled_bs, cfg.unlabelled_bs if semi else 0, rng
    )
    history: list[dict] = []
    steps = range(1, cfg.iterations + 1)
    for it in progress(steps) if progress else steps:
        idx = next(batches)
        images, labels = [], []
        for i in idx:
            if i < n_lab:
                img, lab = labelled[i]
            else:
                img, _ = unlabelled[i - n_lab]
                lab = np.zeros(img.shape, dtype=np.int64)  # unlabelled: never read by a loss
            images.append(img)
            labels.append(lab)
        batch = make_batch(images, labels, cfg.crop, rng, device)
        w = consistency_weight(it, cfg.unsup_weight, cfg.rampup_epochs, iters_per_epoch)
        for n in nets:
            n.train()
        if semi:
            loss1, s1 = model_loss(nets[0], nets[1], batch, cfg, w, rng, cutmix=False)
            loss2, s2 = model_loss(nets[1], nets[0], batch, cfg, w, rng, cutmix=True)
            losses = [loss1, loss2]
        else:
            sup, s1 = supervised_loss(nets[0](_noisy(batch.image, cfg)), batch.label)
            s1["loss"] = sup.item()
            losses, s2 = [sup], {}
        if not all(torch.isfinite(loss) for loss in losses):
            raise FloatingPointError(f"non-finite loss at iteration {it}: {[loss.item() for loss in losses]}")
        lr = poly_lr(cfg.lr, it, cfg.iterations, cfg.lr_power)
        for opt in opts:
            opt.zero_grad(set_to_none=True)
            for group in opt.param_groups:
                group["lr"] = lr
        for loss in losses:
            loss.backward()
        for opt in opts:
            opt.step()
        if it % cfg.log_every == 0 or it == cfg.iterations:
            row = {"step": it, "lr": lr, "weight": w}
            row.update({f"m1_{k}": v for k, v in s1.items()})
            row.update({f"m2_{k}": v for k, v in s2.items()})
            history.append(row)
            if log is not None:
                log(**row)
    return TrainResult(nets=nets, history=history)
