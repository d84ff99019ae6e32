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


def test_pair_rate_floor_and_random_expectation_hand_derived():
    # cpu scale: 10 classes x 192 images, B = 64. Any batch of 64 spreads over at most 10 classes, so the fewest
    # same-class pairs come from 4 classes with 7 images and 6 with 6: sum c (c - 1) = 4 * 42 + 6 * 30 = 348
    # ordered pairs of 64 * 63 = 4032, i.e. 0.086310. A uniformly random batch (without replacement) has
    # sum n_c (n_c - 1) / (N (N - 1)) = 10 * 192 * 191 / (1920 * 1919) = 191 / 1919 = 0.099531.
    # So no batching can push the ratio of claim `fewer-same-class-pairs` below 348 / 4032 * 1919 / 191 = 0.8672.
    from gsimclr.batching import min_pair_rate, random_pair_rate

    counts = np.full(10, 192)
    assert min_pair_rate(counts, 64) == pytest.approx(348 / 4032, rel=1e-12)
    assert random_pair_rate(counts) == pytest.approx(191 / 1919, rel=1e-12)
    assert min_pair_rate(counts, 64) / random_pair_rate(counts) == pytest.approx(0.86717, abs=1e-5)
    # a class with too few images caps its share: counts [1, 9], B = 6 -> best is 1 + 5 -> 5 * 4 / 30
    assert min_pair_rate(np.array([1, 9]), 6) == pytest.approx(20 / 30)
    # the floor is what the measured rate of any batching respects (here a class-stratified batching attains it)
    labels = np.tile(np.arange(10), 192)  # image i has class i mod 10, so consecutive 64 are stratified
    assert same_label_pair_rate(fixed_batches(np.arange(1920), 64), labels) == pytest.approx(348 / 4032)
    with pytest.raises(ValueError, match="batch_size"):
        min_pair_rate(counts, 1)
    with pytest.raises(ValueError, match="batch_size"):
        min_pair_rate(np.array([2, 2]), 5)


def test_simclr_batches_are_fixed_across_epochs_like_the_notebook():
    # Vanilla_SimCLR/SimCLR_Training.ipynb: Dataset.shuffle(1024).map(normalize).cache().batch(64): the shuffle sits
    # BEFORE cache(), and TF's cache() "will produce exactly the same elements during each iteration" (its
    # docstring), so the order shuffled in epoch 1 is replayed in every epoch: one random partition, fixed batches.
    # G-SimCLR's rank-sorted batches are fixed as well, so the two arms differ only in which images share a batch.
    from gsimclr.batching import training_batches

    rng = np.random.default_rng(0)
    epochs = training_batches(None, 100, 8, 3, rng)
    assert len(epochs) == 3 and all(np.array_equal(e, epochs[0]) for e in epochs)
    assert epochs[0].shape == (12, 8) and len(set(epochs[0].ravel().tolist())) == 96
    # its one permutation is the first draw of the unit's generator (what epoch 1 trained on before the audit)
    assert np.array_equal(epochs[0], random_batches(100, 8, np.random.default_rng(0)))
    # the pre-audit behaviour, kept as an option: a fresh permutation every epoch
    again = training_batches(None, 100, 8, 3, np.random.default_rng(0), reshuffle=True)
    assert np.array_equal(again[0], epochs[0]) and not np.array_equal(again[1], again[0])
    # G-SimCLR: the given fixed batches in every epoch
    fixed = pseudo_label_batches(np.arange(100) % 8, 8)
    assert all(np.array_equal(e, fixed) for e in training_batches(fixed, 100, 8, 2, rng))
    with pytest.raises(ValueError, match="reshuffle"):
        training_batches(fixed, 100, 8, 2, rng, reshuffle=True)
