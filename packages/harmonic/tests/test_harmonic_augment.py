"""The official full-scale input pipeline (vision/data/data_loaders.py of the official code): each transform
against a hand derivation or a float64 reference of torchvision's / PIL's semantics, the per-image draws,
their laws and their determinism under a seed, and the (normalize, augment) table of every pair."""

import colorsys
import itertools
import math

import numpy as np
import pytest
import torch
from harmonic.vision import (
    BACKBONES,
    DATASETS,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    augment_batch,
    color_jitter,
    hsv_to_rgb,
    jitter_params,
    normalize,
    official_config,
    rgb_to_hsv,
)

from xentlab.data.images import random_crop_flip, rotate

LUMA = np.array([0.299, 0.587, 0.114])  # PIL's "L" conversion (ITU-R 601-2), what ImageEnhance blends with


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- the official table


def test_official_pipeline_of_every_pair():
    # data_loaders.py: transform_mnist / transform_cifar (0.5) for the MLP and CNN on MNIST / CIFAR-10,
    # transform_cifar100 (CIFAR-100 stats) for them on CIFAR-100, the *_vgg_resnet_* transforms for ResNet-50
    c10 = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
    c100 = {"mean": [0.5071, 0.4867, 0.4408], "std": [0.2675, 0.2565, 0.2761]}
    half3 = {"mean": [0.5] * 3, "std": [0.5] * 3}
    expected = {
        ("mnist", "mlp"): ({"mean": [0.5], "std": [0.5]}, None),
        ("mnist", "cnn"): ({"mean": [0.5], "std": [0.5]}, None),
        ("mnist", "resnet50"): ({"mean": [0.1307], "std": [0.3081]}, None),
        ("cifar10", "mlp"): (half3, None),
        ("cifar10", "cnn"): (half3, None),
        ("cifar10", "resnet50"): (
            c10,
            {"flip": True, "crop_padding": 4, "rotation": 10.0, "color_jitter": None},
        ),
        ("cifar100", "mlp"): (c100, None),
        ("cifar100", "cnn"): (c100, None),
        ("cifar100", "resnet50"): (
            c100,
            {"flip": True, "crop_padding": 4, "rotation": 15.0, "color_jitter": [0.2, 0.2, 0.2, 0.1]},
        ),
    }
    for ds, bb in itertools.product(DATASETS, BACKBONES):
        cfg = official_config(ds, bb)
        assert (cfg["normalize"], cfg["augment"]) == expected[(ds, bb)], (ds, bb)


