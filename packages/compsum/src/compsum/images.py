"""``--scale full``: the paper's image experiments (Sec. 7) on CIFAR-10/100 and SVHN from a local folder.

* ``run_clean_images``: one network per tau of the comp-sum family on one dataset (clean labels).
* ``run_adversarial_images``: PGD-AT, TRADES and ADV-COMP-SUM on CIFAR-10 (L_inf, eps = 8/255), each
  model early-stopped on the PGD-40 margin-loss robust accuracy of 1,024 held-out training images
  (the paper's selection rule, after Rice et al. 2020), then evaluated on the test set with PGD-40.

Data come from ``COMPSUM_DATA_ROOT`` (never downloaded); see ``xentlab.data.local_images``. Images stay in
[0, 1] and the network normalises internally, so the L_inf ball and the clamp live in pixel space.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from torch import nn

from compsum.adversarial import AttackConfig, adv_comp_sum_loss, pgd_at_loss, trades_loss
from compsum.experiments import tau_key
from compsum.losses import comp_sum_loss
from xentlab.attacks import pgd_linf
from xentlab.data.images import ImageSet, random_crop_flip
from xentlab.data.local_images import LOCAL_IMAGE_SETS, image_data_root, load_train_test
from xentlab.models.cnn import build_resnet
from xentlab.train.minibatch import fit_epochs

DATA_ENV = "COMPSUM_DATA_ROOT"
DATASETS = ("cifar10", "cifar100", "svhn")


# ----------------------------------------------------------------------------- data
def resolve_data_root(cfg: dict) -> Path:
    """The data folder: ``cfg['data_root']`` if set, else ``$COMPSUM_DATA_ROOT``."""
    return image_data_root(cfg, DATA_ENV, DATASETS)


def load_image_dataset(name: str, root: Path) -> tuple[ImageSet, ImageSet]:
    """(train, test) of one of ``DATASETS`` in [0, 1]; a missing file names the variable and the layout."""
    return load_train_test(name, root, env=DATA_ENV, datasets=DATASETS)


class Normalized(nn.Module):
    """``net((x - mean) / std)``: attacks and clamps see [0, 1] pixels, the network standardised ones."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def build_model(cfg: dict, train_x: torch.Tensor, num_classes: int) -> nn.Module:
    """ResNet of ``cfg['depth']`` (xentlab's CIFAR-stem ResNets) with per-channel training statistics."""
    net = build_resnet(cfg["depth"], in_channels=train_x.shape[1], num_classes=num_classes,
                       width=cfg.get("width", 16))  # fmt: skip
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return Normalized(net, mean, std)


