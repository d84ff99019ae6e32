"""xentlab.data.images: hand values and float64 references the suite lacked (mutation audit, session 12).

Seeded splits (membership depends on the seed, within-split order is shuffled), size errors, the
standardisation guard, resize (bilinear, half-pixel centres, antialiased when shrinking), rotation
with a fill and per-image angles, the crop offsets and flip rate, the Gaussian blur against a
numpy float64 reference, contrast clipping, and loader paths the fixtures did not reach."""

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from xentlab.data.images import (
    ImageSet,
    adjust_contrast,
    gaussian_blur,
    load_cifar,
    load_image_folder,
    load_mnist_idx,
    random_crop_flip,
    resize,
    rotate,
    split_images,
    standardize,
    to_grayscale,
)


def _indexed_set(n=60, classes=4):
    # pixel value = example index, so a split's membership can be read off its images
    return ImageSet(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n) % classes)


def _members(s):
    return sorted(int(v) for v in s.x.flatten())


def test_num_classes_is_max_label_plus_one():
    assert ImageSet(torch.zeros(3, 1, 2, 2), torch.tensor([0, 2, 1])).num_classes == 3
    assert ImageSet(torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.long)).num_classes == 0


@pytest.mark.parametrize("stratify", [True, False])
def test_split_membership_depends_on_the_seed(stratify):
    # which examples of a class land in a split is random (each class is permuted), not the first
    # ones in stored order; the splits stay disjoint
    d = _indexed_set()
    a = split_images(d, {"a": 20, "b": 20}, seed=0, stratify=stratify)
    b = split_images(d, {"a": 20, "b": 20}, seed=1, stratify=stratify)
    assert _members(a["a"]) != _members(b["a"])
    assert not set(_members(a["a"])) & set(_members(a["b"]))
    if stratify:
        assert np.bincount(a["a"].y.numpy()).tolist() == [5] * 4
    assert _members(a["a"]) != list(range(20))


def test_split_order_is_shuffled_not_class_interleaved():
    # the stratified order cuts classes into rounds (one example of each class per round); the
    # chunk is then shuffled, so the labels of a split do not repeat with the period of the classes
    d = _indexed_set()
    y = split_images(d, {"a": 20}, seed=0)["a"].y
    assert not torch.equal(y[4:], y[:-4])


@pytest.mark.parametrize(
    "sizes, match",
    [
        ({"a": 0, "b": 5}, "at least one example"),
        ({"a": 0.6, "b": 0.6}, "sum to <= 1"),
        ({"a": True}, "all ints or all floats"),
    ],
)
def test_split_size_errors(sizes, match):
    with pytest.raises(ValueError, match=match):
        split_images(_indexed_set(), sizes, seed=0)


def test_standardize_guards_a_constant_channel():
    # std of a constant channel is 0: clamped to eps, so the channel maps to 0, not nan
    x = torch.rand(4, 2, 5, 5)
    x[:, 1] = 0.7
    tr = standardize(x)
    assert torch.isfinite(tr).all() and torch.equal(tr[:, 1], torch.zeros(4, 5, 5))


def test_resize_by_hand():
    # upsampling [0, 1] to 4 (half-pixel centres, align_corners=False): sources -0.25, 0.25, 0.75,
    # 1.25 clamped -> 0, 0.25, 0.75, 1; shrinking [0, 1, 2, 3] to 2 is antialiased: a triangle of
    # half-width 2 input pixels around 0.5 weighs pixels 0..2 as 3:3:1 -> 5/7, and 1:3:3 around
    # 2.5 -> 16/7 (plain bilinear would give 0.5, 2.5)
    up = resize(torch.tensor([0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 2), (1, 4))
    assert torch.allclose(up.flatten(), torch.tensor([0.0, 0.25, 0.75, 1.0], dtype=torch.float64))
    down = resize(torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4), (1, 2))
    assert torch.allclose(down.flatten(), torch.tensor([5 / 7, 16 / 7], dtype=torch.float64), atol=1e-12)


def test_rotate_fill_and_per_image_angles():
    # 9 x 9 at 45 degrees: the corner pixel's centre maps 4 sqrt(2) - 4 = 1.66 pixels outside the
    # frame, so it is all fill; the centre pixel maps onto itself
    x = torch.full((1, 1, 9, 9), 0.5, dtype=torch.float64)
    out = rotate(x, 45.0, fill=1.0)
    assert out[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-12)
    assert out[0, 0, 4, 4].item() == pytest.approx(0.5, abs=1e-12)
    # one angle per image
    sq = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    two = rotate(torch.cat([sq, sq]), torch.tensor([0.0, 90.0]))
    assert torch.allclose(two[0], sq[0], atol=1e-12)
    assert torch.allclose(two[1], torch.rot90(sq, 1, dims=(2, 3))[0], atol=1e-9)


