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

The budget: fixed in the config at cpu scale (chosen beforehand by scripts/select_budget.py); with
`budget_select` (--scale full) the unit first runs the budget rule on probe instances of the data set's
size (coco_milp.budget; cached, so only the first unit pays for it), uses the chosen budget, and reports
it (`budget_nodes`, `budget_heuristics_off`, the whole selection as the `budget_selection` artifact). If no
budget qualifies, predict-and-search is not run, so the PaS metrics and claims are not judged.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from coco_milp.budget import BudgetRule, cached_selection, plain_objectives, primal_gap, select_budget
from coco_milp.data import DataConfig, Labelled, load_dataset
from coco_milp.graph import encode
from coco_milp.losses import coco_loss, vcl_loss, weighted_bce
from coco_milp.model import GNNPolicy
from coco_milp.solve import solve_pas
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
    # BudgetRule fields (ladder, max_mean_cpu_s, n_probes, probe_seed): choose the budget on probe
    # instances before training (--scale full); None = the budget above (cpu: chosen beforehand)
    budget_select: dict | None = None
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


NO_BUDGET = (
    "coco-milp: no budget of the ladder qualified on the probe instances (rule (i)-(iii), README "
    "'--scale full'), so predict-and-search is not run: the PaS claims are not judged (their metrics "
    "are not measured). Ladder: {rows}"
)


def choose_budget(cfg: RunConfig) -> tuple[RunConfig, dict]:
    """Run (or read from the cache) the budget rule on probe instances and put its outcome into the
    config: the chosen budget, or ``run_pas=False`` when none qualifies. Returns (config, selection)."""
    if cfg.budget_nodes is not None:
        raise ValueError("set either budget_nodes (a fixed budget) or budget_select (choose one), not both")
    dcfg = DataConfig(**cfg.data)
    rule = BudgetRule(**cfg.budget_select)
    sel = cached_selection(dcfg, rule) if cfg.use_cache else {**select_budget(dcfg, rule), "cached": False}
    chosen = sel["chosen"]
    if chosen is None:
        rows = [(r["nodes"], r["heuristics"], f"{r['n_nonzero']}/{rule.n_probes} nonzero",
                 f"{r['n_found']} found", f"{r['mean_cpu_s']} CPU-s") for r in sel["ladder"]]  # fmt: skip
        print(NO_BUDGET.format(rows=rows), file=sys.stderr, flush=True)
        return dataclasses.replace(cfg, run_pas=False), sel
    return dataclasses.replace(cfg, budget_nodes=chosen["nodes"], budget_heuristics=chosen["heuristics"]), sel


def run(cfg: RunConfig, seed: int, log=None, progress=None) -> dict:
    if cfg.loss not in ("bce", "vcl", "coco"):
        raise ValueError(f"unknown loss {cfg.loss!r}: expected 'bce', 'vcl' or 'coco'")
    selection = None
    if cfg.budget_select is not None:  # first, so that a run without a budget knows before training
        cfg, selection = choose_budget(cfg)
    data = load_dataset(DataConfig(**cfg.data), use_cache=cfg.use_cache)
    tr = train(cfg, data, seed, log=log, progress=progress)
    out = {
        **evaluate(tr.model, cfg, data["test"]),
        "best_val_loss": tr.best_val,
        "best_epoch": tr.best_epoch,
        "epochs_run": tr.epochs_run,
        "stopped_early": tr.stopped_early,
        "curve": tr.curve,
    }
    if selection is not None:  # the budget used, as metrics (result.json / report.md) and in full
        chosen = selection["chosen"]
        out["budget_qualified"] = chosen is not None
        if chosen is not None:
            out["budget_nodes"] = chosen["nodes"]
            out["budget_heuristics_off"] = chosen["heuristics"] == "off"
        out["budget_selection"] = selection
    return out


def evaluate(model, cfg: RunConfig, test: list[Labelled]) -> dict:
    dcfg = DataConfig(**cfg.data)
    budget = (dcfg.pas_node_limit, "default")  # the plain solve stored with the test labels
    if cfg.budget_nodes is not None:
        budget = (cfg.budget_nodes, cfg.budget_heuristics)
    plain_objs = [it.plain_obj for it in test]
    if cfg.run_pas and budget != (dcfg.pas_node_limit, "default"):
        # another budget than the stored one: plain SCIP is deterministic, so solve once (cached)
        plain_objs = plain_objectives(dcfg, [it.inst for it in test], *budget, use_cache=cfg.use_cache)
    aucs, fix, top, pas, plain = [], [], [], [], []
    for it, plain_obj in zip(test, plain_objs):
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
            r = solve_pas(it.inst, p, k0, cfg.k1, delta, *budget)
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
