"""Synthetic 3D segmentation volumes: MONAI's random spheres, made hard like a real scan.

``monai.data.create_test_image_3d`` draws random spheres and their label map. On its own the task is
trivial (a threshold segments it), so each volume is then degraded the way MR images are:

1. a smooth multiplicative **bias field** ``exp(b * f)``, with ``f`` a low-pass random field scaled
   to [-1, 1] (intensity inhomogeneity: the same tissue is bright on one side, dark on the other);
2. a Gaussian **blur** (partial-volume effect: boundaries become ramps, not steps);
3. additive Gaussian **noise** (thermal noise, added after the blur so it stays white);
4. optional **distractors**: unlabelled spheres (their own radius range, intensity scaled by
   ``distractor_contrast``), so brightness alone does not decide the class;
5. optional per-volume **gamma** of the clean intensities and per-volume **jitter** of the
   degradation strengths (a spread of scanners/sites);
6. optional **ellipsoids** (``shape="ellipsoid"``) instead of MONAI's spheres: every object gets its
   own three semi-axes and a uniformly random 3D rotation, so the shapes vary from scan to scan and
   a network has to learn that variety from data (the default ``"sphere"`` keeps MONAI's spheres and
   the volumes exactly as before).

Intensities: each ``create_test_image_3d`` call rescales its spheres to a maximum of 1, so with
``num_objs=1`` the labelled sphere has intensity 1 and the distractors span about [0.5, 1]
(times ``distractor_contrast``) before the degradations.

Volumes are seeded individually (volume ``i`` of a set depends only on ``(seed, i)`` and the spec),
so the first ``k`` volumes of a set of ``n`` are the same as a set of ``k``. A set is generated once
and kept in the xentlab cache (``xentlab.data.cached_arrays``), keyed by the spec and by the generator code
(``code_version()``: this module's source and the numpy / scipy / MONAI versions; xentlab.data.cache,
"The key rule").

MONAI is imported lazily, so ``import xentlab.data`` stays light.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from xentlab.data.cache import code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The generator-code part of ``VolumeSpec.key``: this module and the libraries whose numbers end up in
    the voxels (numpy's RNG, scipy's filters, MONAI's ``create_test_image_3d``)."""
    return code_key(SOURCE_DIGEST, libraries=("numpy", "scipy", "monai"))


