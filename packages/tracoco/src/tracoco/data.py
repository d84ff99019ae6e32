"""Data for both scales: the synthetic CPU split, and the Left Atrium / BraTS19 h5 layouts for ``--scale full``.

CPU scale: one set of MONAI synthetic volumes (``xentlab.data.volumes``), split by index into
labelled / unlabelled / test volumes; the volumes after the test ones are the validation set that
the setting pilot (``scripts/select_setting.py``) reads, so the test volumes never choose anything.

Full scale, the layouts the official code reads (nothing is downloaded):

* **Left Atrium** (UA-MT's preprocessed 2018 Atrial Segmentation Challenge data):
  ``<root>/<case>/mri_norm2.h5`` with datasets ``image`` (float) and ``label`` (0/1), and the split
  lists ``train.list`` (80 cases) and ``test.list`` or ``eval.list`` (20 cases) in ``<root>``
  (or in ``<root>/..``, as in UA-MT's ``data/`` folder). The first ``n_labelled`` training cases
  are labelled, the rest unlabelled (official ``TwoStreamBatchSampler(range(labeled_num), ...)``).
* **BraTS19** (the preprocessed h5 of the UA-MT/MC-Net line of work): ``<root>/data/<case>.h5``
  (or ``<root>/<case>.h5``) with ``image`` and ``label`` (whole tumour, 0/1), and ``train.list``,
  ``val.list``, ``test.list`` in ``<root>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracoco.trainer import ArraySource


def synthetic_split(
    n_labelled: int, n_unlabelled: int, n_test: int, data_seed: int, spec_kwargs: dict
) -> tuple[ArraySource, ArraySource, ArraySource]:
    """(labelled, unlabelled, test) sources from one cached set of synthetic volumes, split by index."""
    from xentlab.data.volumes import VolumeSpec, synthetic_volumes

    n = n_labelled + n_unlabelled + n_test
    vols = synthetic_volumes(n, seed=data_seed, spec=VolumeSpec(**spec_kwargs))
    images, labels = vols["images"], vols["labels"].astype(np.int64)
    a, b = n_labelled, n_labelled + n_unlabelled
    return (
        ArraySource(images[:a], labels[:a]),
        ArraySource(images[a:b], labels[a:b]),
        ArraySource(images[b:], labels[b:]),
    )


def synthetic_validation(
    n_train: int, n_test: int, n_val: int, data_seed: int, spec_kwargs: dict
) -> ArraySource:
    """The ``n_val`` validation volumes: indices ``[n_train + n_test, n_train + n_test + n_val)`` of
    the same set, disjoint from the training and test volumes of ``synthetic_split`` (whose split
    only reads the first ``n_train + n_test``; volume ``i`` depends on ``(data_seed, i)`` only)."""
    from xentlab.data.volumes import VolumeSpec, synthetic_volumes

    if n_val < 1:
        raise ValueError(f"n_val must be >= 1, got {n_val}")
    start = n_train + n_test
    vols = synthetic_volumes(start + n_val, seed=data_seed, spec=VolumeSpec(**spec_kwargs))
    return ArraySource(vols["images"][start:], vols["labels"][start:].astype(np.int64))


def read_list(path: Path) -> list[str]:
    """Case names, one per line; blank lines are skipped (the official loader drops the last line,
    which in its lists is the empty one after the final newline)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


@dataclass
class H5Source:
    """Volumes read lazily from h5 files with ``image`` and ``label`` datasets."""

    paths: list[Path]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        import h5py

        with h5py.File(self.paths[i], "r") as f:
            if "image" not in f or "label" not in f:
                raise KeyError(f"{self.paths[i]} must hold 'image' and 'label' datasets")
            image = np.asarray(f["image"][:], dtype=np.float32)
            label = np.asarray(f["label"][:]).astype(np.int64)
        if image.ndim != 3 or image.shape != label.shape:
            raise ValueError(
                f"{self.paths[i]}: image {image.shape} and label {label.shape} must be the same 3D shape"
            )
        return image, label


def _find_list(root: Path, names: tuple[str, ...]) -> Path:
    for folder in (root, root.parent):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"none of {names} found in {root} or {root.parent}")


def _check_root(root: str | Path | None, what: str, env: str) -> Path:
    if root is None:
        raise FileNotFoundError(
            f"{what} data root not set: pass data_root in the config or set ${env} (see packages/tracoco/README.md)"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{what} data root {root} is not a directory")
    return root


def left_atrium(root: str | Path | None, n_labelled: int) -> tuple[H5Source, H5Source, H5Source]:
    """(labelled, unlabelled, test) of the Left Atrium h5 layout (module docstring)."""
    root = _check_root(root, "Left Atrium", "TRACOCO_LA_ROOT")
    train = read_list(_find_list(root, ("train.list",)))
    test = read_list(_find_list(root, ("test.list", "eval.list")))
    # n_labelled == len(train) is the fully supervised upper bound (no unlabelled cases)
    if not 0 < n_labelled <= len(train):
        raise ValueError(f"n_labelled must be in (0, {len(train)}], got {n_labelled}")
    paths = {c: root / c / "mri_norm2.h5" for c in train + test}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} Left Atrium case file(s) missing, e.g. {missing[0]}")
    return (
        H5Source([paths[c] for c in train[:n_labelled]]),
        H5Source([paths[c] for c in train[n_labelled:]]),
        H5Source([paths[c] for c in test]),
    )


def brats19(
    root: str | Path | None, n_labelled: int, split: str = "test"
) -> tuple[H5Source, H5Source, H5Source]:
    """(labelled, unlabelled, eval) of the BraTS19 h5 layout; ``split`` picks test.list or val.list."""
    root = _check_root(root, "BraTS19", "TRACOCO_BRATS_ROOT")
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    train = read_list(_find_list(root, ("train.list",)))
    held = read_list(_find_list(root, (f"{split}.list",)))
    if not 0 < n_labelled < len(train):
        raise ValueError(f"n_labelled must be in (0, {len(train)}), got {n_labelled}")
    folder = root / "data" if (root / "data").is_dir() else root

    def path(case: str) -> Path:
        p = folder / (case if case.endswith(".h5") else f"{case}.h5")
        if not p.is_file():
            raise FileNotFoundError(f"BraTS19 case file missing: {p}")
        return p

    return (
        H5Source([path(c) for c in train[:n_labelled]]),
        H5Source([path(c) for c in train[n_labelled:]]),
        H5Source([path(c) for c in held]),
    )
