"""xentlab.data.local_images on fixtures written here: each layout loads, and every error says what to do."""

import numpy as np
import pytest
import torch

from xentlab.data.local_images import LOCAL_IMAGE_SETS, image_data_root, layouts, load_train_test
from xentlab.testing.fixtures import write_cifar


def _write_svhn(folder, n_train=6, n_test=4):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # the .mat release is H W C N
        y = np.array([10, *range(1, n)]).reshape(-1, 1)  # the release writes digit 0 as label 10
        savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})


def _write_k49(folder, n_train=5, n_test=3):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        np.savez(folder / f"k49-{split}-imgs.npz", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        np.savez(folder / f"k49-{split}-labels.npz", np.arange(n) % 49)


def test_cifar_fixture_loads_with_its_class_count(tmp_path):
    root = write_cifar(tmp_path, "cifar100", n_train=7, n_test=3)
    train, test = load_train_test("cifar100", root)
    assert train.x.shape == (7, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0
    assert int(train.y.max()) < LOCAL_IMAGE_SETS["cifar100"].num_classes == 100


@pytest.mark.parametrize("nested", [True, False])
def test_svhn_in_root_or_subfolder_with_label_10_as_digit_0(tmp_path, nested):
    _write_svhn(tmp_path / "svhn" if nested else tmp_path)
    train, test = load_train_test("svhn", tmp_path)
    assert train.x.shape == (6, 3, 32, 32) and len(test) == 4
    assert int(train.y[0]) == 0 and int(train.y.max()) <= 9


def test_k49_loads_grayscale(tmp_path):
    _write_k49(tmp_path / "k49")
    train, test = load_train_test("k49", tmp_path)
    assert train.x.shape == (5, 1, 28, 28) and torch.equal(test.y, torch.tensor([0, 1, 2]))


def test_missing_files_name_the_variable_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_train_test("cifar10", tmp_path, env="DEMO_DATA_ROOT")
    msg = str(e.value)
    assert "DEMO_DATA_ROOT" in msg and "cifar-10-batches-py" in msg and str(tmp_path) in msg
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        load_train_test("svhn", tmp_path)


def test_names_outside_the_package_list_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"one of \['cifar100', 'k49'\]"):
        load_train_test("cifar10", tmp_path, datasets=("cifar100", "k49"))
    with pytest.raises(ValueError, match="subset of"):
        layouts(["imagenet"])


def test_data_root_from_config_or_variable_with_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_DATA_ROOT", raising=False)
    assert image_data_root({"data_root": str(tmp_path)}, "DEMO_DATA_ROOT", ["cifar10"]) == tmp_path
    monkeypatch.setenv("DEMO_DATA_ROOT", str(tmp_path))
    assert image_data_root({}, "DEMO_DATA_ROOT", ["cifar10"]) == tmp_path
    monkeypatch.delenv("DEMO_DATA_ROOT")
    with pytest.raises(FileNotFoundError, match="DEMO_DATA_ROOT") as e:
        image_data_root({"data_root": None}, "DEMO_DATA_ROOT", ["cifar10", "svhn"])
    assert "cifar-10-batches-py" in str(e.value) and "train_32x32.mat" in str(e.value)
