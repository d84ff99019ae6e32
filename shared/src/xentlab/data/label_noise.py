"""Seeded label-noise injection: uniform (symmetric) and class-dependent (a fixed class map).

The generators follow the conventions of the label-noise literature's reference code (e.g. the LDR
paper's ``utils.py``, Zhu, Ying & Yang, ICML 2023):

* **uniform** at rate ``rho``: each label is selected with probability ``rho`` and replaced by a class
  drawn uniformly from all ``K`` classes -- *including the true one*. The expected fraction of labels
  that actually change is therefore ``rho * (K - 1) / K`` (0.577 for rho=0.6, K=26). Pass
  ``exclude_true=True`` for the "flip to a different class" variant, where every selected label changes.
* **class-dependent** at rate ``rho``: each label is selected with probability ``rho`` and replaced by
  ``mapping[label]`` (a fixed class map, e.g. swapping visually similar letters). Classes that map to
  themselves never change.

Every function takes an explicit ``seed`` and uses its own ``numpy.random.Generator``, so a call never
touches (or depends on) the global RNG state. Inputs may be numpy arrays or torch tensors; the output
has the same type. The input is never modified.
"""

from __future__ import annotations

import numpy as np
import torch

# Pair swaps of the LDR reference code (utils.classDep_letter / classDep_vowel), as class maps.
# letter (A=0 ... Z=25): B<->D, C<->G, E<->F, H<->N, I<->L, K<->X, M<->W, O<->Q, P<->R, U<->V.
LETTER_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 3), (2, 6), (4, 5), (7, 13), (8, 11), (10, 23), (12, 22), (14, 16), (15, 17), (20, 21),
)  # fmt: skip
# vowel (11 classes): 0<->1, 2<->3, 4<->5, 6<->7, 8<->9; class 10 never flips.
VOWEL_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


def _to_numpy(labels) -> tuple[np.ndarray, bool]:
    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy().astype(np.int64), True
    return np.asarray(labels).astype(np.int64), False


def _back(arr: np.ndarray, was_torch: bool):
    return torch.from_numpy(arr) if was_torch else arr


def _check(labels: np.ndarray, num_classes: int, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must be in [0, 1], got {rate}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-d, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")


def uniform_noise(labels, num_classes: int, rate: float, seed: int, *, exclude_true: bool = False):
    """Uniform (symmetric) noise; see the module docstring. Returns the noisy labels."""
    y, was_torch = _to_numpy(labels)
    _check(y, num_classes, rate)
    rng = np.random.default_rng(seed)
    selected = rng.random(y.shape[0]) < rate
    if exclude_true:
        # a uniform draw among the K-1 other classes: shift by 1..K-1 modulo K
        draw = (y + rng.integers(1, num_classes, size=y.shape[0])) % num_classes
    else:
        draw = rng.integers(0, num_classes, size=y.shape[0])
    noisy = np.where(selected, draw, y)
    return _back(noisy, was_torch)


def pair_mapping(num_classes: int, pairs) -> np.ndarray:
    """A class map that swaps each (a, b) in ``pairs`` and keeps every other class."""
    mapping = np.arange(num_classes)
    seen: set[int] = set()
    for a, b in pairs:
        if a in seen or b in seen or a == b:
            raise ValueError(f"pairs must be disjoint swaps of two distinct classes, got {pairs}")
        if not (0 <= a < num_classes and 0 <= b < num_classes):
            raise ValueError(f"pair ({a}, {b}) out of range for {num_classes} classes")
        seen |= {a, b}
        mapping[a], mapping[b] = b, a
    return mapping


def next_class_mapping(num_classes: int) -> np.ndarray:
    """The cyclic map y -> (y + 1) mod K (the reference code's generic class-dependent noise)."""
    return (np.arange(num_classes) + 1) % num_classes


def class_dependent_noise(labels, mapping, rate: float, seed: int):
    """Replace each label by ``mapping[label]`` with probability ``rate``. Returns the noisy labels."""
    y, was_torch = _to_numpy(labels)
    mapping = np.asarray(mapping, dtype=np.int64)
    _check(y, len(mapping), rate)
    if mapping.min() < 0 or mapping.max() >= len(mapping):
        raise ValueError("mapping values must be class indices of the same range")
    rng = np.random.default_rng(seed)
    selected = rng.random(y.shape[0]) < rate
    noisy = np.where(selected, mapping[y], y)
    return _back(noisy, was_torch)


def transition_matrix(
    num_classes: int, rate: float, *, kind: str, mapping=None, exclude_true: bool = False
) -> np.ndarray:
    """The expected noise transition matrix T[i, j] = P(noisy = j | clean = i) of a generator above."""
    k = num_classes
    if kind == "uniform":
        if exclude_true:
            t = np.full((k, k), rate / (k - 1))
            np.fill_diagonal(t, 1.0 - rate)
        else:
            t = np.full((k, k), rate / k)
            t[np.diag_indices(k)] += 1.0 - rate
        return t
    if kind == "class_dependent":
        if mapping is None:
            raise ValueError("kind='class_dependent' needs a mapping")
        t = np.zeros((k, k))
        for i, j in enumerate(np.asarray(mapping)):
            t[i, i] += 1.0 - rate
            t[i, j] += rate
        return t
    raise ValueError(f"kind must be 'uniform' or 'class_dependent', got {kind!r}")
