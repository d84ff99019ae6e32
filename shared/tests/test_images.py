"""xentlab.data.images: bundled sets, seeded stratified splits, transforms, full-scale loaders on fixtures."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from xentlab.data.images import (
    ImageSet,
    adjust_contrast,
    gaussian_blur,
    load_cifar,
    load_digits_images,
    load_image_folder,
    load_mnist5k,
    load_mnist_idx,
    load_svhn_mat,
    random_crop_flip,
    resize,
    rotate,
    split_images,
    standardize,
    to_grayscale,
)


def test_mnist5k_shape_range_and_balance():
    d = load_mnist5k()
    assert d.x.shape == (5000, 1, 28, 28) and d.x.dtype == torch.float32
    assert 0.0 <= d.x.min() and d.x.max() <= 1.0
    assert np.bincount(d.y.numpy()).tolist() == [500] * 10


def test_digits_images_match_sklearn():
    from sklearn.datasets import load_digits

    d = load_digits_images()
    ref = load_digits()
    assert d.x.shape == (1797, 1, 8, 8)
    assert torch.allclose(d.x[5, 0], torch.tensor(ref.images[5] / 16.0, dtype=torch.float32))
    assert (d.y.numpy() == ref.target).all()


def test_split_is_stratified_disjoint_and_seeded():
    d = load_mnist5k()
    a = split_images(d, {"train": 3000, "val": 1000, "test": 1000}, seed=3)
    b = split_images(d, {"train": 3000, "val": 1000, "test": 1000}, seed=3)
    c = split_images(d, {"train": 3000, "val": 1000, "test": 1000}, seed=4)
    for name, n in (("train", 300), ("val", 100), ("test", 100)):
        assert np.bincount(a[name].y.numpy()).tolist() == [n] * 10
        assert torch.equal(a[name].x, b[name].x)
    assert not torch.equal(a["train"].x, c["train"].x)
    # disjoint: no image appears in two splits (MNIST-5k has no exact duplicates across these)
    flat = {k: {hash(v.numpy().tobytes()) for v in s.x} for k, s in a.items()}
    assert not (flat["train"] & flat["test"]) and not (flat["val"] & flat["test"])


def test_split_fractions_and_errors():
    d = load_digits_images()
    s = split_images(d, {"a": 0.5, "b": 0.25}, seed=0)
    assert len(s["a"]) == 898 and len(s["b"]) == 449
    with pytest.raises(ValueError, match="all ints or all floats"):
        split_images(d, {"a": 0.5, "b": 10}, seed=0)
    with pytest.raises(ValueError, match="asks for|ask for"):
        split_images(d, {"a": 2000}, seed=0)


def test_imageset_validates_shapes():
    with pytest.raises(ValueError, match="N x C x H x W"):
        ImageSet(torch.zeros(3, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        ImageSet(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))


def test_rotate_quarter_turn_is_exact_and_counter_clockwise():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    # +90 degrees turns the picture counter-clockwise as displayed: torch.rot90 over (H, W) does the same
    assert torch.allclose(rotate(x, 90.0), torch.rot90(x, 1, dims=(2, 3)), atol=1e-4)
    assert torch.allclose(rotate(x, 0.0), x, atol=1e-5)
    with pytest.raises(ValueError, match="angles"):
        rotate(torch.zeros(3, 1, 4, 4), torch.tensor([1.0, 2.0]))


def test_rotate_turns_a_non_square_image_instead_of_shearing_it():
    # a 4 x 8 (H x W) image turned by 90 degrees: the 8-wide content becomes 8 tall and 4 wide, centred,
    # so columns 0-1 and 6-7 are empty and columns 2-5 hold rows 2-5 of rot90 of the image (its middle
    # 4 rows of 8); the centre of a pixel maps onto the centre of a pixel, so bilinear sampling is exact
    x = torch.arange(32, dtype=torch.float64).reshape(1, 1, 4, 8) + 1.0
    out = rotate(x, 90.0)
    assert torch.allclose(out[..., :, [0, 1, 6, 7]], torch.zeros(1, 1, 4, 4, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(out[..., :, 2:6], torch.rot90(x, 1, dims=(2, 3))[..., 2:6, :], atol=1e-9)


def test_blur_preserves_mass_and_constants():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    y = gaussian_blur(x, 1.0)
    assert abs(y.sum().item() - 1.0) < 1e-5 and y[0, 0, 7, 7] < 0.2
    c = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(c, 2.0), c, atol=1e-6)
    assert torch.equal(gaussian_blur(c, 0.0), c)


def test_resize_contrast_grayscale_and_standardize():
    x = torch.rand(4, 3, 8, 8)
    assert resize(x, 28).shape == (4, 3, 28, 28)
    assert torch.allclose(adjust_contrast(x, 1.0), x, atol=1e-6)
    flat = adjust_contrast(x, 0.0)  # every pixel at the image's mean luma
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(flat, luma.mean(dim=(1, 2))[:, None, None, None].expand_as(x), atol=1e-6)
    g = to_grayscale(x)
    assert g.shape == x.shape and torch.allclose(g[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    tr, te = standardize(x, x + 1)
    assert torch.allclose(tr.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(te.mean(dim=(0, 2, 3)), 1 / x.std(dim=(0, 2, 3)), atol=1e-4)


def test_contrast_blends_with_the_mean_luma_by_hand():
    # pixels (0.5, 0.5, 0.5) and (1, 0, 0): lumas 0.5 and 0.299, mean 0.3995 (the RGB mean would be 5/12);
    # factor 0.8: 0.3995 + 0.8 (x - 0.3995); one factor per image; 1 channel: the image's own mean
    x = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]], [[0.5, 0.0]]]], dtype=torch.float64)
    c = adjust_contrast(x, 0.8)[0, :, 0, :]
    assert torch.allclose(c[:, 0], torch.full((3,), 0.4799, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(c[:, 1], torch.tensor([0.8799, 0.0799, 0.0799], dtype=torch.float64), atol=1e-12)
    two = torch.cat([x, x])
    per_image = adjust_contrast(two, torch.tensor([0.8, 0.0], dtype=torch.float64))
    assert torch.allclose(per_image[1], torch.full((3, 1, 2), 0.3995, dtype=torch.float64), atol=1e-12)
    grey = torch.tensor([[[[0.2, 0.6]]]], dtype=torch.float64)
    assert torch.allclose(adjust_contrast(grey, 0.5), torch.tensor([[[[0.3, 0.5]]]], dtype=torch.float64))


def test_random_crop_flip_is_a_shifted_window():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 2, 6, 6)
    y = random_crop_flip(x, padding=0, flip=False, generator=g)
    assert torch.equal(y, x)
    y = random_crop_flip(x, padding=2, flip=True, generator=g)
    assert y.shape == x.shape
    # every output is a (possibly mirrored) window of the zero-padded input
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        ok = any(
            torch.equal(y[i], cand)
            for dy in range(5)
            for dx in range(5)
            for cand in (
                padded[i, :, dy : dy + 6, dx : dx + 6],
                padded[i, :, dy : dy + 6, dx : dx + 6].flip(-1),
            )
        )
        assert ok


def test_load_cifar_from_fixture(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blob = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (folder / name).write_bytes(pickle.dumps(blob))
    tr = load_cifar(tmp_path, which="cifar10", train=True)
    te = load_cifar(tmp_path, which="cifar10", train=False)
    assert tr.x.shape == (20, 3, 32, 32) and te.x.shape == (4, 3, 32, 32)
    assert te.y.tolist() == [0, 1, 2, 9]
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"][1].reshape(3, 32, 32)
    assert torch.allclose(te.x[1], torch.tensor(raw / 255.0, dtype=torch.float32))
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    for name in ("train", "test"):
        blob = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"fine_labels": [5, 99, 0]}
        (c100 / name).write_bytes(pickle.dumps(blob))
    assert load_cifar(tmp_path, which="cifar100", train=False).y.tolist() == [5, 99, 0]
    with pytest.raises(FileNotFoundError):
        load_cifar(tmp_path / "nowhere", which="cifar10")


def _write_idx(path, arr):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def test_load_mnist_idx_fixture(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (3, 28, 28))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 2, 1]))
    d = load_mnist_idx(tmp_path, train=False)
    assert d.x.shape == (3, 1, 28, 28) and d.y.tolist() == [7, 2, 1]
    assert torch.allclose(d.x[0, 0], torch.tensor(imgs[0] / 255.0, dtype=torch.float32))


def test_load_svhn_mat_fixture(tmp_path):
    from scipy.io import savemat

    x = np.random.default_rng(2).integers(0, 256, (32, 32, 3, 2)).astype(np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [3]])})
    d = load_svhn_mat(tmp_path, split="test")
    assert d.x.shape == (2, 3, 32, 32) and d.y.tolist() == [0, 3]
    assert torch.allclose(d.x[1, 2], torch.tensor(x[:, :, 2, 1] / 255.0, dtype=torch.float32))


def test_load_image_folder_fixture(tmp_path):
    from PIL import Image

    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (10, 12), colour).save(tmp_path / cls / f"{i}.png")
    d, names = load_image_folder(tmp_path, size=8)
    assert names == ["cat", "dog"] and d.x.shape == (4, 3, 8, 8) and d.y.tolist() == [0, 0, 1, 1]
    assert d.x[0, 0].mean() > 0.99 and d.x[2, 2].mean() > 0.99


@pytest.mark.parametrize("which,k", [("cifar10", 10), ("cifar100", 100)])
def test_write_cifar_fixture_round_trips_through_the_loader(tmp_path, which, k):
    from xentlab.testing.fixtures import write_cifar

    root = write_cifar(tmp_path, which, n_train=12, n_test=3, labels="cycle")
    tr = load_cifar(root, which=which, train=True)
    te = load_cifar(root, which=which, train=False)
    assert tr.x.shape == (12, 3, 32, 32) and te.x.shape == (3, 3, 32, 32)
    assert te.y.tolist() == [0, 1, 2] and int(tr.y.max()) < k
    r = write_cifar(tmp_path / "r", which, n_train=12, n_test=50, seed=1)
    y = load_cifar(r, which=which, train=False).y
    assert 0 <= int(y.min()) and int(y.max()) < k and len(set(y.tolist())) > 1
    with pytest.raises(ValueError, match="which"):
        write_cifar(tmp_path, "svhn")


def test_rotate_nearest_copies_source_pixels_and_bad_mode_is_an_error():
    # nearest: every output value is an input value or the fill (no blending); a quarter turn is exact
    x = torch.rand(2, 3, 5, 7)
    out = rotate(x, torch.tensor([17.0, -33.0]), mode="nearest")
    assert set(out.flatten().tolist()) <= set(x.flatten().tolist()) | {0.0}
    sq = torch.rand(1, 1, 6, 6)
    assert torch.equal(rotate(sq, 90.0, mode="nearest"), torch.rot90(sq, 1, dims=(2, 3)))
    with pytest.raises(ValueError, match="mode must be"):
        rotate(sq, 10.0, mode="bicubic")
