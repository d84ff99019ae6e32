"""Reproduce 'Scaling Laws for Multilingual Language Models' (He, Benhaim, Patra et al., arXiv 2410.12883) on
synthetic language families.

Three families (A, B, C), each a seeded order-2 Markov source whose languages are partial ciphers of it,
share one vocabulary and one small decoder (xentlab.models.small_decoder). Per seed (one runner unit):
(1) the independence test: family A's loss with p_A = 0.3 fixed and three splits of the rest, against
moving p_A from 0.1 to 0.6, plus a shared-structure control world where the test should fail; every one of
these mixtures is trained by several replicas (init and stream seeds), compared through replica means and
against the replicas' own noise (split-half and an exact within-replica permutation test);
(2) gamma_i of L_i = K_i p_i^-gamma_i fitted at 2 model sizes x 4 ratios, compared across sizes;
(3) p* from the larger small size (bisection on the Lagrange multiplier), then a larger held-out model
trained with p*, uniform and natural ratios, scored by the weighted entropy-normalised loss.
A separate diagnostic (experiment ``normaliser``, no claim) trains the held-out model at the p* of each
reading of the paper's normaliser (entropy rate H_i, ours; each family's own p_i = 1 loss K_i) and compares
them on a validation sample.

    uv run python packages/multilingual-scaling/reproduce.py               # cpu scale (default)
    uv run python packages/multilingual-scaling/reproduce.py --scale smoke
    uv run python packages/multilingual-scaling/reproduce.py --scale full --device cuda   # see README
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from multilingual_scaling.experiment import GAMMA_MIXES, run_seed, world_config
from multilingual_scaling.normaliser import run_normaliser
from multilingual_scaling.train import TrainConfig

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Scaling Laws for Multilingual Language Models",
    arxiv="2410.12883",
    package="multilingual-scaling",
    code=None,  # no official code was found
)


def study(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One seed: sweep, fits, p*, transfer (multilingual_scaling.experiment.run_seed; at --scale full the
    same study on local text, multilingual_scaling.full.run_full)."""
    if ctx.scale == "full":
        from multilingual_scaling.full import run_full

        return run_full(cfg, seed, ctx)
    return run_seed(cfg, seed, log=ctx.log)


