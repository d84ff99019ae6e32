"""Kuzushiji-49 and Kuzushiji-MNIST (Clanuwat et al., 2018) from their published ``.npz`` files (no download).

The ROIS-CODH release ships, per split, ``<name>-<split>-imgs.npz`` (``arr_0``: N x 28 x 28 uint8) and
``<name>-<split>-labels.npz`` (``arr_0``: N labels), with ``name`` in {``k49``, ``kmnist``} and ``split``
in {``train``, ``test``}. Kuzushiji-49 has 49 classes (232,365 training / 38,547 test images, heavily
imbalanced, which is why papers report balanced accuracy on it); Kuzushiji-MNIST has 10 classes.
Images come back as an ``ImageSet`` with one channel, float32 in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from xentlab.data.images import ImageSet

__all__ = ["KUZUSHIJI_CLASSES", "load_kuzushiji"]

KUZUSHIJI_CLASSES = {"k49": 49, "kmnist": 10}


def load_kuzushiji(root: str | Path, *, which: str = "k49", train: bool = True) -> ImageSet:
    """``which`` in {"k49", "kmnist"}; the files are looked for in ``root`` and ``root/<which>``."""
    if which not in KUZUSHIJI_CLASSES:
        raise ValueError(f"which must be one of {sorted(KUZUSHIJI_CLASSES)}, got {which!r}")
    root = Path(root).expanduser()
    split = "train" if train else "test"
    arrays = {}
    for kind in ("imgs", "labels"):
        name = f"{which}-{split}-{kind}.npz"
        path = next((p for p in (root / name, root / which / name) if p.exists()), None)
        if path is None:
            raise FileNotFoundError(
                f"{name} not found in {root} or {root / which} (the ROIS-CODH .npz release)"
            )
        with np.load(path) as f:
            arrays[kind] = f["arr_0"]
    x, y = arrays["imgs"], arrays["labels"].reshape(-1)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise ValueError(f"expected N x 28 x 28 images and N labels, got {x.shape} and {y.shape}")
    k = KUZUSHIJI_CLASSES[which]
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{which} labels must lie in [0, {k}), got [{y.min()}, {y.max()}]")
    images = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return ImageSet(images, torch.from_numpy(y.astype(np.int64)))
