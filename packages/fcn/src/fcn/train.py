"""Training loop shared by all arms: Adam, mini-batches, early stopping on validation AUC.

Everything follows FuxiCTR's `BaseModel` (the official code's trainer, rank_model.py):
- `checkpoint_and_earlystop`: evaluate once per epoch; an epoch improves when val AUC >= best + 1e-6;
  stop after `patience` consecutive epochs without improvement, and restore the best weights for the
  test pass (`load_weights` after `fit`).
- reduce-lr-on-plateau (`reduce_lr_on_plateau=True` by default): every non-improving epoch multiplies
  the lr of every param group by 0.1, floored at 1e-6 (`lr_decay(factor=0.1, min_lr=1e-6)`). Training
  continues from the current (not the best) weights and keeps Adam's moments; a later improvement
  resets the patience counter but not the lr.
- `train_step`: clip the global gradient norm at `max_gradient_norm` (default 10.0) between
  backward and the optimizer step.
- `compute_loss` = `add_loss` + `regularization_loss`: the embedding L2 term (lambda / 2) * sum ||W||^2 over
  the embedding tables (cfg `embedding_regularizer`; protocol v6 uses the official 1e-5).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score
from torch.nn.utils import clip_grad_norm_

from fcn.data import CTRData
from fcn.loss import tri_bce
from fcn.model import DNN, FCN, DCNv2, LogisticRegression, SingleCross, fuxictr_reset_parameters
from xentlab.train.early_stopping import EarlyStopping

ARMS = ("lr", "dnn", "dcnv2", "ecn", "lcn", "fcn_tribce", "fcn_bce")

# FuxiCTR defaults (BaseModel.lr_decay and BaseModel.fit); the official FCN configs do not override them.
LR_DECAY_FACTOR = 0.1
MIN_LR = 1e-6
MAX_GRADIENT_NORM = 10.0
FUXICTR_MIN_DELTA = 1e-6


def fuxictr_stopper(patience: int) -> EarlyStopping:
    """FuxiCTR's stopping rule on val AUC (monitor {'AUC': 1, 'logloss': 0}): an epoch improves when its AUC
    is >= best + 1e-6 (its default min_delta); ``patience`` non-improving epochs in a row end training."""
    return EarlyStopping(patience, min_delta=FUXICTR_MIN_DELTA, mode="max", ties_improve=True)


def lr_decay(opt: torch.optim.Optimizer, factor: float = LR_DECAY_FACTOR, min_lr: float = MIN_LR) -> float:
    """FuxiCTR's plateau step: lr <- max(lr * factor, min_lr) in every param group; returns the new lr."""
    for group in opt.param_groups:
        group["lr"] = max(group["lr"] * factor, min_lr)
    return opt.param_groups[0]["lr"]


def train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn, max_gradient_norm
) -> torch.Tensor:
    """One FuxiCTR `train_step`: zero grads, backward, clip the global grad norm, step.
    `loss_fn()` returns the batch loss; `max_gradient_norm=None` disables clipping."""
    opt.zero_grad()
    loss = loss_fn()
    loss.backward()
    if max_gradient_norm is not None:
        clip_grad_norm_(model.parameters(), max_gradient_norm)
    opt.step()
    return loss


def build_model(arm: str, vocab_sizes: list[int], cfg: dict) -> torch.nn.Module:
    """The arm's model. Optional cfg keys (absent = the protocol v1-v4 behaviour; v5 sets both to the official choices):
    ``init``: "torch" (PyTorch's default nn.Linear init) or "fuxictr" (xavier_normal_ weights, zero biases,
    as FuxiCTR's reset_parameters in the official code); ``embedding_layout``: "field" or "halves" (the
    official MultiHeadFeatureEmbedding order; only the cross networks ECN / LCN / FCN see a difference)."""
    init = cfg.get("init", "torch")
    if init not in ("torch", "fuxictr"):
        raise ValueError(f"init must be 'torch' or 'fuxictr', got {init!r}")
    model = _build(arm, vocab_sizes, cfg, cfg.get("embedding_layout", "field"))
    return fuxictr_reset_parameters(model) if init == "fuxictr" else model


def _build(arm: str, vocab_sizes: list[int], cfg: dict, layout: str) -> torch.nn.Module:
    e = cfg["emb_dim"]
    if arm == "lr":
        return LogisticRegression(vocab_sizes)
    if arm == "dnn":
        return DNN(vocab_sizes, e, cfg["dnn_hidden"], cfg["dnn_dropout"])
    if arm == "dcnv2":
        return DCNv2(vocab_sizes, e, cfg["dcn_layers"], cfg["dnn_hidden"], cfg["dnn_dropout"])
    if arm == "ecn":
        return SingleCross(vocab_sizes, "exponential", e, cfg["ecn_layers"], cfg["ecn_dropout"],
                           embedding_layout=layout)  # fmt: skip
    if arm == "lcn":
        return SingleCross(vocab_sizes, "linear", e, cfg["lcn_layers"], cfg["lcn_dropout"],
                           embedding_layout=layout)  # fmt: skip
    if arm in ("fcn_tribce", "fcn_bce"):
        return FCN(
            vocab_sizes, e, cfg["ecn_layers"], cfg["lcn_layers"], cfg["ecn_dropout"], cfg["lcn_dropout"],
            embedding_layout=layout,
        )  # fmt: skip
    raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")


