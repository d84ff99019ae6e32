"""One unlearning scenario at one seed: train the original model, build the forgetting / remaining split,
run every method from the same original weights, and measure them against the retrained model.

Scenarios (official ``Data.py``):

* ``class``: forget every training sample of one class (``forget_class``);
* ``random``: forget a random 40% of each of classes 5-9 (``random_data``: proportions
  ``[0, 0, 0, 0, 0, .4, .4, .4, .4, .4]``).

Methods: ``original`` (no unlearning), ``retrain`` (from scratch on the remaining data: the gold
standard), ``finetune`` and ``gradient_ascent`` (supervised baselines), ``laf`` (label-free) and
``laf_r`` (LAF+R: the LAF model after the official supervised repair of ``fc2`` on labelled remaining
data; it starts from the LAF model after LAF has been measured, so adding it changes no other number).

Metrics per method: accuracy on the forgetting data (Df), the remaining data (Dr), the test set, and
for class removal the test accuracy on the remaining classes and on the forgotten class; the MIA of the
official code (a gradient-boosted attacker trained on sorted softmax outputs of a Dr sample vs half
of the test set, applied to Df vs the other half: accuracy, 0.5 = chance) and a cross-validated
logistic attack AUC (Df vs test); and the distance to the retrained model (mean Jensen-Shannon
divergence of the softmax outputs on Df and on the test set).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from laf.models import LAFCNN, LAFResNet
from laf.unlearning import (
    fine_tune,
    gradient_ascent,
    laf_unlearn,
    repair_classifier,
    train_classifier,
    train_vae,
)
from xentlab.data.images import ImageSet, load_cifar, load_digits_images, load_mnist_idx, split_images
from xentlab.metrics.membership import attack_features, attack_success, fit_attack, logistic_mia

METHODS = ("original", "retrain", "finetune", "gradient_ascent", "laf", "laf_r")


@dataclass(frozen=True)
class RunConfig:
    scenario: str = "class"
    """'class' or 'random'"""
    dataset: str = "digits"
    """'digits' (cpu), 'mnist' / 'fashion' (idx files under data_root) or 'cifar10' (data_root)"""
    data_root: str | None = None
    test_fraction: float = 0.3
    """digits: share of the 1,797 images held out as the test set"""
    forget_class: int = 3
    random_classes: tuple[int, ...] = (5, 6, 7, 8, 9)
    random_fraction: float = 0.4
    model: str = "cnn"
    train_epochs: int = 20
    latent_dims: int = 8
    vae_epochs: int = 10
    vae_steps: tuple[int, int] | None = None
    """if set, (s_vae steps, u_vae steps): each VAE runs ceil(steps / batches-per-epoch) epochs instead of
    vae_epochs (step matching; official on MNIST: 18,750 and 1,860 (class 0) / 3,680 (random_data)).
    None keeps vae_epochs, which is what the committed cpu run used (see the README's known defects)"""
    laf_epochs: int = 20
    laf_steps: int | None = None
    """if set, run ceil(laf_steps / batches-per-epoch) LAF epochs instead of laf_epochs (step matching)"""
    lr_ue: float = 5e-5
    lr_ra: float = 1e-4
    temp: float = 20.0
    ft_epochs: int = 5
    ft_lr: float = 1e-4
    ga_epochs: int = 5
    ga_lr: float = 1e-4
    repair_lr: float = 1e-4
    """LAF+R: Adam lr of the fc2 repair (not set by the official driver; 1e-4 as Train.train)"""
    repair_epochs: int | None = None
    """LAF+R: zip(forgetting, remaining) epochs of the repair; None: as many as the LAF loop ran"""
    batch_size: int = 32


def load_data(cfg: RunConfig, seed: int) -> tuple[ImageSet, ImageSet]:
    if cfg.dataset == "digits":
        parts = split_images(load_digits_images(), {"train": 1.0 - cfg.test_fraction, "test": cfg.test_fraction},
                             seed=seed)  # fmt: skip
        return parts["train"], parts["test"]
    if cfg.dataset in ("mnist", "fashion"):
        if not cfg.data_root:
            raise ValueError(f"dataset {cfg.dataset} needs data_root (a folder with the idx files)")
        return load_mnist_idx(cfg.data_root, train=True), load_mnist_idx(cfg.data_root, train=False)
    if cfg.dataset == "cifar10":
        if not cfg.data_root:
            raise ValueError("dataset cifar10 needs data_root")
        return load_cifar(cfg.data_root, train=True), load_cifar(cfg.data_root, train=False)
    raise ValueError(f"unknown dataset {cfg.dataset!r}")


def forget_mask(cfg: RunConfig, y: torch.Tensor, seed: int) -> torch.Tensor:
    """Boolean mask of the forgetting set in the training labels ``y``."""
    if cfg.scenario == "class":
        return y == cfg.forget_class
    if cfg.scenario == "random":
        rng = np.random.default_rng(seed + 7919)
        mask = np.zeros(len(y), dtype=bool)
        for c in cfg.random_classes:
            idx = np.flatnonzero(y.numpy() == c)
            mask[rng.choice(idx, int(cfg.random_fraction * len(idx)), replace=False)] = True
        return torch.from_numpy(mask)
    raise ValueError(f"scenario must be 'class' or 'random', got {cfg.scenario!r}")


def epochs_for_steps(steps: int, n: int, batch_size: int) -> int:
    """Epochs of ceil(n / batch_size) batches (drop_last=False) that take at least `steps` optimiser steps."""
    if steps < 1 or n < 1 or batch_size < 1:
        raise ValueError(f"need steps, n, batch_size >= 1, got {steps}, {n}, {batch_size}")
    return -(-steps // -(-n // batch_size))


def vae_epochs(cfg: RunConfig, n_train: int, n_forget: int) -> tuple[int, int]:
    """Epochs of the whole-training-set VAE and of the forgetting-set VAE (official Train.vae_train: 10)."""
    if cfg.vae_steps is None:
        return cfg.vae_epochs, cfg.vae_epochs
    s_steps, u_steps = cfg.vae_steps
    return (epochs_for_steps(s_steps, n_train, cfg.batch_size),
            epochs_for_steps(u_steps, n_forget, cfg.batch_size))  # fmt: skip


def build_model(cfg: RunConfig, x: torch.Tensor) -> torch.nn.Module:
    if cfg.model == "cnn":
        return LAFCNN(x.shape[1], 10, input_size=x.shape[-1])
    if cfg.model == "resnet18":
        return LAFResNet(x.shape[1], 10)
    raise ValueError(f"unknown model {cfg.model!r}")


@torch.no_grad()
def probs_of(model, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + 1024])[0].softmax(1) for i in range(0, len(x), 1024)])


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean Jensen-Shannon divergence (nats) between rows of two probability matrices."""
    m = 0.5 * (p + q)

    def kl(a, b):
        return (a * (a.clamp_min(1e-12).log() - b.clamp_min(1e-12).log())).sum(1)

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).mean().item()


def evaluate(model, sets: dict, cfg: RunConfig, retrain_probs: dict | None, seed: int) -> dict:
    out = {}
    probs = {k: probs_of(model, v.x) for k, v in sets.items()}
    for k in ("forget", "remain", "test"):
        out[f"acc_{k}"] = (probs[k].argmax(1) == sets[k].y).float().mean().item()
    if cfg.scenario == "class":
        is_f = sets["test"].y == cfg.forget_class
        pred = probs["test"].argmax(1)
        out["acc_test_forget_class"] = (pred[is_f] == sets["test"].y[is_f]).float().mean().item()
        out["acc_test_remain_classes"] = (pred[~is_f] == sets["test"].y[~is_f]).float().mean().item()
    # MIA, official protocol: attacker on (Dr sample of |Df| = member, test half A = non-member),
    # applied to (Df = member, test half B = non-member); features: sorted softmax vectors
    rng = np.random.default_rng(seed + 31)
    n_f = len(sets["forget"].y)
    sample = rng.choice(len(sets["remain"].y), min(n_f, len(sets["remain"].y)), replace=False)
    half = len(sets["test"].y) // 2
    perm = rng.permutation(len(sets["test"].y))
    test_a, test_b = perm[:half], perm[half:][:n_f]
    feats_test = attack_features(probs["test"])
    attacker = fit_attack(
        attack_features(probs["remain"][sample]), feats_test[test_a], kind="gbdt", seed=seed
    )
    out["mia_acc"] = attack_success(attacker, attack_features(probs["forget"]), feats_test[test_b])
    out["mia_forget_member_rate"] = attack_success(attacker, attack_features(probs["forget"]))
    out["mia_auc_forget_vs_test"] = logistic_mia(
        attack_features(probs["forget"]), feats_test, folds=5, seed=seed
    ).auc
    if retrain_probs is not None:
        out["js_to_retrain_forget"] = js_divergence(probs["forget"], retrain_probs["forget"])
        out["js_to_retrain_test"] = js_divergence(probs["test"], retrain_probs["test"])
    return out, probs


def run(cfg: RunConfig, seed: int, device=None, log=None) -> dict:
    device = device or torch.device("cpu")
    train, test = load_data(cfg, seed)
    mask = forget_mask(cfg, train.y, seed)
    sets = {
        "forget": ImageSet(train.x[mask].to(device), train.y[mask].to(device)),
        "remain": ImageSet(train.x[~mask].to(device), train.y[~mask].to(device)),
        "test": ImageSet(test.x.to(device), test.y.to(device)),
    }
    x_tr, y_tr = train.x.to(device), train.y.to(device)
    bs = cfg.batch_size

    original = train_classifier(build_model(cfg, x_tr).to(device), x_tr, y_tr, epochs=cfg.train_epochs,
                                batch_size=bs, seed=seed)  # fmt: skip
    # the gold standard: the same recipe from a fresh initialisation, remaining data only
    retrain = train_classifier(build_model(cfg, x_tr).to(device), sets["remain"].x, sets["remain"].y,
                               epochs=cfg.train_epochs, batch_size=bs, seed=seed + 1)  # fmt: skip
    results: dict = {}
    r_metrics, r_probs = evaluate(retrain, sets, cfg, None, seed)
    results["retrain"] = r_metrics
    results["original"], _ = evaluate(original, sets, cfg, r_probs, seed)

    ft = fine_tune(copy.deepcopy(original), sets["remain"].x, sets["remain"].y, epochs=cfg.ft_epochs,
                   lr=cfg.ft_lr, batch_size=bs, seed=seed)  # fmt: skip
    results["finetune"], _ = evaluate(ft, sets, cfg, r_probs, seed)
    ga = gradient_ascent(copy.deepcopy(original), sets["forget"].x, sets["forget"].y, epochs=cfg.ga_epochs,
                         lr=cfg.ga_lr, batch_size=bs, seed=seed)  # fmt: skip
    results["gradient_ascent"], _ = evaluate(ga, sets, cfg, r_probs, seed)

    # LAF: no labels from here on -- only the images of the forgetting and remaining sets
    model = copy.deepcopy(original)
    s_vae_epochs, u_vae_epochs = vae_epochs(cfg, len(y_tr), len(sets["forget"].y))
    s_vae = train_vae(model, x_tr, latent_dims=cfg.latent_dims, epochs=s_vae_epochs, batch_size=bs, seed=seed)
    u_vae = train_vae(model, sets["forget"].x, latent_dims=cfg.latent_dims, epochs=u_vae_epochs, batch_size=bs,
                      seed=seed + 1)  # fmt: skip
    per_epoch = -(-min(len(sets["forget"].y), len(sets["remain"].y)) // bs)  # zip stops at the shorter loader
    laf_epochs = cfg.laf_epochs if cfg.laf_steps is None else -(-cfg.laf_steps // per_epoch)
    model, ue_curve, ra_curve = laf_unlearn(model, s_vae, u_vae, sets["forget"].x, sets["remain"].x,
                                            epochs=laf_epochs, lr_ue=cfg.lr_ue, lr_ra=cfg.lr_ra,
                                            temp=cfg.temp, batch_size=bs, seed=seed, log=log)  # fmt: skip
    results["laf"], _ = evaluate(model, sets, cfg, r_probs, seed)

    # LAF+R: supervised repair of fc2 with the labels of the remaining data (never the forgetting data);
    # the same zip(forgetting, remaining) epochs as the LAF loop unless repair_epochs is set
    repair_epochs = laf_epochs if cfg.repair_epochs is None else cfg.repair_epochs
    laf_r, repair_curve = repair_classifier(copy.deepcopy(model), sets["remain"].x, sets["remain"].y,
                                            n_forget=len(sets["forget"].y), epochs=repair_epochs,
                                            lr=cfg.repair_lr, batch_size=bs, seed=seed)  # fmt: skip
    results["laf_r"], _ = evaluate(laf_r, sets, cfg, r_probs, seed)

    out: dict = {f"{meth}_{k}": v for meth, res in results.items() for k, v in res.items()}
    out["n_forget"] = int(mask.sum())
    out["n_remain"] = int((~mask).sum())
    out["laf_epochs_run"] = laf_epochs
    out["laf_curves"] = {"ue": ue_curve, "ra": ra_curve}
    out["repair_epochs_run"] = repair_epochs
    out["repair_curve"] = repair_curve
    return out
