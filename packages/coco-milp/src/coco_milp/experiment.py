"""One (condition, seed) unit: train the GNN with one loss, pick the best-validation-loss epoch, evaluate.

Training (train.py::main): Adam, batch 1, the validation loss after every epoch, and the best-validation
checkpoint kept. With `patience` set, training also stops once `patience` epochs in a row did not lower
the validation loss (xentlab.train.early_stopping; the official code has no early stopping and runs up to
5000 epochs, so the cpu protocol needs a stopping rule; `epochs` is then the cap).

Conditions: PS (weighted BCE, no ICC), VCL only (no ICC, alpha = 0), CoCo (VCL + rank + ICC).
Metrics on the test instances (means over instances), against the best known solution x* (the best
solution of the labelling solve):
  auc      ROC-AUC of p_hat vs x* (percent);
  fix_acc  fraction of the k0 lowest-scored variables with x*_j = 0 (k0 = the official SC default 1000 of
           4000 variables, scaled: 25% of the variables; k1 = 0 as in the official SC default);
  top_prec fraction of the k1_report highest-scored variables with x*_j = 1 (a pre-set 10);
  pas_gap / plain_gap  primal gap (obj - best) / |best| of predict-and-search (k0, k1, delta = 20% of
           the fixed variables, as 200/1000) and of plain SCIP, both under the same node budget.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from coco_milp.data import DataConfig, Labelled, load_dataset
from coco_milp.graph import encode
from coco_milp.losses import coco_loss, vcl_loss, weighted_bce
from coco_milp.model import GNNPolicy
from coco_milp.solve import solve_pas, solve_plain
from xentlab.train.early_stopping import EarlyStopping


@dataclass
class RunConfig:
    loss: str = "coco"  # "bce" (PS) | "vcl" | "coco"
    icc: bool = True  # the intra-constraint competitive layer
    data: dict = field(default_factory=dict)  # DataConfig fields
    epochs: int = 20  # the epoch cap (official: 5000)
    lr: float = 1e-3  # official 1e-4 (train.py); the cpu protocol uses 1e-4 (reproduce.py)
    patience: int | None = None  # early stopping on the validation loss; None = run all `epochs`
    emb: int = 64
    depth: int = 2
    tau: float = 0.1
    margin: float = 0.9
    alpha: float = 0.01
    temperature: float = 100.0  # ENERGY_WEIGHT_NORM for SC
    k0_frac: float = 0.25  # 1000 / 4000 (official SC k0 over the SC variable count)
    k1: int = 0  # official SC k1
    delta_frac: float = 0.2  # 200 / 1000 (official SC delta over k0)
    k1_report: int = 10
    # the deterministic budget of plain SCIP and predict-and-search; None = the label cache's plain solve
    # (DataConfig.pas_node_limit nodes, default SCIP), the protocol of the first cpu run
    budget_nodes: int | None = None
    budget_heuristics: str = "default"  # "default" | "off" (SCIP's primal heuristics)
    run_pas: bool = True
    use_cache: bool = True


def _loss(cfg: RunConfig, probs, sols, objs):
    if cfg.loss == "bce":
        return weighted_bce(probs, sols, objs, cfg.temperature)
    if cfg.loss == "vcl":
        return vcl_loss(probs, sols, objs, cfg.tau, cfg.temperature)
    if cfg.loss == "coco":
        return coco_loss(probs, sols, objs, cfg.tau, cfg.margin, cfg.alpha, cfg.temperature)
    raise ValueError(f"unknown loss {cfg.loss!r}: expected 'bce', 'vcl' or 'coco'")


def _tensors(items: list[Labelled]):
    return [
        (
            encode(it.inst),
            torch.tensor(it.sols, dtype=torch.float32),
            torch.tensor(it.objs, dtype=torch.float32),
        )
        for it in items
    ]


def _mean_loss(model, cfg, batches) -> float:
    model.eval()
    with torch.no_grad():
        return float(np.mean([_loss(cfg, torch.sigmoid(model(g)), s, o).item() for g, s, o in batches]))


@dataclass
class TrainResult:
    model: GNNPolicy  # with the best-validation-loss weights loaded, in eval mode
    best_val: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool  # the patience rule fired before the epoch cap
    curve: list  # [train loss, validation loss] per epoch


def train(cfg: RunConfig, data: dict, seed: int, log=None, progress=None) -> TrainResult:
    """train.py::main on the train / val splits only (the test split is never read here)."""
    train_b, val_b = _tensors(data["train"]), _tensors(data["val"])
    torch.manual_seed(seed)
    model = GNNPolicy(emb=cfg.emb, depth=cfg.depth, icc=cfg.icc)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    stopper = EarlyStopping(cfg.patience) if cfg.patience is not None else None
    best_val, best_epoch, best_state, curve, stopped = float("inf"), -1, None, [], False
    epochs = range(cfg.epochs) if progress is None else progress(range(cfg.epochs), desc="epochs")
    for epoch in epochs:
        model.train()
        tr = []
        for i in rng.permutation(len(train_b)):  # batch size 1 (official SC setting)
            g, s, o = train_b[i]
            loss = _loss(cfg, torch.sigmoid(model(g)), s, o)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tr.append(loss.item())
        v = _mean_loss(model, cfg, val_b)
        curve.append([float(np.mean(tr)), v])
        if log is not None:
            log(step=epoch, train_loss=float(np.mean(tr)), val_loss=v)
        if v < best_val:  # train.py keeps the best validation loss checkpoint
            best_val, best_epoch, best_state = v, epoch, copy.deepcopy(model.state_dict())
        if stopper is not None and stopper.update(v) and epoch + 1 < cfg.epochs:
            stopped = True
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_val, best_epoch, len(curve), stopped, curve)


def run(cfg: RunConfig, seed: int, log=None, progress=None) -> dict:
    if cfg.loss not in ("bce", "vcl", "coco"):
        raise ValueError(f"unknown loss {cfg.loss!r}: expected 'bce', 'vcl' or 'coco'")
    data = load_dataset(DataConfig(**cfg.data), use_cache=cfg.use_cache)
    tr = train(cfg, data, seed, log=log, progress=progress)
    return {
        **evaluate(tr.model, cfg, data["test"]),
        "best_val_loss": tr.best_val,
        "best_epoch": tr.best_epoch,
        "epochs_run": tr.epochs_run,
        "stopped_early": tr.stopped_early,
        "curve": tr.curve,
    }


def evaluate(model, cfg: RunConfig, test: list[Labelled]) -> dict:
    dcfg = DataConfig(**cfg.data)
    aucs, fix, top, pas, plain = [], [], [], [], []
    for it in test:
        with torch.no_grad():
            p = torch.sigmoid(model(encode(it.inst))).numpy().astype(np.float64)
        x_star = it.sols[0]
        n = len(p)
        k0 = int(round(cfg.k0_frac * n))
        order = np.argsort(p, kind="stable")
        aucs.append(100.0 * roc_auc_score(x_star, p))
        fix.append(100.0 * float(np.mean(x_star[order[:k0]] == 0)))
        top.append(100.0 * float(np.mean(x_star[order[::-1][: cfg.k1_report]] == 1)))
        if cfg.run_pas:
            delta = int(round(cfg.delta_frac * (k0 + cfg.k1)))
            cached = (dcfg.pas_node_limit, "default")  # the plain solve stored with the test labels
            if cfg.budget_nodes is None or (cfg.budget_nodes, cfg.budget_heuristics) == cached:
                r = solve_pas(it.inst, p, k0, cfg.k1, delta, dcfg.pas_node_limit)
                plain_obj = it.plain_obj
            else:
                budget = (cfg.budget_nodes, cfg.budget_heuristics)
                r = solve_pas(it.inst, p, k0, cfg.k1, delta, *budget)
                plain_obj = solve_plain(it.inst, *budget).obj  # deterministic: same for every unit
            pas.append(primal_gap(r.obj, it.best_obj))
            plain.append(primal_gap(plain_obj, it.best_obj))
    out = {"auc": float(np.mean(aucs)), "fix_acc": float(np.mean(fix)), "top_prec": float(np.mean(top))}
    if cfg.run_pas:
        out.update(
            pas_gap=100.0 * float(np.mean(pas)),
            plain_gap=100.0 * float(np.mean(plain)),
            pas_gap_nonzero=float(np.mean(np.array(pas) > 1e-9)),
            plain_gap_nonzero=float(np.mean(np.array(plain) > 1e-9)),
        )
    return out


def primal_gap(obj: float, best: float) -> float:
    """(obj - best) / |best|, clipped to [0, 1]; 1 when no solution was found (obj = inf)."""
    if not np.isfinite(obj):
        return 1.0
    return float(min(1.0, max(0.0, (obj - best) / max(abs(best), 1e-9))))
