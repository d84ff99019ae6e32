"""Tiny on-disk copies of real datasets in their published formats, for testing ``--scale full`` loaders
without the network.

``write_cifar`` writes the python-pickle release of CIFAR-10 (``cifar-10-batches-py/data_batch_1..5``
and ``test_batch``, labels under ``b"labels"``) or CIFAR-100 (``cifar-100-python/train`` and ``test``,
labels under ``b"fine_labels"``): ``b"data"`` is an ``N x 3072`` uint8 array, each row the 1024 red, then
green, then blue pixels of a 32x32 image, as ``xentlab.data.images.load_cifar`` reads them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

_LAYOUT = {
    # folder, training files, test file, label key, classes
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels", 100),
}


def write_cifar(
    root: str | Path,
    which: str = "cifar10",
    *,
    n_train: int = 20,
    n_test: int = 4,
    labels: str = "random",
    seed: int = 0,
) -> Path:
    """Write a ``which`` fixture under ``root`` and return ``root`` (the data root loaders expect).

    CIFAR-10's ``n_train`` images are spread over its five training batches as evenly as possible.
    ``labels="random"`` draws uniform labels; ``labels="cycle"`` labels the images of every file
    0, 1, 2, ... (mod the number of classes), so that small fixtures cover known classes.
    """
    if which not in _LAYOUT:
        raise ValueError(f"which must be one of {sorted(_LAYOUT)}, got {which!r}")
    if labels not in ("random", "cycle"):
        raise ValueError(f"labels must be 'random' or 'cycle', got {labels!r}")
    if n_train < len(_LAYOUT[which][1]) or n_test < 1:
        raise ValueError(f"need at least one image per file, got n_train={n_train}, n_test={n_test}")
    folder_name, train_files, test_file, label_key, k = _LAYOUT[which]
    folder = Path(root) / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [len(part) for part in np.array_split(np.arange(n_train), len(train_files))]
    for name, n in [*zip(train_files, sizes), (test_file, n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = rng.integers(0, k, size=n).tolist() if labels == "random" else [i % k for i in range(n)]
        (folder / name).write_bytes(pickle.dumps({b"data": data, label_key: y}))
    return Path(root)
