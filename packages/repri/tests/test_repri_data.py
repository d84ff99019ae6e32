"""Scenes, folds, base-training targets, episode sampling and the accumulated per-class mIoU."""

import numpy as np
import pytest
import torch
from repri.episodes import IoUAccumulator, binary_masks, fg_intersection_union, sample_episodes
from repri.experiment import base_labels, keep_base_images
from repri.model import IGNORE, smoothed_ce
from repri.scenes import SceneConfig, fold_classes, generate_scenes


def test_scenes_deterministic_and_labels_consistent():
    cfg = SceneConfig(n_images=12, size=32)
    a, b = generate_scenes(cfg, 3), generate_scenes(cfg, 3)
    assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])
    assert a["x"].shape == (12, 3, 32, 32) and a["y"].shape == (12, 32, 32)
    assert a["y"].max() <= len(cfg.classes)
    per_image = [len(np.unique(y)) - 1 for y in a["y"]]  # visible objects (occlusion can hide one)
    assert max(per_image) <= cfg.objects[1] and sum(per_image) > 0
    assert not np.array_equal(a["x"], generate_scenes(cfg, 4)["x"])
    with pytest.raises(ValueError, match="objects range"):
        SceneConfig(objects=(0, 2))


def test_folds_partition_the_classes():
    folds = [fold_classes(20, 4, f) for f in range(4)]
    assert sorted(sum(folds, [])) == list(range(20)) and all(len(f) == 5 for f in folds)
    with pytest.raises(ValueError, match="fold"):
        fold_classes(20, 4, 4)


def test_base_labels_ignore_novel_pixels():
    lab = torch.tensor([[0, 1, 2, 3, 4]])  # classes 0..3 (+1)
    y = base_labels(lab, base=[0, 2])  # novel: 1, 3
    assert y.tolist() == [[0, 1, IGNORE, 2, IGNORE]]


def test_base_labels_pool_without_its_highest_classes():
    """A small pool need not contain the highest base classes: the lookup table must cover every base class
    (it was sized from labels.max() and raised IndexError), and the targets equal the full pool's."""
    lab = torch.tensor([[0, 1, 2, 3]])  # classes 0..2 present, base classes 3 and 4 absent
    y = base_labels(lab, base=[0, 2, 3, 4])  # novel: 1
    assert y.tolist() == [[0, 1, IGNORE, 2]]
    full = torch.tensor([[0, 1, 2, 3, 4, 5]])  # the same mapping with every class present
    assert base_labels(full, base=[0, 2, 3, 4]).tolist() == [[0, 1, IGNORE, 2, 3, 4]]
    # a label above every base class is novel (IGNORE), whatever the table size
    assert base_labels(torch.tensor([[7, 0]]), base=[0, 1]).tolist() == [[IGNORE, 0]]


def test_smoothed_ce_matches_hand_formula():
    logits = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]]]])  # 1 pixel, 3 classes
    target = torch.tensor([[[0]]])
    logp = torch.log_softmax(logits[0, :, 0, 0], 0)
    expected = -(0.9 * logp[0] + 0.05 * logp[1] + 0.05 * logp[2])  # eps / (K - 1) off-class
    assert torch.allclose(smoothed_ce(logits, target, 0.1), expected)
    ignored = torch.tensor([[[IGNORE]]])
    both = torch.cat([target, ignored], 2)
    assert torch.allclose(smoothed_ce(torch.cat([logits, logits], 3), both, 0.1), expected)


def test_episodes_contain_their_class_and_distinct_supports():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(30, 8, 8, dtype=torch.long)
    for i in range(30):
        labels[i, :4, :4] = 1 + (i % 3)  # class i % 3 on a 16-pixel block
        labels[i, 4:, 4:] = 1 + ((i + 1) % 3) if torch.rand((), generator=g) < 0.5 else 0
    ep = sample_episodes(labels, [0, 1], n=40, shots=3, rng=np.random.default_rng(0), min_pixels=10)
    assert len(ep.query) == 40 and ep.support.shape == (40, 3)
    for q, s, c in zip(ep.query, ep.support, ep.cls, strict=True):
        assert c in (0, 1) and q not in s and len(set(s)) == 3
        # protocol v4 (official EpisodicData): the query holds its class (any pixel count) and some novel class on
        # >= min_pixels (the pool); every support holds the class on >= min_pixels (official process_image)
        assert (labels[q] == c + 1).sum() >= 1
        assert max((labels[q] == k + 1).sum() for k in (0, 1)) >= 10
        for i in s:
            assert (labels[i] == c + 1).sum() >= 10
    masks = binary_masks(labels[torch.from_numpy(ep.query)], torch.from_numpy(ep.cls))
    assert set(masks.unique().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="no class"):
        sample_episodes(labels, [0], n=5, shots=50, rng=np.random.default_rng(0), min_pixels=10)