# ----------------------------------------------------------------------------- training
def _lr_setter(cfg: dict, optimizer: torch.optim.Optimizer):
    """Per-epoch learning rate: cosine from lr to 0 (``schedule='cosine'``) or x0.1 at ``milestones``."""

    def lr_at(epoch: int) -> float:
        if cfg["schedule"] == "cosine":
            return cfg["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / cfg["epochs"]))
        return cfg["lr"] * 0.1 ** sum(epoch >= m for m in cfg["milestones"])

    def set_epoch(epoch: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch)

    return set_epoch


def train_network(cfg: dict, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_loss, seed: int,
                  on_epoch=None) -> list[float]:  # fmt: skip
    """SGD with Nesterov momentum (the paper's optimiser), standard crop(+flip) augmentation per batch.

    ``batch_loss(model, xb, yb) -> scalar``; ``on_epoch(epoch)`` runs after every epoch (evaluation,
    early stopping)."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], nesterov=True,
                          weight_decay=cfg["weight_decay"])  # fmt: skip
    set_lr = _lr_setter(cfg, opt)
    set_lr(0)
    gen = torch.Generator().manual_seed(10_000 + seed)

    def loss_fn(m, xb, yb, _idx):
        if cfg["augment"]:
            xb = random_crop_flip(xb, padding=4, flip=cfg["flip"], generator=gen)
        return batch_loss(m, xb, yb)

    def after(epoch: int, _loss: float) -> None:
        set_lr(epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch)

    return fit_epochs(model, opt, x, y, loss_fn, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
                      drop_last=False, on_epoch=after)  # fmt: skip


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    was = model.training
    model.eval()
    correct = sum(
        int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch)
    )
    model.train(was)
    return correct / max(len(x), 1)


def margin_objective(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed margin loss max_{k != y} h_k - h_y (the PGD40-margin attack the paper selects models with)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).max(dim=1).values
    return (other - true).sum()


def robust_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: dict, seed: int,
                batch: int = 512, objectives=("ce", "margin")) -> dict:  # fmt: skip
    """Clean accuracy and PGD accuracy per objective; ``robust`` counts an image as robust only when
    every attack fails on it (per-example worst case over the objectives)."""
    was = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    objs = {"ce": None, "margin": margin_objective}
    clean = 0
    per = dict.fromkeys(objectives, 0)
    worst = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i : i + batch], y[i : i + batch]
        with torch.no_grad():
            clean += int((model(xb).argmax(1) == yb).sum())
        ok = torch.ones(len(xb), dtype=torch.bool, device=x.device)
        for name in objectives:
            xa = pgd_linf(model, xb, yb, eps=attack["eps"], step_size=attack["step_size"], steps=attack["steps"],
                          objective=objs[name], random_start="uniform", clamp=(0.0, 1.0), generator=gen)  # fmt: skip
            with torch.no_grad():
                hit = model(xa).argmax(1) == yb
            per[name] += int(hit.sum())
            ok &= hit
        worst += int(ok.sum())
    model.train(was)
    n = max(len(x), 1)
    return {"clean": clean / n, "robust": worst / n, **{f"robust_{k}": v / n for k, v in per.items()}}


def _prepare(cfg: dict, device: torch.device):
    root = resolve_data_root(cfg)
    train, test = load_image_dataset(cfg["dataset"], root)
    if cfg.get("max_train"):
        train = train.subset(torch.arange(min(cfg["max_train"], len(train))))
    if cfg.get("max_test"):
        test = test.subset(torch.arange(min(cfg["max_test"], len(test))))
    k = LOCAL_IMAGE_SETS[cfg["dataset"]].num_classes
    return train.x.to(device), train.y.to(device), test.x.to(device), test.y.to(device), k, str(root)


# ----------------------------------------------------------------------------- experiments
def run_clean_images(cfg: dict, seed: int, device: torch.device, log=None) -> dict:
    """Every tau of ``cfg['taus']`` trains the same ResNet (same initial weights and batch order) on
    clean labels; test accuracy after the last epoch."""
    x_tr, y_tr, x_te, y_te, k, root = _prepare(cfg, device)
    out: dict = {"data_root": root}
    for tau in cfg["taus"]:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        model = build_model(cfg, x_tr, k).to(device)

        def log_epoch(epoch, model=model, tau=tau):
            if log is not None and (
                (epoch + 1) % cfg.get("eval_every", 10) == 0 or epoch + 1 == cfg["epochs"]
            ):
                log(step=epoch + 1, tau=tau, test_acc=accuracy(model, x_te, y_te))

        train_network(cfg, model, x_tr, y_tr, lambda m, xb, yb, tau=tau: comp_sum_loss(m(xb), yb, tau), seed,
                      on_epoch=log_epoch)  # fmt: skip
        out[f"acc_{tau_key(tau)}"] = accuracy(model, x_te, y_te)
        out[f"wall_s_{tau_key(tau)}"] = time.perf_counter() - t0
    return out


def run_adversarial_images(cfg: dict, seed: int, device: torch.device, log=None) -> dict:
    """PGD-AT, TRADES (``betas``) and ADV-COMP-SUM (``nus``) on one dataset.

    Each variant is early-stopped on the PGD-40 margin robust accuracy of ``val_size`` held-out training
    images (evaluated every ``eval_every`` epochs); among a method's hyper-parameter values the one with
    the best validation clean + robust accuracy is kept (same rule for TRADES and ADV-COMP-SUM; a tie
    keeps the earlier, smaller weight). Only that chosen model of each method is attacked on the test
    set, with PGD-40 on CE and on the margin loss (no test number of an unchosen variant is computed).
    """
    x_all, y_all, x_te, y_te, k, root = _prepare(cfg, device)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x_all), generator=gen).to(device)
    val_idx, tr_idx = perm[: cfg["val_size"]], perm[cfg["val_size"] :]
    x_tr, y_tr, x_val, y_val = x_all[tr_idx], y_all[tr_idx], x_all[val_idx], y_all[val_idx]
    train_attack = AttackConfig(**cfg["train_attack"], clamp=(0.0, 1.0))
    ev = cfg["eval_attack"]

    methods = {"pgdat": {None: lambda m, xb, yb: pgd_at_loss(m, xb, yb, train_attack)}}
    methods["trades"] = {b: (lambda m, xb, yb, b=b: trades_loss(m, xb, yb, train_attack, beta=b))
                         for b in cfg["betas"]}  # fmt: skip
    methods["acs"] = {nu: (lambda m, xb, yb, nu=nu: adv_comp_sum_loss(m, xb, yb, train_attack, cfg["tau"], nu))
                      for nu in cfg["nus"]}  # fmt: skip

    out: dict = {"data_root": root}
    grid = {}
    for name, variants in methods.items():
        best = None
        for hp, loss in variants.items():
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            model = build_model(cfg, x_tr, k).to(device)
            state = {"best": -1.0, "epoch": -1, "weights": None}

            def select(epoch, model=model, state=state, tag=f"{name}_{hp}"):
                if (epoch + 1) % cfg["eval_every"] and epoch + 1 != cfg["epochs"]:
                    return
                r = robust_eval(model, x_val, y_val, ev, seed, objectives=("margin",))
                if log is not None:
                    log(step=epoch + 1, variant=tag, val_clean=r["clean"], val_robust_margin=r["robust"])
                if r["robust"] > state["best"]:
                    state.update(best=r["robust"], epoch=epoch + 1, weights=copy.deepcopy(model.state_dict()))

            train_network(cfg, model, x_tr, y_tr, loss, seed, on_epoch=select)
            model.load_state_dict(state["weights"])
            val = robust_eval(model, x_val, y_val, ev, seed, objectives=("margin",))
            grid[f"{name}_{hp}"] = {"val": val, "best_epoch": state["epoch"],
                                    "wall_s": time.perf_counter() - t0}  # fmt: skip
            score = val["clean"] + val["robust"]
            if best is None or score > best[0]:  # strict: a tie keeps the earlier (smaller) weight
                best = (score, hp, state["weights"], state["epoch"])
        _, hp, weights, epoch = best
        model.load_state_dict(weights)  # same architecture for every variant
        test = robust_eval(model, x_te, y_te, ev, seed)  # the test set, once per method
        out[f"{name}_clean"], out[f"{name}_robust"] = test["clean"], test["robust"]
        out[f"{name}_robust_ce"], out[f"{name}_robust_margin"] = test["robust_ce"], test["robust_margin"]
        out[f"{name}_best_epoch"] = epoch
        if hp is not None:
            out[f"{name}_chosen"] = float(hp)
    out["grid"] = grid
    return out
