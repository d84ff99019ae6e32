"""The lam diagnostic (not a claim): refit the law for each momentum factor lam, select lam by the fit's own
objective, and score the held-out schedules with it. Protocol v3 in the README.

The areas depend on lam: S2's momentum remembers about 1 / (1 - lam) steps, so the largest S2 on the fit
points grows roughly like 1 / (1 - lam) (0.09 at lam = 0.9, 7.6 at lam = 0.999 with T = 5000). A fixed C start
therefore cannot suit every lam: the v2 grid's C = 0.5 predicted a negative loss at every start for
lam = 0.999, where the objective is a constant (law.OUT_OF_DOMAIN) and L-BFGS-B cannot move. The v3 rule
scales the C starts by the data so that C * S2 spans [0, kappa] at the start, at every lam and every T:

    C_start = min(kappa / max_j S2_j, C's upper bound),   kappa in KAPPAS.

Validity: pred_j = L0 + A S1_j^-alpha - C S2_j >= L0 - C max S2 >= L0 - kappa > 0 whenever every kappa is
below the smallest L0 start (A >= 0, S1 > 0), so every start has a finite objective.

It needs only each schedule's post-warm-up eval points (steps, validation loss), which the training units
store, and the per-step lr, which is recomputed from the config; so it runs on stored curves, with no training.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from lr_annealing_scaling.areas import annealing_areas
from lr_annealing_scaling.law import BOUNDS, OUT_OF_DOMAIN, LawParams, fit_law, law_objective, mape
from lr_annealing_scaling.schedules import make_schedule

# v3 start grid: the v2 grid's L0, A and alpha starts, and C starts scaled per lam (README, protocol v3)
BASE_GRID = {"l0": (1.0, 2.0), "a": (2.0,), "alpha": (0.2, 0.4, 0.6, 1.0)}
# C * max S2 at the start, in nats: the two ends of the range the v2 grid's C = 0.5 covered where it was valid
# (0.045 at lam = 0.9 to 0.89 at lam = 0.995); both below the smallest L0 start (1), as validity needs
KAPPAS = (0.05, 0.5)
# the v2 grid (a fixed C = 0.5), kept to show what it did
V2_GRID = {**BASE_GRID, "c": (0.5,)}


def scaled_grid(s2_fit, kappas: Sequence[float] = KAPPAS, base: Mapping = BASE_GRID) -> dict:
    """The v3 start grid for one lam: ``base`` plus C starts kappa / max(S2 on the fit points), clipped to C's
    upper bound. Raises if some kappa is not below the smallest L0 start (then a start could be invalid)."""
    s2_fit = np.asarray(s2_fit, dtype=np.float64)
    if s2_fit.size == 0 or not np.all(np.isfinite(s2_fit)):
        raise ValueError("s2_fit must be a non-empty finite array")
    if not kappas or min(kappas) <= 0 or max(kappas) >= min(base["l0"]):
        raise ValueError(f"every kappa must be in (0, min L0 start = {min(base['l0'])}), got {tuple(kappas)}")
    top = float(s2_fit.max())
    # max S2 <= 0 (no annealing on the fit points): -C * S2 >= 0, so any C >= 0 is valid; use kappa itself
    scale = top if top > 0 else 1.0
    c_max = BOUNDS["c"][1]
    return {**base, "c": tuple(min(k / scale, c_max) for k in kappas)}


def start_objectives(s1, s2, loss, grid: Mapping) -> np.ndarray:
    """The objective at every start of ``grid`` (law.OUT_OF_DOMAIN where the start predicts a loss <= 0)."""
    s1, s2 = np.asarray(s1, dtype=np.float64), np.asarray(s2, dtype=np.float64)
    log_loss = np.log(np.asarray(loss, dtype=np.float64))
    names = ("l0", "a", "alpha", "c")
    return np.array([law_objective(np.array(t), s1, s2, log_loss)
                     for t in itertools.product(*(grid[k] for k in names))])  # fmt: skip


def seed_areas(train: Mapping, steps: Mapping[str, np.ndarray], lam: float) -> dict[str, tuple]:
    """(S1, S2) of each schedule at its eval steps (1-based), from the per-step lr of the train config."""
    out = {}
    for name, st in steps.items():
        lr = make_schedule(name, train["steps"], train["peak_lr"], train["warmup"], train["final_frac"])
        s1, s2 = annealing_areas(lr, lam=lam, warmup=train["warmup"])
        idx = np.asarray(st) - 1
        out[name] = (s1[idx], s2[idx])
    return out


def lam_diagnostic(curves: Mapping[str, Mapping], train: Mapping, lam_grid: Sequence[float],
                   fit_on: Sequence[str], held_out: Sequence[str], *, rule: str = "v3",
                   reference: LawParams | None = None, reference_lam: float | None = None) -> dict:  # fmt: skip
    """One seed's diagnostic from its stored curves ({schedule: {"steps", "loss"}}, post-warm-up points).

    For each lam: S1/S2 per step, the law refitted on the pooled ``fit_on`` points (start grid ``rule``:
    "v3" scaled C starts, "v2" the fixed C = 0.5), and the mean held-out MAPE. lam is then selected by the
    fit's own objective (no held-out data). ``reference`` (e.g. the claims' fit at ``reference_lam``) gets its
    objective on the same points, to compare with the diagnostic's fit at that lam.
    """
    if rule not in ("v2", "v3"):
        raise ValueError(f"rule must be 'v2' or 'v3', got {rule!r}")
    if not lam_grid:
        raise ValueError("lam_grid is empty")
    steps = {n: np.asarray(c["steps"]) for n, c in curves.items()}
    loss = {n: np.asarray(c["loss"], dtype=np.float64) for n, c in curves.items()}
    fit_loss = np.concatenate([loss[n] for n in fit_on])
    per_lam, best = {}, None
    for lam in lam_grid:
        pts = seed_areas(train, steps, lam)
        s1 = np.concatenate([pts[n][0] for n in fit_on])
        s2 = np.concatenate([pts[n][1] for n in fit_on])
        grid = scaled_grid(s2) if rule == "v3" else V2_GRID
        fit = fit_law(s1, s2, fit_loss, use_s2=True, grid=grid)
        preds = {n: fit.params.predict(*pts[n]) for n in held_out}
        row = {
            "objective": fit.objective,
            "real_fit": fit.objective < OUT_OF_DOMAIN,
            "n_starts": fit.n_starts,
            "n_valid_starts": fit.n_valid_starts,
            "c_starts": list(grid["c"]),
            "max_s2_fit": float(s2.max()),
            "mape_heldout": float(np.mean([mape(preds[n], loss[n]) for n in held_out])),
            "params": fit.params.as_dict(),
            "final_pred": {n: float(p[-1]) for n, p in preds.items()},
        }
        if reference is not None and lam == reference_lam:
            ref = law_objective(np.array([reference.l0, reference.a, reference.alpha, reference.c]), s1, s2,
                                np.log(fit_loss))  # fmt: skip
            row["reference_objective"] = ref
            row["reference_mape_heldout"] = float(
                np.mean([mape(reference.predict(*pts[n]), loss[n]) for n in held_out])
            )
        per_lam[lam] = row
        if best is None or fit.objective < per_lam[best]["objective"]:
            best = lam
    obs_rank = sorted(held_out, key=lambda n: loss[n][-1])
    pred_rank = sorted(held_out, key=lambda n: per_lam[best]["final_pred"][n])
    return {
        "rule": rule,
        "per_lam": per_lam,
        "selected_lambda": best,
        "selected_mape_heldout": per_lam[best]["mape_heldout"],
        "selected_ranking_correct": obs_rank == pred_rank,
        "ranking": {"observed": obs_rank, "predicted": pred_rank},
    }


def summary_markdown(diags: Mapping[int, Mapping], v2: Mapping[int, Mapping] | None = None) -> str:
    """The per-lam table (mean over seeds) and the selection per seed, v3 beside v2 when given."""
    seeds = sorted(diags)
    lams = list(diags[seeds[0]]["per_lam"])

    def row(d, key):
        return [float(np.mean([d[s]["per_lam"][lam][key] for s in seeds])) for lam in lams]

    def pct(v):
        return f"{100 * v:.2f}%"

    head = "| | " + " | ".join(f"λ = {lam}" for lam in lams) + " |"
    lines = [head, "|---" * (len(lams) + 1) + "|"]
    for name, d in (("v3", diags), ("v2", v2)) if v2 else (("v3", diags),):
        mapes = row(d, "mape_heldout")
        real = [all(d[s]["per_lam"][lam]["real_fit"] for s in seeds) for lam in lams]
        cells = [pct(m) if ok else f"failed fit ({pct(m)})" for m, ok in zip(mapes, real)]
        lines.append(f"| {name}: held-out MAPE (mean of {len(seeds)} seeds) | " + " | ".join(cells) + " |")
        valid = [min(d[s]["per_lam"][lam]["n_valid_starts"] for s in seeds) for lam in lams]
        n = d[seeds[0]]["per_lam"][lams[0]]["n_starts"]
        lines.append(f"| {name}: valid starts (of {n}, worst seed) | " + " | ".join(map(str, valid)) + " |")
    lines.append("")
    lines.append("| rule | seed | selected λ | held-out MAPE with it | ranking right |")
    lines.append("|---|---|---|---|---|")
    for name, d in (("v3", diags), ("v2", v2)) if v2 else (("v3", diags),):
        for s in seeds:
            x = d[s]
            lines.append(f"| {name} | {s} | {x['selected_lambda']} | {pct(x['selected_mape_heldout'])} | "
                         f"{'yes' if x['selected_ranking_correct'] else 'no'} |")  # fmt: skip
    refs = [
        (s, lam, r) for s in seeds for lam, r in diags[s]["per_lam"].items() if "reference_objective" in r
    ]
    if refs:
        lines.append("")
        lines.append("| seed | λ | v3 diagnostic fit: objective, held-out MAPE | claims' fit (108 starts): objective, "
                     "held-out MAPE |")  # fmt: skip
        lines.append("|---|---|---|---|")
        for s, lam, r in refs:
            lines.append(f"| {s} | {lam} | {r['objective']:.4e}, {pct(r['mape_heldout'])} | "
                         f"{r['reference_objective']:.4e}, {pct(r['reference_mape_heldout'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"
