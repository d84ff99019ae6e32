"""G-SimCLR batching: within-cluster rank, one image per cluster per batch when balanced, determinism, pair rates."""

import numpy as np
import pytest
from gsimclr.batching import (
    fixed_batches,
    pseudo_label_batches,
    random_batches,
    rank_sorted_order,
    same_label_pair_rate,
    within_cluster_rank,
)


def test_rank_is_order_of_appearance_in_cluster():
    # pandas: df.groupby("cluster_labels")["imag_ind"].rank("dense") = 1 for a cluster's first index, 2, ...
    labels = np.array([2, 0, 2, 1, 0, 2])
    assert within_cluster_rank(labels).tolist() == [1, 1, 2, 1, 2, 3]
    # sort by rank, ties by image index: rank 1 = {0, 1, 3}, rank 2 = {2, 4}, rank 3 = {5}
    assert rank_sorted_order(labels).tolist() == [0, 1, 3, 2, 4, 5]


def test_balanced_clusters_give_one_image_per_cluster_per_batch():
    # K = B = 4 clusters of 5 images each, in a shuffled order: after the rank sort, batch r holds the r-th image
    # of every cluster, so each of the 5 batches has exactly one image of each cluster.
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(4), 5))
    batches = pseudo_label_batches(labels, 4)
    assert batches.shape == (5, 4)
    for idx in batches:
        assert sorted(labels[idx].tolist()) == [0, 1, 2, 3]
    assert same_label_pair_rate(batches, labels) == 0.0
    assert sorted(batches.ravel().tolist()) == list(range(20))  # a permutation: every image once per epoch


def test_unbalanced_clusters_spill_into_shared_batches():
    # cluster 0 has 3 images, cluster 1 one: order = [0 (c0 r1), 3 (c1 r1), 1 (c0 r2), 2 (c0 r3)];
    # batches of 2: {0, 3} distinct clusters, {1, 2} both cluster 0.
    labels = np.array([0, 0, 0, 1])
    batches = pseudo_label_batches(labels, 2)
    assert batches.tolist() == [[0, 3], [1, 2]]
    assert same_label_pair_rate(batches, labels) == pytest.approx(0.5)


def test_deterministic_and_drop_remainder():
    labels = np.random.default_rng(1).integers(0, 8, size=101)
    a, b = pseudo_label_batches(labels, 8), pseudo_label_batches(labels.copy(), 8)
    assert np.array_equal(a, b)
    assert a.shape == (12, 8)  # 101 // 8, the last partial batch dropped (drop_remainder=True)


def test_same_label_pair_rate_hand_computed():
    # batch [0, 0, 1, 1]: pairs 6, same-label 2 -> 1/3; batch [0, 0, 0, 1]: same-label 3 -> 1/2; mean 5/12
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 1])
    assert same_label_pair_rate(np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), labels) == pytest.approx(5 / 12)


def test_random_batches_are_reshuffled_and_near_chance():
    labels = np.repeat(np.arange(10), 640)
    rng = np.random.default_rng(0)
    first, second = random_batches(len(labels), 64, rng), random_batches(len(labels), 64, rng)
    assert not np.array_equal(first, second)
    # without replacement from 10 balanced classes: (n/10 - 1) / (n - 1) per pair, about 0.0999 here
    assert same_label_pair_rate(first, labels) == pytest.approx(0.0999, abs=0.01)


def test_clear_errors():
    with pytest.raises(ValueError, match="integer"):
        rank_sorted_order(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="fewer than one batch"):
        fixed_batches(np.arange(3), 4)
    with pytest.raises(ValueError, match="batch_size"):
        fixed_batches(np.arange(3), 0)
    with pytest.raises(ValueError, match="B >= 2"):
        same_label_pair_rate(np.zeros((3, 1), dtype=int), np.zeros(3, dtype=int))