def test_accumulated_miou_is_per_class_ratio_of_sums():
    pred = torch.tensor([[[1, 1, 0, 0]], [[1, 0, 0, 0]], [[0, 0, 1, 1]]]).bool()
    gt = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 1, IGNORE]], [[0, 0, 1, 1]]])
    inter, union = fg_intersection_union(pred, gt)
    assert inter.tolist() == [1, 1, 2] and union.tolist() == [2, 3, 2]
    acc = IoUAccumulator()
    acc.update(np.array([5, 5, 7]), inter, union)
    # class 5: (1 + 1) / (2 + 3) = 0.4 (not the mean of 0.5 and 1/3); class 7: 1
    assert acc.per_class() == pytest.approx({5: 0.4, 7: 1.0})
    assert acc.miou() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no episode"):
        IoUAccumulator().miou()


def test_smoothed_ce_bg_weight_is_a_weighted_mean():
    # two pixels: one background (loss l0, weight w), one object (loss l1, weight 1)
    # -> (w * l0 + l1) / (w + 1); w = 1 is the unweighted official mean
    logits = torch.randn(1, 4, 1, 2, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[[0, 2]]])
    l0 = smoothed_ce(logits[..., :1], target[..., :1], 0.1)
    l1 = smoothed_ce(logits[..., 1:], target[..., 1:], 0.1)
    assert torch.allclose(smoothed_ce(logits, target, 0.1, bg_weight=0.25), (0.25 * l0 + l1) / 1.25)
    assert torch.allclose(smoothed_ce(logits, target, 0.1, bg_weight=1.0), (l0 + l1) / 2)


def test_smoothed_ce_matches_one_hot_reference_float64():
    # the loss is computed without the (B, K, H, W) soft target; compare with the explicit soft-target sum
    # -sum_c soft_c log p_c (soft = 1 - eps on the label, eps / (K - 1) elsewhere) in float64, with ignored
    # pixels and a background weight
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 5, 7, generator=g, dtype=torch.float64)
    target = torch.randint(0, 6, (3, 5, 7), generator=g)
    target[0, 0, :3] = IGNORE
    eps, k = 0.1, 6
    valid = target != IGNORE
    one_hot = torch.nn.functional.one_hot(target.clamp(max=k - 1) * valid, k).permute(0, 3, 1, 2).double()
    soft = one_hot * (1 - eps) + (1 - one_hot) * eps / (k - 1)
    per_pixel = -(soft * torch.log_softmax(logits, 1)).sum(1)[valid]
    w = torch.where(target == 0, 0.2, 1.0).double()[valid]
    assert torch.allclose(smoothed_ce(logits, target, eps), per_pixel.mean(), atol=1e-12)
    assert torch.allclose(smoothed_ce(logits, target, eps, 0.2), (w * per_pixel).sum() / w.sum(), atol=1e-12)


def test_fcn_block_count_and_output_size():
    from repri.model import DilatedFCN, FCNConfig

    net = DilatedFCN(16, FCNConfig(width=8, feature_dim=8, dilations=(1, 2, 4, 8))).eval()
    assert len(net.trunk) == 4 and [b.conv[0].dilation[0] for b in net.trunk] == [1, 2, 4, 8]
    x = torch.rand(2, 3, 64, 64)
    assert net.features(x).shape == (2, 8, 16, 16) and net(x).shape == (2, 16, 64, 64)


