"""Training loop shared by all arms: Adam, mini-batches, early stopping on validation AUC.

Early stopping follows FuxiCTR (the official code's trainer, `checkpoint_and_earlystop`): evaluate
once per epoch; an epoch improves when val AUC >= best + 1e-6; stop after `patience` consecutive
epochs without improvement, and restore the best weights for the test pass. FuxiCTR also divides
the lr by 10 on every non-improving epoch (reduce_lr_on_plateau); that part is not implemented
(README deviation 4).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

from fcn.data import CTRData
from fcn.loss import tri_bce
from fcn.model import DNN, FCN, DCNv2, LogisticRegression, SingleCross

ARMS = ("lr", "dnn", "dcnv2", "ecn", "lcn", "fcn_tribce", "fcn_bce")


@dataclass
class EarlyStopping:
    """FuxiCTR's stopping rule on a metric to maximise (val AUC, monitor {'AUC': 1, 'logloss': 0})."""

    patience: int  # consecutive non-improving epochs that end training (official: 2)
    min_delta: float = 1e-6  # FuxiCTR's default: an improvement must beat the best by this much
    best: float = -float("inf")
    best_epoch: int = 0  # 1-based epoch of the best value (0: none yet)
    bad: int = 0  # consecutive non-improving epochs so far
    epoch: int = 0
    stopped: bool = False  # True once the patience rule fired (not when the epoch cap ends the run)

    def __post_init__(self):
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")

    def step(self, value: float) -> bool:
        """Record one epoch's value; returns True if it is the new best (save the weights then)."""
        self.epoch += 1
        if value < self.best + self.min_delta:
            self.bad += 1
            self.stopped = self.bad >= self.patience
            return False
        self.best, self.best_epoch, self.bad = value, self.epoch, 0
        return True


def build_model(arm: str, vocab_sizes: list[int], cfg: dict) -> torch.nn.Module:
    e = cfg["emb_dim"]
    if arm == "lr":
        return LogisticRegression(vocab_sizes)
    if arm == "dnn":
        return DNN(vocab_sizes, e, cfg["dnn_hidden"], cfg["dnn_dropout"])
    if arm == "dcnv2":
        return DCNv2(vocab_sizes, e, cfg["dcn_layers"], cfg["dnn_hidden"], cfg["dnn_dropout"])
    if arm == "ecn":
        return SingleCross(vocab_sizes, "exponential", e, cfg["ecn_layers"], cfg["ecn_dropout"])
    if arm == "lcn":
        return SingleCross(vocab_sizes, "linear", e, cfg["lcn_layers"], cfg["lcn_dropout"])
    if arm in ("fcn_tribce", "fcn_bce"):
        return FCN(
            vocab_sizes, e, cfg["ecn_layers"], cfg["lcn_layers"], cfg["ecn_dropout"], cfg["lcn_dropout"]
        )
    raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")


def batch_loss(arm: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if arm == "fcn_tribce":
        return tri_bce(*out, y)
    if arm == "fcn_bce":
        return F.binary_cross_entropy_with_logits(out[0], y)  # ablation: BCE on the fused y_hat only
    return F.binary_cross_entropy_with_logits(out, y)


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        out = model(torch.from_numpy(x[i : i + batch]))
        outs.append(torch.sigmoid(out[0] if isinstance(out, tuple) else out))
    return torch.cat(outs).numpy()


def fit(arm: str, data: CTRData, cfg: dict, seed: int, log=None, progress=lambda it, **k: it) -> dict:
    """Train one arm; returns test AUC/logloss at the best-validation epoch and the per-epoch curve."""
    torch.manual_seed(seed)
    model = build_model(arm, data.vocab_sizes, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    stopper, best_state, curve = EarlyStopping(cfg["patience"]), None, []
    for epoch in progress(range(cfg["max_epochs"]), desc=arm):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(perm), cfg["batch_size"]):
            idx = perm[i : i + cfg["batch_size"]]
            loss = batch_loss(arm, model, x_tr[idx], y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_auc = float(roc_auc_score(data.y_valid, predict(model, data.x_valid)))
        curve.append(val_auc)
        if log is not None:
            log(step=epoch, val_auc=val_auc, train_loss=loss.item())
        if stopper.step(val_auc):
            best_state = copy.deepcopy(model.state_dict())
        if stopper.stopped:
            break
    model.load_state_dict(best_state)  # restore the best-validation weights (FuxiCTR load_weights)
    p = predict(model, data.x_test)
    return {
        "test_auc": float(roc_auc_score(data.y_test, p)),
        "test_logloss": float(log_loss(data.y_test, np.clip(p, 1e-7, 1 - 1e-7))),
        "val_auc": stopper.best,
        "epochs": len(curve),  # the stopping epoch (== max_epochs when the cap, not patience, ended it)
        "best_epoch": stopper.best_epoch,
        "stopped_early": stopper.stopped,
        "val_curve": curve,
    }
