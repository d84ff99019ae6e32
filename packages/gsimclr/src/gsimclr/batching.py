"""G-SimCLR's batches: sort the data by within-cluster rank and cut it into fixed consecutive batches (Sec. III-B).

Official recipe (SimCLR_Pseudo_Labels_Training.ipynb): KMeans with K = BATCH_SIZE = 64 clusters gives a pseudo
label per image; ``rank`` = the dense rank of the image index inside its cluster (1 for the cluster's first image,
2 for its second, ...); the dataset is sorted by rank alone and batched with ``.batch(64, drop_remainder=True)``
and no shuffling. The first 64 images are then the first image of every cluster, the next 64 the second image of
every cluster, and so on: each batch holds at most one image per pseudo class while the clusters are balanced, so
images that are probably of the same class are rarely each other's negatives. The batches are the same in every
epoch. Vanilla SimCLR shuffles (``.shuffle(1024)``) before a ``.cache()``, so its batches are fixed across epochs
too, only drawn at random (``training_batches``).

Ties (images of equal rank) are ordered by image index (a stable sort); the notebook used pandas' default
quicksort, whose tie order is an implementation detail. Either order keeps one image per cluster per rank level.

The "one image per cluster" property holds only while every cluster still has an image of the current rank: once
ranks pass the smallest cluster's size, a rank level has fewer than B images, batches straddle rank levels, and the
last batches hold only the largest clusters (many same-cluster pairs). KMeans clusters are not balanced, so the
average same-cluster rate over all batches can end up close to that of random batches (``per_batch_pair_rates``
shows where along the order this happens).
"""

from __future__ import annotations

import numpy as np


def within_cluster_rank(cluster_labels: np.ndarray) -> np.ndarray:
    """1-based rank of every image inside its cluster, by image index (pandas ``rank("dense")`` of the index)."""
    labels = _labels(cluster_labels)
    n = len(labels)
    by_cluster = np.argsort(labels, kind="stable")  # images grouped by cluster, index order inside each group
    sorted_labels = labels[by_cluster]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    starts = np.repeat(group_start, np.diff(np.r_[group_start, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_cluster] = np.arange(n) - starts + 1
    return rank


def rank_sorted_order(cluster_labels: np.ndarray) -> np.ndarray:
    """The permutation of image indices sorted by within-cluster rank (ties by image index)."""
    labels = _labels(cluster_labels)
    return np.lexsort((np.arange(len(labels)), within_cluster_rank(labels)))


def fixed_batches(order: np.ndarray, batch_size: int) -> np.ndarray:
    """Consecutive batches of ``order``, the last partial one dropped: an (n_batches, batch_size) index array."""
    order = np.asarray(order)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_batches = len(order) // batch_size
    if n_batches == 0:
        raise ValueError(f"{len(order)} images are fewer than one batch of {batch_size}")
    return order[: n_batches * batch_size].reshape(n_batches, batch_size)


def pseudo_label_batches(cluster_labels: np.ndarray, batch_size: int) -> np.ndarray:
    """G-SimCLR's fixed batches for the given pseudo labels (rank sort, then consecutive batches)."""
    return fixed_batches(rank_sorted_order(cluster_labels), batch_size)


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One random partition of n images into batches (a permutation, the last partial batch dropped)."""
    return fixed_batches(rng.permutation(n), batch_size)


def training_batches(
    fixed: np.ndarray | None,
    n: int,
    batch_size: int,
    epochs: int,
    rng: np.random.Generator,
    *,
    reshuffle: bool = False,
) -> list[np.ndarray]:
    """The batches of every epoch, as the notebooks feed them.

    G-SimCLR (``fixed`` given): the rank-sorted batches, the same in every epoch (no shuffle, no cache).
    Vanilla SimCLR (``fixed`` None): ``Dataset.shuffle(1024).map(normalize).cache().batch(64)`` shuffles *before*
    ``cache()``, and a cached dataset replays exactly the elements of its first pass (TF's ``cache`` docstring:
    shuffle after cache to randomise each iteration), so the order drawn in epoch 1 is reused in every epoch: one
    random partition (here a full permutation instead of the 1024-element buffer), fixed batches. ``reshuffle``
    draws a fresh permutation every epoch instead (the behaviour of this package before the second audit; not the
    notebook's).
    """
    if fixed is not None:
        if reshuffle:
            raise ValueError(
                "reshuffle applies to the random (SimCLR) batches only, not to G-SimCLR's fixed ones"
            )
        return [fixed] * epochs
    if reshuffle:
        return [random_batches(n, batch_size, rng) for _ in range(epochs)]
    return [random_batches(n, batch_size, rng)] * epochs


def per_batch_pair_rates(batches: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every batch, the share of its image pairs {i, j} (i != j) whose labels agree."""
    batches = np.asarray(batches)
    labels = _labels(labels)
    if batches.ndim != 2 or batches.shape[1] < 2:
        raise ValueError(f"batches must be (n_batches, B) with B >= 2, got shape {batches.shape}")
    b = batches.shape[1]
    rates = []
    for idx in batches:
        counts = np.unique(labels[idx], return_counts=True)[1]
        rates.append((counts * (counts - 1)).sum() / (b * (b - 1)))
    return np.array(rates)


def same_label_pair_rate(batches: np.ndarray, labels: np.ndarray) -> float:
    """Share of the within-batch image pairs {i, j} (i != j) whose labels agree, averaged over batches.

    With true class labels this is the rate of same-class "false negatives" NT-Xent sees. For random batches it is
    ``random_pair_rate`` (0.0995 for 10 classes of 192 images); no batching can go below ``min_pair_rate``
    (0.0863 for those classes at B = 64, where every batch must hold 6 or 7 images of each class).
    """
    return float(per_batch_pair_rates(batches, labels).mean())


def random_pair_rate(label_counts: np.ndarray) -> float:
    """Expected same-label pair rate of a uniformly random batch drawn without replacement: two distinct images
    share a label with probability sum_c n_c (n_c - 1) / (N (N - 1)), whatever the batch size."""
    counts = np.asarray(label_counts, dtype=np.int64)
    n = int(counts.sum())
    if counts.ndim != 1 or (counts < 0).any() or n < 2:
        raise ValueError(f"label_counts must be non-negative with a total >= 2, got {label_counts}")
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def min_pair_rate(label_counts: np.ndarray, batch_size: int) -> float:
    """The smallest same-label pair rate any single batch of ``batch_size`` images can have, given how many images
    each label has: sum_c c_c (c_c - 1) is convex in the per-label counts c_c, so the minimum spreads the batch as
    evenly over the labels as their supply allows (water-filling, one image at a time to the label with the
    fewest so far). An average over batches cannot be lower, so this bounds every batching from below."""
    counts = np.asarray(label_counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError(f"label_counts must be a 1-d array of non-negative counts, got {label_counts}")
    if not 2 <= batch_size <= counts.sum():
        raise ValueError(
            f"batch_size must be in [2, {counts.sum()}] (the images available), got {batch_size}"
        )
    taken = np.zeros_like(counts)
    for _ in range(batch_size):
        open_ = np.flatnonzero(taken < counts)
        taken[open_[np.argmin(taken[open_])]] += 1
    return float((taken * (taken - 1)).sum() / (batch_size * (batch_size - 1)))


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty 1-d integer array, got dtype {labels.dtype}, shape {labels.shape}"
        )
    return labels
