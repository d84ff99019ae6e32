"""A noisy per-image attribute oracle: the offline stand-in for the MLLM that answers MaKD's questions.

MaKD's targets are an MLLM's P(yes) for Q yes/no questions per image (Sec. 3.1). No MLLM runs offline,
so here the "MLLM" is an oracle that knows each image's latent attributes and answers

    t = sigmoid(margin / T + jitter),   then with probability ``flip`` t -> 1 - t,

where margin in [-1, 1] says how clearly the attribute holds (e.g. a star is only somewhat "round").
The jitter and the flips mimic an imperfect MLLM. This reproduces the *training mechanism* (an extra
BCE head on soft per-image aspect targets), not an LLM's knowledge.

Images come from ``xentlab.data.shapes``, which does not return its per-image latents. So the classes
are built from generator settings whose values are known per call (shape class x fill x texture:
each (fill, texture) pair is one ``load_shapes`` call), and the per-image NUISANCE attributes are
applied here, after generation, with seeded latents this module keeps: a warm/cool tint, a brightness
change, a vertical and a horizontal shift and extra pixel grain. Nuisance aspects are independent of
the class, so the aspect targets cannot simply spell out the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xentlab.data.images import ImageSet
from xentlab.data.shapes import ShapesConfig, load_shapes

SHAPE_NAMES: tuple[str, ...] = ("circle", "triangle", "square", "star", "cross")
FILLS: tuple[str, ...] = ("solid", "outline")
TEXTURED: tuple[bool, ...] = (False, True)

# Class-level questions: margin per shape in [-1, 1] (hand-set, graded like an MLLM's confidence).
SHAPE_QUESTIONS: dict[str, dict[str, float]] = {
    "is it round?": {"circle": 1.0, "triangle": -1.0, "square": -0.6, "star": -0.7, "cross": -0.9},
    "does it have straight edges?": {
        "circle": -1.0,
        "triangle": 1.0,
        "square": 1.0,
        "star": 1.0,
        "cross": 1.0,
    },
    "does it have sharp pointed corners?": {
        "circle": -1.0,
        "triangle": 1.0,
        "square": -0.3,
        "star": 1.0,
        "cross": -0.5,
    },  # fmt: skip
    "is it convex?": {"circle": 1.0, "triangle": 1.0, "square": 1.0, "star": -1.0, "cross": -1.0},
    "is it four-fold symmetric?": {
        "circle": 1.0,
        "triangle": -1.0,
        "square": 1.0,
        "star": -0.5,
        "cross": 1.0,
    },
    "does it have more than four corners?": {
        "circle": -0.5,
        "triangle": -1.0,
        "square": -1.0,
        "star": 1.0,
        "cross": 1.0,
    },  # fmt: skip
}
FILL_QUESTION = "is the shape filled in (not just an outline)?"
TEXTURE_QUESTION = "is it striped?"
NUISANCE_QUESTIONS: tuple[str, ...] = (
    "is the image warm-toned?",
    "is the image bright?",
    "is the object in the upper part of the image?",
    "is the object in the right part of the image?",
    "is the image grainy?",
)
QUESTIONS: tuple[str, ...] = (*SHAPE_QUESTIONS, FILL_QUESTION, TEXTURE_QUESTION, *NUISANCE_QUESTIONS)
NUM_CLASSES = len(SHAPE_NAMES) * len(FILLS) * len(TEXTURED)


def class_name(label: int) -> str:
    shape, fill, tex = class_attributes(label)
    return f"{fill} {'striped' if tex else 'plain'} {shape}"


def class_attributes(label: int) -> tuple[str, str, bool]:
    """(shape, fill, textured) of class ``label``; label = shape + 5 * (fill + 2 * textured)."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be in [0, {NUM_CLASSES}), got {label}")
    shape = SHAPE_NAMES[label % len(SHAPE_NAMES)]
    combo = label // len(SHAPE_NAMES)
    return shape, FILLS[combo % 2], TEXTURED[combo // 2]


@dataclass(frozen=True)
class OracleConfig:
    """The synthetic dataset and the noisy oracle."""

    n_per_class: int = 30
    """images per class"""
    image_size: int = 16
    """image side in pixels"""
    temperature: float = 0.4
    """T in sigmoid(margin / T): margin 1 gives P(yes) = 0.92"""
    jitter: float = 0.5
    """std of Gaussian noise added to margin / T (an MLLM's per-image uncertainty)"""
    flip: float = 0.1
    """probability that an answer is flipped, t -> 1 - t (an MLLM's outright mistakes)"""
    max_shift: int = 2
    """nuisance: the object is shifted by up to this many pixels each way"""


@dataclass(frozen=True)
class AspectData:
    images: ImageSet
    """x: N x 3 x S x S in [0, 1], y: N class labels in [0, NUM_CLASSES)"""
    margins: torch.Tensor
    """N x Q noise-free margins in [-1, 1] (the latent truth)"""
    targets: torch.Tensor
    """N x Q noisy soft targets in [0, 1] (what the student distils)"""


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate one C x H x W image by (dy, dx) pixels, filling with the edge colour (no wrap-around)."""
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    padded = torch.nn.functional.pad(x[None], (p, p, p, p), mode="replicate")[0]
    h, w = x.shape[1:]
    return padded[:, p - dy : p - dy + h, p - dx : p - dx + w]


def make_aspect_data(cfg: OracleConfig, seed: int) -> AspectData:
    """Images of all NUM_CLASSES classes with nuisances applied, plus the oracle's aspect targets."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x3A4D]))
    xs, ys = [], []
    for combo, (fill, tex) in enumerate((f, t) for t in TEXTURED for f in FILLS):
        shapes = ShapesConfig(
            classes=SHAPE_NAMES,
            n_per_class=cfg.n_per_class,
            size=cfg.image_size,
            fill=fill,
            texture_prob=1.0 if tex else 0.0,
            textures=("stripes",),
            texture_strength=(0.4, 0.6),
        )
        part = load_shapes(shapes, seed=1000 * seed + combo)
        xs.append(part.x)
        ys.append(part.y + len(SHAPE_NAMES) * combo)
    x, y = torch.cat(xs), torch.cat(ys)
    n = len(y)

    # nuisance latents, one draw per image, independent of the class
    tint = rng.uniform(-1, 1, n)
    bright = rng.uniform(-1, 1, n)
    dy = rng.integers(-cfg.max_shift, cfg.max_shift + 1, n)
    dx = rng.integers(-cfg.max_shift, cfg.max_shift + 1, n)
    grain = rng.uniform(-1, 1, n)
    out = torch.empty_like(x)
    for i in range(n):
        img = _shift(x[i], int(dy[i]), int(dx[i]))  # dy > 0 moves the object down
        img = (
            img * torch.tensor([1 + 0.25 * tint[i], 1.0, 1 - 0.25 * tint[i]], dtype=img.dtype)[:, None, None]
        )
        img = img * (1 + 0.3 * bright[i])
        img = img + float(0.08 * (grain[i] + 1)) * torch.from_numpy(
            rng.standard_normal(img.shape).astype(np.float32)
        )
        out[i] = img.clamp(0, 1)
    order = torch.from_numpy(rng.permutation(n))
    out, y = out[order], y[order]
    tint, bright, dy, dx, grain = (a[order.numpy()] for a in (tint, bright, dy, dx, grain))

    margins = np.zeros((n, len(QUESTIONS)))
    for i, label in enumerate(y.tolist()):
        shape, fill, tex = class_attributes(label)
        margins[i, : len(SHAPE_QUESTIONS)] = [q[shape] for q in SHAPE_QUESTIONS.values()]
        margins[i, len(SHAPE_QUESTIONS)] = 1.0 if fill == "solid" else -1.0
        margins[i, len(SHAPE_QUESTIONS) + 1] = 1.0 if tex else -1.0
    k = len(SHAPE_QUESTIONS) + 2
    margins[:, k:] = np.stack([tint, bright, -dy / cfg.max_shift, dx / cfg.max_shift, grain], 1)
    margins = np.clip(margins, -1, 1)

    targets = 1.0 / (1.0 + np.exp(-(margins / cfg.temperature + rng.normal(0, cfg.jitter, margins.shape))))
    flips = rng.random(margins.shape) < cfg.flip
    targets = np.where(flips, 1.0 - targets, targets)
    return AspectData(
        ImageSet(out, y),
        torch.from_numpy(margins).float(),
        torch.from_numpy(targets).float(),
    )
