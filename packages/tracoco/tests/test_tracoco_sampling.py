"""Translated crops, CutMix boxes, the two-stream sampler and the schedules."""

import math
from itertools import islice

import numpy as np
import pytest
import torch
from tracoco.crops import overlap_ranges, pad_to_exceed, sample_crop_pair, two_stream_batches
from tracoco.cutmix import apply_cutmix, rand_boxes
from tracoco.schedules import consistency_weight, poly_lr, sigmoid_rampup


def test_overlap_ranges_both_directions():
    # b starts 3 before a (crop 10): overlap is a[0:7] = b[3:10]; mirrored when b starts after a.
    assert overlap_ranges(5, 2, 10) == ((0, 7), (3, 10))
    assert overlap_ranges(2, 5, 10) == ((3, 10), (0, 7))
    assert overlap_ranges(4, 4, 10) == ((0, 10), (0, 10))
    (a0, a1), _ = overlap_ranges(20, 5, 10)  # disjoint crops: empty range
    assert a1 <= a0


def test_crop_pairs_overlap_holds_the_same_voxels():
    # The official loader asserts that the two crops agree on the overlap; check it over many draws.
    rng = np.random.default_rng(0)
    vol = rng.standard_normal((30, 27, 20))  # z < 2 * 12: the official code has no z fix
    size = (16, 16, 12)
    for _ in range(200):
        p = sample_crop_pair(vol.shape, size, rng)
        crop_a = vol[tuple(slice(s, s + c) for s, c in zip(p.start_a, size))]
        crop_b = vol[tuple(slice(s, s + c) for s, c in zip(p.start_b, size))]
        ov_a = crop_a[tuple(slice(*r) for r in p.range_a)]
        ov_b = crop_b[tuple(slice(*r) for r in p.range_b)]
        assert ov_a.size > 0 and np.array_equal(ov_a, ov_b)
        for s, t, w, c in zip(p.start_a, p.start_b, vol.shape, size):
            assert 0 <= s < w - c and t <= s  # the translated crop is shifted towards the origin


def test_no_overlap_fix_moves_the_translated_start():
    # Volume 100 vs crop 40 along x/y: starts s in [0, 60), shift d = s - t in (0, s]. When d > 40
    # the official fix adds s // 2 to t, leaving 0 < d' < 40: the crops overlap again. Only
    # d == 40 exactly (the fix tests d > 40) stays empty.
    def empty_xy(fix):
        rng = np.random.default_rng(1)
        pairs = [sample_crop_pair((100, 100, 20), (40, 40, 10), rng, fix_no_overlap=fix) for _ in range(400)]
        return sum(p.overlap_shape[0] == 0 or p.overlap_shape[1] == 0 for p in pairs)

    fixed, raw = empty_xy(True), empty_xy(False)
    assert raw > 20 and fixed < raw / 5


def test_crop_errors_and_padding():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="larger than the crop"):
        sample_crop_pair((16, 20, 20), (16, 8, 8), rng)
    padded = pad_to_exceed(np.ones((16, 20, 8)), (16, 8, 8))
    # official padding (c - w) // 2 + 1 on both sides of each too-small axis: 16 -> 18, 8 -> 10
    assert padded.shape == (18, 20, 10) and padded[0].sum() == 0
    assert pad_to_exceed(np.ones((20, 20, 20)), (8, 8, 8)).shape == (20, 20, 20)


def test_cutmix_boxes_follow_the_official_formula():
    rng = np.random.default_rng(3)
    b = rand_boxes((4, 1, 32, 24, 16), rng)
    cut_w, cut_h = int(32 * math.sqrt(1 - b.lam)), int(24 * math.sqrt(1 - b.lam))
    assert 0 < b.lam < 1 and sorted(b.perm.tolist()) == [0, 1, 2, 3]
    for i in range(4):
        assert 0 <= b.x1[i] <= b.x2[i] <= 32 and 0 <= b.y1[i] <= b.y2[i] <= 24
        assert b.x2[i] - b.x1[i] <= 2 * (cut_w // 2) and b.y2[i] - b.y1[i] <= 2 * (cut_h // 2)
    with pytest.raises(ValueError):
        rand_boxes((4, 32, 24, 16), rng)


def test_cutmix_pastes_source_boxes_over_full_depth_consistently():
    rng = np.random.default_rng(5)
    x = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 1, 12, 10, 6).clone()  # sample i is constant i
    logits = x.repeat(1, 2, 1, 1, 1)
    b = rand_boxes(tuple(x.shape), rng)
    mx, ml = apply_cutmix([x, logits], b)
    for i in range(4):
        inside = torch.zeros(12, 10, 6, dtype=torch.bool)
        inside[b.x1[i] : b.x2[i], b.y1[i] : b.y2[i], :] = True
        assert torch.all(mx[i, 0][inside] == b.perm[i]) and torch.all(mx[i, 0][~inside] == i)
        assert torch.equal(ml[i, 0], mx[i, 0]) and torch.equal(ml[i, 1], mx[i, 0])
    assert torch.all(x[:, 0, 0, 0, 0] == torch.arange(4.0))  # input untouched


def test_two_stream_batches_epoch_structure():
    rng = np.random.default_rng(0)
    batches = list(islice(two_stream_batches(range(4), range(4, 9), 2, 2, rng), 6))
    for epoch in (batches[0:2], batches[2:4], batches[4:6]):
        assert sorted(i for b in epoch for i in b[:2]) == [0, 1, 2, 3]  # each labelled once per epoch
    assert all(all(4 <= i < 9 for i in b[2:]) and len(b) == 4 for b in batches)
    sup = next(two_stream_batches(range(4), [], 2, 0, rng))
    assert len(sup) == 2
    with pytest.raises(ValueError):
        next(two_stream_batches(range(1), range(4), 2, 2, rng))


def test_schedules_hand_values():
    assert poly_lr(0.05, 0, 100) == 0.05
    assert poly_lr(0.05, 100, 100) == 0.0
    assert poly_lr(0.05, 50, 100) == pytest.approx(0.05 * 0.5**0.9)
    with pytest.raises(ValueError):
        poly_lr(0.05, 101, 100)
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(20, 10) == 1.0 and sigmoid_rampup(3, 0) == 1.0
    # 4 labelled volumes, 2 per batch: one epoch = 2 iterations, the ramp-up 40 epochs = 80 iterations.
    assert consistency_weight(0, 0.3, 40, 2) == 0.0
    assert consistency_weight(40, 0.3, 40, 2) == pytest.approx(0.3 * math.exp(-1.25))
    assert consistency_weight(80, 0.3, 40, 2) == pytest.approx(0.3)
