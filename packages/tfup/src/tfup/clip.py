"""The stand-in vision-language model: a tiny CLIP trained once, contrastively, on source-style captions.

Image tower: four conv-BN-ReLU blocks (32x32 -> 4x4) and a 2-layer MLP head; text tower: word +
position embeddings, a 2-layer pre-norm transformer, masked mean pooling and a linear head; both
give ``dim``-d features. ``encode_*`` return the *raw* (unnormalised) features, as CLIP's
``encode_image`` / ``encode_text`` do (TFUP normalises where the official code does). Trained with
the symmetric InfoNCE loss (logit scale fixed at 100 by default) on ``captioned_shapes`` in the 'plain'
style, with generic shift / brightness / contrast augmentation (never the target's 'texture' style), then
frozen; cached under ``xentlab.data.cache_dir("tfup")`` keyed by its config and its code (``code_version()``), built
once by ``xentlab.data.build_once`` (one torch thread; the caller's global RNG states restored afterwards, so the
adapters a unit initialises next do not depend on whether it trained the stand-in or loaded it).
The defaults are the stand-in
chosen on the validation pool (README, "Protocol fix"); the first run's was n_groups 1500, channels 32,
steps 1500, warmup_steps 50, no augmentation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xentlab.data import captioned_shapes as _captioned_shapes
from xentlab.data.build_once import build_once
from xentlab.data.cache import cache_dir, code_key, source_digest
from xentlab.data.captioned_shapes import CaptionedShapesConfig, Vocab, load_captioned_shapes
from xentlab.train import schedules as _schedules
from xentlab.train.schedules import warmup_cosine_lr

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The code part of ``ClipConfig.key``: this module (``train_clip``, ``TinyClip``, ``augment``,
    ``clip_loss``), the shared schedule (``xentlab.train.schedules``), the source data's generator
    (``xentlab.data.captioned_shapes.code_version()``) and the numpy / torch versions. It replaces the
    hand-bumped ``CODE_VERSION`` (3 was the switch to ``warmup_cosine_lr``; 2 the first two cpu runs), which
    had to be remembered at every edit; a source hash cannot be forgotten."""
    return code_key(SOURCE_DIGEST, _schedules.SOURCE_DIGEST, _captioned_shapes.code_version(),
                    libraries=("numpy", "torch"))  # fmt: skip


