"""The scaling-law fits of one seed's ladder, from the runner's per-seed metrics.

Each model size is one experiment of reproduce.py; its unit reports (among others) ``n_nonemb``,
``final_loss`` (the TEST loss of its best-validation checkpoint, after training to convergence),
``is_heldout``, ``entropy_rate``, ``marginal_entropy``, its stopping point and its validation learning
curve as ``curve_loss_00``, ``curve_loss_01``, ... at the steps ``train.eval_steps(cap_steps, n_evals)``
that it reached (``n_curve`` of them; see ``ladder``). This module
turns one seed's ``{"<experiment>/<metric>": value}`` into the paper's three fits:

* L(N) = L_inf + (N0/N)^alpha_N on the converged test losses of the FIT sizes (the held-out size excluded),
  then the prediction for the held-out size and the comparison of L_inf with the exact entropy rate
  (Henighan et al. 2020: L_inf estimates S(True), the power-law term D_KL(True||Model));
* L(C) = L_inf + (C0/C)^alpha_C on the compute-efficient frontier of all the (validation) learning
  curves, each ending where its run stopped;
* N_opt(C) proportional to C^beta from the frontier's size changes (``frontier.n_opt_steps``).

L(C) is fitted on the frontier points whose loss is below the source's marginal (unigram) entropy:
above it the models are still in the initial transient (they have not yet learned even the symbol
frequencies, and the curves sit on a plateau near ln V), which no power law describes. The window is
fixed by this rule, not chosen from the results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ar_scaling.frontier import Curve, envelope, n_opt_steps
from ar_scaling.train import eval_steps
from xentlab.scaling import bootstrap_power_law_plus_constant, fit_power_law, fit_power_law_plus_constant

_CACHE: dict[tuple, dict] = {}


def ladder(m: Mapping[str, float]) -> list[dict]:
    """The sizes present in one seed's metrics: name, n, final loss (the test loss of the best-validation
    checkpoint), held-out flag, and the validation learning curve up to where the run stopped.

    The curve is the ``n_curve`` reached points of the log grid ``eval_steps(cap, n_evals)`` over the
    token cap, then the stopping point itself (``tokens``, ``stop_val_loss``) when it lies beyond them,
    so every curve ends at its own C = 6 N D_stop.
    """
    names = sorted({k.split("/")[0] for k in m if k.endswith("/n_nonemb") and m[k] is not None})
    if not names:
        raise KeyError("no model-size experiments in these metrics")
    out = []
    for e in names:
        n = float(m[f"{e}/n_nonemb"])
        per_step = int(m[f"{e}/tokens_per_step"])
        grid = eval_steps(int(m[f"{e}/cap_tokens"]) // per_step, int(m[f"{e}/n_evals"]))
        n_curve = int(m[f"{e}/n_curve"])
        steps = list(grid[:n_curve])
        loss = [m[f"{e}/curve_loss_{i:02d}"] for i in range(n_curve)]
        stop = int(m[f"{e}/tokens"]) // per_step
        if stop > steps[-1]:
            steps.append(stop)
            loss.append(m[f"{e}/stop_val_loss"])
        compute = 6.0 * n * per_step * np.asarray(steps, dtype=np.float64)  # C = 6 N D
        out.append({"name": e, "n": n, "final_loss": float(m[f"{e}/final_loss"]),
                    "heldout": bool(m[f"{e}/is_heldout"]), "compute": compute,
                    "curve": np.asarray(loss, dtype=np.float64)})  # fmt: skip
    return sorted(out, key=lambda r: r["n"])


def analyse(m: Mapping[str, float], n_boot: int = 100) -> dict:
    """All fits of one seed (memoised: every Derived metric of a seed reads the same analysis)."""
    # the key holds n_boot too: the bootstrap range depends on it, so a call with another n_boot must not
    # get an earlier call's answer (the runner and the figures both use the default 100)
    key = (
        n_boot,
        *sorted((k, v) for k, v in m.items() if "/" in k and not k.startswith(("lN/", "lC/", "nopt/"))),
    )
    if key in _CACHE:
        return _CACHE[key]
    rows = ladder(m)
    first = rows[0]["name"]
    h = float(m[f"{first}/entropy_rate"])
    h0 = float(m[f"{first}/marginal_entropy"])
    fit_rows = [r for r in rows if not r["heldout"]]
    held = [r for r in rows if r["heldout"]]
    xs = np.array([r["n"] for r in fit_rows])
    ys = np.array([r["final_loss"] for r in fit_rows])
    out: dict[str, float] = {"entropy_rate": h}

    fit = fit_power_law_plus_constant(xs, ys)
    boot = bootstrap_power_law_plus_constant(xs, ys, n_boot=n_boot, seed=0)
    out.update({"lN/l_inf": fit.l_inf, "lN/alpha": fit.alpha, "lN/log10_n0": math.log10(fit.x0),
                "lN/r2": fit.r2, "lN/rmse_log": fit.rmse_log,
                "lN/l_inf_rel_err": (fit.l_inf - h) / h, "lN/l_inf_abs_rel_err": abs(fit.l_inf - h) / h,
                "lN/l_inf_boot_lo": boot["l_inf_ci95"][0], "lN/l_inf_boot_hi": boot["l_inf_ci95"][1]})  # fmt: skip
    if held:
        r = held[-1]
        pred = fit.predict(r["n"])
        out.update({"lN/heldout_n": r["n"], "lN/heldout_obs": r["final_loss"], "lN/heldout_pred": pred,
                    "lN/heldout_rel_err": (pred - r["final_loss"]) / r["final_loss"],
                    "lN/heldout_abs_rel_err": abs(pred - r["final_loss"]) / r["final_loss"]})  # fmt: skip

    front = envelope([Curve(r["n"], r["compute"], r["curve"]) for r in rows])
    win = front.loss < h0
    out["lC/n_points"] = float(win.sum())
    if win.sum() >= 3:
        fc = fit_power_law_plus_constant(front.compute[win], front.loss[win])
        out.update({"lC/l_inf": fc.l_inf, "lC/alpha": fc.alpha, "lC/r2": fc.r2,
                    "lC/l_inf_rel_err": (fc.l_inf - h) / h})  # fmt: skip
    cs, ns = n_opt_steps(front)
    out["nopt/n_steps"] = float(len(cs))
    if len(cs) >= 2 and np.ptp(np.log(cs)) > 0:
        po = fit_power_law(cs, ns)
        out.update({"nopt/beta": po.beta, "nopt/r2": po.r2})
    _CACHE[key] = out
    return out


def derived_value(m: Mapping[str, float], name: str) -> float:
    """One number of the analysis (NaN when it is undefined for this seed, e.g. < 2 frontier steps)."""
    return float(analyse(m).get(name, math.nan))
