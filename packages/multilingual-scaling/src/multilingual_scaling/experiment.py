"""One seed of the whole study: the small-model sweep, the gamma fits, p*, and the transfer runs.

p* for the transfer runs is computed from the same seed's small models, so the three stages cannot be
separate runner units (a unit's config is fixed before anything runs); one unit = one seed, run in the
order the paper's workflow implies (fit on small models, then train the larger one).

Mixtures (3 families A, B, C; ratios in family order):

* GAMMA_MIXES M1..M4 (both small sizes): a cyclic design, so every family takes 4 distinct ratios
  (A: .1 .6 .3 .2, B: .3 .1 .6 .45, C: .6 .3 .1 .35) with 4 runs per size, and each run contributes one
  (p_i, L_i) point to every family's fit (valid under the hypothesis being tested; the independence test
  below checks it).
* Independence (smaller size): p_A = 0.3 fixed, the remaining 0.7 split 0.6/0.1 (M3), 0.35/0.35 (I1),
  0.1/0.6 (I2); p_A moved 0.1 (M1) -> 0.6 (M2). REPLICATE: M3 again with another training stream (same
  init), the noise floor of the spread.
* Control (smaller size, shared-structure world A, B, A'): p_A = 0.3, split 0.6/0.1 and 0.1/0.6 between B
  and A' (a cipher of A in A's token block, see ``families``).
* Transfer (larger held-out size): p*, uniform (1/3 each) and natural (proportional to languages).
"""

from __future__ import annotations

import math

import numpy as np

from multilingual_scaling.families import family_source, make_world
from multilingual_scaling.law import fit_ratio_law, mixture_objective, optimal_ratios
from multilingual_scaling.train import TrainConfig, train_mixture

GAMMA_MIXES = {
    "M1": (0.1, 0.3, 0.6),
    "M2": (0.6, 0.1, 0.3),
    "M3": (0.3, 0.6, 0.1),
    "M4": (0.2, 0.45, 0.35),
}
INDEP_MIXES = {"I1": (0.3, 0.35, 0.35), "I2": (0.3, 0.1, 0.6)}
INDEP_FIXED = ("M3", "I1", "I2")  # p_A = 0.3 in all three
MOVE = ("M1", "M2")  # p_A = 0.1 and 0.6
# control world families: A, B, Aprime, C_unused (ratio 0: only keeps the vocabulary the same)
CONTROL_MIXES = {"X1": (0.3, 0.6, 0.1, 0.0), "X2": (0.3, 0.1, 0.6, 0.0)}
GAMMA_FLOOR = 1e-3  # a fitted gamma <= 0 (loss not falling with p) is floored here for p* (and flagged)


def rel_spread(values) -> float:
    """(max - min) / mean: the relative range of a family's loss across mixtures."""
    v = np.asarray(values, dtype=np.float64)
    return float((v.max() - v.min()) / v.mean())


def weighted_normalised_loss(losses, entropies, weights) -> float:
    """sum_i w_i L_i / H_i: each family's loss normalised by its exact entropy rate (the irreducible loss,
    known here), weighted by w (sums to 1)."""
    return float(np.sum(np.asarray(weights) * np.asarray(losses) / np.asarray(entropies)))


def independence_metrics(runs: dict, rep: dict, out: dict) -> None:
    """Experiment 1 into ``out``: family A's loss spread over the INDEP_FIXED mixtures (p_A fixed), its
    change when p_A itself moves (MOVE), the same-mixture rerun spread (noise) and the control's spread."""
    fixed = [runs[f"s0_{m}"]["losses"][0] for m in INDEP_FIXED]
    out["indep_spread_A"] = rel_spread(fixed)
    lo_p, hi_p = (runs[f"s0_{m}"]["losses"][0] for m in MOVE)
    out["indep_move_A"] = float((lo_p - hi_p) / hi_p)
    out["indep_noise_A"] = rel_spread([runs["s0_M3"]["losses"][0], rep["losses"][0]])
    out["control_spread_A"] = rel_spread([out["ctl_X1_L_A"], out["ctl_X2_L_A"]])


def gamma_fits(runs: dict, n_sizes: int, names: list[str], out: dict) -> dict:
    """Experiment 2: L_i = K_i p_i^-gamma_i fitted per size and family on the GAMMA_MIXES runs; writes
    gamma, K, R^2 and the relative gamma difference between the smallest and the largest size into
    ``out`` and returns the fits keyed by (size index, family)."""
    fits = {}
    for si in range(n_sizes):
        for fi, n in enumerate(names):
            p = [GAMMA_MIXES[m][fi] for m in GAMMA_MIXES]
            y = [runs[f"s{si}_{m}"]["losses"][fi] for m in GAMMA_MIXES]
            f = fit_ratio_law(p, y)
            fits[(si, n)] = f
            out[f"s{si}_gamma_{n}"], out[f"s{si}_K_{n}"], out[f"s{si}_r2_{n}"] = f.gamma, f.k, f.r2
    last = n_sizes - 1
    rel = [abs(fits[(0, n)].gamma / fits[(last, n)].gamma - 1) if fits[(last, n)].gamma > 0 else math.inf
           for n in names]  # fmt: skip
    for n, r in zip(names, rel):
        out[f"gamma_rel_diff_{n}"] = r
    out["gamma_max_rel_diff"] = max(rel)
    out["gamma_min_r2"] = min(f.r2 for f in fits.values())
    return fits


