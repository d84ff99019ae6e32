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
