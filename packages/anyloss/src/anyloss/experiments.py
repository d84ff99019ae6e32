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

from anyloss.losses import LOSSES, stacked_losses
from anyloss.model import StackedMLP
from xentlab.data.tabular import load_tabular, stratified_holdout

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


def run_fold(split, cfg: dict, seed: int) -> dict[str, dict[str, float]]:
    """Train every loss of cfg['losses'] plus bce_val on one fold; metrics per model name."""
    names = list(cfg["losses"])
    x, y = split.x_train, split.y_train.float()
    n = len(x)
    fit_idx, val_idx = stratified_holdout(split.y_train, cfg["val_frac"], seed)
    in_fit = torch.zeros(n, dtype=torch.bool)
    in_fit[fit_idx] = True
    torch.manual_seed(seed)
    model = StackedMLP(len(names) + 1, split.num_features, hidden=cfg["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    batch = max(int(n * cfg["batch_frac"]), 1)  # the notebooks: int(0.05 * N_train)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(cfg["epochs"]):
        order = torch.randperm(n, generator=gen)  # Keras fit() shuffles every epoch
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            p = model(x[idx])
            yb = y[idx]
            loss = stacked_losses(names, yb, p[:-1], cfg["L"]).sum()
            mask = in_fit[idx]
            if mask.any():  # bce_val sees only the fit part of each batch
                loss = loss + LOSSES["bce"](yb[mask], p[-1][mask])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        p_test = model(split.x_test).numpy()
        p_val = model(x[val_idx])[-1].numpy()
    y_test = split.y_test.numpy()
    out = {name: binary_metrics(y_test, (p_test[i] >= 0.5).astype(int)) for i, name in enumerate(names)}
    threshold = best_f1_threshold(split.y_train[val_idx].numpy(), p_val)
    out["bce_val"] = binary_metrics(y_test, (p_test[-1] >= threshold).astype(int))
    out["bce_val"]["threshold"] = threshold
    return out


def run_datasets(cfg: dict, seed: int) -> dict:
    """5-fold CV on each dataset of cfg['datasets']; fold-averaged metrics per (loss, dataset).

    The folds are re-drawn per seed (split_seed = seed), so seeds are repeats of the CV.
    """
    out: dict = {}
    for ds in cfg["datasets"]:
        per_fold = []
        for fold in range(cfg["n_folds"]):
            split = load_tabular(ds, fold=fold, n_folds=cfg["n_folds"], split_seed=seed)
            per_fold.append(run_fold(split, cfg, seed * 100 + fold))
        out[f"positive_rate:{ds}"] = split.positive_rate
        for model_name in per_fold[0]:
            for metric in per_fold[0][model_name]:
                vals = [f[model_name][metric] for f in per_fold]
                out[f"{metric}_{model_name}:{ds}"] = float(np.mean(vals))
    return out
