"""One seed of the whole study: the small-model sweep, the gamma fits, p*, and the transfer runs.

p* for the transfer runs is computed from the same seed's small models, so the three stages cannot be
separate runner units (a unit's config is fixed before anything runs); one unit = one seed, run in the
order the paper's workflow implies (fit on small models, then train the larger one).

Mixtures (3 families A, B, C; ratios in family order):

* GAMMA_MIXES M1..M4 (both small sizes): a cyclic design, so every family takes 4 distinct ratios
  (A: .1 .6 .3 .2, B: .3 .1 .6 .45, C: .6 .3 .1 .35) with 4 runs per size, and each run contributes one
  (p_i, L_i) point to every family's fit (valid under the hypothesis being tested; the independence test
  below checks it). One run per mixture and size (init = stream seed = the unit's seed).
* Independence (smaller size, REPLICATED): p_A = 0.3 fixed, the remaining 0.7 split 0.6/0.1 (M3),
  0.35/0.35 (I1), 0.1/0.6 (I2); p_A moved 0.1 (M1) -> 0.6 (M2). Every mixture is trained ``replicas``
  times, replica r with init = stream seed = seed + REPLICA_STRIDE * r (replica 0 is the gamma design's
  run when the budgets agree), and every metric uses the replica MEAN of family A's loss. Replica r of
  every mixture shares its init and, at p_A = 0.3, family A's training sequences and their positions
  (``families.mixture_stream``): a paired design, so the mixtures differ only in the other families' data.
* Noise floor: the split-half spread of replica means of the SAME mixture, and an exact within-replica
  permutation test of the across-split spread (``paired_permutation_test``).
* Control (smaller size, shared-structure world A, B, A', replicated the same way): p_A = 0.3, split
  0.6/0.1 and 0.1/0.6 between B and A' (a cipher of A in A's token block, see ``families``).
* Transfer (larger held-out size): p*, uniform (1/3 each) and natural (proportional to languages).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np

from multilingual_scaling.families import family_source, make_world
from multilingual_scaling.law import fit_ratio_law, mixture_objective, optimal_ratios
from multilingual_scaling.shared_runs import shared_run
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
REPLICA_STRIDE = 1000  # replica r of seed s uses init = stream seed s + 1000 r (disjoint for s < 1000)
EXACT_PERMUTATIONS = 200_000  # above this many within-replica relabellings, sample them instead
GAMMA_FLOOR = 1e-3  # a fitted gamma <= 0 (loss not falling with p) is floored here for p* (and flagged)


def rel_spread(values) -> float:
    """(max - min) / mean: the relative range of a family's loss across mixtures."""
    v = np.asarray(values, dtype=np.float64)
    return float((v.max() - v.min()) / v.mean())


def weighted_normalised_loss(losses, entropies, weights) -> float:
    """sum_i w_i L_i / H_i: each family's loss normalised by its exact entropy rate (the irreducible loss,
    known here), weighted by w (sums to 1)."""
    return float(np.sum(np.asarray(weights) * np.asarray(losses) / np.asarray(entropies)))