def test_normalize_is_per_channel_affine():
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    out = normalize(x, {"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2.0]})
    assert torch.allclose(out[:, 1], (x[:, 1] - 0.2) / 0.25, rtol=0, atol=1e-15)
    # Normalize(0.5, 0.5) maps [0, 1] onto [-1, 1]
    assert normalize(
        torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1), {"mean": [0.5], "std": [0.5]}
    ).flatten().tolist() == [
        -1.0,
        1.0,
    ]


# ----------------------------------------------------------------------------- rotation


def test_rotate_nearest_by_right_angles_is_exact():
    # nearest sampling of a 90-degree turn maps pixel centres onto pixel centres: exactly rot90 (transpose,
    # then flip the rows), counter-clockwise for positive angles, as torchvision's rotate
    for size in (6, 7):
        x = torch.rand(3, 2, size, size)
        assert torch.equal(rotate(x, 90.0, mode="nearest"), torch.rot90(x, 1, (-2, -1)))
        assert torch.equal(rotate(x, 90.0, mode="nearest"), x.transpose(-2, -1).flip(-2))
        assert torch.equal(rotate(x, -90.0, mode="nearest"), torch.rot90(x, -1, (-2, -1)))
        assert torch.equal(rotate(x, 180.0, mode="nearest"), x.flip(-1).flip(-2))
        assert torch.equal(rotate(x, 0.0, mode="nearest"), x)
    # same direction as xentlab's bilinear rotate
    x = torch.rand(2, 1, 6, 6)
    assert torch.allclose(rotate(x, 90.0), rotate(x, 90.0, mode="nearest"), atol=1e-5)


def _pil_nearest_rotation(img: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """float64 reference of PIL's Image.rotate(angle, NEAREST, expand=False, fillcolor=0) (what the official
    RandomRotation runs on its PIL images): output pixel centre (j + 1/2, i + 1/2) is mapped about (W/2, H/2)
    by the inverse rotation, the source pixel is floor() of the point, outside = 0. Also returns the
    distance of each source point to the nearest pixel edge (where float32 may round the other way)."""
    h, w = img.shape[-2:]
    t = math.radians(degrees)
    out = np.zeros_like(img)
    margin = np.full((h, w), np.inf)
    for i in range(h):
        for j in range(w):
            x, y = j + 0.5 - w / 2, i + 0.5 - h / 2
            xs = math.cos(t) * x - math.sin(t) * y + w / 2
            ys = math.sin(t) * x + math.cos(t) * y + h / 2
            margin[i, j] = min(abs(xs - round(xs)), abs(ys - round(ys)))
            c, r = math.floor(xs), math.floor(ys)
            if 0 <= c < w and 0 <= r < h:
                out[..., i, j] = img[..., r, c]
    return out, margin


@pytest.mark.parametrize("degrees", [10.0, -7.3, 15.0, 33.0])
def test_rotate_nearest_matches_the_pil_reference(degrees):
    rng = np.random.default_rng(0)
    img = rng.random((3, 17, 16))  # non-square, odd and even sides
    ref, margin = _pil_nearest_rotation(img, degrees)
    ours = rotate(torch.from_numpy(img)[None], degrees, mode="nearest")[0].numpy()
    ok = margin > 1e-9  # a source point exactly on a pixel edge may round either way
    assert ok.mean() > 0.95
    assert np.array_equal(ours[:, ok], ref[:, ok])
    # some output pixels come from outside the frame and take the zero fill (the image has no zeros)
    assert (ref[:, ok] == 0).any() and (img != 0).all()


# ----------------------------------------------------------------------------- crop and flip


def test_flip_then_crop_equals_crop_then_flip():
    # the official Compose flips then crops; random_crop_flip crops then flips. For every offset o of the
    # padded 40-wide image, flip(pad(x))[o:o+32] = flip(pad(x)[8-o:8-o+32]), so with o uniform on 0..8 the
    # two orders have the same law
    x = torch.rand(1, 3, 32, 32)
    padded, padded_flipped = (
        torch.nn.functional.pad(x, (4,) * 4),
        torch.nn.functional.pad(x.flip(-1), (4,) * 4),
    )
    for o in range(9):
        assert torch.equal(padded_flipped[..., o : o + 32], padded[..., 8 - o : 8 - o + 32].flip(-1))


def test_crop_offsets_and_flips_cover_every_case_uniformly():
    # every output is one of the 81 zero-padded crops, mirrored or not; 4,050 draws hit each of the 162
    # cases (expected 25 each)
    x = (torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5) + 1).expand(4050, -1, -1, -1)
    p = 4
    out = random_crop_flip(x, padding=p, flip=True, generator=_gen(3))
    padded = torch.nn.functional.pad(x[:1], (p,) * 4)
    cases = [
        padded[0, :, oy : oy + 5, ox : ox + 5].flip(-1) if f else padded[0, :, oy : oy + 5, ox : ox + 5]
        for oy in range(2 * p + 1)
        for ox in range(2 * p + 1)
        for f in (False, True)
    ]
    stacked = torch.stack(cases)  # 162 x C x H x W, all distinct
    match = (out[:, None] == stacked[None]).flatten(2).all(2)  # draws x 162
    assert (match.sum(1) == 1).all()
    counts = match.sum(0)
    assert counts.min() >= 8 and counts.max() <= 50, counts


# ----------------------------------------------------------------------------- colour jitter


def _luma(img: np.ndarray) -> np.ndarray:
    return np.tensordot(LUMA, img, axes=(0, 0))


def _ref_op(k: int, img: np.ndarray, f: float) -> np.ndarray:
    """float64 reference of torchvision's ColorJitter operations (blend, then clamp to [0, 1])."""
    if k == 0:
        return np.clip(f * img, 0, 1)
    if k == 1:
        return np.clip(f * img + (1 - f) * _luma(img).mean(), 0, 1)
    if k == 2:
        return np.clip(f * img + (1 - f) * _luma(img)[None], 0, 1)
    out = np.empty_like(img)
    for i, j in itertools.product(range(img.shape[1]), range(img.shape[2])):
        h, s, v = colorsys.rgb_to_hsv(*img[:, i, j])
        out[:, i, j] = colorsys.hsv_to_rgb((h + f) % 1.0, s, v)
    return out


def test_hue_rotation_of_pure_colours():
    # red has hue 0; a sixth of the circle is yellow, a third green, a half cyan, minus a sixth magenta
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1).expand(5, 3, 1, 1)
    out = adjust_hue(red, torch.tensor([1 / 6, 1 / 3, 0.5, -1 / 6, 0.0], dtype=torch.float64))[:, :, 0, 0]
    expected = [[1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 0, 1], [1, 0, 0]]
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    # hue of a pure blue is 2/3, and greys keep any hue shift out
    assert rgb_to_hsv(torch.tensor([0.0, 0.0, 0.5]).reshape(1, 3, 1, 1))[
        0, :, 0, 0
    ].tolist() == pytest.approx([2 / 3, 1.0, 0.5])
    grey = torch.full((1, 3, 2, 2), 0.4, dtype=torch.float64)
    assert torch.equal(adjust_hue(grey, torch.tensor([0.3], dtype=torch.float64)), grey)


