"""scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): no download needed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """A train/test split as float32 feature tensors and int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()).item()) + 1


def load_digits_split(
    seed: int = 0, test_size: float = 0.2, *, standardize: bool = True, stratify: bool = True
) -> Split:
    """Digits as flat 64-d features, split with a seeded (stratified) shuffle.

    Standardisation statistics are fitted on the training part only, so no test information leaks
    into the features.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    if standardize:
        mean = x_tr.mean(axis=0)
        std = x_tr.std(axis=0)
        std[std == 0] = 1.0  # constant border pixels
        x_tr = (x_tr - mean) / std
        x_te = (x_te - mean) / std
    return Split(
        torch.from_numpy(np.ascontiguousarray(x_tr, dtype=np.float32)),
        torch.from_numpy(y_tr.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(x_te, dtype=np.float32)),
        torch.from_numpy(y_te.astype(np.int64)),
    )