def split_half_spread(values) -> float:
    """|mean(first half) - mean(second half)| / mean(all) of one mixture's replicas (an even count).

    The noise floor of a spread of replica means: for i.i.d. runs of s.d. sigma and R replicas, the halves'
    difference has E = 2 sigma / sqrt(R) * sqrt(2 / pi) = 1.596 sigma / sqrt(R), close to the E of the
    range of 3 means of R replicas under no mixture effect, 1.693 sigma / sqrt(R) (d2(3) = 1.693)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2 or len(v) % 2:
        raise ValueError(f"split-half needs an even number >= 2 of replicas, got shape {v.shape}")
    h = len(v) // 2
    return float(abs(v[:h].mean() - v[h:].mean()) / v.mean())


def paired_permutation_test(losses, max_exact: int = EXACT_PERMUTATIONS, n_sample: int = 20_000,
                            seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Permutation test of rel_spread of the column means of ``losses`` (replicas x mixtures) under H0: the
    mixture does not change the loss, so within each replica (a row: shared init and family-A data) the
    mixture labels are exchangeable. Every one of the (k!)^R within-row relabellings is enumerated (above
    ``max_exact`` of them, ``n_sample`` are drawn with ``seed``, the observed one counted once).

    Returns (p, crit95): p = the fraction of relabellings whose spread is >= the observed one (ties count;
    a 1e-12 relative slack for rounding), and crit95 = the 95th percentile of the spread under H0, the
    smallest spread this design can tell from noise at the 5% level (the noise floor on the claim's scale)."""
    x = np.asarray(losses, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"need a (replicas, mixtures >= 2) array, got shape {x.shape}")
    r, k = x.shape
    obs = rel_spread(x.mean(0))
    perms = np.array(list(itertools.permutations(range(k))))
    if len(perms) ** r <= max_exact:
        idx = np.array(list(itertools.product(range(len(perms)), repeat=r)))  # (n, R) permutation ids
    else:
        idx = np.random.default_rng(seed).integers(0, len(perms), (n_sample, r))
        idx[0] = 0  # the identity relabelling: the observed statistic (p is never 0)
    rows = x[np.arange(r)[None, :, None], perms[idx]]  # (n, R, k): each row relabelled
    means = rows.mean(1)
    stat = (means.max(1) - means.min(1)) / means.mean(1)
    return float(np.mean(stat >= obs * (1 - 1e-12))), float(np.quantile(stat, 0.95))


def independence_metrics(ind: dict[str, np.ndarray], ctl: dict[str, np.ndarray], out: dict) -> None:
    """Experiment 1 into ``out`` from family A's per-replica losses (``ind``: mixture -> (R,) array of the
    main world's runs, ``ctl``: the control's). Every spread uses replica MEANS:

    * indep_spread_A: (max - min) / mean of A's mean loss over the INDEP_FIXED mixtures (p_A = 0.3);
    * indep_move_A: A's relative change when p_A itself moves 0.1 -> 0.6 (MOVE);
    * indep_noise_A: the noise floor, the split-half spread of replica means of the SAME mixture,
      averaged over the INDEP_FIXED mixtures (on the scale of indep_spread_A, see split_half_spread);
    * indep_perm_p_A: the within-replica permutation p-value of indep_spread_A, and indep_perm_crit95_A the
      95th percentile of the spread under that null (the smallest spread distinguishable from noise);
    * indep_run_sd_A: the pooled within-mixture s.d. of single runs over the grand mean (per-run noise);
    * control_spread_A: the same spread over the control's two splits."""
    fixed = np.stack([ind[m] for m in INDEP_FIXED], axis=1)  # (R, 3)
    out["indep_spread_A"] = rel_spread(fixed.mean(0))
    lo_p, hi_p = (float(ind[m].mean()) for m in MOVE)
    out["indep_move_A"] = (lo_p - hi_p) / hi_p
    out["indep_noise_A"] = float(np.mean([split_half_spread(fixed[:, j]) for j in range(fixed.shape[1])]))
    out["indep_perm_p_A"], out["indep_perm_crit95_A"] = paired_permutation_test(fixed)
    if fixed.shape[0] > 1:
        out["indep_run_sd_A"] = float(np.sqrt(fixed.var(0, ddof=1).mean()) / fixed.mean())
    out["indep_spread_over_noise_A"] = out["indep_spread_A"] / max(out["indep_noise_A"], 1e-12)
    out["control_spread_A"] = rel_spread([ctl[m].mean() for m in CONTROL_MIXES])