@dataclass(frozen=True)
class VolumeSpec:
    """How one synthetic volume is made (every field is part of the cache key)."""

    size: int = 48
    """edge of the cubic volume, in voxels"""
    num_objs: int = 6
    """labelled spheres per volume (MONAI's ``num_objs``)"""
    rad_min: int = 4
    """smallest sphere radius (voxels)"""
    rad_max: int = 10
    """largest sphere radius (exclusive, as in MONAI; ``size`` must exceed ``2 * rad_max``)"""
    bias_strength: float = 0.6
    """log-amplitude b of the bias field exp(b f), f in [-1, 1]: 0.6 spans a 3.3x intensity ratio"""
    bias_scale: float = 0.3
    """smoothness of the bias field: Gaussian sigma of the low-pass filter, as a fraction of ``size``"""
    blur_sigma: float = 1.0
    """Gaussian blur sigma in voxels (0 disables)"""
    noise_std: float = 0.15
    """standard deviation of the additive Gaussian noise (foreground intensities lie in [0.5, 1])"""
    num_distractors: int = 0
    """unlabelled spheres added to the image only"""
    distractor_contrast: float = 0.6
    """distractor intensity as a fraction of a labelled sphere's intensity draw"""
    distractor_rad_min: int | None = None
    """smallest distractor radius (None: rad_min)"""
    distractor_rad_max: int | None = None
    """largest distractor radius, exclusive (None: rad_max)"""
    gamma_spread: float = 0.0
    """per-volume intensity gamma: the clean image (in [0, 1]) is raised to exp(U(-g, g)) before
    the bias field, so each volume has its own foreground/background contrast curve"""
    jitter: float = 0.0
    """per-volume variability: each volume scales bias_strength, blur_sigma, noise_std and
    distractor_contrast by its own factor drawn from U(1 - jitter, 1 + jitter) (scanner/site spread)"""
    shape: str = "sphere"
    """'sphere': MONAI's ``create_test_image_3d`` spheres (radius ``randint(rad_min, rad_max)``);
    'ellipsoid': each object (labelled and distractor) has three semi-axes drawn from
    U(rad_min, rad_max) (distractors: their own range) and a uniformly random rotation"""

    def __post_init__(self) -> None:
        if self.rad_min < 1 or self.rad_max <= self.rad_min:
            raise ValueError(
                f"need 1 <= rad_min < rad_max, got rad_min={self.rad_min}, rad_max={self.rad_max}"
            )
        if self.size <= 2 * self.rad_max:
            raise ValueError(f"size {self.size} must exceed 2 * rad_max = {2 * self.rad_max}")
        if self.num_objs < 1 or self.num_distractors < 0:
            raise ValueError("num_objs must be >= 1 and num_distractors >= 0")
        if min(self.bias_strength, self.bias_scale, self.blur_sigma, self.noise_std) < 0:
            raise ValueError("bias_strength, bias_scale, blur_sigma and noise_std must be non-negative")
        d_min = self.rad_min if self.distractor_rad_min is None else self.distractor_rad_min
        d_max = self.rad_max if self.distractor_rad_max is None else self.distractor_rad_max
        if d_min < 1 or d_max <= d_min or self.size <= 2 * d_max:
            raise ValueError(
                f"need 1 <= distractor_rad_min < distractor_rad_max < size / 2, got {d_min}, {d_max}"
            )
        if self.gamma_spread < 0:
            raise ValueError(f"gamma_spread must be non-negative, got {self.gamma_spread}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")

    def key(self) -> str:
        """A short stable hash of the spec and of the generator code (``code_version()``), for cache file
        names. Every field counts (the first release's keys left out fields added later while they held
        their default, to keep old cache files readable; the code hash changes every key anyway)."""
        blob = {"spec": asdict(self), "code": code_version()}
        return hashlib.sha1(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]


SHAPES = ("sphere", "ellipsoid")


def _volume_rng(seed: int, index: int) -> np.random.RandomState:
    # One independent stream per (seed, index): volumes do not depend on how many are generated.
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0]
    return np.random.RandomState(int(state))


def _bias_field(rs: np.random.RandomState, size: int, strength: float, scale: float) -> np.ndarray:
    """exp(b * f) with f a Gaussian-filtered white-noise field rescaled to [-1, 1]."""
    from scipy import ndimage

    if strength == 0:
        return np.ones((size,) * 3)
    field = ndimage.gaussian_filter(rs.standard_normal((size,) * 3), sigma=scale * size, mode="wrap")
    field = field - field.mean()
    field = field / max(np.abs(field).max(), 1e-12)
    return np.exp(strength * field)


