"""Diagnostic pseudo labels: equal cluster sizes by an exact size-constrained assignment; grayscale DAE input."""

import itertools

import numpy as np
import pytest
import torch
from gsimclr.balanced import (
    LUMA,
    MAX_ASSIGNMENT_IMAGES,
    balanced_assignment,
    balanced_pseudo_labels,
    cluster_capacities,
    grayscale,
)
from gsimclr.batching import pseudo_label_batches, same_label_pair_rate
from gsimclr.experiment import RunConfig, run


def test_capacities_equal_and_extra_to_largest():
    # 10 images, K = 3: floor(10 / 3) = 3 each, the one left over goes to the largest KMeans cluster (index 0)
    assert cluster_capacities(np.array([5, 1, 4]), 10).tolist() == [4, 3, 3]
    # ties by index: sizes [2, 2, 2, 2], n = 10 -> two extras to clusters 0 and 1
    assert cluster_capacities(np.array([2, 2, 2, 2]), 10).tolist() == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="n >= K"):
        cluster_capacities(np.array([1, 1, 1]), 2)


def test_assignment_is_the_exact_optimum_on_a_brute_forced_case():
    # 6 points, 2 centroids, capacities 3 / 3: enumerate all C(6, 3) = 20 ways to pick cluster 0's members
    rng = np.random.default_rng(0)
    e = rng.standard_normal((6, 2))
    mu = np.array([[0.5, 0.0], [-0.5, 0.2]])
    cost = ((e[:, None] - mu[None]) ** 2).sum(-1)
    best = min(
        sum(cost[i, 0] if i in members else cost[i, 1] for i in range(6))
        for members in itertools.combinations(range(6), 3)
    )
    labels = balanced_assignment(e, mu, np.array([0, 0, 0, 0, 1, 1]))
    assert np.bincount(labels).tolist() == [3, 3]
    assert cost[np.arange(6), labels].sum() == pytest.approx(best, rel=1e-12)


def test_balanced_data_keeps_the_kmeans_labels():
    # four separated blobs of 5 points: KMeans is already balanced and the assignment changes nothing
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    pts = np.repeat(centres, 5, axis=0) + 0.01 * np.random.default_rng(1).standard_normal((20, 2))
    balanced, km = balanced_pseudo_labels(pts, 4, n_init=1)
    assert np.array_equal(balanced, km)


def test_unbalanced_blobs_become_equal_and_give_one_image_per_cluster_per_batch():
    # blobs of 14, 4, 4, 2 points, K = B = 4: every cluster gets exactly 6 images, so each of the 6 rank levels is
    # one full batch with one image of each cluster (no same-cluster pair at all)
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    pts = np.repeat(centres, [14, 4, 4, 2], axis=0) + rng.standard_normal((24, 2))
    balanced, km = balanced_pseudo_labels(pts, 4, n_init=3)
    assert sorted(np.bincount(km).tolist()) != [6, 6, 6, 6]
    assert np.bincount(balanced).tolist() == [6, 6, 6, 6]
    batches = pseudo_label_batches(balanced, 4)
    assert batches.shape == (6, 4) and same_label_pair_rate(batches, balanced) == 0.0


def test_grayscale_is_luma_in_three_channels():
    x = torch.zeros(2, 3, 1, 1)
    x[0, 0] = 1.0  # pure red -> 0.2989
    x[1] = 1.0  # white -> sum of the weights = 0.9999
    g = grayscale(x)
    assert g.shape == x.shape
    assert torch.allclose(g[0, :, 0, 0], torch.full((3,), LUMA[0]))
    assert torch.allclose(g[1, :, 0, 0], torch.full((3,), sum(LUMA)))
    with pytest.raises(ValueError, match="RGB"):
        grayscale(torch.zeros(2, 1, 4, 4))


def test_clear_errors():
    with pytest.raises(ValueError, match="centroids"):
        balanced_assignment(np.zeros((4, 2)), np.zeros((2, 3)), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="cost matrix"):
        n = MAX_ASSIGNMENT_IMAGES + 1
        balanced_assignment(np.zeros((n, 1)), np.zeros((2, 1)), np.zeros(n, dtype=np.int64))
    with pytest.raises(ValueError, match="clustering"):
        run(RunConfig(clustering="spectral"), 0, device="cpu", log=lambda **k: None)
    with pytest.raises(ValueError, match="dae_input"):
        run(RunConfig(dae_input="hsv"), 0, device="cpu", log=lambda **k: None)


def test_random_equal_groups_sizes_independence_and_batches():
    from gsimclr.balanced import random_equal_groups

    # 10 images, K = 3: sizes 4, 3, 3 (the extra one to the first group, as cluster_capacities with equal sizes)
    g = random_equal_groups(10, 3, np.random.default_rng(0))
    assert np.bincount(g).tolist() == [4, 3, 3]
    # a fixed generator seed gives the same draw; the draw is a permutation of the sorted labels, not the identity
    assert np.array_equal(g, random_equal_groups(10, 3, np.random.default_rng(0)))
    big = random_equal_groups(64 * 30, 64, np.random.default_rng(1))
    assert not np.array_equal(big, np.repeat(np.arange(64), 30))
    # through the rank-sorted batching every batch holds one image per group (as the balanced arm)
    batches = pseudo_label_batches(big, 64)
    assert batches.shape == (30, 64) and same_label_pair_rate(batches, big) == 0.0
    with pytest.raises(ValueError, match="n >= K"):
        random_equal_groups(2, 3, np.random.default_rng(0))
