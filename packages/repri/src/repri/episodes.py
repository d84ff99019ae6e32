"""Episodes on novel classes and the few-shot segmentation mIoU (official ``EpisodicData`` / ``episodic_validate``).

An episode: a query image and ``shots`` distinct support images that all contain the chosen novel
class; the binary masks are 1 on that class and 0 elsewhere (other objects, novel or base, are
background), as in the official ``EpisodicData``. Sampling follows it too: walk the query images in a
random order, choose a class uniformly among the novel classes visible in the query, then draw the
supports among the other images that contain it.

mIoU (official): the foreground intersection and union of every episode are *accumulated per class*
over all episodes, and the mIoU is the mean over novel classes of ``sum I / sum U`` (not a mean of
per-episode IoUs). Pixels labelled 255 are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

IGNORE = 255


@dataclass(frozen=True)
class Episodes:
    query: np.ndarray
    """(E,) pool index of each query image"""
    support: np.ndarray
    """(E, shots) pool indices of the supports"""
    cls: np.ndarray
    """(E,) the episode's class (0-based class id)"""


def eligible(labels: torch.Tensor, classes: list[int], min_pixels: int) -> dict[int, np.ndarray]:
    """For each class, the pool images where it is visible on at least ``min_pixels`` pixels."""
    counts = torch.stack([(labels == c + 1).sum(dim=(1, 2)) for c in classes], 1).numpy()
    return {c: np.flatnonzero(counts[:, j] >= min_pixels) for j, c in enumerate(classes)}


def sample_episodes(
    labels: torch.Tensor, classes: list[int], n: int, shots: int, rng: np.random.Generator, min_pixels: int
) -> Episodes:
    """``n`` episodes over ``classes`` (official sampling: query first, then class, then supports).

    Official ``dataset/utils.py`` ``process_image`` + ``EpisodicData.__getitem__``: the query pool is the images
    holding some class on >= ``min_pixels`` pixels, the episode class is uniform over the classes present in the
    query at ANY pixel count (``np.unique(label)``), the supports are other images holding that class on
    >= ``min_pixels`` (protocol v4; up to v3 the class was drawn among those on >= ``min_pixels`` only)."""
    by_class = eligible(labels, classes, min_pixels)
    usable = [c for c in classes if len(by_class[c]) > shots]
    if not usable:
        raise ValueError(f"no class has more than {shots} images with >= {min_pixels} pixels")
    pool = np.array(sorted({int(i) for c in usable for i in by_class[c]}))
    pool_labels = labels[torch.from_numpy(pool)]
    counts = torch.stack([(pool_labels == c + 1).sum(dim=(1, 2)) for c in classes], 1).numpy()
    present = {int(q): [c for j, c in enumerate(classes) if counts[k, j] > 0] for k, q in enumerate(pool)}
    queries, supports, chosen = [], [], []
    order = rng.permutation(pool)
    while len(queries) < n:
        for q in order:
            if len(queries) == n:
                break
            c = present[int(q)][rng.integers(len(present[int(q)]))]
            cands = by_class[c][by_class[c] != q]
            if len(cands) < shots:  # the official loader would loop forever; say so instead
                raise ValueError(f"class {c} has {len(cands)} support candidates for a {shots}-shot episode")
            supports.append(rng.choice(cands, size=shots, replace=False))
            queries.append(int(q))
            chosen.append(c)
        order = rng.permutation(pool)
    return Episodes(np.array(queries), np.stack(supports), np.array(chosen))


def binary_masks(labels: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Label maps (..., H, W) with classes k+1 -> episode masks: 1 on class ``cls`` (broadcast), else 0;
    IGNORE stays IGNORE."""
    c = cls.view(*cls.shape, *([1] * (labels.ndim - cls.ndim)))
    out = (labels == c + 1).long()
    out[labels == IGNORE] = IGNORE
    return out


def fg_intersection_union(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground intersection and union per episode: pred (E, H, W) bool, gt (E, H, W) in {0, 1, 255}."""
    valid = gt != IGNORE
    p, g = pred & valid, (gt == 1) & valid
    return (p & g).sum(dim=(1, 2)).double(), (p | g).sum(dim=(1, 2)).double()


class IoUAccumulator:
    """Per-class accumulated intersection / union (official ``cls_intersection`` / ``cls_union``)."""

    def __init__(self) -> None:
        self.inter: dict[int, float] = defaultdict(float)
        self.union: dict[int, float] = defaultdict(float)

    def update(self, cls: np.ndarray, inter: torch.Tensor, union: torch.Tensor) -> None:
        for c, i, u in zip(cls.tolist(), inter.tolist(), union.tolist(), strict=True):
            self.inter[c] += i
            self.union[c] += u

    def per_class(self) -> dict[int, float]:
        return {c: self.inter[c] / (self.union[c] + 1e-10) for c in sorted(self.union)}

    def miou(self) -> float:
        ious = self.per_class()
        if not ious:
            raise ValueError("no episode was accumulated")
        return float(np.mean(list(ious.values())))
