"""The official training and test transforms, on MONAI's array transforms, and batch assembly.

Training (``LAHeartDataset.training_transform``), per volume: ``RandomRotFlip`` (rot90 by
k ~ U{0..3} in the x-y plane, then a flip along x or y), ``Normalise`` (min-max to [0, 1]),
``RandomBrightness`` (multiply by U(0.75, 1.25) and clip to [0, 1]), then ``RandomCrop`` (two
translated crops, :mod:`tracoco.crops`). Test: ``Normalise`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tracoco.crops import CropPair, pad_to_exceed, sample_crop_pair


def _monai_transforms():
    from xentlab.optional_imports import import_monai

    import_monai()
    from monai.transforms import Flip, Rotate90, ScaleIntensity

    return Flip, Rotate90, ScaleIntensity


def normalise(image: np.ndarray) -> np.ndarray:
    """Min-max scaling of one volume to [0, 1] (official ``Normalise``; MONAI ``ScaleIntensity``)."""
    _, _, ScaleIntensity = _monai_transforms()
    out = ScaleIntensity(minv=0.0, maxv=1.0)(image[None].astype(np.float32))
    return np.asarray(out[0], dtype=np.float32)


def augment(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    brightness: tuple[float, float] = (0.75, 1.25),
) -> tuple[np.ndarray, np.ndarray]:
    """RandomRotFlip -> Normalise -> RandomBrightness of one volume [X, Y, Z] and its label."""
    Flip, Rotate90, ScaleIntensity = _monai_transforms()
    k = int(rng.integers(0, 4))
    axis = int(rng.integers(0, 2))
    # MONAI array transforms are channel-first: add a channel axis, spatial axes (0, 1) are x, y.
    pair = np.stack([image.astype(np.float32), label.astype(np.float32)])[:, None]
    out = []
    for vol in pair:
        vol = Flip(spatial_axis=axis)(Rotate90(k=k, spatial_axes=(0, 1))(vol))
        out.append(np.asarray(vol[0]))
    img = np.asarray(ScaleIntensity(minv=0.0, maxv=1.0)(out[0][None])[0], dtype=np.float32)
    img = np.clip(img * rng.uniform(*brightness), 0.0, 1.0).astype(np.float32)
    return img, np.rint(out[1]).astype(np.int64)


@dataclass
class CropBatch:
    """A training batch: first crops, translated crops, labels of the first crops, overlaps."""

    image: torch.Tensor  # [B, 1, *crop]
    label: torch.Tensor  # [B, *crop] int64 (unlabelled rows are ignored by the losses)
    cons_image: torch.Tensor  # [B, 1, *crop], the translated crops
    pairs: list[CropPair]

    @property
    def ranges_a(self):
        return [p.range_a for p in self.pairs]

    @property
    def ranges_b(self):
        return [p.range_b for p in self.pairs]


def make_batch(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    crop: Sequence[int],
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
) -> CropBatch:
    """Augment each volume, draw its two translated crops, and stack them into tensors."""
    xs, ys, cs, pairs = [], [], [], []
    for image, label in zip(images, labels):
        img, lab = augment(image, label, rng)
        img, lab = pad_to_exceed(img, crop), pad_to_exceed(lab, crop)
        pair = sample_crop_pair(img.shape, crop, rng)
        (ax, ay, az), (bx, by, bz), (cx, cy, cz) = pair.start_a, pair.start_b, pair.size
        xs.append(img[ax : ax + cx, ay : ay + cy, az : az + cz])
        ys.append(lab[ax : ax + cx, ay : ay + cy, az : az + cz])
        cs.append(img[bx : bx + cx, by : by + cy, bz : bz + cz])
        pairs.append(pair)
    return CropBatch(
        image=torch.from_numpy(np.stack(xs)[:, None].copy()).to(device),
        label=torch.from_numpy(np.stack(ys).copy()).to(device),
        cons_image=torch.from_numpy(np.stack(cs)[:, None].copy()).to(device),
        pairs=pairs,
    )
