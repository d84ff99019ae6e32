"""Normaliser diagnostic: how each reading of the paper's loss normaliser does on held-out data.

The paper (secondary summary, README) balances families by *normalised* losses, but its normaliser was
not read. Two readings give two optimal sampling ratios from the same fits L_i = K_i p_i^-gamma_i:

* ``pH`` (this package's reading): each family divided by its exact entropy rate H_i,
  p* = argmin sum_i w_i K_i p_i^-gamma_i / H_i;
* ``pK`` (the alternative): each family divided by its own loss at p_i = 1, which is K_i at this size, so
  p* = argmin sum_i w_i p_i^-gamma_i depends on gamma alone.

Data cannot tell which normaliser the paper used. The diagnostic trains the held-out larger model at both
p* and scores it on the VALIDATION sample in three ways: Sum_i w_i L_i^val / R_i with R_i = H_i (``H``),
R_i = K_i (``K``) and R_i = 1 (``raw``). ``d_<s> = obj_s(pH) / obj_s(pK) - 1`` (< 0: the package's p* is
lower), next to the small-model law's prediction ``pred_d_<s>``. It has no pass/fail (README, "Normaliser
diagnostic").

The fits repeat the study's gamma design at the larger small size with the same seeds, so for the study's
seeds they are the study's fits bit for bit; the pH held-out run is the study's ``big_pstar`` run (its test
losses are recorded only for that check).
"""

from __future__ import annotations

import numpy as np

from multilingual_scaling.experiment import GAMMA_FLOOR, GAMMA_MIXES, weighted_normalised_loss
from multilingual_scaling.families import family_source, make_world
from multilingual_scaling.law import fit_ratio_law, mixture_objective, optimal_ratios
from multilingual_scaling.shared_runs import shared_run
from multilingual_scaling.train import TrainConfig, train_mixture

READINGS = ("pH", "pK")  # the entropy-normalised reading (the package's) and the own-K reading
SCORINGS = ("H", "K", "raw")  # the normaliser R_i of a score: H_i, K_i, 1


def reading_coefficients(k, entropy, weights) -> dict[str, np.ndarray]:
    """c_i of each reading's objective sum_i c_i p_i^-gamma_i (law.py): c = w K / R with R_i = H_i (pH)
    or R_i = K_i (pK, so c = w: the fitted K_i cancel, and p* depends on gamma alone)."""
    k, h, w = (np.asarray(a, dtype=np.float64) for a in (k, entropy, weights))
    return {"pH": w * k / h, "pK": w * k / k}


def score_normalisers(k, entropy) -> dict[str, np.ndarray]:
    """R_i of each scoring: the entropy rate H_i, the fitted p_i = 1 loss K_i, and 1 (unnormalised)."""
    k, h = np.asarray(k, dtype=np.float64), np.asarray(entropy, dtype=np.float64)
    return {"H": h, "K": k, "raw": np.ones_like(k)}


def relative_difference(a: float, b: float) -> float:
    """a / b - 1 (d_s = obj_s(pH) / obj_s(pK) - 1: negative when pH's loss is lower)."""
    return float(a / b - 1.0)


def run_normaliser(cfg: dict, seed: int, log=None) -> dict:
    """One seed of the diagnostic (see the module docstring); returns a flat metrics dict."""
    world = make_world(cfg["world"])
    names = world.names
    fit_tc = TrainConfig(**cfg["fit"])
    large = TrainConfig(**cfg["large"])
    ent = np.array([family_source(f).entropy_rate for f in world.families])
    w = np.asarray(cfg["weights"], dtype=np.float64)
    out: dict = {}

    # 1. refit gamma_i, K_i at the fit size on the study's gamma design (init = stream seed = seed)
    losses = {}
    for m, p in GAMMA_MIXES.items():
        res = shared_run(cfg["world"], p, fit_tc, seed)  # the study's run on this seed (shared_runs)
        losses[m] = res["losses"]
        if log is not None:
            log(run=f"fit_{m}", ratios=list(p), losses=res["losses"], n=res["n_nonemb"])
    k, gam = np.empty(len(names)), np.empty(len(names))
    for fi, n in enumerate(names):
        f = fit_ratio_law([GAMMA_MIXES[m][fi] for m in GAMMA_MIXES], [losses[m][fi] for m in GAMMA_MIXES])
        k[fi], gam[fi] = f.k, f.gamma
        out[f"gamma_{n}"], out[f"K_{n}"], out[f"r2_{n}"] = f.gamma, f.k, f.r2
    out["fit_n_nonemb"] = res["n_nonemb"]
    out["gamma_floored"] = bool(np.any(gam <= GAMMA_FLOOR))
    gam = np.maximum(gam, GAMMA_FLOOR)  # as the study does

    # 2. each reading's p* (bisection on the Lagrange multiplier, law.optimal_ratios)
    coef = reading_coefficients(k, ent, w)
    pstar = {r: optimal_ratios(coef[r], gam) for r in READINGS}
    for r in READINGS:
        out |= {f"p_{r}_{n}": float(x) for n, x in zip(names, pstar[r])}

    # 3. the held-out larger model at each p*, scored on the validation sample
    norms = score_normalisers(k, ent)
    obj: dict[tuple[str, str], float] = {}
    for r in READINGS:
        # pH is the study's big_pstar run on this seed, so it comes through shared_runs (the study scores the
        # validation sample for it too); pK is this diagnostic's own run
        if r == "pH":
            res = shared_run(cfg["world"], pstar[r], large, seed, score_val=True)
        else:
            res = train_mixture(world, pstar[r], large, seed, score_val=True)
        if log is not None:
            log(run=f"big_{r}", ratios=pstar[r].tolist(), val_losses=res["val_losses"], n=res["n_nonemb"])
        out |= {f"val_{r}_L_{n}": float(x) for n, x in zip(names, res["val_losses"])}
        if r == "pH":  # the study's big_pstar run: test losses only for the reproduction check
            out |= {f"test_pH_L_{n}": float(x) for n, x in zip(names, res["losses"])}
        for s in SCORINGS:
            obj[(r, s)] = weighted_normalised_loss(res["val_losses"], norms[s], w)
            out[f"obj_{s}_{r}"] = obj[(r, s)]
    out["big_n_nonemb"] = res["n_nonemb"]

    # 4. d_s = obj_s(pH) / obj_s(pK) - 1, observed and predicted by the small model's law, where the
    # scoring's c_i = w_i K_i / R_i (law.mixture_objective at the fit size)
    for s in SCORINGS:
        out[f"d_{s}"] = relative_difference(obj[("pH", s)], obj[("pK", s)])
        c = w * k / norms[s]
        out[f"pred_d_{s}"] = relative_difference(mixture_objective(pstar["pH"], c, gam),
                                                 mixture_objective(pstar["pK"], c, gam))  # fmt: skip
    return out


__all__ = ["READINGS", "SCORINGS", "reading_coefficients", "relative_difference", "run_normaliser",
           "score_normalisers"]  # fmt: skip
