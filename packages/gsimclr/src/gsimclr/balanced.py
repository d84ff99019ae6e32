"""Diagnostic pseudo labels (not in the paper): a size-constrained assignment to the KMeans centroids, and
grayscale inputs for the autoencoder.

Why: with the official KMeans the clusters are unbalanced, so G-SimCLR's rank-sorted batches hold one image per
cluster only in their first part (``batching`` module docstring). Giving every cluster the same number of images
makes every rank level exactly K = B images, so every fixed batch holds exactly one image per cluster; what is left
of the mechanism then depends only on how well the clusters follow the classes. Computing the embeddings from
grayscale images removes the colour that dominates the shapes set's embeddings (README, "What the numbers say").

The balanced assignment solves, for the centroids mu_k of the official KMeans fit,

    min over labels  sum_i ||e_i - mu_{label_i}||^2   subject to  |{i : label_i = k}| = cap_k  for every k,

with cap_k = floor(N / K), plus one for the N mod K clusters that KMeans made largest. It is a linear assignment
problem once cluster k is repeated cap_k times as a column ("slot"), which ``scipy.optimize.linear_sum_assignment``
solves exactly. The centroids stay those of KMeans (one assignment step, no re-fitting): the diagnostic changes the
cluster sizes and nothing else.
"""

from __future__ import annotations

import numpy as np
import torch

# ITU-R BT.601 luma, the weights of tf.image.rgb_to_grayscale
LUMA = (0.2989, 0.5870, 0.1140)
# one dense (N, N) cost matrix of float64; 1,920 images at cpu scale use 29 MB, CIFAR-10 would need 20 GB
MAX_ASSIGNMENT_IMAGES = 20_000


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 3, H, W) luma copied to the three channels (the DAE keeps its 3-channel input)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got shape {tuple(x.shape)}")
    luma = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return luma.expand_as(x).contiguous()


def cluster_capacities(sizes: np.ndarray, n: int) -> np.ndarray:
    """Equal capacities summing to n: floor(n / K) each, plus one for the n mod K largest clusters (ties by index)."""
    sizes = np.asarray(sizes)
    k = len(sizes)
    if k < 1 or n < k:
        raise ValueError(f"need n >= K >= 1, got n = {n}, K = {k}")
    caps = np.full(k, n // k, dtype=np.int64)
    caps[np.argsort(-sizes, kind="stable")[: n % k]] += 1
    return caps


def balanced_assignment(
    embeddings: np.ndarray, centroids: np.ndarray, kmeans_labels: np.ndarray
) -> np.ndarray:
    """The size-constrained labels minimising the summed squared distance to the given centroids (exact)."""
    from scipy.optimize import linear_sum_assignment

    e = np.asarray(embeddings, dtype=np.float64)
    mu = np.asarray(centroids, dtype=np.float64)
    if e.ndim != 2 or mu.ndim != 2 or e.shape[1] != mu.shape[1]:
        raise ValueError(f"need (N, D) embeddings and (K, D) centroids, got {e.shape} and {mu.shape}")
    n, k = len(e), len(mu)
    if n > MAX_ASSIGNMENT_IMAGES:
        raise ValueError(
            f"balanced assignment builds an (N, N) cost matrix; N = {n} > {MAX_ASSIGNMENT_IMAGES}"
        )
    caps = cluster_capacities(np.bincount(np.asarray(kmeans_labels), minlength=k), n)
    # squared distances (N, K), then one column per slot of each cluster
    cost = ((e[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    slot_cluster = np.repeat(np.arange(k), caps)
    rows, cols = linear_sum_assignment(cost[:, slot_cluster])
    labels = np.empty(n, dtype=np.int64)
    labels[rows] = slot_cluster[cols]
    return labels


def balanced_pseudo_labels(
    embeddings: np.ndarray, n_clusters: int, *, random_state: int = 0, n_init: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(balanced labels, official KMeans labels): the same KMeans fit as ``kmeans_pseudo_labels``, then the
    size-constrained assignment to its centroids."""
    from gsimclr.autoencoder import fit_kmeans

    km = fit_kmeans(embeddings, n_clusters, random_state=random_state, n_init=n_init)
    kmeans_labels = km.labels_.astype(np.int64)
    return balanced_assignment(embeddings, km.cluster_centers_, kmeans_labels), kmeans_labels


def random_equal_groups(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Control for the balanced diagnostic (not in the paper): a uniformly random assignment of n images to k
    groups with the balanced arm's sizes (floor(n / k), one more for the first n mod k groups), drawn without
    looking at the images. Fed to the same rank-sorted batching, it keeps the balanced arm's batch construction
    (every full batch holds one image per group) and removes the DAE's cluster information."""
    if k < 1 or n < k:
        raise ValueError(f"need n >= K >= 1, got n = {n}, K = {k}")
    caps = cluster_capacities(np.zeros(k, dtype=np.int64), n)
    labels = np.empty(n, dtype=np.int64)
    labels[rng.permutation(n)] = np.repeat(np.arange(k), caps)
    return labels
