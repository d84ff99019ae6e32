"""SimCLR pre-training on unlabelled procedural images (the stand-in for the paper's MoCo-v2 checkpoint).

One backbone is pre-trained per config and cached in the xentlab cache (keyed by a hash of the config and of the
code that trains it, ``code_version()``; xentlab.data.cache, "The key rule"); every
fine-tuning unit, of both arms and all seeds, starts from that one checkpoint, as the paper fine-tunes one
released MoCo-v2 model. ``xentlab.data.build_once`` builds it: a file lock makes parallel units wait for the first
one instead of training twice, the training runs with one torch thread whatever the unit's ``--threads``, and the
global RNG states are restored after it (the training seeds its own), so a unit's random stream does not depend on
whether it found the checkpoint cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from core_tuning import model as _model
from core_tuning.model import ProjectionHead, build_backbone
from xentlab.data import augment as _augment
from xentlab.data import shapes as _shapes
from xentlab.data.augment import AugmentConfig, augment
from xentlab.data.build_once import build_once
from xentlab.data.cache import atomic_write_bytes, cache_dir, code_key, source_digest
from xentlab.losses import ntxent as _ntxent
from xentlab.losses import supcon as _supcon
from xentlab.losses.ntxent import nt_xent
from xentlab.models import cnn as _cnn

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The code part of ``PretrainConfig.key``: this module (the SimCLR loop), ``core_tuning.model`` (backbone
    and head), the core backbone / augmentation / NT-Xent modules, the pool's generator
    (``xentlab.data.shapes.code_version()``), and the numpy / torch versions."""
    return code_key(
        SOURCE_DIGEST,
        _model.SOURCE_DIGEST,
        _cnn.SOURCE_DIGEST,
        _augment.SOURCE_DIGEST,
        _ntxent.SOURCE_DIGEST,
        _supcon.SOURCE_DIGEST,
        _shapes.code_version(),
        libraries=("numpy", "torch"),
    )


SIMCLR_AUG = dict(
    crop_scale=(0.2, 1.0), flip_p=0.5, jitter_p=0.8, jitter_strength=0.5, grayscale_p=0.2, per_batch=False
)
"""SimCLR's recipe (Chen et al. 2020): random resized crop, flip, colour jitter (p 0.8), greyscale (p 0.2)"""


@dataclass(frozen=True)
class PretrainConfig:
    """SimCLR on the unlabelled pool (its labels are never read here)."""

    n_per_class: int = 500
    """pool size per class of xentlab's 10-class shapes set (draw seed 0); 500 -> 5,000 images"""
    size: int = 32
    widths: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 1
    proj_dim: int = 64
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    """Adam (SimCLR's LARS is for large batches)"""
    temperature: float = 0.2
    augment: dict = field(default_factory=lambda: dict(SIMCLR_AUG))
    seed: int = 0

    def key(self) -> str:
        """The checkpoint's cache name: the config and the code that trains it (``code_version()``)."""
        blob = json.dumps({**dataclasses.asdict(self), "code": code_version()}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_pool(cfg: PretrainConfig):
    from xentlab.data.shapes import ShapesConfig, load_shapes

    return load_shapes(ShapesConfig(n_per_class=cfg.n_per_class, size=cfg.size), seed=0)


def train_simclr(
    cfg: PretrainConfig,
    x: torch.Tensor,
    device,
    log: Callable[..., None],
    on_epoch: Callable[[int, dict, list], None] | None = None,
) -> tuple[dict, list]:
    """Pre-train a backbone with NT-Xent on two augmented views; returns (backbone state_dict, loss per epoch).

    ``on_epoch(e, state_dict, curve)`` (optional) sees the backbone after epoch ``e`` (1-based). Adam's lr is
    constant and the data order / augmentation stream of an epoch does not depend on ``cfg.epochs``, so the
    snapshot after epoch e equals the final state of an e-epoch run, whatever random numbers ``on_epoch``
    draws (both tested): the backbone-selection pilot
    (scripts/select_protocol.py) reads every candidate length off one run."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    backbone = build_backbone(cfg.widths, cfg.convs_per_stage).to(device)
    head = ProjectionHead(backbone.feature_dim, cfg.proj_dim).to(device)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.augment.items()})
    curve = []
    for epoch in range(cfg.epochs):
        backbone.train()
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x) - cfg.batch_size + 1, cfg.batch_size):  # full batches: NT-Xent needs B >= 2
            xb = x[torch.from_numpy(order[i : i + cfg.batch_size])].to(device)
            z = head(backbone.features(torch.cat([augment(xb, aug), augment(xb, aug)])))
            loss = nt_xent(z[: len(xb)], z[len(xb) :], cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curve.append(float(np.mean(losses)))
        log(pretrain_epoch=epoch, ntxent=curve[-1])
        if on_epoch is not None:
            # The callback may draw from the global torch RNG (the pilot builds and probes a fresh backbone);
            # fork_rng restores the state afterwards, so the augmentation stream of the next epoch is the one
            # a run without the callback sees and the snapshot stays an e-epoch run (tested).
            with torch.random.fork_rng(devices=[]):
                on_epoch(
                    epoch + 1, {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}, curve
                )
    if not np.isfinite(curve).all():
        raise FloatingPointError("NT-Xent became non-finite during pre-training")
    return {k: v.detach().cpu() for k, v in backbone.state_dict().items()}, curve


def checkpoint_path(cfg: PretrainConfig):
    return cache_dir("core_tuning") / f"simclr-{cfg.key()}.pt"


def _checkpoint_bytes(state: dict, curve: list, time_s: float, cpu_s: float) -> bytes:
    """The checkpoint file: torch.save of {"state_dict", "curve", "time_s", "cpu_s"} (through a buffer, so the
    bytes do not depend on the name of the file they are written to)."""
    buf = io.BytesIO()
    torch.save({"state_dict": state, "curve": list(curve), "time_s": time_s, "cpu_s": cpu_s}, buf)
    return buf.getvalue()


def save_checkpoint(cfg: PretrainConfig, state: dict, curve: list, time_s: float, cpu_s: float) -> None:
    """Write one pre-training result to the cache (atomic): what ``pretrained_backbone`` reads back (the
    protocol pilot stores every candidate length it reads off one run this way)."""
    atomic_write_bytes(checkpoint_path(cfg), _checkpoint_bytes(state, curve, time_s, cpu_s))


def pretrained_backbone(cfg: PretrainConfig, device, log: Callable[..., None] = lambda **k: None) -> dict:
    """The cached pre-training result {"state_dict", "curve", "time_s", "cpu_s"}, training it first if missing.

    ``time_s`` is wall time, ``cpu_s`` the process CPU time of the training (absent in old cache files)."""

    def build(tmp):
        t0, c0 = time.time(), time.process_time()
        x = load_pool(cfg).x.float()
        state, curve = train_simclr(cfg, x, device, log)
        tmp.write_bytes(_checkpoint_bytes(state, curve, time.time() - t0, time.process_time() - c0))

    path = build_once(checkpoint_path(cfg), build)
    return torch.load(path, map_location="cpu", weights_only=True)