def independence_study(train, main_labels: list[str], ctl_labels: list[str], tc, replicas: int, seed: int,
                       out: dict, log=None) -> None:  # fmt: skip
    """Experiment 1, replicated: every INDEP_FIXED and MOVE mixture (main world) and every CONTROL_MIXES
    mixture (control world) trained ``replicas`` times; ``train(world, ratios, tc, s)`` -> result dict with
    "losses" (world "main" or "control", init = stream seed = s). Writes each mixture's replica-mean losses
    (``ind_<m>_L_<family>``, ``ctl_<m>_L_<family>``), the per-replica losses of family A (artifact
    ``indep_runs``) and independence_metrics into ``out``."""
    if replicas < 2 or replicas % 2:
        raise ValueError(
            f"the replicated independence study needs an even number >= 2 of replicas, got {replicas}"
        )
    mixes = [("main", m, (dict(GAMMA_MIXES) | INDEP_MIXES)[m], main_labels) for m in INDEP_FIXED + MOVE]
    mixes += [("control", m, p, ctl_labels) for m, p in CONTROL_MIXES.items()]
    per_rep: dict[str, list] = {}
    for world, m, p, labels in mixes:
        tag = ("ind_" if world == "main" else "ctl_") + m
        losses = []
        for r in range(replicas):
            res = train(world, p, tc, seed + REPLICA_STRIDE * r)
            losses.append(res["losses"])
            if log is not None:
                log(run=f"{tag}_r{r}", ratios=list(p), losses=res["losses"], n=res["n_nonemb"])
        losses = np.asarray(losses, dtype=np.float64)  # (R, families)
        for n, v in zip(labels, losses.mean(0)):
            out[f"{tag}_L_{n}"] = float(v)
        per_rep[tag] = losses[:, 0]  # family A is index 0 in both worlds
    ind = {m: per_rep[f"ind_{m}"] for m in INDEP_FIXED + MOVE}
    ctl = {m: per_rep[f"ctl_{m}"] for m in CONTROL_MIXES}
    independence_metrics(ind, ctl, out)
    out["indep_runs"] = {k: [float(x) for x in v] for k, v in per_rep.items()}  # artifact (figures)


def indep_train_config(cfg: dict, small0) -> object:
    """The independence study's TrainConfig: the smaller size, with ``indep_tokens`` (if set) as budget."""
    tokens = cfg.get("indep_tokens")
    return small0 if tokens is None else replace(small0, tokens=int(tokens))


def memoised(train):
    """``train`` with a cache keyed by (world, ratios, config, seed): the independence study's replica 0
    reuses the gamma design's run of the same mixture when the budgets agree (identical by determinism)."""
    cache: dict = {}

    def call(world, ratios, tc, s):
        key = (world, tuple(round(float(x), 12) for x in ratios), tc, s)  # TrainConfig is frozen: hashable
        if key not in cache:
            cache[key] = train(world, ratios, tc, s)
        return cache[key]

    return call


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
        for n, loss in zip(names, res["losses"]):
            out[f"{tag}_L_{n}"] = loss
        if log is not None:
            log(run=tag, ratios=list(ratios), losses=res["losses"], n=res["n_nonemb"])

    worlds = {"main": world, "control": control}
    shared_tcs = {small[-1]: False, large: True}  # config -> score the validation sample too

    def run(wk, p, tc, s):
        # the runs the normaliser diagnostic repeats on this seed (its refit at the larger small size and its
        # held-out model at p*) are trained once across the two experiments' units (shared_runs); the
        # held-out runs also score the validation sample, which the diagnostic reads (read-only scoring:
        # the test losses are the same either way) and the study ignores
        if wk == "main" and s == seed and tc in shared_tcs:
            return shared_run(cfg["world"], p, tc, s, score_val=shared_tcs[tc])
        return train_mixture(worlds[wk], p, tc, s)

    train = memoised(run)

    # 2. small-model sweep for the gamma fits (one run per mixture and size)
    runs: dict[str, dict] = {}
    for si, tc in enumerate(small):
        for m, p in GAMMA_MIXES.items():
            res = train("main", p, tc, seed)
            runs[f"s{si}_{m}"] = res
            record(f"s{si}_{m}", res, p)
        out[f"s{si}_n_nonemb"] = res["n_nonemb"]
    # 1. independence (and control), replicated; family A = index 0
    independence_study(train, names, control.names, indep_train_config(cfg, small[0]), cfg["replicas"], seed,
                       out, log)  # fmt: skip
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
        res = train("main", p, large, seed)
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