def _random_rotation(rs: np.random.RandomState) -> np.ndarray:
    """A rotation matrix uniform on SO(3): QR of a Gaussian matrix, signs fixed by diag(R) > 0
    (Mezzadri 2007), then a reflection flipped into a rotation."""
    q, r = np.linalg.qr(rs.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _ellipsoids(
    rs: np.random.RandomState, size: int, num: int, rad_min: int, rad_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` randomly rotated ellipsoids, drawn like MONAI's spheres otherwise: centre in
    [rad_max, size - rad_max) per axis (so every semi-axis < rad_max fits), intensity U(0.5, 1),
    later objects over earlier ones, image rescaled to a maximum of 1. Returns (image, label)."""
    image = np.zeros((size,) * 3)
    grid = np.stack(np.meshgrid(*(np.arange(size),) * 3, indexing="ij"), axis=-1).astype(np.float64)
    for _ in range(num):
        centre = rs.randint(rad_max, size - rad_max, size=3)
        axes = rs.uniform(rad_min, rad_max, size=3)
        rot = _random_rotation(rs)
        # p inside iff sum_k ((R^T (p - c))_k / a_k)^2 <= 1, with R's columns the ellipsoid's axes
        local = (grid - centre) @ rot
        inside = ((local / axes) ** 2).sum(axis=-1) <= 1.0
        image[inside] = rs.random_sample() * 0.5 + 0.5
    label = (image > 0).astype(np.uint8)
    return image / max(image.max(), 1e-12), label


def synthetic_volume(
    index: int, seed: int = 0, spec: VolumeSpec = VolumeSpec()
) -> tuple[np.ndarray, np.ndarray]:
    """Volume ``index`` of set ``seed``: (image float32 [S, S, S], label uint8 [S, S, S] in {0, 1})."""
    from scipy import ndimage

    from xentlab.optional_imports import import_monai

    import_monai()
    from monai.data import create_test_image_3d

    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be non-negative, got index={index}, seed={seed}")
    rs = _volume_rng(seed, index)
    s = spec.size
    # Per-volume acquisition factors (drawn first, so jitter=0 leaves the rest of the stream alone).
    j = spec.jitter
    f_bias, f_blur, f_noise, f_contrast = rs.uniform(1 - j, 1 + j, size=4) if j > 0 else (1.0,) * 4
    gamma = float(np.exp(rs.uniform(-spec.gamma_spread, spec.gamma_spread))) if spec.gamma_spread > 0 else 1.0
    d_max = spec.rad_max if spec.distractor_rad_max is None else spec.distractor_rad_max
    d_min = spec.rad_min if spec.distractor_rad_min is None else spec.distractor_rad_min
    if spec.shape == "ellipsoid":
        image, label = _ellipsoids(rs, s, spec.num_objs, spec.rad_min, spec.rad_max)
    else:
        # MONAI's spheres: label 1 inside, image intensity U(0.5, 1) per sphere (num_seg_classes=1),
        # no MONAI noise (noise_max=0), then min-max rescaled to [0, 1].
        image, label = create_test_image_3d(
            s, s, s, num_objs=spec.num_objs, rad_max=spec.rad_max, rad_min=spec.rad_min,
            noise_max=0.0, num_seg_classes=1, random_state=rs,
        )  # fmt: skip
    image = image.astype(np.float64)
    label = (label > 0).astype(np.uint8)
    if spec.num_distractors:
        # Unlabelled objects (dimmer by distractor_contrast, sizes from their own range); they never
        # overwrite a labelled voxel (a labelled object is in front).
        if spec.shape == "ellipsoid":
            distract, _ = _ellipsoids(rs, s, spec.num_distractors, d_min, d_max)
        else:
            distract, _ = create_test_image_3d(
                s, s, s, num_objs=spec.num_distractors, rad_max=d_max, rad_min=d_min,
                noise_max=0.0, num_seg_classes=1, random_state=rs,
            )  # fmt: skip
        image = np.where(label > 0, image, min(spec.distractor_contrast * f_contrast, 1.0) * distract)
    image = image**gamma
    image = image * _bias_field(rs, s, spec.bias_strength * f_bias, spec.bias_scale)
    if spec.blur_sigma > 0:
        image = ndimage.gaussian_filter(image, sigma=spec.blur_sigma * f_blur, mode="nearest")
    if spec.noise_std > 0:
        image = image + rs.normal(0.0, spec.noise_std * f_noise, size=image.shape)
    return image.astype(np.float32), label


def synthetic_volumes(
    n: int, seed: int = 0, spec: VolumeSpec = VolumeSpec(), *, cache: bool = True
) -> dict[str, np.ndarray]:
    """``n`` volumes of set ``seed``: ``{"images": float32 [n, S, S, S], "labels": uint8 [n, S, S, S]}``.

    Generated once and kept in the xentlab cache (keyed by ``n``, ``seed`` and the spec's hash).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")

    def build() -> dict[str, np.ndarray]:
        pairs = [synthetic_volume(i, seed, spec) for i in range(n)]
        return {
            "images": np.stack([p[0] for p in pairs]).astype(np.float32),
            "labels": np.stack([p[1] for p in pairs]).astype(np.uint8),
        }

    if not cache:
        return build()
    from xentlab.data.cache import cached_arrays

    return cached_arrays(f"volumes3d-{spec.key()}-seed{seed}-n{n}", build, version="1")
