"""G-SimCLR's batches: sort the data by within-cluster rank and cut it into fixed consecutive batches (Sec. III-B).

Official recipe (SimCLR_Pseudo_Labels_Training.ipynb): KMeans with K = BATCH_SIZE = 64 clusters gives a pseudo
label per image; ``rank`` = the dense rank of the image index inside its cluster (1 for the cluster's first image,
2 for its second, ...); the dataset is sorted by rank alone and batched with ``.batch(64, drop_remainder=True)``
and no shuffling. The first 64 images are then the first image of every cluster, the next 64 the second image of
every cluster, and so on: each batch holds at most one image per pseudo class while the clusters are balanced, so
images that are probably of the same class are rarely each other's negatives. The batches are the same in every
epoch. Vanilla SimCLR instead shuffles (``.shuffle(1024)``) before batching.

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
    """Vanilla SimCLR's batches for one epoch: a fresh random permutation, the last partial batch dropped."""
    return fixed_batches(rng.permutation(n), batch_size)


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

    With true class labels this is the rate of same-class "false negatives" NT-Xent sees; for B = 64 random
    images of 10 balanced classes it is about (64/10 - 1) / 63 = 0.086.
    """
    return float(per_batch_pair_rates(batches, labels).mean())


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty 1-d integer array, got dtype {labels.dtype}, shape {labels.shape}"
        )
    return labels
