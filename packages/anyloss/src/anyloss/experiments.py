"""The official tabular protocol: 5-fold stratified CV, Adam 0.01, batch = 5% of the training fold,
threshold 0.5; one network per loss, all trained on the same folds and batches.

One extra network ("bce_val") is BCE trained on 80% of each training fold (the other 20%, stratified,
is a validation part): its decision threshold is the one that maximises F1 on the validation part --
the honest comparison for metric-targeting losses, since much of BCE's F1 deficit on imbalanced data
is a threshold effect.
"""

from __future__ import annotations

import numpy as np
import torch

from anyloss.data import load_split
from anyloss.losses import stacked_losses
from anyloss.model import StackedMLP
from anyloss.optim import KerasAdam
from xentlab.data.tabular import stratified_holdout

THRESHOLDS = np.round(np.linspace(0.01, 0.99, 99), 2)


def binary_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """F1 (minority class 1), balanced accuracy, G-mean and accuracy of hard predictions, with the
    notebooks' conventions (F1 = TP / (TP + (FP + FN)/2), 0 when there is no true positive)."""
    tp = float(((pred == 1) & (y == 1)).sum())
    tn = float(((pred == 0) & (y == 0)).sum())
    fp = float(((pred == 1) & (y == 0)).sum())
    fn = float(((pred == 0) & (y == 1)).sum())
    tpr = tp / (tp + fn) if tp + fn else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return {
        "f1": tp / (tp + 0.5 * (fp + fn)) if tp else 0.0,
        "bacc": 0.5 * (tpr + tnr),
        "gmean": float(np.sqrt(tpr * tnr)),
        "acc": (tp + tn) / len(y),
    }


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold of THRESHOLDS with the highest F1 on (y, p); ties -> the one closest to 0.5."""
    scores = [(binary_metrics(y, (p >= t).astype(int))["f1"], -abs(t - 0.5), t) for t in THRESHOLDS]
    return max(scores)[2]


def run_cv(ds: str, cfg: dict, seed: int) -> list[dict[str, dict[str, float]]]:
    """Train every loss of cfg['losses'] plus bce_val on all CV folds of ``ds`` at once (the folds'
    networks are stacked, see anyloss.model); returns per fold the test metrics per model name.

    Batching: batch = int(batch_frac * n_train) with n_train the smallest training fold (folds differ
    by at most one row); each fold draws its own permutation of its own rows every epoch, truncated to
    that common n_train (at most one row of a fold sits out an epoch).
    """
    names = list(cfg["losses"])
    splits = [load_split(ds, fold=f, n_folds=cfg["n_folds"], split_seed=seed) for f in range(cfg["n_folds"])]
    if splits[0].num_classes != 2:
        raise ValueError(f"{ds}: AnyLoss is binary; this set has {splits[0].num_classes} classes")
    g = len(splits)
    n = min(len(s.x_train) for s in splits)
    xs = [s.x_train for s in splits]
    ys = [s.y_train.float() for s in splits]
    # bce_val: fit on 80% of each training fold, threshold on the other 20%
    holdouts = [stratified_holdout(s.y_train, cfg["val_frac"], seed * 100 + f) for f, s in enumerate(splits)]
    in_fit = []
    for s, (fit_idx, _) in zip(splits, holdouts):
        m = torch.zeros(len(s.x_train), dtype=torch.bool)
        m[fit_idx] = True
        in_fit.append(m)
    # the Keras-port options (fidelity audit; version 3 sets all three to the notebooks' behaviour; a config
    # without them is the version-2 port): He-normal truncated as Keras' (init), Keras' Adam with eps 1e-7 on
    # the uncorrected sqrt(v) (optimizer), N = the nominal batch size also in the last batch (n_loss)
    init, optimizer, n_loss = (
        cfg.get("init", "torch"),
        cfg.get("optimizer", "torch_adam"),
        cfg.get("n_loss", "batch"),
    )
    if optimizer not in ("torch_adam", "keras_adam") or n_loss not in ("batch", "nominal"):
        raise ValueError(
            f"optimizer must be torch_adam|keras_adam and n_loss batch|nominal; got {optimizer}, {n_loss}"
        )
    # bce_val's BatchNorm batch statistics: over its fit rows only (version 4: the hold-out rows that choose
    # its threshold take no part in its training), or over the whole shared batch (versions <= 3)
    bce_val_bn = cfg.get("bce_val_bn", "all_rows")
    if bce_val_bn not in ("all_rows", "fit_rows"):
        raise ValueError(f"bce_val_bn must be all_rows|fit_rows, got {bce_val_bn!r}")
    torch.manual_seed(seed)
    model = StackedMLP(len(names) + 1, splits[0].num_features, hidden=cfg["hidden"], num_groups=g, init=init)
    opt = (KerasAdam if optimizer == "keras_adam" else torch.optim.Adam)(model.parameters(), lr=cfg["lr"])
    batch = max(int(n * cfg["batch_frac"]), 1)  # the notebooks: int(0.05 * N_train)
    n_nominal = float(batch) if n_loss == "nominal" else None
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(cfg["epochs"]):
        # Keras fit() shuffles every epoch; one permutation per fold
        orders = [torch.randperm(len(x), generator=gen)[:n] for x in xs]
        for start in range(0, n, batch):
            idx = [o[start : start + batch] for o in orders]
            xb = torch.stack([x[i] for x, i in zip(xs, idx)])  # [G, B, d]
            yb = torch.stack([y[i] for y, i in zip(ys, idx)])  # [G, B]
            fit_rows = torch.stack([m[i] for m, i in zip(in_fit, idx)])  # [G, B] bool
            mask = fit_rows.to(yb.dtype)
            p = model(xb, last_bn_rows=fit_rows if bce_val_bn == "fit_rows" else None)  # [G, M+1, B]
            loss = stacked_losses(names, yb, p[:, :-1], cfg["L"], n=n_nominal).sum()
            # bce_val: BCE (official form) over the fit rows of each fold's batch
            pv = p[:, -1]
            bce_rows = -(yb * torch.log(pv + 1e-5) + (1 - yb) * torch.log(1 - pv + 1e-5))
            loss = loss + ((bce_rows * mask).sum(1) / mask.sum(1).clamp_min(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    results = []
    with torch.no_grad():
        for f, s in enumerate(splits):
            x_eval = torch.zeros(g, len(s.x_test), s.num_features)
            x_eval[f] = s.x_test  # only group f's networks are read below
            p_test = model(x_eval)[f].numpy()
            x_val = torch.zeros(g, len(holdouts[f][1]), s.num_features)
            x_val[f] = s.x_train[holdouts[f][1]]
            p_val = model(x_val)[f, -1].numpy()
            y_test = s.y_test.numpy()
            out = {nm: binary_metrics(y_test, (p_test[i] >= 0.5).astype(int)) for i, nm in enumerate(names)}
            threshold = best_f1_threshold(s.y_train[holdouts[f][1]].numpy(), p_val)
            out["bce_val"] = binary_metrics(y_test, (p_test[-1] >= threshold).astype(int))
            out["bce_val"]["threshold"] = threshold
            results.append(out)
    return results


def run_datasets(cfg: dict, seed: int) -> dict:
    """5-fold CV on each dataset of cfg['datasets']; fold-averaged metrics per (loss, dataset).

    The folds are re-drawn per seed (split_seed = seed), so seeds are repeats of the CV.
    """
    out: dict = {}
    for ds in cfg["datasets"]:
        per_fold = run_cv(ds, cfg, seed)
        out[f"positive_rate:{ds}"] = load_split(ds, fold=0, n_folds=cfg["n_folds"]).positive_rate
        for model_name in per_fold[0]:
            for metric in per_fold[0][model_name]:
                vals = [f[model_name][metric] for f in per_fold]
                out[f"{metric}_{model_name}:{ds}"] = float(np.mean(vals))
    return out
