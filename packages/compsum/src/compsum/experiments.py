"""The three experiments of the package: the bound check, the clean comparison of the family, and
adversarial training. Each ``run_*`` takes a config dict and a seed and returns a flat result dict."""

from __future__ import annotations

import time

import numpy as np
import torch

from compsum.adversarial import AttackConfig, adv_comp_sum_loss, pgd_at_loss, trades_loss
from compsum.bounds import check_bound, regrets_random_scores, regrets_worst_ties
from compsum.losses import comp_sum_loss
from xentlab.attacks import robust_accuracy
from xentlab.data.tabular import load_tabular, stratified_holdout
from xentlab.models.mlp import build_mlp
from xentlab.train.minibatch import fit_epochs, predict


def tau_key(tau: float) -> str:
    """Metric-name form of tau: 0 -> 'tau0', 0.5 -> 'tau0p5'."""
    return "tau" + f"{tau:g}".replace(".", "p")


# ----------------------------------------------------------------------------- bound check
def run_bound(cfg: dict, seed: int) -> dict:
    """Sample conditional distributions p ~ Dirichlet(alpha) and score vectors; count violations of
    T_tau(dC_01) <= dC_tau and record the tightness ratio per (tau, n)."""
    rng = np.random.default_rng(seed)
    out: dict = {}
    for tau in cfg["taus"]:
        total_viol, total = 0, 0
        for n in cfg["ns"]:
            ratios = []
            for alpha in cfg["alphas"]:
                p = rng.dirichlet(np.full(n, alpha), size=cfg["samples"])
                p = np.maximum(p, 1e-12)  # keep log/pow finite; renormalised below
                p /= p.sum(axis=1, keepdims=True)
                scale = rng.choice([0.1, 1.0, 5.0], size=(cfg["samples"], 1))
                logits = rng.normal(size=(cfg["samples"], n)) * scale
                for d01, dtau in (regrets_random_scores(p, logits, tau), regrets_worst_ties(p, tau)):
                    r = check_bound(d01, dtau, tau, n, tol=cfg["tol"])
                    total_viol += r["violations"]
                    total += r["n_samples"]
                    ratios.append(r["min_ratio"])
            out[f"ratio_n{n}_{tau_key(tau)}"] = float(np.nanmin(ratios))
        out[f"violations_{tau_key(tau)}"] = total_viol
        out[f"samples_{tau_key(tau)}"] = total
    out["violations_total"] = sum(v for k, v in out.items() if k.startswith("violations_tau"))
    out["tight_ratio_n2_worst"] = max(out[f"ratio_n2_{tau_key(t)}"] for t in cfg["taus"])
    return out


