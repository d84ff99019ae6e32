"""A seeded procedural image-caption dataset: two coloured shapes and a compositional caption.

Every image holds two objects, each a (colour, shape) from small fixed lists, placed so that a
spatial relation holds between them; its caption says so, e.g. ``"a red circle left of a blue
square"``. Images come in **contrast groups**: a base scene plus variants made by a hard-negative
edit of its meaning (swap the two colours, swap the two shapes, flip the relation, or replace one
attribute), each rendered as its own image. A retrieval gallery built from whole groups therefore
holds near-duplicate captions that differ only in binding or order, which a bag-of-words model
cannot tell apart. ``hard_negative_meanings`` gives the same edits as extra negative captions.

Usage::

    from xentlab.data.captioned_shapes import CaptionedShapesConfig, load_captioned_shapes, Vocab

    cfg = CaptionedShapesConfig(n_groups=500, group_size=4, size=32)
    data = load_captioned_shapes(cfg, seed=0)   # CaptionedShapes: x (N,3,32,32) float in [0,1], tokens (N,L)
    data.captions[0]                            # 'a red circle left of a blue square'
    shifted = load_captioned_shapes(cfg.replace(style="texture"), seed=1)  # rendering-style shift

A meaning is the tuple ``(colour1, shape1, relation, colour2, shape2)`` of indices into ``COLOURS``,
``SHAPE_NAMES`` and ``RELATIONS``. ``left of``/``right of`` and ``above``/``below`` are converses,
so ``"a red circle left of a blue square"`` and ``"a blue square right of a red circle"`` say the
same thing: ``canonical_key`` maps both to one integer, which is what retrieval metrics should
compare (two items with equal keys are both correct answers). With ``paraphrase=True`` (default) a
caption uses either surface form at random, so the text encoder must learn the converse.

Drawing reuses ``xentlab.data.shapes.render_templates`` (exact Agg-rasterised silhouettes); each
object is placed with ``grid_sample`` at twice the target size and 2x2 average-pooled, as there.
Built once per ``(config, seed)`` and cached with ``cached_arrays``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data import shapes as _shapes
from xentlab.data.cache import cached_arrays, code_key, source_digest
from xentlab.data.shapes import ShapesConfig, render_templates

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""

__all__ = [
    "COLOURS",
    "RELATIONS",
    "SHAPE_NAMES",
    "STYLES",
    "CaptionedShapes",
    "CaptionedShapesConfig",
    "Vocab",
    "canonical_key",
    "caption_of",
    "hard_negative_meanings",
    "load_captioned_shapes",
]

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.15),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "purple": (0.6, 0.15, 0.8),
    "orange": (1.0, 0.55, 0.0),
    "white": (0.97, 0.97, 0.97),
    "cyan": (0.1, 0.85, 0.9),
}
"""Object colours (RGB in [0, 1]); chosen to be distinct under the default jitter."""

SHAPE_NAMES: tuple[str, ...] = ("circle", "triangle", "square", "star", "cross", "heart", "ring", "arrow")
"""Object shapes: names from ``xentlab.data.shapes.SHAPES``."""

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
"""Spatial relations; index r and r ^ 1 are converses (left/right, above/below)."""

STYLES: tuple[str, ...] = ("plain", "texture", "noise", "outline")
"""Rendering styles: 'plain' (training), and three shifts for domain-shift test sets."""

PAD = "<pad>"


def caption_of(meaning: tuple[int, int, int, int, int]) -> str:
    """``(c1, s1, r, c2, s2)`` -> ``"a c1 s1 r a c2 s2"``."""
    c1, s1, r, c2, s2 = (int(v) for v in meaning)
    names = list(COLOURS)
    return f"a {names[c1]} {SHAPE_NAMES[s1]} {RELATIONS[r]} a {names[c2]} {SHAPE_NAMES[s2]}"


def _converse(meaning):
    c1, s1, r, c2, s2 = meaning
    return (c2, s2, r ^ 1, c1, s1)


def canonical_key(meaning) -> int:
    """One integer per meaning, equal for a caption and its converse ('A left of B' == 'B right of A')."""
    m = tuple(int(v) for v in meaning)
    if m[2] % 2 == 1:  # 'right of' / 'below' -> stated from the other object
        m = _converse(m)
    c1, s1, r, c2, s2 = m
    nc, ns = len(COLOURS), len(SHAPE_NAMES)
    return (((c1 * ns + s1) * len(RELATIONS) + r) * nc + c2) * ns + s2


def hard_negative_meanings(meaning, rng: np.random.Generator, n: int | None = None) -> list[tuple]:
    """Meanings one edit away from ``meaning`` that are *not* equivalent to it (hard negatives).

    Edits (in this order, then shuffled): swap the colours of the two objects, swap their shapes,
    flip the relation (left<->right, above<->below: the same objects in the other order), and
    replace one object's colour or shape by another value. Edits that give an equivalent or an
    invalid meaning (two identical objects) are dropped. Returns ``n`` of them (all when None).
    """
    c1, s1, r, c2, s2 = (int(v) for v in meaning)
    key = canonical_key(meaning)
    cands = [(c2, s1, r, c1, s2), (c1, s2, r, c2, s1), (c1, s1, r ^ 1, c2, s2)]
    nc, ns = len(COLOURS), len(SHAPE_NAMES)
    cands.append((int((c1 + rng.integers(1, nc)) % nc), s1, r, c2, s2))
    cands.append((c1, s1, r, c2, int((s2 + rng.integers(1, ns)) % ns)))
    out, seen = [], {key}
    for m in cands:
        k = canonical_key(m)
        if (m[0], m[1]) != (m[3], m[4]) and k not in seen:
            out.append(m)
            seen.add(k)
    order = rng.permutation(len(out))
    out = [out[i] for i in order]
    return out if n is None else out[:n]


class Vocab:
    """The fixed word-level vocabulary of the captions, with padding to a fixed length.

    Id 0 is ``<pad>``; every word of every possible caption has an id (the vocabulary is closed).
    """

    def __init__(self) -> None:
        words = ["a", *COLOURS, *SHAPE_NAMES]
        for rel in RELATIONS:
            words += [w for w in rel.split() if w not in words]
        self.itos: list[str] = [PAD, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.max_len: int = max(len(caption_of((0, 0, r, 1, 1)).split()) for r in range(len(RELATIONS)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, caption: str, length: int | None = None) -> list[int]:
        """Word ids, right-padded with 0 to ``length`` (default: the longest caption)."""
        length = self.max_len if length is None else length
        words = caption.split()
        unknown = [w for w in words if w not in self.stoi]
        if unknown:
            raise ValueError(f"words outside the vocabulary: {unknown}")
        if len(words) > length:
            raise ValueError(f"caption has {len(words)} words, more than length={length}")
        return [self.stoi[w] for w in words] + [0] * (length - len(words))

    def encode_batch(self, captions: list[str]) -> torch.Tensor:
        return torch.tensor([self.encode(c) for c in captions], dtype=torch.long)

    def decode(self, ids) -> str:
        return " ".join(self.itos[int(i)] for i in ids if int(i) != 0)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The generator-code part of the cache key: this module, plus ``xentlab.data.shapes.code_version()``
    (the templates come from shapes, whose own code part covers shapes and images), plus the libraries that
    shape the pixels. The key once carried only the config and ``"v": 1``, and images from an earlier
    version of this generator were read back under it (xentlab.data.cache, "The key rule")."""
    return code_key(SOURCE_DIGEST, _shapes.code_version(), libraries=("numpy", "torch", "matplotlib"))


