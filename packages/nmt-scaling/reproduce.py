"""Reproduce 'Scaling Laws for Neural Machine Translation' (Ghorbani, Firat, Freitag, Bapna, Krikun, Garcia,
Chelba, Cherry; Google; ICLR 2022; arXiv 2109.07740) on a synthetic translation task whose irreducible
loss is known exactly.

Small encoder-decoder Transformers (torch.nn) are trained on a seeded language pair (nmt_scaling.task:
word bijection, verb-final reordering, gender/number agreement, a random synonym choice per noun, so
L_inf is known in closed form; at cpu scale the "hard pair" adds case markers from an arbitrary
(verb, role, noun) table that the models must store in their layers). Two depth ladders around a base model, encoder deeper with the decoder
fixed and decoder deeper with the encoder fixed, each trained to convergence on a validation sample
(nmt_scaling.stopping) and scored on a separate test sample, give the points to which the paper's
bivariate law

    L(N_e, N_d) = alpha (Nbar_e/N_e)^p_e (Nbar_d/N_d)^p_d + L_inf

is fitted jointly (per seed); it then predicts held-out models that are deeper on BOTH sides, and is
compared there with a univariate L(N_e + N_d) fit on the same points.

    uv run --package nmt-scaling packages/nmt-scaling/reproduce.py              # cpu scale (default)
    uv run --package nmt-scaling packages/nmt-scaling/reproduce.py --scale smoke
    uv run --package nmt-scaling packages/nmt-scaling/reproduce.py --scale full --device cuda
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from nmt_scaling.analysis import derived_value
from nmt_scaling.task import TaskConfig
from nmt_scaling.train import TrainConfig, train_one

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Scaling Laws for Neural Machine Translation",
    arxiv="2109.07740",
    package="nmt-scaling",
    code=None,  # no training code was released (the authors release generated text only)
)

# The language pair is FIXED for every seed and model (lexicon seed 0); seeds vary the initialisation
# and the training stream. Hard-pair rerun (README "Harder pair"): on the original pair (L_inf = 0.1829)
# the converged loss did not depend on depth, so the pair gains case markers: the subject and object
# nouns are each followed by one of 4 markers from a seeded case[verb, role, lemma] table
# (TaskConfig.n_cases = 4); L_inf = 0.1488 nats/target token (nmt_scaling.task).
TASK = asdict(TaskConfig(n_cases=4))


def model(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Train one (encoder depth, decoder depth) of the ladder to convergence on the validation sample;
    metrics = its sizes, the test loss of its best-validation checkpoint and where it stopped."""
    role = {"is_heldout": float(cfg["role"] == "heldout"), "is_base": float(cfg["role"] == "base")}
    if ctx.scale == "full":  # a local parallel corpus (nmt_scaling.full); no exact L_inf there
        from nmt_scaling.full import run_full

        out = run_full(cfg, seed, ctx)
        out["converged"] = float(out["converged"])
        return {
            **out,
            **role,
            "enc_layers": cfg["full"]["enc_layers"],
            "dec_layers": cfg["full"]["dec_layers"],
        }
    tcfg = TrainConfig(**cfg["train"])
    out = train_one(tcfg, seed, ctx.device, log=ctx.log)
    keys = ("n_enc", "n_dec", "final_loss", "best_valid_loss", "best_step", "stop_step", "bayes_test_loss",
            "bayes_valid_loss", "l_inf_true", "train_tokens")  # fmt: skip
    return {
        **{k: out[k] for k in keys},
        "converged": float(out["converged"]),  # 1: the stopping rule fired; 0: the step cap stopped it
        "enc_layers": tcfg.enc_layers,
        "dec_layers": tcfg.dec_layers,
        **role,
        "curve_steps": out["curve_steps"],  # artifacts (lists): the validation curve, for the figures
        "curve_valid": out["curve_valid"],
    }


def _ladder(scale: str, base: tuple[int, int], depths: list[int], heldout: list[int], **train) -> list:
    """(experiment name, scale, config): the encoder ladder (decoder at the base depth), the decoder
    ladder (encoder at the base depth; the base model once), and the held-out proportional models."""
    be, bd = base
    shapes = {(e, bd): "fit" for e in depths} | {(be, d): "fit" for d in depths}
    shapes[base] = "base"
    shapes |= {(k, k): "heldout" for k in heldout}
    out = []
    for (e, d), role in sorted(shapes.items()):
        cfg = {"role": role, "train": asdict(TrainConfig(enc_layers=e, dec_layers=d, task=TASK, **train))}
        out.append((f"e{e}d{d}", scale, cfg))
    return out