def embedding_l2(model: torch.nn.Module, lam: float) -> torch.Tensor:
    """FuxiCTR's ``regularization_loss`` for a float ``embedding_regularizer`` lam (an L2 term, p = 2):
    (lam / 2) * ||W||_2^2 summed over every embedding table, whole tables (not only the batch's rows).
    Only the tables are regularised; the official configs set ``net_regularizer: 0``."""
    if lam < 0:
        raise ValueError(f"embedding_regularizer must be >= 0, got {lam}")
    tables = [m.weight for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    return lam / 2 * sum(w.pow(2).sum() for w in tables)


def batch_loss(arm: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               embedding_regularizer: float = 0.0) -> torch.Tensor:  # fmt: skip
    """The batch's training loss: FuxiCTR ``compute_loss`` = ``add_loss`` (Tri-BCE for fcn_tribce, BCE on the
    fused y_hat for fcn_bce, BCE otherwise) + ``regularization_loss`` (the embedding L2 term; 0 = none, as in
    protocol v1-v5; v6 sets the official 1e-5)."""
    out = model(x)
    if arm == "fcn_tribce":
        loss = tri_bce(*out, y)
    elif arm == "fcn_bce":
        loss = F.binary_cross_entropy_with_logits(out[0], y)  # ablation: BCE on the fused y_hat only
    else:
        loss = F.binary_cross_entropy_with_logits(out, y)
    if embedding_regularizer:
        loss = loss + embedding_l2(model, embedding_regularizer)
    return loss


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        out = model(torch.from_numpy(x[i : i + batch]))
        outs.append(torch.sigmoid(out[0] if isinstance(out, tuple) else out))
    return torch.cat(outs).numpy()


def fit(
    arm: str, data: CTRData, cfg: dict, seed: int, log=None, progress=lambda it, **k: it, on_epoch=None
) -> dict:
    """Train one arm; returns test AUC/logloss at the best-validation epoch and the per-epoch curves.

    cfg keys beyond the model's: lr, batch_size, max_epochs, patience, and optionally
    reduce_lr_on_plateau (default True) and max_gradient_norm (default 10.0; None disables), both
    FuxiCTR's defaults, and embedding_regularizer (default 0: none; the official Criteo configs use 1e-5).
    ``on_epoch(epoch, p_valid)`` (optional) gets the 1-based epoch and the validation
    predictions of that epoch (used by the size pilot, scripts/select_size.py)."""
    torch.manual_seed(seed)
    model = build_model(arm, data.vocab_sizes, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    reduce_lr = cfg.get("reduce_lr_on_plateau", True)
    max_norm = cfg.get("max_gradient_norm", MAX_GRADIENT_NORM)
    emb_reg = cfg.get("embedding_regularizer", 0.0)  # absent: no regulariser (protocol v1-v5)
    stopper, best_state, curve, lr_curve, decays = fuxictr_stopper(cfg["patience"]), None, [], [], 0
    best_epoch, stopped = 0, False  # 1-based epoch of the best AUC; whether patience (not the cap) ended it
    for epoch in progress(range(cfg["max_epochs"]), desc=arm):
        model.train()
        lr_curve.append(opt.param_groups[0]["lr"])  # the lr this epoch trains with
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(perm), cfg["batch_size"]):
            idx = perm[i : i + cfg["batch_size"]]
            xb, yb = x_tr[idx], y_tr[idx]
            loss = train_step(
                model, opt, lambda xb=xb, yb=yb: batch_loss(arm, model, xb, yb, emb_reg), max_norm
            )
        p_valid = predict(model, data.x_valid)
        val_auc = float(roc_auc_score(data.y_valid, p_valid))
        curve.append(val_auc)
        if on_epoch is not None:
            on_epoch(epoch + 1, p_valid)
        if log is not None:
            log(step=epoch, val_auc=val_auc, train_loss=loss.item(), lr=lr_curve[-1])
        stopped = stopper.update(val_auc)
        if stopper.improved:
            best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch + 1
        elif reduce_lr:
            lr_decay(opt)  # FuxiCTR decays on every non-improving epoch, also the one that stops training
            decays += not stopped
        if stopped:
            break
    model.load_state_dict(best_state)  # restore the best-validation weights (FuxiCTR load_weights)
    p = predict(model, data.x_test)
    return {
        "test_auc": float(roc_auc_score(data.y_test, p)),
        "test_logloss": float(log_loss(data.y_test, np.clip(p, 1e-7, 1 - 1e-7))),
        "val_auc": stopper.best,
        "epochs": len(curve),  # the stopping epoch (== max_epochs when the cap, not patience, ended it)
        "best_epoch": best_epoch,
        "stopped_early": stopped,
        "lr_decays": decays,  # non-improving epochs trained through at a decayed lr (the last one stops)
        "val_curve": curve,
        "lr_curve": lr_curve,
    }
