"""A seeded procedural image dataset: shapes and font glyphs with colour, texture and pose variation.

Offline, fast and as hard as you ask: every image is one class template (a geometric shape, or a
character rendered from a font that matplotlib ships) placed with a random pose (rotation, scale,
aspect, translation), coloured (foreground and background colours with a guaranteed brightness
gap), optionally textured (stripes / checks / smooth noise) and corrupted (pixel noise, blur).
Named **shifts** give out-of-distribution test sets of the same classes (``ShapesConfig.shifted``).

Usage::

    from xentlab.data.shapes import ShapesConfig, load_shapes

    cfg = ShapesConfig(classes=SHAPES[:10], n_per_class=300, size=32)
    train = load_shapes(cfg, seed=0)                       # ImageSet: x (N,3,32,32) in [0,1], y (N,)
    ood = load_shapes(cfg.shifted("pose"), seed=1)         # same classes, poses never seen in training
    letters = load_shapes(ShapesConfig(classes=tuple("ABCDEFGHIJ")), seed=0)

Classes are names from ``SHAPES`` or single characters (glyphs). A dataset is a pure function of
``(config, seed)``: it is built once and then read from the xentlab cache (``cached_arrays``, keyed by
a hash of both), so two packages asking for the same set share one file. Images are stored as uint8
and returned as float32 in [0, 1]; ``x`` is ``N x C x H x W`` with classes interleaved in a seeded
random order.

Design notes:
* Templates are rasterised once per class at ``TEMPLATE_RES`` with matplotlib's Agg renderer (so
  glyph holes and curves are exact), then every image is a batched bilinear ``grid_sample`` at twice
  the target size followed by 2x2 average pooling (cheap anti-aliasing).
* Brightness gap: foreground and background HSV values differ by at least ``min_contrast``, so the
  class is always visible; ``polarity`` says how often the foreground is the brighter one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.data import images as _images
from xentlab.data.cache import cached_arrays, code_key, source_digest
from xentlab.data.images import ImageSet

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""

__all__ = ["FONTS", "SHAPES", "SHIFTS", "ShapesConfig", "load_shapes", "render_templates"]

SHAPES: tuple[str, ...] = (
    "circle",
    "triangle",
    "square",
    "pentagon",
    "hexagon",
    "star",
    "cross",
    "ring",
    "crescent",
    "arrow",
    "heart",
    "bowtie",
)
"""Geometric classes; any single character is a glyph class as well."""

FONTS: tuple[str, ...] = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "STIXGeneral", "cmr10")
"""Font families matplotlib ships (always available offline)."""

SHIFTS: tuple[str, ...] = ("pose", "colour", "texture", "background", "font", "corrupt")
"""Names accepted by ``ShapesConfig.shifted``."""

TEMPLATE_RES = 96


@dataclass(frozen=True)
class ShapesConfig:
    """What the generator draws. Every field is a variation knob; the defaults give a moderately hard
    10-class colour set. Angles in degrees, lengths as fractions of the image side."""

    classes: tuple[str, ...] = SHAPES[:10]
    """class names: entries of SHAPES, or single characters rendered from ``font``"""
    n_per_class: int = 500
    """images per class"""
    size: int = 32
    """image side in pixels (square images)"""
    channels: int = 3
    """3 for RGB, 1 for grey (the luma of the RGB image)"""
    font: str = "DejaVu Sans"
    """font family for glyph classes (one of FONTS)"""
    fill: str = "solid"
    """'solid' silhouettes, or 'outline' (the template's edge only)"""
    rotation: tuple[float, float] = (-30.0, 30.0)
    """rotation range; with |angle| >= rotation_min_abs when that is > 0"""
    rotation_min_abs: float = 0.0
    """minimum |rotation| (the 'pose' shift uses it to draw only unseen angles)"""
    scale: tuple[float, float] = (0.55, 0.85)
    """object size as a fraction of the image side"""
    aspect: float = 0.15
    """log-uniform aspect jitter: width/height in [exp(-a), exp(a)]"""
    translate: float = 0.12
    """maximum shift of the centre, as a fraction of the side"""
    hue: tuple[float, float] = (0.0, 1.0)
    """foreground hue range in [0, 1] (HSV); may wrap, e.g. (0.8, 1.2)"""
    saturation: tuple[float, float] = (0.3, 1.0)
    """foreground and background saturation range"""
    min_contrast: float = 0.35
    """minimum |V_fg - V_bg| (HSV value)"""
    polarity: float = 0.5
    """probability that the foreground is brighter than the background"""
    texture_prob: float = 0.3
    """probability that the foreground / the background is textured (independently)"""
    textures: tuple[str, ...] = ("stripes",)
    """texture kinds drawn from: 'stripes', 'checks', 'blobs'"""
    texture_strength: tuple[float, float] = (0.2, 0.5)
    """texture amplitude (fraction of the colour modulated)"""
    clutter: int = 0
    """number of random distractor strokes drawn on the background"""
    noise: float = 0.03
    """std of additive Gaussian pixel noise"""
    blur: float = 0.0
    """Gaussian blur sigma in pixels, applied last"""
    shift: str | None = None
    """name of the shift this config was made with (informational; set by ``shifted``)"""
    extra: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    """free-form notes carried along (not part of the cache key)"""

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"need at least two distinct classes, got {self.classes}")
        bad = [c for c in self.classes if c not in SHAPES and len(c) != 1]
        if bad:
            raise ValueError(f"unknown classes {bad}: use names from SHAPES or single characters")
        if self.n_per_class < 1 or self.size < 8:
            raise ValueError(f"need n_per_class >= 1 and size >= 8, got {self.n_per_class}, {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.fill not in ("solid", "outline"):
            raise ValueError(f"fill must be 'solid' or 'outline', got {self.fill!r}")
        if self.font not in FONTS:
            raise ValueError(f"font must be one of {FONTS}, got {self.font!r}")
        unknown = set(self.textures) - {"stripes", "checks", "blobs"}
        if unknown:
            raise ValueError(f"unknown textures {sorted(unknown)}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1.5:
            raise ValueError(f"scale range must satisfy 0 < lo <= hi <= 1.5, got {self.scale}")
        if not 0 <= self.min_contrast <= 0.9:
            raise ValueError(f"min_contrast must be in [0, 0.9], got {self.min_contrast}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def replace(self, **changes) -> ShapesConfig:
        return dataclasses.replace(self, **changes)

    def shifted(self, kind: str) -> ShapesConfig:
        """The same classes under a named distribution shift (for OOD test sets).

        * ``pose``: rotations beyond the training range (|angle| in [max+15, max+75]) and smaller objects.
        * ``colour``: only dark-on-light, saturated, in the hue half opposite a random training hue
          (a colour shift is only OOD if training saw a narrower palette: narrow ``hue`` then).
        * ``texture``: every foreground and background textured, with all kinds, stronger.
        * ``background``: six distractor strokes and stronger noise.
        * ``font``: glyphs from DejaVu Serif (or DejaVu Sans if serif was the training font), shapes as outlines.
        * ``corrupt``: blur (sigma 1 px at 32 px) plus strong pixel noise.
        """
        rot_hi = max(abs(self.rotation[0]), abs(self.rotation[1]))
        if kind == "pose":
            lo, hi = self.scale
            return self.replace(
                rotation=(-(rot_hi + 75.0), rot_hi + 75.0),
                rotation_min_abs=rot_hi + 15.0,
                scale=(max(0.05, lo * 0.7), max(0.05, lo * 0.7) + (hi - lo) * 0.7),
                shift=kind,
            )
        if kind == "colour":
            h0, h1 = self.hue
            return self.replace(
                hue=(h1, h0 + 1.0) if h1 - h0 < 1.0 else (0.0, 1.0),
                saturation=(0.8, 1.0),
                polarity=0.0 if self.polarity >= 0.5 else 1.0,
                shift=kind,
            )
        if kind == "texture":
            return self.replace(
                texture_prob=1.0,
                textures=("stripes", "checks", "blobs"),
                texture_strength=(0.4, 0.7),
                shift=kind,
            )
        if kind == "background":
            return self.replace(clutter=6, noise=max(self.noise, 0.06), shift=kind)
        if kind == "font":
            other = "DejaVu Serif" if self.font != "DejaVu Serif" else "DejaVu Sans"
            return self.replace(font=other, fill="outline" if self.fill == "solid" else "solid", shift=kind)
        if kind == "corrupt":
            return self.replace(blur=self.size / 32.0, noise=max(self.noise, 0.12), shift=kind)
        raise ValueError(f"unknown shift {kind!r}; choose from {SHIFTS}")

    def key(self, seed: int) -> str:
        """A short stable hash of the generating fields, the seed and the generator code (the cache file
        name): ``code_version()`` changes with any edit of this module or of ``xentlab.data.images``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        blob = json.dumps(
            {"cfg": fields, "seed": seed, "res": TEMPLATE_RES, "code": code_version()},
            sort_keys=True,
            default=list,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    """The generator-code part of the cache key: this module (the drawing) and ``xentlab.data.images``
    (``gaussian_blur``), plus the libraries whose numbers end up in the pixels."""
    return code_key(SOURCE_DIGEST, _images.SOURCE_DIGEST, libraries=("numpy", "torch", "matplotlib"))


# --------------------------------------------------------------------------- templates


def _shape_path(name: str):
    """A matplotlib Path for a geometric class, inside roughly [-1, 1]^2."""
    from matplotlib.path import Path

    def poly(n, r=1.0, phase=math.pi / 2):
        t = phase + 2 * math.pi * np.arange(n) / n
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)

    def closed(pts):
        verts = np.vstack([pts, pts[:1]])
        codes = [Path.MOVETO] + [Path.LINETO] * (len(pts) - 1) + [Path.CLOSEPOLY]
        return verts, codes

    def circle(r, reverse=False, n=64):
        pts = poly(n, r, 0.0)
        return closed(pts[::-1] if reverse else pts)

    if name == "circle":
        return Path(*circle(0.95))
    if name == "triangle":
        return Path(*closed(poly(3, 1.0) + [0, -0.2]))
    if name == "square":
        return Path(*closed(poly(4, 1.1, math.pi / 4)))
    if name == "pentagon":
        return Path(*closed(poly(5, 1.0)))
    if name == "hexagon":
        return Path(*closed(poly(6, 1.0, 0.0)))
    if name == "star":
        outer, inner = poly(5, 1.0), poly(5, 0.42, math.pi / 2 + math.pi / 5)
        pts = np.empty((10, 2))
        pts[0::2], pts[1::2] = outer, inner
        return Path(*closed(pts))
    if name == "cross":
        a, b = 0.3, 0.95
        pts = [
            (-a, b),
            (a, b),
            (a, a),
            (b, a),
            (b, -a),
            (a, -a),
            (a, -b),
            (-a, -b),
            (-a, -a),
            (-b, -a),
            (-b, a),
            (-a, a),
        ]
        return Path(*closed(np.array(pts)))
    if name == "ring":
        v1, c1 = circle(0.95)
        v2, c2 = circle(0.55, reverse=True)  # opposite winding: a hole under the nonzero rule
        return Path(np.vstack([v1, v2]), c1 + c2)
    if name == "crescent":
        # outer circle (radius R at 0) minus an inner circle (radius r at (d, 0)): the boundary is the
        # outer arc through the left side, then the inner arc back through its own left side
        big_r, r, d = 0.95, 0.8, 0.45
        xi = (big_r**2 - r**2 + d**2) / (2 * d)  # x of the two intersection points
        yi = math.sqrt(big_r**2 - xi**2)
        alpha, beta = math.atan2(yi, xi), math.atan2(yi, xi - d)
        a = np.linspace(alpha, 2 * math.pi - alpha, 48)
        b = np.linspace(-beta, -(2 * math.pi - beta), 48)
        outer = np.stack([big_r * np.cos(a), big_r * np.sin(a)], 1)
        inner = np.stack([d + r * np.cos(b), r * np.sin(b)], 1)
        return Path(*closed(np.vstack([outer, inner]) + [0.2, 0.0]))
    if name == "arrow":
        pts = [(-0.95, 0.22), (0.2, 0.22), (0.2, 0.6), (0.95, 0.0), (0.2, -0.6), (0.2, -0.22), (-0.95, -0.22)]
        return Path(*closed(np.array(pts)))
    if name == "heart":
        t = np.linspace(0, 2 * math.pi, 80, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return Path(*closed(np.stack([x, y + 2.5], 1) / 17.0))
    if name == "bowtie":
        pts = [(-0.95, 0.8), (0.0, 0.15), (0.95, 0.8), (0.95, -0.8), (0.0, -0.15), (-0.95, -0.8)]
        return Path(*closed(np.array(pts)))
    raise ValueError(f"unknown shape {name!r}")


def _glyph_path(char: str, font: str):
    """The outline of one character in ``font``, centred and scaled into [-0.95, 0.95]^2."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath

    tp = TextPath((0, 0), char, size=1.0, prop=FontProperties(family=font))
    verts = np.asarray(tp.vertices, dtype=float)
    if len(verts) == 0:
        raise ValueError(f"character {char!r} has no outline in {font}")
    lo, hi = verts.min(0), verts.max(0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    return Path((verts - centre) / half * 0.95, tp.codes)


@lru_cache(maxsize=256)
def _template(name: str, font: str, fill: str, res: int = TEMPLATE_RES) -> np.ndarray:
    """One class template rasterised by Agg: float32 res x res coverage in [0, 1] (row 0 at the top)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch

    path = _shape_path(name) if name in SHAPES else _glyph_path(name, font)
    fig = Figure(figsize=(1, 1), dpi=res)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.axis("off")
    if fill == "solid":
        ax.add_patch(PathPatch(path, facecolor="black", edgecolor="none", antialiased=True))
    else:
        ax.add_patch(
            PathPatch(path, facecolor="none", edgecolor="black", linewidth=res / 16, antialiased=True)
        )
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32)
    return np.ascontiguousarray(1.0 - rgba[..., 0] / 255.0)


def render_templates(cfg: ShapesConfig) -> torch.Tensor:
    """The class templates of ``cfg`` as a (K, 1, R, R) float tensor (for figures and tests)."""
    return torch.stack([torch.from_numpy(_template(c, cfg.font, cfg.fill)) for c in cfg.classes]).unsqueeze(1)


# --------------------------------------------------------------------------- generation


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb

    return hsv_to_rgb(np.stack([np.mod(h, 1.0), s, v], -1)).astype(np.float32)


def _colours(n: int, cfg: ShapesConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB (n x 3) with |V_fg - V_bg| >= min_contrast."""
    gap = rng.uniform(cfg.min_contrast, max(cfg.min_contrast, 0.95), n)
    low = rng.uniform(0.0, 1.0 - gap)  # the darker of the two values
    high = low + gap
    fg_bright = rng.random(n) < cfg.polarity
    v_fg, v_bg = np.where(fg_bright, high, low), np.where(fg_bright, low, high)
    h_fg = rng.uniform(cfg.hue[0], cfg.hue[1], n)
    h_bg = rng.uniform(0.0, 1.0, n)
    s_fg = rng.uniform(*cfg.saturation, n)
    s_bg = rng.uniform(*cfg.saturation, n) * 0.7
    return _hsv_to_rgb(h_fg, s_fg, v_fg), _hsv_to_rgb(h_bg, s_bg, v_bg)


def _textures(n: int, size: int, cfg: ShapesConfig, rng: np.random.Generator) -> torch.Tensor:
    """n patterns in [0, 1] (n x 1 x size x size); value 1 where no texture was drawn."""
    out = torch.ones(n, 1, size, size)
    on = rng.random(n) < cfg.texture_prob
    if not on.any() or not cfg.textures:
        return out
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    for i in np.flatnonzero(on):
        kind = cfg.textures[rng.integers(len(cfg.textures))]
        amp = rng.uniform(*cfg.texture_strength)
        freq = rng.uniform(2.0, 5.0)
        phi = rng.uniform(0, math.pi)
        if kind == "stripes":
            pat = 0.5 + 0.5 * torch.sin(
                math.pi * freq * (xx * math.cos(phi) + yy * math.sin(phi)) + rng.uniform(0, 6.3)
            )
        elif kind == "checks":
            pat = ((torch.sin(math.pi * freq * xx) * torch.sin(math.pi * freq * yy)) > 0).float()
        else:  # blobs: smooth noise, upsampled from a coarse grid
            g = torch.from_numpy(rng.random((1, 1, 5, 5)).astype(np.float32))
            pat = F.interpolate(g, size=(size, size), mode="bicubic", align_corners=False)[0, 0].clamp(0, 1)
        out[i, 0] = 1.0 - amp + amp * pat
    return out


def _clutter(n: int, size: int, strokes: int, rng: np.random.Generator) -> torch.Tensor:
    """n x 1 x size x size masks of random thick line segments (background distractors)."""
    if strokes <= 0:
        return torch.zeros(n, 1, size, size)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    p0 = torch.from_numpy(rng.uniform(0, size, (n, strokes, 2)).astype(np.float32))
    d = torch.from_numpy(rng.normal(0, size / 3, (n, strokes, 2)).astype(np.float32))
    width = size / 24
    pts = torch.stack([xx, yy], -1).view(1, 1, size, size, 2)
    a, v = p0.view(n, strokes, 1, 1, 2), d.view(n, strokes, 1, 1, 2)
    t = (((pts - a) * v).sum(-1) / (v * v).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    dist = (pts - (a + t.unsqueeze(-1) * v)).norm(dim=-1)
    return (width + 0.5 - dist).clamp(0, 1).amax(dim=1, keepdim=True)


def _generate(cfg: ShapesConfig, seed: int, chunk: int = 512) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A4E]))
    k, n_per = cfg.num_classes, cfg.n_per_class
    labels = rng.permutation(np.repeat(np.arange(k), n_per))
    templates = render_templates(cfg)
    s, big = cfg.size, 2 * cfg.size
    images = np.empty((len(labels), cfg.channels, s, s), dtype=np.uint8)
    for start in range(0, len(labels), chunk):
        y = labels[start : start + chunk]
        m = len(y)
        # pose: output -> input affine for grid_sample (see xentlab.data.images.rotate for the sign)
        angle = rng.uniform(*cfg.rotation, m)
        if cfg.rotation_min_abs > 0:
            mag = rng.uniform(cfg.rotation_min_abs, max(abs(cfg.rotation[0]), abs(cfg.rotation[1])), m)
            angle = np.where(rng.random(m) < 0.5, -mag, mag)
        theta = np.deg2rad(angle)
        scale = rng.uniform(*cfg.scale, m)
        log_aspect = rng.uniform(-cfg.aspect, cfg.aspect, m)
        sx, sy = scale * np.exp(log_aspect / 2), scale * np.exp(-log_aspect / 2)
        tx, ty = rng.uniform(-cfg.translate, cfg.translate, (2, m)) * 2  # normalised coords span 2
        cos, sin = np.cos(theta), np.sin(theta)
        # input = S^-1 R(-theta) (output - t): the template (spanning [-1,1]) is drawn at size `scale`
        mat = np.zeros((m, 2, 3), dtype=np.float32)
        mat[:, 0, 0], mat[:, 0, 1] = cos / sx, -sin / sx
        mat[:, 1, 0], mat[:, 1, 1] = sin / sy, cos / sy
        mat[:, 0, 2] = -(mat[:, 0, 0] * tx + mat[:, 0, 1] * ty)
        mat[:, 1, 2] = -(mat[:, 1, 0] * tx + mat[:, 1, 1] * ty)
        grid = F.affine_grid(torch.from_numpy(mat), [m, 1, big, big], align_corners=False)
        mask = F.grid_sample(templates[torch.from_numpy(y)], grid, mode="bilinear", align_corners=False)
        mask = F.avg_pool2d(mask, 2).clamp(0, 1)  # m x 1 x s x s coverage
        fg, bg = _colours(m, cfg, rng)
        fg_img = torch.from_numpy(fg).view(m, 3, 1, 1) * _textures(m, s, cfg, rng)
        bg_img = torch.from_numpy(bg).view(m, 3, 1, 1) * _textures(m, s, cfg, rng)
        if cfg.clutter:
            clutter_rgb = torch.from_numpy(_colours(m, cfg, rng)[0]).view(m, 3, 1, 1)
            cl = _clutter(m, s, cfg.clutter, rng)
            bg_img = cl * clutter_rgb + (1 - cl) * bg_img
        img = mask * fg_img + (1 - mask) * bg_img
        if cfg.noise > 0:
            img = img + cfg.noise * torch.from_numpy(rng.standard_normal(img.shape).astype(np.float32))
        if cfg.blur > 0:
            from xentlab.data.images import gaussian_blur

            img = gaussian_blur(img, cfg.blur)
        if cfg.channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            img = (img * w).sum(1, keepdim=True)
        images[start : start + m] = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return {"x": images, "y": labels.astype(np.int64)}


def load_shapes(cfg: ShapesConfig, seed: int = 0, *, cache: bool = True) -> ImageSet:
    """The dataset for ``(cfg, seed)``: ``n_per_class * num_classes`` images, built once and cached.

    Different seeds give independent draws (use one seed for training and another for testing, or
    cut one draw with ``xentlab.data.images.split_images``).
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    arrays = (
        cached_arrays(f"shapes-{cfg.key(seed)}", lambda: _generate(cfg, seed))
        if cache
        else _generate(cfg, seed)
    )
    x = torch.from_numpy(arrays["x"].astype(np.float32) / 255.0)
    return ImageSet(x, torch.from_numpy(arrays["y"].astype(np.int64)))