# cpu (hard-pair rerun, fixed before it; README "Harder pair"): the width was chosen by a rule written
# before a pilot on the VALIDATION sample only (scripts/hard_pair_pilot.py): d_model in (32, 64), 4 heads,
# FFN 4 * d_model, the first whose (2,1) and (4,4) best validation losses (seeds 0, 1, this protocol) differ
# by >= 5x the noise floor with every pilot unit converged; else the largest ratio. d_model 64 was dropped
# for COST after one unit per seed (57 CPU-s for the smallest model: the run would be ~3x the budget), and
# d_model 32 did not meet the rule (README), so d_model 32. Ladder SHRUNK for the ~12 CPU-min budget with 3
# seeds (the full d 32 ladder would be ~1,400 CPU-s): encoder L_e = 1..3 (L_d = 2), decoder L_d = 1..3
# (L_e = 2): 5 fit models; held out (3,3). Training protocol unchanged: every model trains TO
# CONVERGENCE on the validation sample (nmt_scaling.stopping): validation loss (500 sentences) every 25
# steps; stop when the best of the last 4 evaluations is not lower than the best before them by more than
# 0.003 nats (the paper's run-to-run sd, Fig. 2 caption [secondary]), cap 1000 steps; the law is fitted to
# the TEST loss of the best-validation checkpoint. 64 sentences per step (the same stream for every model
# of a seed), AdamW lr 2e-3 after 40 linear warm-up steps, then constant (README "Learning-rate schedule").
CPU = dict(d_model=32, heads=4, enc_ffn=128, dec_ffn=128, batch=64, lr=2e-3, warmup_steps=40,
           max_steps=1000, eval_every=25, patience=4, min_delta=0.003, valid_sents=500, test_sents=1000)  # fmt: skip
SMOKE = dict(d_model=16, heads=2, enc_ffn=32, dec_ffn=32, batch=16, lr=3e-3, warmup_steps=2,
             max_steps=8, eval_every=2, patience=2, min_delta=0.003, valid_sents=32, test_sents=64)  # fmt: skip


def _full_ladder(base: tuple[int, int], depths: list[int], heldout: list[int], **full) -> list:
    """The same ladder shape at --scale full, on a local parallel corpus (nmt_scaling.full.FullConfig;
    data from $NMT_SCALING_DATA or the config key data_root)."""
    from nmt_scaling.full import FullConfig

    rows = _ladder("full", base, depths, heldout)  # names and roles only; the synthetic config is replaced
    return [(name, "full", {"role": c["role"], "full": asdict(FullConfig(enc_layers=int(name[1:].split("d")[0]),
             dec_layers=int(name.split("d")[1]), **full))}) for name, _, c in rows]  # fmt: skip


# full (one GPU; never run, no GPU was available to the author): a local WMT-style En->De corpus, a 32k
# joint BPE (the paper: a 32k sentencepiece vocabulary), Transformer-base width (d 512, FFN 2048, 8 heads,
# pre-LN, dropout 0.1, label smoothing 0.1) around a (6, 6) base; encoder ladder L_e = 2..12 (L_d = 6),
# decoder ladder L_d = 2..12 (L_e = 6), held out (8, 8) and (12, 12); every model trained to convergence by
# the cpu scale's rule on the validation split (every 1000 steps, patience 5, min_delta 0.003, cap 100k
# steps x 25k target tokens: Transformer-base's 100k steps, Vaswani et al. 2017 §5.2), 4000 warm-up steps
# then a constant lr, as at cpu scale. The paper: d 1024, FFN 8192, 16 heads, 500k steps x 500k tokens,
# Adafactor [secondary]; its exact depths were not read (README).
FULL = dict(d_model=512, heads=8, enc_ffn=2048, dec_ffn=2048, batch_tokens=25_000, lr=7e-4, warmup_steps=4000,
            max_steps=100_000, eval_every=1000, patience=5, min_delta=0.003, valid_sents=3000,
            vocab_size=32_000, max_len=128)  # fmt: skip

_UNITS = (
    _ladder("smoke", (2, 2), [1, 2, 3], [3], **SMOKE)
    + _ladder("cpu", (2, 2), [1, 2, 3], [3], **CPU)
    + _full_ladder((6, 6), [2, 4, 6, 8, 12], [8, 12], **FULL)
)
_CONFIGS: dict[str, dict] = {}
for _name, _scale, _cfg in _UNITS:
    _CONFIGS.setdefault(_name, {})[_scale] = _cfg
EXPERIMENTS = [
    Experiment(name, model, configs, description=f"encoder {name[1:].split('d')[0]} / decoder {name.split('d')[1]} layers")
    for name, configs in sorted(_CONFIGS.items())
]  # fmt: skip