def test_hsv_round_trip_and_colorsys_reference():
    x = torch.rand(20, 3, 4, 4, dtype=torch.float64, generator=_gen(1))
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-12)
    hsv = rgb_to_hsv(x).numpy()
    ref = np.array([[colorsys.rgb_to_hsv(*x[n, :, i, j].tolist()) for i in range(4) for j in range(4)]
                    for n in range(20)])  # fmt: skip
    assert np.allclose(hsv.reshape(20, 3, 16).transpose(0, 2, 1), ref, atol=1e-12)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_each_jitter_operation_matches_the_float64_reference(k):
    op = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)[k]
    x = torch.rand(6, 3, 5, 4, dtype=torch.float64, generator=_gen(k))
    f = (
        torch.tensor([0.8, 1.2, 1.0, 0.93, 0.0, 1.5])
        if k < 3
        else torch.tensor([-0.1, 0.1, 0.0, 0.05, -0.5, 0.5])
    )
    f = f.to(torch.float64)
    out = op(x, f).numpy()
    for n in range(6):
        assert np.allclose(out[n], _ref_op(k, x[n].numpy(), float(f[n])), atol=1e-12), (k, n)
    assert out.min() >= 0 and out.max() <= 1


def test_brightness_contrast_saturation_by_hand():
    # a two-pixel image: (0.5, 0.5, 0.5) and (1, 0, 0); luma 0.5 and 0.299, mean luma 0.3995
    x = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]], [[0.5, 0.0]]]], dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    assert torch.allclose(
        adjust_brightness(x, 1.2 * one)[0, :, 0, 1], torch.tensor([1.0, 0, 0], dtype=torch.float64)
    )
    c = adjust_contrast(x, 0.8 * one)[0, :, 0, :]  # 0.8 x + 0.2 * 0.3995
    assert torch.allclose(c[:, 0], torch.full((3,), 0.4 + 0.0799, dtype=torch.float64))
    assert torch.allclose(c[:, 1], torch.tensor([0.8799, 0.0799, 0.0799], dtype=torch.float64))
    s = adjust_saturation(x, 0.0 * one)[0, :, 0, :]  # full desaturation = the luma
    assert torch.allclose(s[:, 1], torch.full((3,), 0.299, dtype=torch.float64)) and torch.allclose(
        s[:, 0], x[0, :, 0, 0]
    )


