"""Training loop shared by all arms: Adam, mini-batches, early stopping on validation AUC.

Early stopping follows FuxiCTR (the official code's trainer): evaluate once per epoch, stop after
`patience` epochs without a better validation AUC, and restore the best weights for the test pass.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

from fcn.data import CTRData
from fcn.loss import tri_bce
from fcn.model import DNN, FCN, DCNv2, LogisticRegression, SingleCross

ARMS = ("lr", "dnn", "dcnv2", "ecn", "lcn", "fcn_tribce", "fcn_bce")


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
    best_auc, best_state, bad, curve = -1.0, None, 0, []
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
        if val_auc > best_auc:
            best_auc, best_state, bad = val_auc, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg["patience"]:
                break
    model.load_state_dict(best_state)
    p = predict(model, data.x_test)
    return {
        "test_auc": float(roc_auc_score(data.y_test, p)),
        "test_logloss": float(log_loss(data.y_test, np.clip(p, 1e-7, 1 - 1e-7))),
        "val_auc": best_auc,
        "epochs": len(curve),
        "val_curve": curve,
    }
