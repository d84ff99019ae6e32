"""scikit-learn digits with the official preprocessing: pixels / 16 (in [0, 1]), the official split.

Every official experiment loads sklearn's digits.csv.gz and divides the pixels by 16 (no
standardisation). lrspike and tempfingerprint split 80/20 per class with split seed = run seed;
phasetransition and ghostenvelope split 70/30 per class with the fixed split seed 42. All four use
the same per-class NumPy shuffle (`stratified_split` / `stratSplit` in their run.py), reproduced by
`official_split_indices` so that the same rows land in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def official_split_indices(y: np.ndarray, test_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The official per-class split (experiments/{lrspike,tempfingerprint,phasetransition}/run.py::
    stratified_split, ghostenvelope/run.py::stratSplit): one ``np.random.default_rng(seed)`` shuffles
    the row indices of each class in label order, the first round(test_ratio * class size) go to the
    test set; then the concatenated training indices and the test indices are each shuffled by the
    same generator. The order matters: the batch iterators index the training rows by position."""
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-d label array, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        cut = int(round(test_ratio * len(rows)))
        test_parts.append(rows[:cut])
        train_parts.append(rows[cut:])
    train_rows, test_rows = np.concatenate(train_parts), np.concatenate(test_parts)
    rng.shuffle(train_rows)
    rng.shuffle(test_rows)
    return train_rows, test_rows


def load_digits(split_seed: int, test_size: float, device: torch.device | str = "cpu") -> Digits:
    """Digits scaled to [0, 1] (float32, as the official np.loadtxt(dtype=float32) / 16), split by
    ``official_split_indices`` with the official seed and ratio."""
    from sklearn.datasets import load_digits as sklearn_digits

    x, y = sklearn_digits(return_X_y=True)
    train_rows, test_rows = official_split_indices(y, test_size, split_seed)
    x = torch.from_numpy(x.astype("float32")) / 16.0
    y = torch.from_numpy(y.astype("int64"))
    tr, te = torch.from_numpy(train_rows), torch.from_numpy(test_rows)
    return Digits(x[tr].to(device), y[tr].to(device), x[te].to(device), y[te].to(device))


def load_digits_file_order(test_frac: float = 0.2, device: torch.device | str = "cpu") -> Digits:
    """archgrid's split (experiments/archgrid/run.py::run_single): no shuffle at all; the FIRST
    int(test_frac * 1797) rows of sklearn's digits.csv.gz (359 for 0.2) are the test set and the
    rest (1438) the training set, for every seed. sklearn's ``load_digits`` reads that same file in
    the same order; pixels / 16 as everywhere in the official code."""
    from sklearn.datasets import load_digits as sklearn_digits

    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    x, y = sklearn_digits(return_X_y=True)
    x = torch.from_numpy(x.astype("float32")) / 16.0
    y = torch.from_numpy(y.astype("int64"))
    n_test = int(test_frac * len(x))
    return Digits(x[n_test:].to(device), y[n_test:].to(device), x[:n_test].to(device), y[:n_test].to(device))