def test_jitter_params_laws():
    order, f = jitter_params(4800, (0.2, 0.2, 0.2, 0.1), _gen(0))
    perms = {tuple(r) for r in order.tolist()}
    assert perms == set(itertools.permutations(range(4)))  # all 24 orders occur
    counts = np.array([sum(tuple(r) == p for r in order.tolist()) for p in itertools.permutations(range(4))])
    assert counts.min() > 140 and counts.max() < 260  # 200 expected each
    lo, hi = (
        torch.tensor([0.8, 0.8, 0.8, -0.1], dtype=torch.float64),
        torch.tensor([1.2, 1.2, 1.2, 0.1], dtype=torch.float64),
    )
    assert ((f >= lo) & (f <= hi)).all()
    assert torch.allclose(f.mean(0), (lo + hi) / 2, atol=0.01)  # uniform: mean mid-range
    assert torch.allclose(f.min(0).values, lo, atol=0.002) and torch.allclose(f.max(0).values, hi, atol=0.002)
    # brightness 1.5 is clipped at 0 below, as max(0, 1 - b)
    assert (jitter_params(500, (1.5, 0.0, 0.0, 0.0), _gen(0))[1][:, 0] >= 0).all()
    with pytest.raises(ValueError, match="hue"):
        jitter_params(2, (0.2, 0.2, 0.2, 0.6), _gen(0))


def test_color_jitter_applies_each_images_own_order():
    x = torch.rand(24, 3, 4, 4, dtype=torch.float64, generator=_gen(5))
    order = torch.tensor(list(itertools.permutations(range(4))))
    f = torch.tensor([1.3, 0.7, 1.4, 0.3], dtype=torch.float64).expand(24, 4)
    out = color_jitter(x, order, f, (0.5, 0.5, 0.5, 0.3))
    results = []
    for n in range(24):
        ref = x[n].numpy()
        for k in order[n].tolist():
            ref = _ref_op(k, ref, float(f[n, k]))
        assert np.allclose(out[n].numpy(), ref, atol=1e-12), n
        results.append(ref)
    # the order matters for these factors (the clamps and the hue do not commute): the orders give
    # different images, so applying a fixed order would fail the loop above
    assert len({np.round(r, 9).tobytes() for r in results}) > 12


# ----------------------------------------------------------------------------- the whole augmentation


def test_augment_batch_composes_the_official_order_and_is_seeded():
    aug = official_config("cifar100", "resnet50")["augment"]
    x = torch.rand(16, 3, 32, 32, generator=_gen(7))
    a, b = augment_batch(x, aug, _gen(11)), augment_batch(x, aug, _gen(11))
    assert torch.equal(a, b)  # determinism under a seed
    assert not torch.equal(a, augment_batch(x, aug, _gen(12)))
    # the same draws, step by step: crop/flip, angles uniform in [-15, 15], then the jitter
    g = _gen(11)
    y = random_crop_flip(x, padding=4, flip=True, generator=g)
    y = rotate(y, (torch.rand(16, generator=g, dtype=torch.float64) * 2 - 1) * 15.0, mode="nearest")
    order, f = jitter_params(16, (0.2, 0.2, 0.2, 0.1), g)
    assert torch.equal(a, color_jitter(y, order, f, (0.2, 0.2, 0.2, 0.1)))
    assert a.min() >= 0 and a.max() <= 1
    # CIFAR-10's pipeline has no jitter: flips, crops and rotations only move pixels (or zero them)
    c10 = augment_batch(x, official_config("cifar10", "resnet50")["augment"], _gen(0))
    for n in range(16):
        assert torch.isin(c10[n].flatten(), torch.cat([x[n].flatten(), torch.zeros(1)])).all()
