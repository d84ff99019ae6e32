"""scikit-learn digits with the official preprocessing: pixels / 16 (in [0, 1]), stratified split.

Every official experiment loads sklearn's digits.csv.gz and divides the pixels by 16 (no
standardisation). lrspike splits 80/20 stratified with split seed = run seed; phasetransition and
ghostenvelope split 70/30 stratified with the fixed split seed 42.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xentlab.data import load_digits_split


@dataclass(frozen=True)
class Digits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(split_seed: int, test_size: float, device: torch.device | str = "cpu") -> Digits:
    """Digits scaled to [0, 1], split stratified by ``xentlab.data.load_digits_split``."""
    split = load_digits_split(seed=split_seed, test_size=test_size, standardize=False, stratify=True)
    return Digits(
        (split.x_train / 16.0).to(device),
        split.y_train.to(device),
        (split.x_test / 16.0).to(device),
        split.y_test.to(device),
    )


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
