"""Two translated crops of one volume with a known overlap (official ``RandomCrop``), and the batch sampler.

The official loader draws the main crop's start ``s`` uniformly in ``[0, W - w)`` per axis and the
translated crop's start ``t`` uniformly in ``[0, s)`` (``t = 0`` when ``s = 0``), so the second crop
is shifted towards the origin by ``d = s - t >= 0``. When ``d`` exceeds the crop size along x or y
(the crops would not overlap), ``t`` is moved by ``s // 2``. The overlap is then
``[0, w - d)`` inside the main crop and ``[d, w)`` inside the translated one (or the mirror image
when ``t > s``). The model sees both crops; the TC loss compares its predictions on the overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropPair:
    """Starts of the two crops and each crop's overlap ranges, per spatial axis."""

    start_a: tuple[int, int, int]
    start_b: tuple[int, int, int]
    size: tuple[int, int, int]
    range_a: tuple[tuple[int, int], ...]  # overlap inside crop a, per axis
    range_b: tuple[tuple[int, int], ...]  # overlap inside crop b, per axis

    @property
    def overlap_shape(self) -> tuple[int, ...]:
        return tuple(max(e - s, 0) for s, e in self.range_a)


def overlap_ranges(start_a: int, start_b: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The overlap of two crops of length ``size`` starting at ``start_a`` / ``start_b``, in each crop's frame.

    The official formulas: with ``d = start_a - start_b``, the overlap is ``[0, size - d)`` in crop a
    and ``[d, size)`` in crop b when ``d >= 0``, and ``[-d, size)`` / ``[0, size + d)`` otherwise. An
    empty overlap (``|d| >= size``) comes back as a range with ``start >= end``.
    """
    d = start_a - start_b
    if d >= 0:
        return (0, size - d), (d, size)
    return (-d, size), (0, size + d)


def sample_crop_pair(
    shape: Sequence[int], size: Sequence[int], rng: np.random.Generator, *, fix_no_overlap: bool = True
) -> CropPair:
    """Draw two translated crops of ``size`` inside a volume of ``shape`` the official way.

    ``shape`` must exceed ``size`` on every axis (the loader pads first). ``fix_no_overlap`` applies
    the official shift of the translated start by ``s // 2`` along x and y when the crops would be
    disjoint.
    """
    if len(shape) != 3 or len(size) != 3:
        raise ValueError(f"shape and size must be 3D, got {tuple(shape)} and {tuple(size)}")
    if any(w <= c for w, c in zip(shape, size)):
        raise ValueError(f"volume {tuple(shape)} must be larger than the crop {tuple(size)} on every axis")
    starts_a, starts_b, ranges_a, ranges_b = [], [], [], []
    for axis, (w, c) in enumerate(zip(shape, size)):
        s = int(rng.integers(0, w - c))  # numpy.random.randint(0, w - c): high is exclusive
        t = int(rng.integers(0, s)) if s != 0 else s
        if fix_no_overlap and axis < 2 and s - t > c:
            t = t + int(s / 2)  # official "no-overlap issues" fix, x and y only
        ra, rb = overlap_ranges(s, t, c)
        starts_a.append(s)
        starts_b.append(t)
        ranges_a.append(ra)
        ranges_b.append(rb)
    return CropPair(
        tuple(starts_a), tuple(starts_b), tuple(int(c) for c in size), tuple(ranges_a), tuple(ranges_b)
    )


def pad_to_exceed(volume: np.ndarray, size: Sequence[int], value: float = 0.0) -> np.ndarray:
    """Pad symmetrically so every axis is strictly larger than ``size`` (official ``RandomCrop`` padding).

    The official code pads x and y by ``(c - w) // 2 + 1`` on both sides when any axis is not larger
    than the crop; it never pads z (and fails when z is too small). Here z is padded the same way.
    """
    pads = [(max((c - w) // 2 + 1, 0),) * 2 if w <= c else (0, 0) for w, c in zip(volume.shape[-3:], size)]
    if not any(p[0] for p in pads):
        return volume
    lead = [(0, 0)] * (volume.ndim - 3)
    return np.pad(volume, lead + pads, mode="constant", constant_values=value)


def two_stream_batches(
    labelled: Sequence[int],
    unlabelled: Sequence[int],
    labelled_bs: int,
    unlabelled_bs: int,
    rng: np.random.Generator,
) -> Iterator[list[int]]:
    """Endless batches ``[labelled ..., unlabelled ...]`` (official ``TwoStreamBatchSampler``).

    One epoch is one shuffled pass over the labelled indices in groups of ``labelled_bs`` (a
    remainder is dropped); the unlabelled indices are drawn from back-to-back shuffles, restarted
    at every epoch as the official sampler's ``__iter__`` does.
    """
    if not 0 < labelled_bs <= len(labelled):
        raise ValueError(f"need 0 < labelled_bs <= {len(labelled)} labelled volumes, got {labelled_bs}")
    if unlabelled_bs and not 0 < unlabelled_bs <= len(unlabelled):
        raise ValueError(
            f"need 0 < unlabelled_bs <= {len(unlabelled)} unlabelled volumes, got {unlabelled_bs}"
        )
    labelled, unlabelled = list(labelled), list(unlabelled)
    while True:
        primary = rng.permutation(labelled).tolist()
        secondary = itertools.chain.from_iterable(
            rng.permutation(unlabelled).tolist() for _ in itertools.count()
        )
        for k in range(len(primary) // labelled_bs):
            batch = primary[k * labelled_bs : (k + 1) * labelled_bs]
            if unlabelled_bs:
                batch += [next(secondary) for _ in range(unlabelled_bs)]
            yield batch