def normaliser(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One seed of the normaliser diagnostic (multilingual_scaling.normaliser.run_normaliser; README
    "Normaliser diagnostic"): refit at the larger small size, p* of both readings, held-out model at each."""
    return run_normaliser(cfg, seed, log=ctx.log)


def _cfg(small: list[dict], large: dict, replicas: int, indep_tokens: int | None = None, **train) -> dict:
    return {**world_config(), "weights": [1 / 3] * 3,
            "small": [asdict(TrainConfig(**s, **train)) for s in small],
            "large": asdict(TrainConfig(**large, **train)),
            # the independence study (README "Protocol fix"): replicas per mixture (an even number: the
            # noise floor is a split-half), and its training budget (None = the small sizes' budget)
            "replicas": replicas, "indep_tokens": indep_tokens}  # fmt: skip


# cpu: small sizes d16 / d32 (N = 8.3k / 33k non-embedding), held-out d48 (N = 74k), 2 layers, 240k training
# tokens each (batch 16 x 16, lr 1e-2 warm-up + cosine: ar-scaling's settings). Sized from timings of single
# runs (one d16 run ~5-6 CPU-s, d48 ~10-13 CPU-s on the contended box). Protocol fix (README): each of the
# 7 independence/control mixtures is trained by 4 replicas at the same 240k budget (replica 0 is the gamma
# design's run where the mixture is shared), decided from scripts/pilot_noise.py BEFORE the rerun: 2x the tokens
# cut family A's run-to-run s.d. only from 3.5% to 2.4% (validation sample, 4 runs each) at 2x the cost,
# while 4 replicas cut the s.d. of a mean by 2x and give the permutation test its resolution. 36 runs per
# seed: 29 at d16, 4 at d32, 3 at d48, ~250 CPU-s per seed.
CPU = _cfg([dict(hidden=16, heads=2), dict(hidden=32, heads=2)], dict(hidden=48, heads=3), replicas=4,
           tokens=240_000, batch=16, seq_len=16, lr=1e-2, test_seqs=512)  # fmt: skip
SMOKE = _cfg([dict(hidden=8, heads=2), dict(hidden=16, heads=2)], dict(hidden=24, heads=2), replicas=2,
             tokens=4_096, batch=16, seq_len=16, lr=1e-2, test_seqs=32)  # fmt: skip
# full (one GPU, never run: no GPU was used by this package's author): local CC-100-style text, one file
# per language code under $MULTILINGUAL_SCALING_DATA, grouped by FAMILIES (edit it to regroup; exactly 3
# families, the first is "A"); a 32k byte-level BPE trained on a balanced sample ("bytes" also works).
# The paper: 85M small models, 1.2B transfer target, 23 languages / 5 families. Scaled for one GPU: small
# sizes d384 x 6 layers (N = 14.2M) and d640 x 10 (65.5M, near the paper's 85M), held-out d1024 x 16
# (268M); 500M tokens per run in windows of 512; lrs are guesses for these widths (never tuned).
# a list of [family, language codes] pairs rather than a dict: the order (A, B, C) is part of the config
# key, so a reordered mapping is never resumed from units computed under the old labels
FAMILIES = [
    ["Romance", ["fr", "es", "it", "pt", "ro"]],
    ["Germanic", ["en", "de", "nl", "sv", "da"]],
    ["Slavic", ["ru", "pl", "uk", "cs", "bg"]],
]
_FULL_TRAIN = dict(tokens=500_000_000, batch=128, seq_len=512, test_seqs=2048, warmup=0.02)
FULL = {
    "data_root": None, "families": FAMILIES, "tokenizer": "bpe", "vocab_size": 32_000,
    "tokenizer_chars": 20_000_000, "max_bytes_per_language": 400_000_000,
    "test_bytes_per_language": 4_000_000, "dtype": "bfloat16", "weights": [1 / 3] * 3,
    "small": [asdict(TrainConfig(hidden=384, layers=6, heads=6, lr=1e-3, **_FULL_TRAIN)),
              asdict(TrainConfig(hidden=640, layers=10, heads=10, lr=6e-4, **_FULL_TRAIN))],
    "large": asdict(TrainConfig(hidden=1024, layers=16, heads=16, lr=3e-4, **_FULL_TRAIN)),
    "replicas": 4, "indep_tokens": None,  # as at cpu scale: 4 replicas per independence mixture
}  # fmt: skip


def _normaliser_cfg(study_cfg: dict) -> dict:
    """The diagnostic's config: the study's main world, weights, larger small size (the fit size of p*)
    and held-out size, so that its runs are the study's runs for the same seed."""
    return {"world": study_cfg["world"], "weights": study_cfg["weights"], "fit": study_cfg["small"][-1],
            "large": study_cfg["large"]}  # fmt: skip


EXPERIMENTS = [
    Experiment(
        "study",
        study,
        {"smoke": SMOKE, "cpu": CPU, "full": FULL},
        description="small-model sweep + gamma fits + p* + larger-model transfer, one seed",
    ),
    # NEW (README "Normaliser diagnostic", written before its run): no claim reads it. Its own seeds at cpu
    # scale: 0-3, 4 seeds x (4 d32 + 2 d48 runs) ~ 285 CPU-s is what the budget allowed. Since the seed change
    # (README "Seed change") the study runs the same seeds 0-3, so on every one of them the refit and the pH
    # run reproduce the study's (checked below). Not offered at full scale: there the study itself already
    # uses the K_i normaliser (README "--scale full").
    Experiment(
        "normaliser",
        normaliser,
        {"smoke": _normaliser_cfg(SMOKE), "cpu": _normaliser_cfg(CPU), "full": None},
        description="held-out model at the p* of each normaliser reading (H_i or own K_i), validation-scored",
        seeds={"cpu": (0, 1, 2, 3)},
    ),
]


def _max_abs_diff(pairs):
    def fn(m):
        return max(abs(m[a] - m[b]) for a, b in pairs)

    return fn


# Reproduction checks of the diagnostic against the study, on their shared seeds (0-3 at cpu scale):
# the refit gamma_i, K_i equal the study's larger-size fits, and the pH held-out run's test losses equal the
# study's big_pstar run (same code, config and seeds: expected 0). Reported, not claims.
DERIVED = [
    Derived("check/normaliser_refit_max_abs_diff",
            _max_abs_diff([(f"normaliser/{q}_{n}", f"study/s1_{q}_{n}") for q in ("gamma", "K") for n in "ABC"]),
            scales=("smoke", "cpu")),
    Derived("check/normaliser_pH_test_max_abs_diff",
            _max_abs_diff([(f"normaliser/test_pH_L_{n}", f"study/big_pstar_L_{n}") for n in "ABC"]),
            scales=("smoke", "cpu")),
]  # fmt: skip

# Thresholds fixed before the first cpu run and kept unchanged by the protocol fix (independence, move and
# control are now computed on replica means). Independence <= 1% and gamma within +-15% are the research
# notes' (§5.5); ">> 1%" for moving p_A is read as >= 5%. With 2 seeds the verdicts use the worst seed
# ("max"/"min"), not a bootstrap CI of 2 values. Seed change (README "Seed change", written before its run):
# the study now runs 4 seeds at cpu scale and the verdicts KEEP the worst-seed rule, decided before the
# run: (1) it is the rule fixed before the first run, while a switch to the mean would be chosen knowing
# seeds 0-1 of every claim and, through the normaliser diagnostic's identical pH runs, the p* arm of
# seeds 2-3; (2) a bootstrap CI of 4 values is crude; (3) the per-seed statistic of independence-vs-noise
# is a p-value, for which "in every seed" has a stated false-alarm rate (1 - 0.95^4 ~ 19% under H0) and a
# mean has none. Stricter with more seeds: a claim holds only if it holds on all 4.
SCALES = ("cpu", "full")
CLAIMS = [
    Claim(
        id="independence",
        statement="with p_A = 0.3 fixed, family A's test loss varies <= 1% (max-min over mean) across three "
        "splits of the other 0.7 between B and C",
        paper="'the test cross-entropy loss for each language family is determined solely by its own sampling "
        "ratio, independent of other languages in the mixture' (abstract)",
        metric="study/indep_spread_A", check="<= 0.01", agg="max", scales=SCALES,
    ),
    # NEW (protocol fix, written before the replicated rerun): the 1% tolerance above is below this scale's
    # run-to-run noise, so the spread of replica means is also tested against the replicas' own noise. H0:
    # the B/C split does not change A's loss, so within a replica (shared init and family-A data) the three
    # mixture labels are exchangeable; p = the share of the (3!)^R within-replica relabellings whose spread
    # of means is >= the observed one (exact). Worst seed: p >= 0.05 in every seed unit.
    Claim(
        id="independence-vs-noise",
        statement="with p_A = 0.3 fixed, the spread of family A's replica-mean loss across the three splits is "
        "within run-to-run noise: exact within-replica permutation p-value >= 0.05",
        paper="'determined solely by its own sampling ratio' (abstract), tested against the replicas' noise "
        "instead of a fixed 1% tolerance",
        metric="study/indep_perm_p_A", check=">= 0.05", agg="min", scales=SCALES,
    ),
    Claim(
        id="own-ratio-matters",
        statement="moving p_A from 0.1 to 0.6 changes family A's loss by >= 5% (>> the 1% tolerance)",
        paper="L_i falls as p_i^-gamma_i (§3)",
        metric="study/indep_move_A", check=">= 0.05", agg="min", scales=SCALES,
    ),
    Claim(
        id="control-detects-sharing",
        statement="design check (not a paper claim): in the control world, where a cipher of A is labelled a "
        "separate family A', the B/A' split moves A's loss by > 1%, so the independence test can fail",
        paper="(none: the hypothesis is about families that do not share structure)",
        metric="study/control_spread_A", check="> 0.01", agg="min", scales=SCALES,
    ),
    Claim(
        id="gamma-size-invariant",
        statement="gamma_i fitted at the two small sizes agrees within +-15% (max over families of "
        "|gamma_small / gamma_large - 1|)",
        paper="gamma_i is invariant to N and D (the law, §3)",
        metric="study/gamma_max_rel_diff", check="<= 0.15", agg="max", scales=SCALES,
    ),
    Claim(
        id="pstar-transfers",
        statement="on the larger held-out model, p* from the small models gives a lower weighted "
        "entropy-normalised loss than both uniform and natural ratios (min(other) - p* > 0)",
        paper="'optimal sampling ratios derived from small models (85M parameters) generalize effectively to "
        "models ... (1.2B parameters)' (abstract)",
        metric="study/transfer_gap", check="> 0", agg="min", scales=SCALES,
    ),
]  # fmt: skip


def figures(results, out_dir: Path) -> list[Path]:
    import numpy as np
    from matplotlib.ticker import NullFormatter
    from multilingual_scaling.law import predict_loss

    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    units = results.per_seed.get("study", {})
    if not units:
        return []
    seeds = sorted(units)
    mets = {s: units[s]["metrics"] for s in seeds}
    names = ["A", "B", "C"]
    paths = []

    # law fits: L_i vs p_i at both small sizes, log-log, every seed
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    pp = np.geomspace(0.08, 0.7, 50)
    for fi, (ax, n) in enumerate(zip(axes, names)):
        p = [v[fi] for v in GAMMA_MIXES.values()]
        for si, color in ((0, "tab:blue"), (1, "tab:orange")):
            # one legend entry per size, naming every seed's gamma (not one entry per seed: 4 seeds x 2 sizes)
            gammas = ", ".join(f"{mets[s][f's{si}_gamma_{n}']:.3f}" for s in seeds)
            lab = f"N={mets[seeds[0]][f's{si}_n_nonemb'] / 1e3:.1f}k: gamma={gammas} (seeds {', '.join(map(str, seeds))})"
            for k, s in enumerate(seeds):
                m = mets[s]
                y = [m[f"s{si}_{mx}_L_{n}"] for mx in GAMMA_MIXES]
                ax.plot(p, y, "o", color=color, alpha=0.7, ms=4)
                ax.plot(pp, predict_loss(m[f"s{si}_K_{n}"], m[f"s{si}_gamma_{n}"], pp), "-", color=color,
                        lw=1, alpha=0.7, label=lab if k == 0 else None)  # fmt: skip
        if f"entropy_{n}" in mets[seeds[0]]:  # known for the synthetic families only (not at full scale)
            ax.axhline(mets[seeds[0]][f"entropy_{n}"], color="r", ls=":", lw=1, label="entropy rate")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([0.1, 0.2, 0.3, 0.45, 0.6], ["0.1", "0.2", "0.3", "0.45", "0.6"])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"sampling ratio p_{n}")
        ax.set_ylabel(f"test loss of family {n} (nats)")
        ax.set_title(f"family {n}: L = K p^-gamma")
        ax.legend(fontsize=6)
    paths.append(save_figure(fig, out_dir / "loss_vs_ratio.png", dpi=120))

    # independence (+ control) and transfer
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cols = [("ind_M3", "pA=.3 B.6 C.1"), ("ind_I1", "pA=.3 B.35 C.35"), ("ind_I2", "pA=.3 B.1 C.6"),
            ("ctl_X1", "control\nB.6 A'.1"), ("ctl_X2", "control\nB.1 A'.6"), ("ind_M1", "pA=.1"),
            ("ind_M2", "pA=.6")]  # fmt: skip
    x = np.arange(len(cols))
    for k, s in enumerate(seeds):
        reps = units[s]["artifacts"]["indep_runs"]
        off = 0.2 * (k - (len(seeds) - 1) / 2)
        for j, (c, _) in enumerate(cols):  # single replicas (small dots) and their mean (large marker)
            ax1.plot([j + off] * len(reps[c]), reps[c], ".", color=f"C{k}", alpha=0.5, ms=4)
        ax1.plot(x + off, [mets[s][f"{c}_L_A"] for c, _ in cols], "_", color=f"C{k}", ms=12, mew=2,
                 label=f"seed {s}: replica mean")  # fmt: skip
    ax1.set_xticks(x, [lab for _, lab in cols], fontsize=6, rotation=30)
    ax1.set_ylabel("family A test loss (nats), smaller size")
    sp = [mets[s]["indep_spread_A"] for s in seeds]
    pv = [mets[s]["indep_perm_p_A"] for s in seeds]
    ax1.set_title(f"independence (replica means): spread {100 * max(sp):.2f}% (worst seed), "
                  f"smallest permutation p {min(pv):.3f}", fontsize=8)  # fmt: skip
    ax1.legend(fontsize=7, loc="upper center")
    kinds = ["pstar", "uniform", "natural"]
    for k, s in enumerate(seeds):
        ax2.plot(np.arange(3) + 0.08 * (k - len(seeds) / 2), [mets[s][f"big_{q}_obj"] for q in kinds], "o-",
                 label=f"seed {s}: p*=" + ",".join(f"{mets[s][f'p_pstar_{n}']:.2f}" for n in names))  # fmt: skip
    ax2.set_xticks(range(3), ["p*", "uniform", "natural"])
    r = "H_i" if "entropy_A" in mets[seeds[0]] else "K_i"  # full scale: each family's own K_i (README)
    ax2.set_ylabel(f"sum_i w_i L_i / {r} (larger model)")
    ax2.set_title(f"transfer to N={mets[seeds[0]]['big_n_nonemb'] / 1e3:.0f}k", fontsize=9)
    ax2.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "independence_transfer.png", dpi=120))

    # normaliser diagnostic: both readings' p*, and d_s = obj_s(pH) / obj_s(pK) - 1 per seed vs the law
    nunits = results.per_seed.get("normaliser", {})
    if nunits:
        nseeds = sorted(nunits)
        nm = {s: nunits[s]["metrics"] for s in nseeds}
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for k, s in enumerate(nseeds):
            for r, mk in (("pH", "o"), ("pK", "s")):
                ax1.plot(np.arange(3) + 0.06 * (k - len(nseeds) / 2), [nm[s][f"p_{r}_{n}"] for n in names], mk,
                         color=f"C{k}", alpha=0.8, label=f"seed {s}: {r}")  # fmt: skip
        ax1.set_xticks(range(3), names)
        ax1.set_ylabel("p* (o: entropy reading pH, s: own-K reading pK)")
        ax1.set_title("p* of each normaliser reading (fit size)", fontsize=9)
        ax1.legend(fontsize=6, ncol=2)
        scorings = [("H", "sum w L/H"), ("K", "sum w L/K"), ("raw", "sum w L")]
        for j, (sc, _) in enumerate(scorings):
            first = j == 0  # one legend entry per marker kind
            d = [100 * nm[s][f"d_{sc}"] for s in nseeds]
            pr = [100 * nm[s][f"pred_d_{sc}"] for s in nseeds]
            mean_lab, seed_lab, law_lab = (
                ("observed mean", "observed, per seed", "small-model law") if first else (None,) * 3
            )
            ax2.plot([j - 0.1] * len(d), d, ".", color="k", alpha=0.6, label=seed_lab)
            ax2.plot([j - 0.1], [np.mean(d)], "_", color="k", ms=16, mew=2, label=mean_lab)
            ax2.plot([j + 0.1] * len(pr), pr, "x", color="tab:red", label=law_lab)
        ax2.axhline(0, color="grey", lw=0.8)
        ax2.set_xticks(range(3), [f"{sc}: {lab}" for sc, lab in scorings])
        ax2.set_ylabel("obj(pH) / obj(pK) - 1 (%), < 0: pH lower")
        ax2.set_title(f"held-out N={nm[nseeds[0]]['big_n_nonemb'] / 1e3:.0f}k, validation sample", fontsize=9)
        ax2.legend(fontsize=7)
        paths.append(save_figure(fig, out_dir / "normaliser.png", dpi=120))
    return paths


if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            # cpu: 4 seeds since the seed change (README "Seed change"); seeds 0 and 1 resume unchanged
            default_seeds={"smoke": [0], "cpu": [0, 1, 2, 3], "full": [0, 1, 2]},
            default_workers={"smoke": 1, "cpu": 2, "full": 1})  # fmt: skip