def test_query_class_is_any_novel_class_present_in_the_query():
    """Protocol v4 (official ``EpisodicData.__getitem__``: ``np.unique(label)`` of the query, no pixel count): the
    episode class is uniform over the novel classes present in the query at ANY pixel count; only the query pool
    (some novel class on >= min_pixels) and the supports (the class on >= min_pixels) use the threshold."""
    labels = torch.zeros(8, 8, 8, dtype=torch.long)
    labels[0, :4, :4] = 1  # query 0: class 0 on 16 px and class 1 on a single pixel
    labels[0, 7, 7] = 2
    labels[1:4, :4, :4] = 1  # class 0 on 16 px: query pool and class-0 supports
    labels[4:7, 4:, 4:] = 2  # class 1 on 16 px: query pool and class-1 supports
    labels[7, 0, :3] = 2  # class 1 on 3 px only: neither a query nor a support
    ep = sample_episodes(labels, [0, 1], n=700, shots=2, rng=np.random.default_rng(0), min_pixels=10)
    assert 7 not in set(ep.query) and 7 not in set(ep.support.ravel())
    assert set(ep.query) == set(range(7))
    chosen0 = ep.cls[ep.query == 0]
    # both classes are drawn for query 0 (the 1-pixel class 1 too, which the >= min_pixels rule of protocol v3
    # never drew), uniformly: 100 draws, binomial(100, 0.5) lies in [30, 70] with probability > 1 - 1e-4
    assert set(chosen0.tolist()) == {0, 1} and 30 <= (chosen0 == 1).sum() <= 70
    for q, s, c in zip(ep.query, ep.support, ep.cls, strict=True):
        assert all((labels[i] == c + 1).sum() >= 10 for i in s) and q not in s
    # a class present in a query but with too few support candidates is an error, not a silent redraw
    few = labels.clone()
    # class 1 now has one image on >= 10 px (image 4): no 2-shot support set when query 0 draws its class 1
    few[5:7] = 0
    with pytest.raises(ValueError, match="support candidates"):
        sample_episodes(few, [0, 1], n=700, shots=2, rng=np.random.default_rng(0), min_pixels=10)


def test_base_training_images_need_one_base_class_on_min_pixels():
    """Protocol v4 (official ``dataset/utils.py`` ``process_image`` with the base classes, used by ``StandardData``):
    an image is kept for base training only if ONE base class covers >= min_pixels pixels (not the sum over base
    classes, not any base pixel); novel pixels (IGNORE) and background do not count."""
    y = torch.zeros(6, 8, 8, dtype=torch.long)
    y[0, :2, :8] = 1  # base target 1 on 16 px -> kept
    y[1, :2, :5] = 1  # 10 px of target 1 and 10 px of target 2: 20 base pixels, but no class on 16 -> dropped
    y[1, 4:6, :5] = 2
    y[2, :2, :8] = 1  # 15 px (one removed) -> dropped
    y[2, 0, 0] = 0
    y[3] = IGNORE  # novel pixels only -> dropped
    # y[4]: background only -> dropped
    y[5, :, :2] = 2  # target 2 on 16 px next to novel pixels -> kept
    y[5, :, 2:] = IGNORE
    assert keep_base_images(y, n_base=2, min_pixels=16).tolist() == [True, False, False, False, False, True]
    # min_pixels 1 is the any-base-pixel rule of protocol v3
    assert keep_base_images(y, n_base=2, min_pixels=1).tolist() == [True, True, True, False, False, True]
    assert keep_base_images(y, n_base=2, min_pixels=10).tolist() == [True, True, True, False, False, True]
    assert keep_base_images(y, n_base=2, min_pixels=11).tolist() == [True, False, True, False, False, True]


def test_base_training_pool_applies_min_pixels():
    """``base_training_pool`` keeps exactly the training scenes where some base class covers >= ``min_pixels``."""
    from repri.experiment import RunConfig, base_classes, base_training_pool
    from repri.scenes import SceneConfig, load_scenes

    cfg = RunConfig(n_train=40, n_test=4, min_pixels=300)
    base, _ = base_classes(cfg, 0)
    x, y = base_training_pool(cfg, base)
    _, lab = load_scenes(
        SceneConfig(n_images=40, size=cfg.size, scale=tuple(cfg.object_scale)), cfg.train_data_seed
    )
    counts = torch.stack([(lab == b + 1).sum(dim=(1, 2)) for b in base], 1)
    expected = (counts >= 300).any(1)
    assert 0 < int(expected.sum()) < 40  # the threshold bites on this pool
    assert torch.equal(y, base_labels(lab, base)[expected]) and len(x) == int(expected.sum())