@dataclass(frozen=True)
class CaptionedShapesConfig:
    """What the generator draws. Lengths are fractions of the image side."""

    n_groups: int = 500
    """number of contrast groups; the dataset has n_groups * group_size image-caption pairs"""
    group_size: int = 4
    """pairs per group: a base scene plus group_size - 1 hard-negative variants (1..6)"""
    size: int = 32
    """image side in pixels"""
    n_colours: int = 6
    """use the first n_colours entries of COLOURS (2..8)"""
    n_shapes: int = 6
    """use the first n_shapes entries of SHAPE_NAMES (2..8)"""
    object_scale: tuple[float, float] = (0.32, 0.42)
    """object size (fraction of the side)"""
    rotation: float = 15.0
    """object rotation range in degrees: uniform in [-rotation, rotation]"""
    jitter: float = 0.08
    """position jitter of each object along the axis orthogonal to the relation"""
    colour_jitter: float = 0.08
    """uniform per-channel jitter of the object colours"""
    background: tuple[float, float] = (0.15, 0.45)
    """background grey level range"""
    style: str = "plain"
    """rendering style (one of STYLES): 'texture' stripes the objects, 'noise' adds strong pixel noise
    and a noisy background, 'outline' draws object outlines only"""
    noise: float = 0.02
    """std of additive Gaussian pixel noise (the 'noise' style raises it to 0.12)"""
    paraphrase: bool = True
    """state each caption from either object at random (converse relation); else the base form"""

    def __post_init__(self) -> None:
        if self.n_groups < 1 or not 1 <= self.group_size <= 6:
            raise ValueError(
                f"need n_groups >= 1 and 1 <= group_size <= 6, got {self.n_groups}, {self.group_size}"
            )
        if not 2 <= self.n_colours <= len(COLOURS) or not 2 <= self.n_shapes <= len(SHAPE_NAMES):
            raise ValueError(f"n_colours / n_shapes out of range: {self.n_colours}, {self.n_shapes}")
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if not 0 < self.object_scale[0] <= self.object_scale[1] <= 0.48:
            raise ValueError(f"object_scale must satisfy 0 < lo <= hi <= 0.48, got {self.object_scale}")

    def replace(self, **changes) -> CaptionedShapesConfig:
        return dataclasses.replace(self, **changes)

    def key(self, seed: int) -> str:
        """The cache file name: config, seed and generator code (``code_version()``)."""
        fields = dataclasses.asdict(self)
        blob = json.dumps(
            {"cfg": fields, "seed": seed, "v": 1, "code": code_version()}, sort_keys=True, default=list
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@dataclass
class CaptionedShapes:
    """A generated split. ``x``: N x 3 x S x S float32 in [0, 1]; ``tokens``: N x L word ids (0 = pad);
    ``meaning``: N x 5 (c1, s1, relation, c2, s2) as captioned; ``key``: N canonical meaning ids;
    ``group``: N contrast-group ids (members of a group are each other's hard negatives)."""

    x: torch.Tensor
    tokens: torch.Tensor
    meaning: torch.Tensor
    key: torch.Tensor
    group: torch.Tensor
    vocab: Vocab

    def __len__(self) -> int:
        return len(self.x)

    @property
    def captions(self) -> list[str]:
        return [caption_of(m) for m in self.meaning.tolist()]


def _sample_meaning(cfg: CaptionedShapesConfig, rng: np.random.Generator) -> tuple:
    while True:
        c1, c2 = rng.integers(cfg.n_colours, size=2)
        s1, s2 = rng.integers(cfg.n_shapes, size=2)
        if (c1, s1) != (c2, s2):
            return (int(c1), int(s1), int(rng.integers(len(RELATIONS))), int(c2), int(s2))


def _group_meanings(cfg: CaptionedShapesConfig, rng: np.random.Generator) -> list[tuple]:
    """A base meaning and group_size - 1 distinct hard-negative variants inside the config's palette."""
    while True:
        base = _sample_meaning(cfg, rng)
        variants = [
            m
            for m in hard_negative_meanings(base, rng)
            if m[0] < cfg.n_colours and m[3] < cfg.n_colours and m[1] < cfg.n_shapes and m[4] < cfg.n_shapes
        ]
        if len(variants) >= cfg.group_size - 1:
            return [base, *variants[: cfg.group_size - 1]]


def _place(meaning, cfg: CaptionedShapesConfig, rng: np.random.Generator) -> np.ndarray:
    """Centres (2 x 2, normalised coords in [-1, 1], x right, y down) making the relation hold."""
    r = meaning[2]
    a = rng.uniform(0.4, 0.52)  # half the centre distance along the relation axis
    off = rng.uniform(-0.1, 0.1)  # where the pair sits along that axis
    ortho = rng.uniform(-cfg.jitter, cfg.jitter, 2) * 2 + rng.uniform(-0.25, 0.25)
    first, second = off - a, off + a  # object 1 is 'first' for 'left of' / 'above'
    if r in (1, 3):  # 'right of' / 'below': object 1 is on the far side
        first, second = second, first
    along = np.array([first, second])
    if r in (0, 1):
        return np.stack([along, ortho], 1)
    return np.stack([ortho, along], 1)


def _generate(cfg: CaptionedShapesConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC4A7]))  # scenes, layout, captions
    srng = np.random.default_rng(np.random.SeedSequence([seed, 0xC4A8]))  # style and pixel noise only
    meanings = []
    groups = []
    for g in range(cfg.n_groups):
        for m in _group_meanings(cfg, rng):
            meanings.append(m)
            groups.append(g)
    meanings = np.array(meanings, dtype=np.int64)
    n = len(meanings)
    fill = "outline" if cfg.style == "outline" else "solid"
    templates = render_templates(ShapesConfig(classes=SHAPE_NAMES[: cfg.n_shapes], fill=fill))
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    s, big = cfg.size, 2 * cfg.size
    bg_level = rng.uniform(*cfg.background, n).astype(np.float32)
    img = torch.from_numpy(bg_level).view(n, 1, 1, 1).expand(n, 3, s, s).clone()
    if cfg.style == "noise":  # a blotchy background as well as strong pixel noise
        blot = torch.from_numpy(srng.random((n, 3, 4, 4)).astype(np.float32))
        img = 0.5 * img + 0.5 * F.interpolate(blot, size=(s, s), mode="bilinear", align_corners=False)
    centres = np.stack([_place(m, cfg, rng) for m in meanings])  # n x 2 x 2
    for obj in range(2):
        shape_idx = torch.from_numpy(meanings[:, 1 + 3 * obj].copy())
        colour = palette[meanings[:, 3 * obj]] + rng.uniform(-cfg.colour_jitter, cfg.colour_jitter, (n, 3))
        colour = torch.from_numpy(np.clip(colour, 0, 1).astype(np.float32)).view(n, 3, 1, 1)
        scale = rng.uniform(*cfg.object_scale, n)
        theta = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation, n))
        tx, ty = centres[:, obj, 0], centres[:, obj, 1]
        cos, sin = np.cos(theta), np.sin(theta)
        # output -> template affine (as in xentlab.data.shapes): input = S^-1 R(-theta) (output - t)
        mat = np.zeros((n, 2, 3), dtype=np.float32)
        mat[:, 0, 0], mat[:, 0, 1] = cos / scale, -sin / scale
        mat[:, 1, 0], mat[:, 1, 1] = sin / scale, cos / scale
        mat[:, 0, 2] = -(mat[:, 0, 0] * tx + mat[:, 0, 1] * ty)
        mat[:, 1, 2] = -(mat[:, 1, 0] * tx + mat[:, 1, 1] * ty)
        grid = F.affine_grid(torch.from_numpy(mat), [n, 1, big, big], align_corners=False)
        mask = F.grid_sample(templates[shape_idx], grid, mode="bilinear", align_corners=False)
        mask = F.avg_pool2d(mask, 2).clamp(0, 1)
        if cfg.style == "texture":
            yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
            phi = torch.from_numpy(srng.uniform(0, math.pi, n).astype(np.float32)).view(n, 1, 1, 1)
            freq = torch.from_numpy(srng.uniform(3.0, 6.0, n).astype(np.float32)).view(n, 1, 1, 1)
            stripes = 0.5 + 0.5 * torch.sin(math.pi * freq * (xx * torch.cos(phi) + yy * torch.sin(phi)))
            colour = colour * (0.45 + 0.55 * stripes)
        img = mask * colour + (1 - mask) * img
    noise = 0.12 if cfg.style == "noise" else cfg.noise
    if noise > 0:
        img = img + noise * torch.from_numpy(srng.standard_normal(img.shape).astype(np.float32))
    # the caption is stated from either object (a converse paraphrase) when cfg.paraphrase
    flip = rng.random(n) < 0.5 if cfg.paraphrase else np.zeros(n, dtype=bool)
    captioned = np.array(
        [_converse(tuple(m)) if f else tuple(m) for m, f in zip(meanings, flip)], dtype=np.int64
    )
    vocab = Vocab()
    tokens = np.array([vocab.encode(caption_of(m)) for m in captioned], dtype=np.int64)
    keys = np.array([canonical_key(m) for m in captioned], dtype=np.int64)
    return {
        "x": (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
        "tokens": tokens,
        "meaning": captioned,
        "key": keys,
        "group": np.array(groups, dtype=np.int64),
    }


def load_captioned_shapes(
    cfg: CaptionedShapesConfig, seed: int = 0, *, cache: bool = True
) -> CaptionedShapes:
    """The split for ``(cfg, seed)``: ``n_groups * group_size`` pairs, built once and cached.

    Pairs are ordered group by group (members of group g are contiguous); shuffle for training.
    Use different seeds for train and test splits.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    arrays = (
        cached_arrays(f"captioned-shapes-{cfg.key(seed)}", lambda: _generate(cfg, seed))
        if cache
        else _generate(cfg, seed)
    )
    return CaptionedShapes(
        x=torch.from_numpy(arrays["x"].astype(np.float32) / 255.0),
        tokens=torch.from_numpy(arrays["tokens"]),
        meaning=torch.from_numpy(arrays["meaning"]),
        key=torch.from_numpy(arrays["key"]),
        group=torch.from_numpy(arrays["group"]),
        vocab=Vocab(),
    )
