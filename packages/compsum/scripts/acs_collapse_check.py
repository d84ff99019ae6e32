"""Diagnostic (chooses nothing): why ADV-COMP-SUM with nu >= 3 collapses to a constant predictor on digits.

    OMP_NUM_THREADS=1 uv run --package compsum packages/compsum/scripts/acs_collapse_check.py

Argument (README, "Why nu >= 3 collapses"). Take any network g and the path h_s = c + s g with c = log of
the training class prior (the best constant) and s >= 0: scaling the head's weights and setting its bias
to c + s b stays inside the MLP family. Along it the ADV-COMP-SUM objective (tau = 1) is

    f(s) = E[CE(c + s g(x), y)] + nu * s * R(g),   R(g) = E sup_{x'} ||Dbar_g(x', y) - Dbar_g(x, y)||_2,

because the score differences do not see c and the smooth term is 1-homogeneous in them. f is convex in
s, with f'(0) = -E[g_y(x) - sum_k pi_k g_k(x)] + nu R(g). So the constant predictor (s = 0) beats every
scaled copy of g iff nu >= r(g) = E[g_y - pi . g] / R(g), the critical nu of g. TRADES' KL is O(s^2) at
s = 0 and has no such threshold.

What this script measures, on the TRAINING part of each seed's fold only (the validation part and the
test fold are not read): for networks trained exactly as in reproduce.py's cpu `adversarial` experiment
(plain CE, PGD-AT, TRADES beta = 6, ADV-COMP-SUM nu in {0.1, 0.3, 1}), r(g), with R(g) estimated by PGD-40
(step 0.01, TRADES' start, pixels clamped to [0, 1]) on the smooth term. PGD gives a lower bound on the
sup, so the printed r(g) is an upper bound on the true one. Prediction written in the README before the
run: every r(g) lies below 3 (so at nu = 3 the constant predictor beats each of these networks along its
own scaling path) and the ADV-COMP-SUM nu = 1 network has r(g) > 1 (it beats the constant at nu = 1).

Seeds 0, 1, 2; writes results/collapse_check.json (a diagnostic, not part of reproduce.py's claims).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

PKG = Path(__file__).parents[1]
SEEDS = (0, 1, 2)
R_ATTACK = {"eps": 0.1, "step_size": 0.01, "steps": 40}  # the sup of the smooth term, as PGD-40 evaluation


def _models(cfg: dict):
    from compsum.adversarial import AttackConfig, adv_comp_sum_loss, pgd_at_loss, trades_loss

    att = AttackConfig(**cfg["train_attack"])
    return {
        "ce": lambda m, xb, yb: F.cross_entropy(m(xb), yb),
        "pgdat": lambda m, xb, yb: pgd_at_loss(m, xb, yb, att),
        "trades_6": lambda m, xb, yb: trades_loss(m, xb, yb, att, beta=6.0),
        **{
            f"acs_{nu:g}": (lambda m, xb, yb, nu=nu: adv_comp_sum_loss(m, xb, yb, att, cfg["tau"], nu))
            for nu in (0.1, 0.3, 1.0)
        },
    }


@torch.no_grad()
def _margin_slope(model, x, y, prior) -> float:
    """E[g_y(x) - sum_k pi_k g_k(x)]: minus the CE slope at s = 0 along h_s = log(pi) + s g."""
    g = model(x)
    return float((g.gather(1, y[:, None]).squeeze(1) - g @ prior).mean())


def _smooth_sup(model, x, y, seed: int) -> float:
    """R(g): mean over examples of the PGD-40 maximum of ||Dbar_g(x', y) - Dbar_g(x, y)||_2."""
    from compsum.losses import smooth_term

    from xentlab.attacks import pgd_linf

    model.eval()
    with torch.no_grad():
        clean = model(x)
    gen = torch.Generator().manual_seed(seed)
    x_adv = pgd_linf(
        model, x, y, **R_ATTACK, objective=lambda za, yy: smooth_term(za, clean, yy).sum(),
        random_start="normal", clamp=(0.0, 1.0), generator=gen,
    )  # fmt: skip
    with torch.no_grad():
        return float(smooth_term(model(x_adv), clean, y).mean())


@torch.no_grad()
def _objective(model, x, y, nu: float, r_sup: float) -> float:
    """f(1) = E[CE(g(x), y)] + nu R(g): the network's own ADV-COMP-SUM objective (tau = 1)."""
    return float(F.cross_entropy(model(x), y)) + nu * r_sup


def run_seed(seed: int) -> dict:
    sys.path.insert(0, str(PKG))
    import reproduce
    from compsum.experiments import _digits01

    from xentlab.data.tabular import stratified_holdout
    from xentlab.models.mlp import build_mlp
    from xentlab.train.minibatch import fit_epochs

    torch.set_num_threads(1)
    cfg = reproduce.ADVERSARIAL["cpu"]
    split = _digits01(seed % cfg["n_folds"], cfg["n_folds"])
    keep, _val = stratified_holdout(split.y_train, cfg["val_frac"], seed)  # same split as the experiment
    x, y = split.x_train[keep], split.y_train[keep]
    prior = torch.bincount(y, minlength=split.num_classes).float() / len(y)
    const = float(-(prior * prior.log()).sum())  # CE of the best constant predictor log(prior): H(prior)
    out = {"seed": seed, "n_train": len(y), "constant_objective": const, "models": {}}
    for name, loss in _models(cfg).items():
        t0 = time.process_time()
        torch.manual_seed(seed)
        model = build_mlp(split.num_features, cfg["hidden"], split.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        fit_epochs(model, opt, x, y, lambda m, xb, yb, _i, loss=loss: loss(m, xb, yb),
                   epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed)  # fmt: skip
        model.eval()
        slope, r_sup = _margin_slope(model, x, y, prior), _smooth_sup(model, x, y, seed)
        out["models"][name] = {
            "margin_slope": slope, "smooth_sup": r_sup, "critical_nu": slope / r_sup,
            "objective_nu1": _objective(model, x, y, 1.0, r_sup),
            "objective_nu3": _objective(model, x, y, 3.0, r_sup),
            "train_acc": float((model(x).argmax(1) == y).float().mean()), "cpu_s": time.process_time() - t0,
        }  # fmt: skip
        print(seed, name, {k: round(v, 4) for k, v in out["models"][name].items()}, flush=True)
    return out


def main() -> None:
    t0 = time.process_time()
    per_seed = [run_seed(s) for s in SEEDS]
    names = list(per_seed[0]["models"])
    summary = {
        n: {
            k: [p["models"][n][k] for p in per_seed]
            for k in ("critical_nu", "objective_nu1", "objective_nu3")
        }
        for n in names
    }
    worst = max(max(v["critical_nu"]) for v in summary.values())
    result = {
        "argument": "constant beats the scaling path of g iff nu >= critical_nu(g) = E[g_y - pi.g] / R(g)",
        "r_attack": R_ATTACK, "seeds": list(SEEDS), "per_seed": per_seed, "summary": summary,
        "max_critical_nu": worst, "constant_objective": [p["constant_objective"] for p in per_seed],
        "prediction_all_below_3": worst < 3, "prediction_acs1_above_1": min(summary["acs_1"]["critical_nu"]) > 1,
        "cpu_s": time.process_time() - t0,
    }  # fmt: skip
    path = PKG / "results" / "collapse_check.json"
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("max_critical_nu", "prediction_all_below_3",
                                             "prediction_acs1_above_1", "cpu_s")}))  # fmt: skip
    print(
        {n: [round(v, 3) for v in s["critical_nu"]] for n, s in summary.items()},
        "ln10 =",
        round(math.log(10), 4),
    )


if __name__ == "__main__":
    main()