SCALES = ("cpu", "full")
DERIVED_NAMES = (
    "bi/r2", "bi/rmse", "bi/alpha", "bi/p_e", "bi/p_d", "bi/l_inf", "bi/l_inf_minus_true", "bi/p_sum",
    "bi/p_d_minus_p_e", "bi/p_e_over_p_d", "bi/opt_ratio_defined", "bi/p_e_boot_lo", "bi/p_e_boot_hi", "bi/p_d_boot_lo",
    "bi/p_d_boot_hi", "uni/r2", "uni/l_inf", "uni/alpha", "uni/p",
    "bi/heldout_max_abs_rel_err", "bi/heldout_mean_abs_rel_err", "uni/heldout_max_abs_rel_err",
    "uni/heldout_mean_abs_rel_err", "cmp/uni_minus_bi_heldout_err",
    "bi/err_e3d3", "uni/err_e3d3",
)  # fmt: skip
FULL_ONLY = ("bi/err_e8d8", "uni/err_e8d8", "bi/err_e12d12", "uni/err_e12d12")  # the full held-out models
# the bootstrap of p_e, p_d over fit points needs more points than the 4 parameters: run at full scale
# only (the smoke and the shrunk cpu ladders have 5 fit points; most resamples have < 5 distinct ones)
_NOT_SMOKE = ("bi/p_e_boot_lo", "bi/p_e_boot_hi", "bi/p_d_boot_lo", "bi/p_d_boot_hi")
# the cpu ladder's held-out model (3,3) is not trained at full scale (its own: (8,8), (12,12))
_CPU_HELDOUT = {"bi/err_e3d3": ("smoke", "cpu"), "uni/err_e3d3": ("smoke", "cpu")}
DERIVED = [Derived(k, lambda m, k=k: derived_value(m, k),
                   scales=_CPU_HELDOUT.get(k, ("full",) if k in _NOT_SMOKE else None))
           for k in DERIVED_NAMES]  # fmt: skip
DERIVED += [Derived(k, lambda m, k=k: derived_value(m, k), scales=("full",)) for k in FULL_ONLY]

# Thresholds from the research notes §3.5 and the brief, fixed before the cpu run: joint-fit R^2 >= 0.97;
# held-out proportional models within 2%; the bivariate law beats L(N_total) on held-out error.
# p_d vs p_e and the optimal N_e/N_d are reported (Derived), not asserted.
CLAIMS = [
    Claim(
        id="joint-fit-r2",
        statement="the bivariate law fitted jointly on the encoder and decoder ladders explains >= 97% of "
        "the variance of the loss (R^2)",
        paper="Eq. 2 'captures more than 99% of the variation in the data' (En->De, Fig. 2 caption)",
        metric="bi/r2", check=">= 0.97", scales=SCALES,
    ),
    Claim(
        id="heldout-proportional",
        statement="the joint fit predicts every held-out proportional model (both sides deeper) within 2% "
        "(max over held-out models of |pred - obs| / obs)",
        paper="the bivariate formula 'gives accurate predictions under a variety of scaling approaches' "
        "(abstract)",
        metric="bi/heldout_max_abs_rel_err", check="<= 0.02", scales=SCALES,
    ),
    Claim(
        id="beats-total-n",
        statement="on the held-out models the bivariate law has a lower mean relative error than a "
        "univariate L(N_e + N_d) fit on the same points (uni error - bi error > 0)",
        paper="'the total number of parameters alone is not sufficient for such purposes' (abstract)",
        metric="cmp/uni_minus_bi_heldout_err", check="> 0", scales=SCALES,
    ),
]  # fmt: skip


