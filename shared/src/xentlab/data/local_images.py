"""The real image datasets that ``--scale full`` reads from a local folder, by name.

Nothing is downloaded: a user puts the files under a data root (a config key or the package's
``<PKG>_DATA_ROOT`` variable, see :func:`xentlab.repro.local_data.local_path`). What varies between
packages is only which datasets they accept and the name of their variable, so this module holds the
one table of expected layouts and class counts, and one loader whose errors say which variable to
set and which files to put where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xentlab.data.images import ImageSet, load_cifar, load_mnist_idx, load_svhn_mat
from xentlab.data.kuzushiji import load_kuzushiji
from xentlab.repro.local_data import local_path


def _svhn(root: Path, train: bool) -> ImageSet:
    folder = root / "svhn" if (root / "svhn").is_dir() else root
    return load_svhn_mat(folder, split="train" if train else "test")


def _mnist(root: Path, train: bool) -> ImageSet:
    folder = root / "mnist" if (root / "mnist").is_dir() else root
    return load_mnist_idx(folder, train=train)


@dataclass(frozen=True)
class LocalImageSet:
    layout: str  # what the user must put under the data root, in words
    num_classes: int
    load: Callable[[Path, bool], ImageSet]  # (root, train) -> ImageSet in [0, 1]


LOCAL_IMAGE_SETS: Mapping[str, LocalImageSet] = {
    "cifar10": LocalImageSet(
        "cifar-10-batches-py/{data_batch_1..5, test_batch} (the python version of CIFAR-10)",
        10,
        lambda root, train: load_cifar(root, which="cifar10", train=train),
    ),
    "cifar100": LocalImageSet(
        "cifar-100-python/{train, test} (the python version of CIFAR-100)",
        100,
        lambda root, train: load_cifar(root, which="cifar100", train=train),
    ),
    "svhn": LocalImageSet(
        "svhn/{train_32x32.mat, test_32x32.mat} (the cropped-digits .mat files; or directly in the root)",
        10,
        _svhn,
    ),
    "mnist": LocalImageSet(
        "mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (the idx files; or in the root, or raw/)",
        10,
        _mnist,
    ),
    "kmnist": LocalImageSet(
        "kmnist-{train,test}-{imgs,labels}.npz (the ROIS-CODH Kuzushiji-MNIST release; in the root or kmnist/)",
        10,
        lambda root, train: load_kuzushiji(root, which="kmnist", train=train),
    ),
    "k49": LocalImageSet(
        "k49-{train,test}-{imgs,labels}.npz (the ROIS-CODH Kuzushiji-49 release; in the root or k49/)",
        49,
        lambda root, train: load_kuzushiji(root, which="k49", train=train),
    ),
}


def _checked(names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in LOCAL_IMAGE_SETS]
    if unknown or not names:
        raise ValueError(
            f"datasets must be a non-empty subset of {sorted(LOCAL_IMAGE_SETS)}, got {list(names)}"
        )
    return names


def layouts(datasets: Iterable[str]) -> str:
    """``"cifar10: <layout>; svhn: <layout>"``: what a data root holding ``datasets`` looks like."""
    return "; ".join(f"{n}: {LOCAL_IMAGE_SETS[n].layout}" for n in _checked(datasets))


def image_data_root(
    cfg: Mapping[str, Any], env: str, datasets: Iterable[str], *, key: str = "data_root"
) -> Path:
    """The data root: ``cfg[key]`` if set, else ``$env``; the error names both and the expected layouts.

    The folder itself is not checked here: :func:`load_train_test` names the missing file.
    """
    return local_path(cfg, key, env, needs=f"a folder holding {layouts(datasets)}", must_exist=False)


def load_train_test(
    name: str, root: str | Path, *, env: str | None = None, datasets: Iterable[str] | None = None
) -> tuple[ImageSet, ImageSet]:
    """(train, test) of dataset ``name`` under ``root``, images in [0, 1].

    ``datasets`` restricts the accepted names (a package's own list); a missing file raises a
    ``FileNotFoundError`` naming ``env`` (the variable the user sets) and the expected layout.
    """
    allowed = _checked(datasets) if datasets is not None else tuple(LOCAL_IMAGE_SETS)
    if name not in allowed:
        raise ValueError(f"dataset must be one of {sorted(allowed)}, got {name!r}")
    spec, root = LOCAL_IMAGE_SETS[name], Path(root).expanduser()
    try:
        return spec.load(root, True), spec.load(root, False)
    except FileNotFoundError as e:
        where = f"{root} ({env})" if env else str(root)
        raise FileNotFoundError(f"{name} not found under {where}; expected {spec.layout}. [{e}]") from None
