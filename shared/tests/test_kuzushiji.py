"""xentlab.data.kuzushiji: the ROIS-CODH .npz layout, value range, and clear errors (fixture files only)."""

import numpy as np
import pytest
import torch

from xentlab.data.kuzushiji import load_kuzushiji


def _write(folder, which, split, x, y):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{which}-{split}-imgs.npz", x)
    np.savez(folder / f"{which}-{split}-labels.npz", y)


def test_loads_k49_from_root_or_subfolder(tmp_path):
    x = np.zeros((3, 28, 28), dtype=np.uint8)
    x[1, 0, 0] = 255  # one white pixel -> 1.0
    y = np.array([0, 48, 7])
    _write(tmp_path, "k49", "train", x, y)
    _write(tmp_path / "kmnist", "kmnist", "test", x, np.array([0, 9, 3]))
    s = load_kuzushiji(tmp_path, which="k49", train=True)
    assert s.x.shape == (3, 1, 28, 28) and s.x.dtype == torch.float32
    assert s.x[1, 0, 0, 0].item() == 1.0 and s.x.sum().item() == 1.0
    assert s.y.tolist() == [0, 48, 7]
    assert load_kuzushiji(tmp_path, which="kmnist", train=False).y.tolist() == [0, 9, 3]


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="k49-test-imgs.npz"):
        load_kuzushiji(tmp_path, which="k49", train=False)
    with pytest.raises(ValueError, match="which must be"):
        load_kuzushiji(tmp_path, which="k50")
    _write(tmp_path, "kmnist", "train", np.zeros((2, 28, 28), np.uint8), np.array([0, 10]))
    with pytest.raises(ValueError, match="labels must lie"):
        load_kuzushiji(tmp_path, which="kmnist")
    _write(tmp_path, "k49", "train", np.zeros((2, 28, 27), np.uint8), np.array([0, 1]))
    with pytest.raises(ValueError, match="28 x 28"):
        load_kuzushiji(tmp_path, which="k49")