@dataclass(frozen=True)
class ClipConfig:
    """The tiny CLIP and its source-style pre-training."""

    n_groups: int = 4000
    """source pairs = n_groups * group_size (contrast groups of hard-negative captions)"""
    group_size: int = 4
    n_shapes: int = 8
    """shapes in the data (all 8); the target classes are these shapes"""
    data_seed: int = 0
    """generator seed of the source set (target pools use other seeds)"""
    dim: int = 64
    channels: int = 48
    width: int = 64
    text_layers: int = 2
    steps: int = 2500
    batch: int = 128
    lr: float = 2e-3
    warmup_steps: int = 200
    """linear warm-up of the rate to ``lr`` over these steps, then a half-cosine towards 0 (reached one step
    after the last; ``xentlab.train.schedules.warmup_cosine_lr``)"""
    aug_shift: int = 2
    """training augmentation: random translation by up to this many pixels (edge-replicate padding);
    no flips, since a flip swaps 'left of' / 'right of' in the caption"""
    aug_photo: float = 0.3
    """training augmentation: per-image brightness and contrast factors in [1 - a, 1 + a] (hue is never
    changed: colour words are in the captions)"""
    logit_scale: float | None = 100.0
    """fixed contrastive logit scale (CLIP ends training at its clamp, 100, and TFUP's ``100 f W`` is that
    scale; a tiny CLIP left to learn it stops near 22, which spreads cosines 4-5x wider); None: learnable"""
    seed: int = 0

    def key(self) -> str:
        """Cache key: the config and the training code (``code_version()``)."""
        blob = json.dumps({**dataclasses.asdict(self), "code_version": code_version()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def data(self) -> CaptionedShapesConfig:
        return CaptionedShapesConfig(
            n_groups=self.n_groups, group_size=self.group_size, n_shapes=self.n_shapes
        )


class TinyClip(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, dim: int = 64, channels: int = 32, width: int = 64,
                 text_layers: int = 2) -> None:  # fmt: skip
        super().__init__()
        c = channels

        def block(i, o, s):
            return [nn.Conv2d(i, o, 3, stride=s, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

        self.stem = nn.Sequential(
            *block(3, c // 2, 2), *block(c // 2, c, 2), *block(c, c, 1), *block(c, 2 * c, 2), nn.Flatten()
        )
        self.img_head = nn.Sequential(nn.Linear(2 * c * 16, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.tok = nn.Embedding(vocab_size, width, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.enc = nn.TransformerEncoder(layer, text_layers, enable_nested_tensor=False)
        self.txt_head = nn.Linear(width, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # unused when the config fixes it

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.img_head(self.stem(x))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        pad = tokens == 0
        h = self.enc(self.tok(tokens) + self.pos[: tokens.shape[1]], src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.txt_head((h * keep).sum(1) / keep.sum(1).clamp_min(1.0))


def clip_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (CLIP): image i matches caption i."""
    s = logit_scale.exp().clamp(max=100) * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t()
    y = torch.arange(len(s))
    return 0.5 * (F.cross_entropy(s, y) + F.cross_entropy(s.t(), y))


def augment(x: torch.Tensor, shift: int, photo: float, gen: torch.Generator) -> torch.Tensor:
    """Generic training augmentation of the stand-in (never the target 'texture' style): a random
    translation by up to ``shift`` pixels and per-image brightness / contrast factors in [1 - photo, 1 + photo]."""
    n, _, h, w = x.shape
    if shift > 0:
        pad = F.pad(x, (shift,) * 4, mode="replicate")
        off = torch.randint(0, 2 * shift + 1, (n, 2), generator=gen).tolist()
        x = torch.stack([p[:, dy : dy + h, dx : dx + w] for p, (dx, dy) in zip(pad, off)])
    if photo > 0:
        bright = 1 + photo * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
        contrast = 1 + photo * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * bright
    return x.clamp(0, 1)


def clip_lr(cfg: ClipConfig, step: int) -> float:
    """The stand-in's rate at ``step``: the shared ``warmup_cosine_lr`` (CODE_VERSION 3) with a warm-up of
    ``cfg.warmup_steps`` steps (given to it as a fraction of ``cfg.steps``) up to ``cfg.lr``, then a half-cosine
    towards 0 (reached one step after the last)."""
    return warmup_cosine_lr(
        step, cfg.steps, lr=cfg.lr, warmup=cfg.warmup_steps / cfg.steps, final_lr_frac=0.0
    )


def train_clip(cfg: ClipConfig, log: Callable | None = None) -> TinyClip:
    torch.manual_seed(cfg.seed)
    data = load_captioned_shapes(cfg.data(), seed=cfg.data_seed)
    vocab = Vocab()
    model = TinyClip(len(vocab), vocab.max_len, cfg.dim, cfg.channels, cfg.width, cfg.text_layers)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = clip_lr(cfg, step)
        b = torch.from_numpy(rng.choice(len(data), cfg.batch, replace=False))
        xb = data.x[b]
        if cfg.aug_shift > 0 or cfg.aug_photo > 0:
            xb = augment(xb, cfg.aug_shift, cfg.aug_photo, gen)
        scale = model.logit_scale if cfg.logit_scale is None else torch.tensor(math.log(cfg.logit_scale))
        loss = clip_loss(model.encode_image(xb), model.encode_text(data.tokens[b]), scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None and step % 100 == 0:
            log(step=step, clip_loss=loss.item())
    return model.eval()


def get_clip(cfg: ClipConfig, log: Callable | None = None) -> TinyClip:
    """The trained tiny CLIP for ``cfg`` (built once, then loaded from the cache)."""
    vocab = Vocab()

    def build(tmp):
        buf = io.BytesIO()  # through a buffer: torch.save(path) would put the file's name in the zip
        torch.save(train_clip(cfg, log).state_dict(), buf)
        tmp.write_bytes(buf.getvalue())

    path = build_once(cache_dir("tfup") / f"clip-{cfg.key()}.pt", build)
    model = TinyClip(len(vocab), vocab.max_len, cfg.dim, cfg.channels, cfg.width, cfg.text_layers)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
