"""Noisy-label training on KEEL letter/vowel with the official tabular protocol (scaled down).

One unit = one (dataset, noise setting, seed): every loss is trained on the same noisy labels, the same
split and the same initialisation, so loss differences are paired within a seed.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ldr.losses import ALDRKLLoss, gce_loss, ldr_kl_loss, sce_loss
from xentlab.data.label_noise import (
    LETTER_PAIRS,
    VOWEL_PAIRS,
    class_dependent_noise,
    next_class_mapping,
    pair_mapping,
    uniform_noise,
)
from xentlab.data.tabular import TabularSplit, load_tabular, load_vowel_speaker_split
from xentlab.models.mlp import build_mlp
from xentlab.train.minibatch import fit_epochs, predict

LOSSES = ("ce", "gce", "sce", "ldr", "aldr")
CLASS_PAIRS = {"letter": LETTER_PAIRS, "vowel": VOWEL_PAIRS}


def _class_value(name: str) -> int:
    """The class value the official pair tables use: the integer for numeric labels (vowel '0'..'10'),
    the alphabet position for a single letter (letter 'A' = 0 ... 'Z' = 25)."""
    if name.isdigit():
        return int(name)
    if len(name) == 1 and name.isalpha():
        return ord(name.upper()) - ord("A")
    raise ValueError(f"cannot read a class value from the class name {name!r}")


def class_pair_map(num_classes: int, dataset: str, class_names=None):
    """The class-dependent noise map on label *indices*. The official pairs (``classDep_letter``,
    ``classDep_vowel``) name class *values*; ``load_tabular`` numbers classes in the string order of
    their names, which for vowel ('0', '1', '10', '2', ...) is not the value order, so the pairs are
    translated through ``class_names``. Sets without a pair table use y -> y + 1 mod K."""
    pairs = CLASS_PAIRS.get(dataset)
    if not pairs:
        return next_class_mapping(num_classes)
    if class_names is not None:
        index_of = {_class_value(str(n)): i for i, n in enumerate(class_names)}
        if len(index_of) != num_classes:
            raise ValueError(
                f"{dataset}: class names {class_names} do not give {num_classes} distinct values"
            )
        pairs = [(index_of[a], index_of[b]) for a, b in pairs]
    return pair_mapping(num_classes, pairs)


def load_split(cfg: dict, seed: int) -> TabularSplit:
    """The train/test rows of one unit.

    ``cfg['split'] == 'official'`` (vowel): the dataset's own speaker-disjoint split, as the authors'
    ``vowel_train.npz`` / ``vowel_test.npz`` (528 / 462 rows, 10 formant features); experiment.py trains on
    the part of the training file that an unshuffled ``KFold(5)`` keeps when fold ``seed mod 5`` is held out
    and tests on the whole test file. Otherwise (letter): KEEL's stratified folds, fold ``seed mod 5`` tests.
    Features are standardised with the training part's statistics in both cases (see README)."""
    fold = seed % cfg["n_folds"]
    if cfg.get("split", "folds") != "official":
        return load_tabular(cfg["dataset"], fold=fold, n_folds=cfg["n_folds"])
    if cfg["dataset"] != "vowel":
        raise ValueError(f"the official split is implemented for vowel only, got {cfg['dataset']!r}")
    return load_vowel_speaker_split(drop_train_fold=(fold, cfg["n_folds"]))


def noisy_labels(
    y: torch.Tensor, num_classes: int, dataset: str, kind: str, rate: float, seed: int, class_names=None
):
    """The official generators: uniform may redraw the true class; class-dependent swaps the
    dataset's fixed class pairs (letter, vowel; by class value, see ``class_pair_map``) or shifts
    y -> y + 1 mod K for other sets."""
    if kind == "clean" or rate == 0:
        return y.clone()
    if kind == "uniform":
        return uniform_noise(y, num_classes, rate, seed)
    if kind == "class_dependent":
        mapping = class_pair_map(num_classes, dataset, class_names)
        return class_dependent_noise(y, mapping, rate, seed)
    raise ValueError(f"noise kind must be 'clean', 'uniform' or 'class_dependent', got {kind!r}")


def make_loss(name: str, cfg: dict, num_train: int, device: torch.device | str = "cpu"):
    """``loss(model, xb, yb, idx)`` for one of LOSSES with the package's hyper-parameters.

    ``cfg['aldr_softplus']`` (default False) puts ALDR-KL's scores through softplus first, as the
    official code does for CIFAR-100 only; ALDR's per-example lambdas live on ``device``."""
    if name == "ce":
        return lambda m, xb, yb, idx: F.cross_entropy(m(xb), yb)
    if name == "gce":
        return lambda m, xb, yb, idx: gce_loss(m(xb), yb, q=cfg["gce_q"])
    if name == "sce":
        return lambda m, xb, yb, idx: sce_loss(m(xb), yb, balance=cfg["sce_balance"], a=cfg["sce_a"])
    if name == "ldr":
        return lambda m, xb, yb, idx: ldr_kl_loss(m(xb), yb, lam=cfg["lam"], margin=cfg["margin"])
    if name == "aldr":
        aldr = ALDRKLLoss(num_train, lam0=cfg["lam"], alpha=cfg["alpha"], margin=cfg["margin"],
                          softplus=cfg.get("aldr_softplus", False)).to(device)  # fmt: skip
        return lambda m, xb, yb, idx: aldr(m(xb), yb, idx)
    raise ValueError(f"unknown loss {name!r}; choose from {LOSSES}")


def run_noisy(cfg: dict, seed: int) -> dict:
    """Train every loss of ``cfg['losses']`` on one noisy dataset; clean-test accuracy per loss."""
    split = load_split(cfg, seed)
    k = split.num_classes
    y_noisy = noisy_labels(
        split.y_train,
        k,
        cfg["dataset"],
        cfg["noise"],
        cfg["rate"],
        seed=10_000 + seed,
        class_names=split.class_names,
    )
    out: dict = {"actual_noise": float((y_noisy != split.y_train).float().mean())}
    width = cfg["width"] or min(split.num_features, k)  # official FFNN: hidden width min(d, K)
    for name in cfg["losses"]:
        t0 = time.process_time()
        torch.manual_seed(seed)  # same initial weights for every loss
        model = build_mlp(split.num_features, [width] * cfg["depth"], k, activation="tanh")
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"]
        )
        fit_epochs(
            model, opt, split.x_train, y_noisy, make_loss(name, cfg, len(split.x_train)),
            epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
            lr_milestones=cfg["milestones"], lr_gamma=0.1,
        )  # fmt: skip
        pred = predict(model, split.x_test).argmax(1)
        out[f"acc_{name}"] = float((pred == split.y_test).float().mean())
        out[f"cpu_s_{name}"] = time.process_time() - t0
    return out