def run_seed(cfg: dict, seed: int, log=None) -> dict:
    """The whole study for one seed (see the module docstring); returns a flat metrics dict + artifacts."""
    world = make_world(cfg["world"])
    control = make_world(cfg["control_world"])
    small = [TrainConfig(**c) for c in cfg["small"]]
    large = TrainConfig(**cfg["large"])
    names = world.names
    ent = np.array([family_source(f).entropy_rate for f in world.families])
    w = np.asarray(cfg["weights"], dtype=np.float64)
    out: dict = {f"entropy_{n}": float(h) for n, h in zip(names, ent)}

    def record(tag: str, res: dict, ratios) -> None:
        for n, loss in zip(names if not tag.startswith("ctl") else control.names, res["losses"]):
            out[f"{tag}_L_{n}"] = loss
        if log is not None:
            log(run=tag, ratios=list(ratios), losses=res["losses"], n=res["n_nonemb"])

    # 1-2. small-model sweep
    runs: dict[str, dict] = {}
    for si, tc in enumerate(small):
        mixes = dict(GAMMA_MIXES) | (INDEP_MIXES if si == 0 else {})
        for m, p in mixes.items():
            res = train_mixture(world, p, tc, seed)
            runs[f"s{si}_{m}"] = res
            record(f"s{si}_{m}", res, p)
        out[f"s{si}_n_nonemb"] = res["n_nonemb"]
    rep = train_mixture(world, GAMMA_MIXES["M3"], small[0], seed, stream_seed=seed + 10_000)
    record("s0_M3rep", rep, GAMMA_MIXES["M3"])
    for m, p in CONTROL_MIXES.items():
        record(f"ctl_{m}", train_mixture(control, p, small[0], seed), p)

    independence_metrics(runs, rep, out)  # family A = index 0, and its control
    fits = gamma_fits(runs, len(small), names, out)
    last = len(small) - 1

    # 3. p* from the larger small size: argmin sum_i w_i K_i p_i^-gamma_i / H_i (bisection on mu)
    gam = np.array([fits[(last, n)].gamma for n in names])
    out["gamma_floored"] = bool(np.any(gam <= GAMMA_FLOOR))
    gam = np.maximum(gam, GAMMA_FLOOR)
    c = w * np.array([fits[(last, n)].k for n in names]) / ent
    pstar = optimal_ratios(c, gam)
    mixes = {
        "pstar": pstar,
        "uniform": np.full(len(names), 1 / len(names)),
        "natural": world.natural_ratios(),
    }
    for k, p in mixes.items():
        res = train_mixture(world, p, large, seed)
        record(f"big_{k}", res, p)
        out[f"big_{k}_obj"] = weighted_normalised_loss(res["losses"], ent, w)
        out[f"big_{k}_pred_obj_small"] = mixture_objective(p, c, gam)  # the small model's prediction
        for n, pi in zip(names, p):
            out[f"p_{k}_{n}"] = float(pi)
    out["big_n_nonemb"] = res["n_nonemb"]
    out["transfer_gap"] = min(out["big_uniform_obj"], out["big_natural_obj"]) - out["big_pstar_obj"]
    out["transfer_gap_rel"] = out["transfer_gap"] / out["big_pstar_obj"]
    out["mixes"] = {k: [float(x) for x in v] for k, v in (GAMMA_MIXES | INDEP_MIXES).items()}  # artifact
    return out


def world_config() -> dict:
    """The default worlds (main and shared-structure control) as JSON-able configs."""
    src = dict(vocab_size=16, order=2, concentration=0.5, eps=0.02, zipf=1.0)

    def fam(name, support, seed, n_lang, offset, cipher_seed=None):
        return {"name": name, "source": dict(src, support=support, seed=seed), "n_languages": n_lang,
                "swap_frac": 0.25, "offset": offset, "cipher_seed": seed if cipher_seed is None else cipher_seed}  # fmt: skip

    main = {"families": [fam("A", 3, 11, 3, 0), fam("B", 4, 22, 2, 16), fam("C", 6, 33, 1, 32)]}
    # control: the third "family" is a new cipher of A's source in A's token block (shared structure);
    # the vocabulary keeps C's block (unused) so the model has exactly the same shape as in the main world
    ctl = {"families": [fam("A", 3, 11, 3, 0), fam("B", 4, 22, 2, 16), fam("Aprime", 3, 11, 1, 0, 99),
                        fam("C_unused", 6, 33, 1, 32)]}  # fmt: skip
    return {"world": main, "control_world": ctl}