def test_random_crop_flip_offsets_and_flip_rate():
    # padding 1: offsets 0, 1, 2 on each axis, drawn independently per axis; mirrored with p = 1/2
    g = torch.Generator().manual_seed(0)
    n = 400
    base = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    y = random_crop_flip(base.expand(n, 1, 4, 4), padding=1, generator=g)
    padded = torch.nn.functional.pad(base, (1, 1, 1, 1))[0]
    found = []
    for i in range(n):
        hits = [
            (dy, dx, f)
            for dy in range(3)
            for dx in range(3)
            for f in (False, True)
            if torch.equal(
                y[i],
                padded[:, dy : dy + 4, dx : dx + 4].flip(-1) if f else padded[:, dy : dy + 4, dx : dx + 4],
            )
        ]
        assert len(hits) == 1
        found.append(hits[0])
    assert {h[0] for h in found} == {0, 1, 2} and {h[1] for h in found} == {0, 1, 2}
    assert any(h[0] != h[1] for h in found)
    flipped = sum(h[2] for h in found) / n
    assert 0.4 < flipped < 0.6
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(base, padding=-1)


def _blur_reference(img, sigma, radius, mode):
    # float64 numpy reference: pad (numpy's "reflect" = mirror without repeating the edge, as
    # torch's; "edge" = replicate), then the 2-D kernel outer(k, k), k_t ~ exp(-t^2 / (2 sigma^2))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, radius, mode=mode)
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            out[i, j] = (p[i : i + 2 * radius + 1, j : j + 2 * radius + 1] * np.outer(k, k)).sum()
    return out


@pytest.mark.parametrize(
    "size, sigma, radius, mode",
    [(12, 1.0, None, "reflect"), (12, 0.7, None, "reflect"), (12, 2.0, 1, "reflect"), (3, 1.0, None, "edge")],
)
def test_gaussian_blur_matches_a_float64_reference(size, sigma, radius, mode):
    # radius ceil(3 sigma) by default; reflect padding unless the image is not larger than the
    # radius (then replicate); an impulse next to the corner makes the padding matter
    img = np.zeros((size, size))
    img[1, 0] = 1.0
    img[size // 2, size // 2] = 0.5
    r = radius if radius is not None else max(1, math.ceil(3 * sigma))
    out = gaussian_blur(torch.tensor(img)[None, None], sigma, radius=radius)
    assert np.allclose(out[0, 0].numpy(), _blur_reference(img, sigma, r, mode), atol=1e-12)


def test_contrast_clips_to_the_unit_range():
    # grey [0.1, 0.5, 0.9], mean 0.5, factor 3: 0.5 + 3 (x - 0.5) = -0.7, 0.5, 1.7 -> 0, 0.5, 1
    x = torch.tensor([[[[0.1, 0.5, 0.9]]]], dtype=torch.float64)
    assert torch.equal(adjust_contrast(x, 3.0), torch.tensor([[[[0.0, 0.5, 1.0]]]], dtype=torch.float64))


def test_to_grayscale_refuses_two_channels():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_grayscale(torch.rand(1, 2, 4, 4))


def _write_idx(path, arr, dtype_code=8):
    header = struct.pack(">HBB", 0, dtype_code, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def test_load_mnist_idx_from_raw_gz_and_refuses_other_dtypes(tmp_path):
    # torchvision's layout: root/raw/*.gz
    raw = tmp_path / "raw"
    raw.mkdir()
    imgs = np.random.default_rng(3).integers(0, 256, (2, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte.gz", imgs)
    _write_idx(raw / "train-labels-idx1-ubyte.gz", np.array([4, 9]))
    d = load_mnist_idx(tmp_path)
    assert d.y.tolist() == [4, 9] and torch.allclose(
        d.x[1, 0], torch.tensor(imgs[1] / 255.0, dtype=torch.float32)
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    _write_idx(bad / "t10k-images-idx3-ubyte", imgs, dtype_code=0x0D)  # 0x0D: float32 idx
    _write_idx(bad / "t10k-labels-idx1-ubyte", np.array([4, 9]))
    with pytest.raises(ValueError, match="unsigned-byte"):
        load_mnist_idx(bad, train=False)


def test_load_cifar_accepts_the_batches_folder_itself(tmp_path):
    from xentlab.testing.fixtures import write_cifar

    root = write_cifar(tmp_path, "cifar10", n_train=10, n_test=3, labels="cycle")
    folder = next(p for p in [root, *root.iterdir()] if (p / "test_batch").exists())
    assert load_cifar(folder, which="cifar10", train=False).y.tolist() == [0, 1, 2]


def test_load_image_folder_classes_cap_and_bilinear_resize(tmp_path):
    from PIL import Image

    checker = np.kron(np.indices((5, 6)).sum(0) % 2, np.ones((2, 2)))[:10, :12] * 255
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.repeat(checker[..., None], 3, 2).astype(np.uint8)).save(
                tmp_path / cls / f"{i}.png"
            )
    d, names = load_image_folder(tmp_path, size=8, classes=["dog", "cat"], max_per_class=2)
    assert names == ["dog", "cat"] and d.y.tolist() == [0, 0, 1, 1]
    # a 2-pixel checkerboard shrunk to 8 x 8 with a bilinear filter blends black and white
    v = d.x[0].flatten()
    assert ((v > 0.05) & (v < 0.95)).any()