# ----------------------------------------------------------------------------- clean comparison
def _train_classifier(split, cfg: dict, loss_fn, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_mlp(split.num_features, cfg["hidden"], split.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    fit_epochs(
        model, opt, split.x_train, split.y_train,
        lambda m, xb, yb, _idx: loss_fn(m(xb), yb),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
    )  # fmt: skip
    return model


def run_clean(cfg: dict, seed: int) -> dict:
    """Train the same MLP with each l_tau on one dataset; test accuracy per tau.

    The test fold is fold ``seed % n_folds`` of the fixed stratified folds, so seeds differ in data
    split as well as initialisation, and all taus of one seed share both (paired comparison).
    """
    split = load_tabular(cfg["dataset"], fold=seed % cfg["n_folds"], n_folds=cfg["n_folds"])
    if cfg.get("max_train"):
        split = _subsample(split, cfg["max_train"], seed)
    out: dict = {"num_classes": split.num_classes}
    curves = {}
    for tau in cfg["taus"]:
        t0 = time.process_time()
        model = _train_classifier(split, cfg, lambda lg, yb, tau=tau: comp_sum_loss(lg, yb, tau), seed)
        acc = float((predict(model, split.x_test).argmax(1) == split.y_test).float().mean())
        out[f"acc_{tau_key(tau)}"] = acc
        out[f"cpu_s_{tau_key(tau)}"] = time.process_time() - t0
        curves[tau_key(tau)] = acc
    out["acc_by_tau"] = curves  # artifact for the figure
    return out


def _subsample(split, n: int, seed: int):
    from dataclasses import replace

    if n >= len(split.x_train):
        return split
    keep, _ = stratified_holdout(split.y_train, 1 - n / len(split.x_train), seed)
    return replace(split, x_train=split.x_train[keep], y_train=split.y_train[keep])


# ----------------------------------------------------------------------------- adversarial
def _digits01(fold: int, n_folds: int):
    """Digits with pixels scaled to [0, 1] (the L_inf threat model needs a fixed pixel range)."""
    from dataclasses import replace

    s = load_tabular("digits", fold=fold, n_folds=n_folds, standardize_features=False)
    return replace(s, x_train=s.x_train / 16.0, x_test=s.x_test / 16.0)


def run_adversarial(cfg: dict, seed: int) -> dict:
    """PGD-AT, TRADES (``betas``) and ADV-COMP-SUM (``nus``) on digits; PGD-40 evaluation.

    Hyper-parameters (beta, nu) are chosen on a validation part carved from the training fold by the
    same rule for both methods (highest validation clean + PGD-40 accuracy; ties go to the smaller
    weight, the first in grid order). Only the chosen model of each method is evaluated on the test
    fold (three test evaluations per seed), so no test number of an unchosen variant exists to look at.
    """
    split = _digits01(seed % cfg["n_folds"], cfg["n_folds"])
    keep, val = stratified_holdout(split.y_train, cfg["val_frac"], seed)
    x_tr, y_tr = split.x_train[keep], split.y_train[keep]
    x_val, y_val = split.x_train[val], split.y_train[val]
    train_attack = AttackConfig(**cfg["train_attack"])
    ev = cfg["eval_attack"]

    def evaluate(model, x, y):
        return robust_accuracy(
            model, x, y, eps=ev["eps"], step_size=ev["step_size"], steps=ev["steps"],
            clamp=(0.0, 1.0), seed=seed,
        )  # fmt: skip

    def fit(loss):
        torch.manual_seed(seed)
        model = build_mlp(split.num_features, cfg["hidden"], split.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        fit_epochs(
            model, opt, x_tr, y_tr, lambda m, xb, yb, _i: loss(m, xb, yb),
            epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
        )  # fmt: skip
        return model

    out: dict = {}
    methods = {"pgdat": {None: lambda m, xb, yb: pgd_at_loss(m, xb, yb, train_attack)}}
    methods["trades"] = {
        b: (lambda m, xb, yb, b=b: trades_loss(m, xb, yb, train_attack, beta=b)) for b in cfg["betas"]
    }
    methods["acs"] = {
        nu: (lambda m, xb, yb, nu=nu: adv_comp_sum_loss(m, xb, yb, train_attack, cfg["tau"], nu))
        for nu in cfg["nus"]
    }
    grid = {}
    for name, variants in methods.items():
        best = None
        for hp, loss in variants.items():
            t0 = time.process_time()
            model = fit(loss)
            val_clean, val_rob = evaluate(model, x_val, y_val)
            grid[f"{name}_{hp}"] = {"val": [val_clean, val_rob], "cpu_s": time.process_time() - t0}
            score = val_clean + val_rob
            if best is None or score > best[0]:  # strict: a tie keeps the earlier (smaller) weight
                best = (score, hp, model)
        _, hp, model = best
        # the test fold, once per method, on the model the validation rule chose
        out[f"{name}_clean"], out[f"{name}_robust"] = evaluate(model, split.x_test, split.y_test)
        if hp is not None:
            out[f"{name}_chosen"] = float(hp)
    out["grid"] = grid  # artifact: every variant's validation numbers (no test numbers by design)
    return out
