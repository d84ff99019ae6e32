"""Procedural segmentation scenes: several shape/glyph objects on a textured, cluttered background.

A scene is an RGB image (3 x S x S in [0, 1]) and a label map (S x S, int64): 0 = background,
``k + 1`` = an object of class ``k``. Objects are the class templates of ``xentlab.data.shapes``
(geometric shapes and font glyphs, rasterised once by matplotlib) placed with a random pose; they are
painted in order, so later objects occlude earlier ones and the label map follows the visible object.

What makes the scenes hard enough for few-shot segmentation (the risk the notes name: easy scenes put
every arm at ~100% mIoU):
* colour carries no class information: every object gets a random colour and, often, a texture;
* the background is textured (stripes / checks / smooth blobs) and carries distractor strokes in a
  random colour (``clutter``);
* scenes hold 1-2 objects of different classes, so a query usually contains objects that are *not*
  the episode's target (they must be labelled background);
* pixel noise.

A pool is a pure function of ``(SceneConfig, seed)`` and is cached with ``cached_arrays``, keyed by both and by
the generator code (``code_version()``; xentlab.data.cache, "The key rule").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data import shapes as _shapes
from xentlab.data.cache import cached_arrays, code_key, source_digest
from xentlab.data.shapes import SHAPES, ShapesConfig, _clutter, _colours, _textures, render_templates

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""

__all__ = ["CLASSES", "SceneConfig", "fold_classes", "generate_scenes", "load_scenes"]

CLASSES: tuple[str, ...] = SHAPES + ("A", "B", "E", "F", "G", "K", "R", "S")
"""20 classes: the 12 geometric shapes and 8 visually distinct capital glyphs."""


@dataclass(frozen=True)
class SceneConfig:
    """What the scene generator draws (lengths as fractions of the image side)."""

    n_images: int = 2000
    """number of scenes in the pool"""
    size: int = 64
    """image side in pixels"""
    classes: tuple[str, ...] = CLASSES
    """object classes (names from ``xentlab.data.shapes.SHAPES`` or single characters)"""
    objects: tuple[int, int] = (1, 2)
    """inclusive range of the number of objects per scene (distinct classes within a scene)"""
    scale: tuple[float, float] = (0.4, 0.65)
    """object size as a fraction of the image side"""
    rotation: float = 30.0
    """rotations are uniform in [-rotation, rotation] degrees"""
    clutter: int = 2
    """distractor strokes on the background"""
    texture_prob: float = 0.3
    """probability that the background / each object is textured"""
    noise: float = 0.04
    """std of additive Gaussian pixel noise"""

    def __post_init__(self) -> None:
        if not 1 <= self.objects[0] <= self.objects[1] <= len(self.classes):
            raise ValueError(f"objects range {self.objects} must lie in [1, {len(self.classes)}]")
        if self.n_images < 1 or self.size < 16:
            raise ValueError(f"need n_images >= 1 and size >= 16, got {self.n_images}, {self.size}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"scale range must satisfy 0 < lo <= hi <= 1, got {self.scale}")

    def key(self, seed: int) -> str:
        """The pool's cache name: the config, the seed and the generator code (``code_version()``)."""
        blob = json.dumps(
            {"cfg": dataclasses.asdict(self), "seed": seed, "code": code_version()}, sort_keys=True
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The generator-code part of ``SceneConfig.key``: this module (the scene layout) and
    ``xentlab.data.shapes.code_version()`` (templates, colours, textures, clutter; it covers shapes and
    images), plus the libraries whose numbers end up in the pixels."""
    return code_key(SOURCE_DIGEST, _shapes.code_version(), libraries=("numpy", "torch", "matplotlib"))


def _shapes_cfg(cfg: SceneConfig) -> ShapesConfig:
    """The ``ShapesConfig`` whose colour/texture helpers we reuse (all texture kinds, strong-ish)."""
    return ShapesConfig(
        classes=cfg.classes,
        size=cfg.size,
        texture_prob=cfg.texture_prob,
        textures=("stripes", "checks", "blobs"),
        texture_strength=(0.3, 0.6),
        min_contrast=0.25,
    )


def generate_scenes(cfg: SceneConfig, seed: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """Build the pool: ``x`` uint8 (N, 3, S, S) and ``y`` uint8 label maps (N, S, S), 0 = background."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE7E]))
    scfg = _shapes_cfg(cfg)
    templates = render_templates(scfg)  # K x 1 x R x R coverage
    k, s, big = len(cfg.classes), cfg.size, 2 * cfg.size
    xs = np.empty((cfg.n_images, 3, s, s), dtype=np.uint8)
    ys = np.empty((cfg.n_images, s, s), dtype=np.uint8)
    for start in range(0, cfg.n_images, chunk):
        m = min(chunk, cfg.n_images - start)
        # background: colour, optional texture, distractor strokes in an independent colour
        _, bg = _colours(m, scfg, rng)
        img = torch.from_numpy(bg).view(m, 3, 1, 1) * _textures(m, s, scfg, rng)
        if cfg.clutter:
            stroke_rgb = torch.from_numpy(_colours(m, scfg, rng)[0]).view(m, 3, 1, 1)
            strokes = _clutter(m, s, cfg.clutter, rng)
            img = strokes * stroke_rgb + (1 - strokes) * img
        label = torch.zeros(m, s, s, dtype=torch.uint8)
        n_obj = rng.integers(cfg.objects[0], cfg.objects[1] + 1, m)
        cls = np.stack([rng.permutation(k)[: cfg.objects[1]] for _ in range(m)])  # distinct per scene
        for slot in range(cfg.objects[1]):
            on = torch.from_numpy(n_obj > slot)
            theta = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation, m))
            scale = rng.uniform(*cfg.scale, m)
            # centre kept so that most of the object is inside the frame
            tx, ty = rng.uniform(-(1 - scale), 1 - scale, (2, m)) * 0.9
            cos, sin = np.cos(theta), np.sin(theta)
            mat = np.zeros((m, 2, 3), dtype=np.float32)  # output -> template coordinates
            mat[:, 0, 0], mat[:, 0, 1] = cos / scale, -sin / scale
            mat[:, 1, 0], mat[:, 1, 1] = sin / scale, cos / scale
            mat[:, 0, 2] = -(mat[:, 0, 0] * tx + mat[:, 0, 1] * ty)
            mat[:, 1, 2] = -(mat[:, 1, 0] * tx + mat[:, 1, 1] * ty)
            grid = F.affine_grid(torch.from_numpy(mat), [m, 1, big, big], align_corners=False)
            cover = F.grid_sample(
                templates[torch.from_numpy(cls[:, slot])], grid, mode="bilinear", align_corners=False
            )
            cover = F.avg_pool2d(cover, 2).clamp(0, 1) * on.view(m, 1, 1, 1)  # anti-aliased coverage
            fg, _ = _colours(m, scfg, rng)
            obj = torch.from_numpy(fg).view(m, 3, 1, 1) * _textures(m, s, scfg, rng)
            img = cover * obj + (1 - cover) * img
            # a pixel belongs to the object when it covers at least half of it (occludes earlier labels)
            hit = cover[:, 0] >= 0.5
            label = torch.where(hit, torch.from_numpy(cls[:, slot] + 1).to(torch.uint8).view(m, 1, 1), label)
        if cfg.noise > 0:
            img = img + cfg.noise * torch.from_numpy(rng.standard_normal(img.shape).astype(np.float32))
        xs[start : start + m] = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        ys[start : start + m] = label.numpy()
    return {"x": xs, "y": ys}


def load_scenes(cfg: SceneConfig, seed: int, *, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The pool for ``(cfg, seed)``: images float32 (N, 3, S, S) in [0, 1] and labels int64 (N, S, S)."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    arrays = (
        cached_arrays(f"repri-scenes-{cfg.key(seed)}", lambda: generate_scenes(cfg, seed))
        if cache
        else generate_scenes(cfg, seed)
    )
    x = torch.from_numpy(arrays["x"].astype(np.float32) / 255.0)
    return x, torch.from_numpy(arrays["y"].astype(np.int64))


def fold_classes(n_classes: int, n_folds: int, fold: int) -> list[int]:
    """Novel classes of ``fold``: every ``n_folds``-th class starting at ``fold`` (mixes shapes and glyphs)."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    return [c for c in range(n_classes) if c % n_folds == fold]