def figures(results, out_dir: Path) -> list[Path]:
    import numpy as np
    from nmt_scaling.analysis import ladder

    from xentlab.plotting import pyplot, save_figure
    from xentlab.scaling.bivariate import fit_bivariate, fit_univariate

    plt = pyplot()
    flat: dict[int, dict] = {}
    for exp, by_seed in results.per_seed.items():
        for seed, unit in by_seed.items():
            for k, v in unit["metrics"].items():
                flat.setdefault(seed, {})[f"{exp}/{k}"] = v
    seeds = sorted(flat)
    if not seeds:
        return []
    colors = plt.cm.viridis(np.linspace(0, 0.8, len(seeds)))
    paths = []

    # 1) the two ladders with the joint fit, and the held-out models with their predictions
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    for c, s in zip(colors, seeds):
        rows = ladder(flat[s])
        base = next(r for r in rows if r["base"])
        fr = [r for r in rows if not r["heldout"]]
        held = [r for r in rows if r["heldout"]]
        bi = fit_bivariate([r["n_e"] for r in fr], [r["n_d"] for r in fr], [r["loss"] for r in fr],
                           ne_bar=base["n_e"], nd_bar=base["n_d"])  # fmt: skip
        enc = [r for r in fr if r["n_d"] == base["n_d"]]
        dec = [r for r in fr if r["n_e"] == base["n_e"]]
        xe = np.geomspace(min(r["n_e"] for r in enc) / 1.2, max(r["n_e"] for r in enc) * 1.5, 60)
        xd = np.geomspace(min(r["n_d"] for r in dec) / 1.2, max(r["n_d"] for r in dec) * 1.5, 60)
        axes[0].plot([r["n_e"] for r in enc], [r["loss"] for r in enc], "o", color=c)
        axes[0].plot(xe, bi.predict(xe, base["n_d"]), "-", color=c, lw=1,
                     label=f"seed {s}: p_e={bi.p_e:.2f}, p_d={bi.p_d:.2f}, R2={bi.r2:.3f}")  # fmt: skip
        axes[1].plot([r["n_d"] for r in dec], [r["loss"] for r in dec], "s", color=c)
        axes[1].plot(xd, bi.predict(base["n_e"], xd), "-", color=c, lw=1, label=f"seed {s}")
        for r in held:
            axes[2].plot(r["n_e"] + r["n_d"], r["loss"], "*", color=c, ms=12, mec="k", mew=0.5)
            axes[2].plot(r["n_e"] + r["n_d"], bi.predict(r["n_e"], r["n_d"]), "x", color=c, ms=9)
        uni = fit_univariate([r["n_e"] + r["n_d"] for r in fr], [r["loss"] for r in fr],
                             n_bar=base["n_e"] + base["n_d"])  # fmt: skip
        for r in fr:
            axes[2].plot(r["n_e"] + r["n_d"], r["loss"], "o" if r in enc else "s", color=c, ms=4, alpha=0.6)
        xt = np.geomspace(
            min(r["n_e"] + r["n_d"] for r in rows) / 1.1, max(r["n_e"] + r["n_d"] for r in rows) * 1.1, 60
        )
        axes[2].plot(xt, uni.predict(xt), "--", color=c, lw=1, label=f"seed {s}: L(N_total) fit")
    l_true = flat[seeds[0]].get(f"{ladder(flat[seeds[0]])[0]['name']}/l_inf_true")  # None at full scale
    for ax, xl, t in zip(axes, ["encoder params N_e (decoder fixed)", "decoder params N_d (encoder fixed)",
                                "total params N_e + N_d"],
                         ["encoder ladder + joint fit", "decoder ladder + joint fit",
                          "held out (*) vs bivariate prediction (x); L(N_total) fit (--)"]):  # fmt: skip
        if l_true is not None:
            ax.axhline(l_true, color="r", ls=":", lw=1, label=f"exact L_inf = {l_true:.3f}")
        ax.set_xscale("log")
        ax.set_xlabel(xl)
        ax.set_title(t, fontsize=9)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("held-out CE per target token (nats)")
    paths.append(save_figure(fig, out_dir / "ladders_and_fits.png", dpi=120))

    # 2) validation curves of the first seed, each to where the stopping rule ended it; the circle is
    # the best-validation checkpoint, the one scored on the test sample
    s = seeds[0]
    rows = ladder(flat[s])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cm = plt.cm.plasma(np.linspace(0, 0.85, len(rows)))
    for c, r in zip(cm, rows):
        art = results.per_seed[r["name"]][s]["artifacts"]
        xs, ys = art.get("curve_steps", []), art.get("curve_valid", [])
        if not xs:
            continue
        best = flat[s][f"{r['name']}/best_step"]
        ax.plot(xs, ys, "-", color=c, lw=1.2,
                label=f"{r['name']}" + (" (held out)" if r["heldout"] else "") + f": best {best:.0f}, stop {xs[-1]}")  # fmt: skip
        ax.plot([best], [ys[xs.index(best)]], "o", color=c, ms=5, mec="k", mew=0.5)
    l_valid = flat[s].get(f"{rows[0]['name']}/bayes_valid_loss")  # the synthetic task only
    if l_valid is not None:
        ax.axhline(
            l_valid, color="r", ls=":", lw=1, label=f"Bayes loss of the validation sample ({l_valid:.3f})"
        )
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation CE per target token (nats)")
    ax.set_title(f"validation curves, seed {s} (o: best-validation checkpoint)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    paths.append(save_figure(fig, out_dir / "learning_curves.png", dpi=120))
    return paths


if __name__ == "__main__":
    run_cli(
        PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )  # fmt: skip
