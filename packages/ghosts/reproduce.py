"""Reproduce 'Ghosts of Softmax' (arXiv 2603.13552) on scikit-learn digits, the paper's own setting.

Three experiments, each following the official code (piyush314/ghosts-of-softmax):

* phase    one step of length tau = r * rho_a from a trained classifier, for six architectures and
           for the descent and random directions: no run should collapse for r < 1, while the
           gradient step collapses test accuracy once r >= 1 (README teaser figure, abstract).
* lrspike  Adam on the lrspike MLP with the learning rate multiplied by 1000 (official) or 10000
           (abstract) from step 50 on: plain Adam and Adam + gradient clipping collapse, the
           rho-controller (tau <= rho_a) survives (experiments/lrspike, archgrid's clip baseline).
* tempfp   the temperature fingerprint: the MLP trained on CE(z / T) for T = 0.25 ... 8, one descent
           step swept in tau; the loss-doubling onset should spread less across temperatures in
           r_T = tau / rho_T than in raw tau (experiments/tempfingerprint; abstract: std 0.992 -> 0.164).
* archgrid the architecture grid (Fig. 10): Transformer, MLP+LN and CNN+BN trained full-batch with Adam,
           the lr multiplied by 10 for the single step 50; plain Adam, Adam + clipping and the
           rho-controller (experiments/archgrid).

    uv run --package ghosts packages/ghosts/reproduce.py               # cpu scale, ~4 min on 2 cores
    uv run --package ghosts packages/ghosts/reproduce.py --scale smoke # pipeline check, < 30 s
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from ghosts.archgrid import ARCHGRID_ARCHS, ArchgridConfig, archgrid_runs, summarize
from ghosts.data import load_digits, load_digits_file_order
from ghosts.models import DISPLAY_NAMES
from ghosts.phase import PhaseConfig, default_r_grid, phase_runs, random_median_onset
from ghosts.spike import SpikeConfig, run_spike
from ghosts.tempfp import TempConfig, fingerprint_runs, onset_cv, onset_spread

from xentlab.plotting import pyplot, save_figure
from xentlab.repro import Claim, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes in Cross-Entropy",
    arxiv="2603.13552",
    package="ghosts",
    code="https://github.com/piyush314/ghosts-of-softmax",
)

ALL_ARCHS = ["linear", "mlp", "mlp_ln", "cnn", "cnn_bn", "transformer"]


# --------------------------------------------------------------------------------------------
# phase: the one-step phase transition at r = 1
# --------------------------------------------------------------------------------------------


def _r_grid(cfg: dict) -> list[float]:
    return default_r_grid(cfg["r_min"], cfg["r_max"], cfg["r_points"])


def phase(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Train each architecture (seeded init and batches), then sweep r along each direction."""
    data = load_digits(cfg["split_seed"], cfg["test_size"], ctx.device)
    grid = _r_grid(cfg)
    pcfg = PhaseConfig(
        archs=cfg["archs"],
        steps_scale=cfg["steps_scale"],
        random_dirs=cfg["random_dirs"],
        eval_n=cfg["eval_n"],
        r_grid=grid,
        onset_loss_ratio=cfg["onset_loss_ratio"],
        acc_collapse=cfg["acc_collapse"],
    )
    runs = phase_runs(pcfg, data, seed, progress=lambda it, **kw: ctx.progress(it, **kw))
    out: dict = {}
    for arch in cfg["archs"]:
        mine = [r for r in runs if r["arch"] == arch]
        grad = next(r for r in mine if r["direction"] == "grad")
        out[f"acc0_{arch}"] = grad["acc0"]
        out[f"rho_grad_{arch}"] = grad["rho_a"]
        # "collapse appears once r >= 1": the gradient step erases >= half the test accuracy at some
        # r >= 1 of the sweep (and, by the next claim, at no r < 1)
        out[f"grad_collapse_{arch}"] = bool(math.isfinite(grad["onset_acc"]) and grad["onset_acc"] >= 1.0)
        onset_rand = random_median_onset(mine, grid, cfg["onset_loss_ratio"])
        ctx.log(
            arch=arch,
            acc0=grad["acc0"],
            rho_grad=grad["rho_a"],
            onset_acc_grad=grad["onset_acc"],
            onset_loss_grad=grad["onset_loss"],
            onset_loss_rand_median=onset_rand,
        )
    out["min_acc_retained_below1"] = min(r["min_acc_retained_below1"] for r in runs)
    out["min_acc_retained_below1_grad"] = min(
        r["min_acc_retained_below1"] for r in runs if r["direction"] == "grad"
    )
    out["all_archs_grad_collapse"] = all(out[f"grad_collapse_{a}"] for a in cfg["archs"])
    out["frac_archs_grad_collapse"] = float(np.mean([out[f"grad_collapse_{a}"] for a in cfg["archs"]]))
    out["frac_runs_collapse_in_sweep"] = float(np.mean([math.isfinite(r["onset_acc"]) for r in runs]))
    # the official loss-based statistics (phasetransition/run.py): median random-direction loss curve
    # crossing 1.1, and the fraction of those onsets within [0.8, 1.25] ("frac_near_1")
    onsets = [
        random_median_onset([r for r in runs if r["arch"] == a], grid, cfg["onset_loss_ratio"])
        for a in cfg["archs"]
    ]
    if cfg["random_dirs"] > 0:
        out["frac_rand_onset_near_1"] = float(np.mean([0.8 <= o <= 1.25 for o in onsets]))
        out["frac_rand_onset_at_or_above_1"] = float(np.mean([o >= 1.0 for o in onsets]))
        # median over architectures; an onset beyond the sweep counts as the sweep's end r_max
        out["median_rand_onset"] = float(np.median([min(o, cfg["r_max"]) for o in onsets]))
    out["max_loss_ratio_below1_grad"] = max(
        r["max_loss_ratio_below1"] for r in runs if r["direction"] == "grad"
    )
    out["r_grid"] = grid
    out["runs"] = [
        {
            k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in r.items()
            if k not in ("loss_ratio", "acc_retained")
        }
        | {
            "loss_ratio": [round(x, 5) if math.isfinite(x) else None for x in r["loss_ratio"]],
            "acc_retained": [round(x, 5) for x in r["acc_retained"]],
        }
        for r in runs
    ]
    out["onset_loss_rand_median"] = {a: o for a, o in zip(cfg["archs"], onsets)}
    return out


# --------------------------------------------------------------------------------------------
# lrspike: plain Adam vs Adam + clipping vs the rho-controller under a persistent lr spike
# --------------------------------------------------------------------------------------------


def _key(method: str, lr: float, mul: float) -> str:
    return f"{method}_lr{lr:.0e}_x{mul:g}"


def lrspike(cfg: dict, seed: int, ctx: RunContext) -> dict:
    data = load_digits(seed, cfg["test_size"], ctx.device)  # official per-class 80/20 split, seed = seed
    out: dict = {}
    curves: dict = {}
    combos = [(m, lr, mul) for mul in cfg["spike_muls"] for lr in cfg["lrs"] for m in cfg["methods"]]
    for method, lr, mul in ctx.progress(combos, desc="runs"):
        scfg = SpikeConfig(
            arch=cfg["arch"],
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            spike_at=cfg["spike_at"],
            spike_mul=mul,
            clip_norm=cfg["clip_norm"],
        )
        log = run_spike(method, lr, data, seed, scfg)
        key = _key(method, lr, mul)
        pre, final = log["acc"][cfg["spike_at"]], log["acc"][-1]
        ratios = [
            t / r for t, r in zip(log["tau"], log["rho"]) if math.isfinite(t) and r > 0 and math.isfinite(r)
        ]
        out[f"{key}_final_acc"] = final
        out[f"{key}_retained"] = final / pre if pre > 0 else 0.0
        out[f"{key}_collapsed"] = bool(final < cfg["collapse_acc"])
        out[f"{key}_max_r"] = max(ratios) if ratios else 0.0
        out[f"{key}_diverged"] = log["diverged"]
        curves[key] = {
            k: [round(x, 5) if math.isfinite(x) else None for x in log[k]]
            for k in ("acc", "tau", "rho", "loss")
        }
        ctx.log(
            run=key, pre_spike_acc=pre, final_acc=final, max_r=out[f"{key}_max_r"], diverged=log["diverged"]
        )
    rho_keys = [_key("rho", lr, mul) for mul in cfg["spike_muls"] for lr in cfg["lrs"]]
    if "rho" in cfg["methods"]:
        out["rho_min_retained"] = min(out[f"{k}_retained"] for k in rho_keys)
        out["rho_max_r"] = max(out[f"{k}_max_r"] for k in rho_keys)
    out["curves"] = curves
    return out


# --------------------------------------------------------------------------------------------
# tempfp: the temperature fingerprint (onset spread in raw tau vs in r_T = tau / rho_T)
# --------------------------------------------------------------------------------------------


def _t(temp: float) -> str:
    return f"T{temp:g}"


def tempfp(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Train the tempfingerprint MLP at each temperature, sweep one descent step, find the onsets."""
    data = load_digits(seed, cfg["test_size"], ctx.device)  # official per-class 80/20 split, seed = seed
    tcfg = TempConfig(
        temps=cfg["temps"],
        train_steps=cfg["train_steps"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        tau_points=cfg["tau_points"],
        onset_loss_ratio=cfg["onset_loss_ratio"],
    )
    runs = fingerprint_runs(tcfg, data, seed, progress=lambda it, **kw: ctx.progress(it, **kw))
    out: dict = {}
    for run in runs:
        key = _t(run["temp"])
        out[f"delta_a_{key}"] = run["delta_a"]
        out[f"rho_{key}"] = run["rho_t"]
        out[f"train_acc_{key}"] = run["train_acc"]
        if math.isfinite(run["onset_tau"]):  # a curve that never doubles has no onset (official: NaN)
            out[f"onset_tau_{key}"] = run["onset_tau"]
            out[f"onset_r_{key}"] = run["onset_r"]
        ctx.log(
            temp=run["temp"],
            delta_a=run["delta_a"],
            rho_t=run["rho_t"],
            onset_tau=run["onset_tau"],
            onset_r=run["onset_r"],
            train_acc=run["train_acc"],
        )
    onsets_tau = [r["onset_tau"] for r in runs]
    onsets_r = [r["onset_r"] for r in runs]
    out["n_onsets_missing"] = sum(not math.isfinite(o) for o in onsets_tau)
    # the abstract's statistic: the standard deviation of the onset over the temperatures, in raw
    # tau and in r_T (0.992 -> 0.164); the coefficient of variation is the same spread without units
    out["onset_spread_tau"] = onset_spread(onsets_tau)
    out["onset_spread_r"] = onset_spread(onsets_r)
    out["onset_spread_ratio"] = out["onset_spread_r"] / out["onset_spread_tau"]
    out["onset_cv_tau"] = onset_cv(onsets_tau)
    out["onset_cv_r"] = onset_cv(onsets_r)
    out["onset_cv_ratio"] = out["onset_cv_r"] / out["onset_cv_tau"]
    out["runs"] = [
        {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in r.items()
            if k not in ("tau", "r_scaled", "loss_ratio", "flip_frac")
        }
        | {
            "tau": [float(f"{x:.6g}") for x in r["tau"]],
            "r_scaled": [float(f"{x:.6g}") for x in r["r_scaled"]],
            "loss_ratio": [float(f"{x:.6g}") if math.isfinite(x) else None for x in r["loss_ratio"]],
            "flip_frac": [round(x, 5) for x in r["flip_frac"]],
        }
        for r in runs
    ]
    return out


# --------------------------------------------------------------------------------------------
# archgrid: a x10 spike for one step on three architectures (plain, clip, rho-controller)
# --------------------------------------------------------------------------------------------


def archgrid(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """The official run_single for every architecture: three arms from the same seeded init."""
    data = load_digits_file_order(cfg["test_frac"], ctx.device)  # official: file order, first 20% test
    acfg = ArchgridConfig(
        steps=cfg["steps"],
        base_lr=cfg["base_lr"],
        spike_at=cfg["spike_at"],
        spike_mul=cfg["spike_mul"],
        clip_norm=cfg["clip_norm"],
    )
    runs = archgrid_runs(
        cfg["archs"], cfg["methods"], data, seed, acfg, progress=lambda it, **kw: ctx.progress(it, **kw)
    )
    out: dict = {}
    curves: dict = {}
    for (arch, method), log in runs.items():
        summary = summarize(log, acfg)
        for k, v in summary.items():
            out[f"{method}_{arch}_{k}"] = v
        curves[f"{method}_{arch}"] = {
            k: [float(f"{x:.6g}") if math.isfinite(x) else None for x in log[k]]
            for k in ("loss", "acc", "lr", "rho", "tau")
            if log[k]
        }
        ctx.log(
            run=f"{method}_{arch}", **{k: summary[k] for k in ("pre_acc", "dip_acc", "final_acc", "r_spike")}
        )
    archs = cfg["archs"]
    # claim metrics: the controller's worst post-spike retention over the architectures, plain
    # Adam's best, and the smallest gain of the controller's dip over plain Adam's
    if "rho" in cfg["methods"]:
        out["rho_min_dip_retained"] = min(out[f"rho_{a}_dip_retained"] for a in archs)
        out["rho_min_final_retained"] = min(out[f"rho_{a}_final_retained"] for a in archs)
    if "plain" in cfg["methods"]:
        out["plain_max_dip_retained"] = max(out[f"plain_{a}_dip_retained"] for a in archs)
        out["plain_min_r_spike"] = min(out[f"plain_{a}_r_spike"] for a in archs)
    if {"rho", "plain"} <= set(cfg["methods"]):
        out["rho_minus_plain_dip_min"] = min(
            out[f"rho_{a}_dip_acc"] - out[f"plain_{a}_dip_acc"] for a in archs
        )
    out["curves"] = curves
    return out


# --------------------------------------------------------------------------------------------
# scales
# --------------------------------------------------------------------------------------------

PHASE_BASE = {
    "archs": ALL_ARCHS,
    "split_seed": 42,  # phasetransition / ghostenvelope: per-class 70/30 split, fixed seed 42
    "test_size": 0.3,
    "steps_scale": 1.0,
    "eval_n": 384,
    "r_min": 0.01,
    "r_max": 30.0,
    "r_points": 18,
    "onset_loss_ratio": 1.1,
    "acc_collapse": 0.5,
}
SPIKE_BASE = {
    "arch": "mlp",
    "lrs": [1e-4, 1e-3, 1e-2],
    "spike_muls": [1000.0, 10000.0],
    "methods": ["plain", "clip", "rho"],
    "steps": 200,
    "batch_size": 64,
    "spike_at": 50,
    "clip_norm": 1.0,
    "test_size": 0.2,
    "collapse_acc": 0.3,
}

TEMPFP_BASE = {
    "temps": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0],  # tempfingerprint contract.json
    "train_steps": 120,
    "lr": 0.01,
    "batch_size": 256,
    "tau_points": 80,
    "onset_loss_ratio": 2.0,
    "test_size": 0.2,
}

ARCHGRID_BASE = {  # experiments/archgrid/contract.json canonical command
    "archs": list(ARCHGRID_ARCHS),
    "methods": ["plain", "clip", "rho"],
    "steps": 200,
    "base_lr": 0.015,
    "spike_at": 50,
    "spike_mul": 10.0,
    "clip_norm": 1.0,
    "test_frac": 0.2,
}

EXPERIMENTS = [
    Experiment(
        name="phase",
        fn=phase,
        # v3: the official per-class NumPy split (ghosts.data.official_split_indices), was sklearn's
        version="3",
        description="one step of length r * rho_a from trained models of six architectures",
        configs={
            "smoke": PHASE_BASE
            | {"archs": ["linear", "mlp"], "steps_scale": 0.3, "random_dirs": 1, "r_points": 8},
            "cpu": PHASE_BASE | {"random_dirs": 3},
            "full": PHASE_BASE | {"random_dirs": 20, "r_min": 1e-3, "r_max": 35.0, "r_points": 42},
        },
    ),
    Experiment(
        name="lrspike",
        fn=lrspike,
        # v3: the official per-class NumPy split (ghosts.data.official_split_indices), was sklearn's
        version="3",
        description="lr x1000 / x10000 from step 50: plain Adam, Adam + clipping, rho-controller",
        configs={
            "smoke": SPIKE_BASE | {"lrs": [1e-2], "steps": 40, "spike_at": 20},
            "cpu": SPIKE_BASE,
            "full": SPIKE_BASE,
        },
    ),
    Experiment(
        name="tempfp",
        fn=tempfp,
        # v2: the official per-class NumPy split (ghosts.data.official_split_indices), was sklearn's
        version="2",
        description="temperature fingerprint: loss-doubling onset of one descent step in tau and in r_T",
        configs={
            "smoke": TEMPFP_BASE | {"temps": [0.5, 2.0], "train_steps": 30, "tau_points": 40},
            "cpu": TEMPFP_BASE,  # the official canonical command (5 seeds)
            "full": TEMPFP_BASE,
        },
    ),
    Experiment(
        name="archgrid",
        fn=archgrid,
        version="1",
        description="lr x10 for the single step 50 on Transformer, MLP+LN, CNN+BN: plain, clip, rho",
        configs={
            "smoke": ARCHGRID_BASE | {"steps": 6, "spike_at": 3},
            "cpu": ARCHGRID_BASE,  # the official canonical command (5 seeds)
            "full": ARCHGRID_BASE,
        },
    ),
]

_LR = "lr1e-02"
CLAIMS = [
    Claim(
        id="phase-no-collapse-below-r1",
        statement="No run (6 architectures x {descent, 3 random} directions) loses half its test accuracy "
        "for any step r = tau/rho_a < 1",
        paper="no model fails for r < 1 across six architectures and multiple directions (abstract)",
        metric="phase/min_acc_retained_below1",
        check=">= 0.5",
        agg="min",
    ),
    Claim(
        id="phase-within-5pct-below-r1",
        statement="Stricter: every run keeps >= 95% of its test accuracy for every r < 1",
        paper="no model fails for r < 1 (abstract); 5% is our threshold",
        metric="phase/min_acc_retained_below1",
        check=">= 0.95",
        agg="min",
    ),
    Claim(
        id="phase-collapse-at-r-ge-1",
        statement="For every architecture the gradient step collapses test accuracy (< 50% retained) "
        "at some r in [1, 30]",
        paper="all architectures collapse once r exceeds 1 (README teaser figure); collapse appears once r >= 1",
        metric="phase/all_archs_grad_collapse",
        agg="all",
    ),
    Claim(
        id="phase-loss-onset-near-r1",
        statement="The official loss-inflation onset (first r where the median random-direction loss ratio "
        "reaches 1.1), median over architectures, is at r >= 0.8, the lower edge of the official "
        "near-1 window [0.8, 1.25]",
        paper="random directions cluster around r = 1 (Fig. 7; phasetransition/run.py frac_near_1)",
        metric="phase/median_rand_onset",
        check=">= 0.8",
        agg="mean",
    ),
]
for _mul, _paper in (
    ("1000", "official lrspike protocol: x1000 from step 50"),
    ("10000", "survives lr spikes up to 10,000x (abstract)"),
):
    CLAIMS += [
        Claim(
            id=f"spike-x{_mul}-rho-survives",
            statement=f"rho-controller at lr 1e-2 with a x{_mul} spike keeps >= 90% of its pre-spike test "
            "accuracy in every seed",
            paper=_paper,
            metric=f"lrspike/rho_{_LR}_x{_mul}_retained",
            check=">= 0.9",
            agg="min",
        ),
        Claim(
            id=f"spike-x{_mul}-plain-collapses",
            statement=f"plain Adam at lr 1e-2 with a x{_mul} spike ends below 30% test accuracy in every seed",
            paper="learning erased at lr 1e-2 (official lrspike figure)",
            metric=f"lrspike/plain_{_LR}_x{_mul}_final_acc",
            check="< 0.3",
            agg="max",
        ),
        Claim(
            id=f"spike-x{_mul}-clip-collapses",
            statement=f"Adam + gradient clipping (norm 1) at lr 1e-2 with a x{_mul} spike ends below 30% "
            "test accuracy in every seed",
            paper="gradient clipping still collapses (abstract)",
            metric=f"lrspike/clip_{_LR}_x{_mul}_final_acc",
            check="< 0.3",
            agg="max",
        ),
    ]
CLAIMS.append(
    Claim(
        id="spike-rho-survives-all-lrs",
        statement="rho-controller keeps >= 90% of its pre-spike accuracy at every base lr and spike size",
        paper="the controller absorbs the spike (official lrspike README)",
        metric="lrspike/rho_min_retained",
        check=">= 0.9",
        agg="min",
    )
)
# The temperature fingerprint. Both checks were fixed from the paper before the run: the abstract's
# onset spread shrinks (std 0.992 -> 0.164, ratio 0.165), so the ratio must be < 1 in every seed;
# the second check asks the same of the unit-free coefficient of variation.
CLAIMS += [
    Claim(
        id="tempfp-onset-spread-shrinks",
        statement="Across the six temperatures (0.25-8), the standard deviation of the loss-doubling onset is "
        "smaller in r_T = tau Delta_a / (pi T) than in raw tau, in every seed",
        paper="normalizing by rho_a shrinks the onset-threshold spread from std 0.992 to 0.164 (abstract)",
        metric="tempfp/onset_spread_ratio",
        check="< 1",
        agg="max",
    ),
    Claim(
        id="tempfp-onset-cv-shrinks",
        statement="The same spread without units: the coefficient of variation (std / mean) of the onset over "
        "the temperatures is smaller in r_T than in raw tau, in every seed",
        paper="normalizing by rho_a shrinks the onset-threshold spread (abstract); the CV form is ours",
        metric="tempfp/onset_cv_ratio",
        check="< 1",
        agg="max",
    ),
]

# The architecture grid (Fig. 10). Fixed from the official statements before the first archgrid run
# (a seed-0 timing run came after and changed nothing):
# the README's "controller robustness across architectures", the figure's panel titles
# ("Attention amplifies spike", "LayerNorm dampens but insufficient", "BatchNorm causes collapse")
# and the abstract's "gradient clipping still collapses". The spike lasts one step, so the test is
# the lowest test accuracy from the spike on (the dip), not the final one; 90% retained and 30%
# absolute are the lrspike thresholds.
_AG = "the official archgrid figure (Fig. 10)"
CLAIMS += [
    Claim(
        id="archgrid-rho-survives",
        statement="On every architecture (Transformer, MLP+LN, CNN+BN) the rho-controller's test accuracy "
        "stays >= 90% of its pre-spike value at every step after the one-step x10 spike, in every seed",
        paper="controller robustness across architectures (official archgrid README)",
        metric="archgrid/rho_min_dip_retained",
        check=">= 0.9",
        agg="min",
    ),
    Claim(
        id="archgrid-rho-beats-plain",
        statement="On every architecture the controller's lowest post-spike test accuracy is higher than plain "
        "Adam's (metric: the smallest difference over the architectures)",
        paper=f"plain Adam vs rho-controller, {_AG}",
        metric="archgrid/rho_minus_plain_dip_min",
        check="> 0",
        agg="mean",
    ),
    Claim(
        id="archgrid-plain-hurt-every-arch",
        statement="Plain Adam loses more than 10% of its pre-spike test accuracy after the spike on every "
        "architecture, in every seed",
        paper="'Attention amplifies spike', 'LayerNorm dampens but insufficient', 'BatchNorm causes collapse' "
        f"({_AG}, panel titles)",
        metric="archgrid/plain_max_dip_retained",
        check="< 0.9",
        agg="max",
    ),
    Claim(
        id="archgrid-cnnbn-plain-collapses",
        statement="Plain Adam on CNN+BN drops below 30% test accuracy after the spike, in every seed",
        paper=f"'CNN+BN: BatchNorm causes collapse' ({_AG})",
        metric="archgrid/plain_ag_cnn_bn_dip_acc",
        check="< 0.3",
        agg="max",
    ),
    Claim(
        id="archgrid-cnnbn-clip-collapses",
        statement="Adam + gradient clipping (norm 1) on CNN+BN also drops below 30% test accuracy after the "
        "spike, in every seed",
        paper=f"gradient clipping still collapses (abstract); the Clip curves of {_AG}",
        metric="archgrid/clip_ag_cnn_bn_dip_acc",
        check="< 0.3",
        agg="max",
    ),
]


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _band(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    return np.nanmedian(arr, 0), np.nanmin(arr, 0), np.nanmax(arr, 0)


def _units(results, exp: str) -> dict[int, dict]:
    """seed -> the unit's metrics and artifacts in one dict."""
    out = {}
    for seed, unit in results.per_seed.get(exp, {}).items():
        out[int(seed)] = (
            {**unit.get("metrics", {}), **unit.get("artifacts", {})} if "artifacts" in unit else unit
        )
    return out


def figures(results, out_dir: Path) -> list[Path]:
    plt = pyplot()

    paths = []
    units = _units(results, "phase")
    if units:
        seeds = sorted(units)
        grid = np.array(units[seeds[0]]["r_grid"])
        archs = results.configs["phase"]["archs"]
        for quantity, fname, ylabel in (
            ("acc_retained", "phase_accuracy_vs_r.png", "test accuracy retained (%)"),
            ("loss_ratio", "phase_loss_vs_r.png", "loss ratio L(theta + tau v) / L(theta)"),
        ):
            ncol = min(3, len(archs))
            nrow = math.ceil(len(archs) / ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False, sharex=True)
            for ax, arch in zip(axes.flat, archs):
                runs = [r for s in seeds for r in units[s]["runs"] if r["arch"] == arch]
                grad = [r[quantity] for r in runs if r["direction"] == "grad"]
                rand = [r[quantity] for r in runs if r["direction"] != "grad"]
                scale = 100.0 if quantity == "acc_retained" else 1.0
                for rows, color, label in (
                    (grad, "#E3120B", "descent step"),
                    (rand, "#006BA2", "random directions"),
                ):
                    if not rows:
                        continue
                    med, lo, hi = _band(rows)
                    ax.plot(grid, med * scale, color=color, lw=2, label=f"{label} (median)")
                    ax.fill_between(grid, lo * scale, hi * scale, color=color, alpha=0.15)
                ax.axvspan(grid.min(), 1.0, color="#00843D", alpha=0.06)
                ax.axvline(1.0, color="#3D3D3D", ls="--", lw=1.2)
                if quantity == "loss_ratio":
                    ax.set_yscale("log")
                    ax.axhline(results.configs["phase"]["onset_loss_ratio"], color="#767676", ls=":", lw=1)
                else:
                    ax.axhline(100 * results.configs["phase"]["acc_collapse"], color="#767676", ls=":", lw=1)
                    ax.set_ylim(0, 105)
                ax.set_xscale("log")
                ax.set_title(f"{DISPLAY_NAMES.get(arch, arch)}", fontsize=11)
                ax.set_xlabel(r"$r = \tau / \rho_a$")
                ax.set_ylabel(ylabel, fontsize=8)
                ax.grid(True, which="major", alpha=0.3)
            for ax in list(axes.flat)[len(archs) :]:
                ax.set_visible(False)
            axes.flat[0].legend(fontsize=7, loc="lower left")
            fig.suptitle(
                f"One step of length r * rho_a (r = 1 dashed; {len(seeds)} seeds: median and min-max)",
                fontsize=11,
            )
            path = save_figure(fig, out_dir / fname, dpi=110)
            paths.append(path)

    units = _units(results, "lrspike")
    if units:
        cfg = results.configs["lrspike"]
        seeds = sorted(units)
        lrs, muls = cfg["lrs"], cfg["spike_muls"]
        colors = {"plain": "#E3120B", "clip": "#0097A7", "rho": "#F4A100"}
        names = {"plain": "plain Adam", "clip": "Adam + clip (1.0)", "rho": "rho-controller"}
        fig, axes = plt.subplots(
            len(lrs),
            len(muls),
            figsize=(5.2 * len(muls), 2.8 * len(lrs)),
            squeeze=False,
            sharex=True,
            sharey=True,
        )
        steps = np.arange(cfg["steps"])
        for i, lr in enumerate(lrs):
            for j, mul in enumerate(muls):
                ax = axes[i, j]
                for m in cfg["methods"]:
                    med, lo, hi = _band([units[s]["curves"][_key(m, lr, mul)]["acc"] for s in seeds])
                    ax.plot(steps, med, color=colors[m], lw=1.8, label=names[m])
                    ax.fill_between(steps, lo, hi, color=colors[m], alpha=0.15)
                ax.axvline(cfg["spike_at"], color="#767676", ls="--", lw=1)
                ax.set_ylim(-0.03, 1.03)
                ax.set_title(f"base lr {lr:g}, x{mul:g} from step {cfg['spike_at']}", fontsize=10)
                ax.grid(True, alpha=0.3)
                if j == 0:
                    ax.set_ylabel("test accuracy")
                if i == len(lrs) - 1:
                    ax.set_xlabel("step")
        axes[0, 0].legend(fontsize=8, loc="lower right")
        fig.suptitle(f"Learning-rate spike ({len(seeds)} seeds: median and min-max)", fontsize=11)
        path = save_figure(fig, out_dir / "lrspike_accuracy.png", dpi=110)
        paths.append(path)

        # step length tau against the radius rho_a through the spike, at the largest base lr
        lr, mul = lrs[-1], muls[0]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for m in cfg["methods"]:
            med, lo, hi = _band([units[s]["curves"][_key(m, lr, mul)]["tau"] for s in seeds])
            ax.plot(steps, med, color=colors[m], lw=1.6, label=f"tau, {names[m]}")
        med, lo, hi = _band([units[s]["curves"][_key("rho", lr, mul)]["rho"] for s in seeds])
        ax.plot(steps, med, color="#00843D", lw=1.6, ls="--", label="rho_a (rho-controller run)")
        ax.fill_between(steps, lo, hi, color="#00843D", alpha=0.15)
        ax.axvline(cfg["spike_at"], color="#767676", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("step length / radius")
        ax.set_title(
            f"Step length vs radius, base lr {lr:g}, x{mul:g} spike (median of {len(seeds)} seeds)",
            fontsize=10,
        )
        ax.legend(fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
        path = save_figure(fig, out_dir / "lrspike_tau_vs_rho.png", dpi=110)
        paths.append(path)

    units = _units(results, "tempfp")
    if units:
        paths.append(_tempfp_figure(units, results.configs["tempfp"], out_dir, plt))
    units = _units(results, "archgrid")
    if units:
        paths.append(_archgrid_figure(units, results.configs["archgrid"], out_dir, plt))
    return paths


def _archgrid_figure(units: dict[int, dict], cfg: dict, out_dir: Path, plt) -> Path:
    """The official layout: per architecture, training loss (log) and test accuracy through the spike,
    median and IQR over seeds per arm; the legend gives each arm's median r = tau/rho_a at the spike."""
    seeds = sorted(units)
    colors = {"plain": "#E3120B", "clip": "#0097A7", "rho": "#F4A100"}
    names = {"plain": "plain Adam", "clip": "Adam + clip (1.0)", "rho": "rho-controller"}
    archs = cfg["archs"]
    steps = np.arange(cfg["steps"])
    fig, axes = plt.subplots(len(archs), 2, figsize=(11, 2.9 * len(archs)), squeeze=False, sharex=True)
    for i, arch in enumerate(archs):
        for m in cfg["methods"]:
            r_med = float(np.median([units[s][f"{m}_{arch}_r_spike"] for s in seeds]))
            for j, key in enumerate(("loss", "acc")):
                arr = np.array(
                    [
                        [np.nan if v is None else v for v in units[s]["curves"][f"{m}_{arch}"][key]]
                        for s in seeds
                    ],
                    dtype=float,
                )
                med = np.nanmedian(arr, 0)
                lo, hi = np.nanpercentile(arr, 25, 0), np.nanpercentile(arr, 75, 0)
                if key == "loss":
                    med, lo, hi = (np.maximum(a, 1e-6) for a in (med, lo, hi))
                label = f"{names[m]} (r at spike {r_med:.2g})"
                axes[i, j].plot(steps, med, color=colors[m], lw=1.6, label=label)
                axes[i, j].fill_between(steps, lo, hi, color=colors[m], alpha=0.15)
        for j in range(2):
            axes[i, j].axvline(cfg["spike_at"], color="#767676", ls="--", lw=1)
            axes[i, j].grid(True, alpha=0.3)
        axes[i, 0].set_yscale("log")
        axes[i, 0].set_ylabel("training loss")
        axes[i, 1].set_ylim(-0.03, 1.03)
        axes[i, 1].set_ylabel("test accuracy")
        axes[i, 0].set_title(f"{DISPLAY_NAMES.get(arch, arch)}: training loss", fontsize=10)
        axes[i, 1].set_title(f"{DISPLAY_NAMES.get(arch, arch)}: test accuracy", fontsize=10)
        axes[i, 1].legend(fontsize=7, loc="lower right")
    for j in range(2):
        axes[-1, j].set_xlabel("step")
    fig.suptitle(
        f"Architecture grid: lr x{cfg['spike_mul']:g} for step {cfg['spike_at']} only "
        f"(base lr {cfg['base_lr']:g}, full batch; {len(seeds)} seeds: median and IQR)",
        fontsize=11,
    )
    return save_figure(fig, out_dir / "archgrid_spike.png", dpi=110)


def tempfp_pooled_spreads(units: dict[int, dict]) -> dict[str, float]:
    """The onset spread read two more ways than per seed (the paper does not say which it reports):
    over all (temperature, seed) onsets, and over the temperatures of the per-temperature medians."""
    out = {}
    for unit_key, name in (("onset_tau", "tau"), ("onset_r", "r")):
        table = [[r[unit_key] for r in units[s]["runs"]] for s in sorted(units)]  # seed x temperature
        arr = np.array([[np.inf if v is None else v for v in row] for row in table], dtype=float)
        out[f"pooled_{name}"] = onset_spread(arr.ravel().tolist())
        medians = [float(np.median(col[np.isfinite(col)])) for col in arr.T if np.isfinite(col).any()]
        out[f"median_{name}"] = onset_spread(medians)
    return out


def _tempfp_figure(units: dict[int, dict], cfg: dict, out_dir: Path, plt) -> Path:
    """Official figure (median + IQR over seeds of the loss-ratio curves vs tau and vs r_T), plus the onsets."""
    seeds = sorted(units)
    temps = cfg["temps"]
    cmap = plt.get_cmap("viridis")
    colors = {t: cmap(i / max(1, len(temps) - 1)) for i, t in enumerate(temps)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, xkey, xlabel in (
        (axes[0], "tau", r"raw step $\tau$"),
        (axes[1], "r_scaled", r"$r_T = \tau \Delta_a / (\pi T)$"),
    ):
        for i, t in enumerate(temps):
            curves = [units[s]["runs"][i] for s in seeds]
            lo = max(min(c[xkey]) for c in curves)
            hi = min(max(c[xkey]) for c in curves)
            grid = np.geomspace(lo, hi, 120)
            rows = []
            for c in curves:
                y = np.array([np.inf if v is None else v for v in c["loss_ratio"]], dtype=float)
                y = np.log(np.where(np.isfinite(y), y, 1e30))
                rows.append(np.exp(np.interp(np.log(grid), np.log(c[xkey]), y)))
            rows = np.array(rows)
            ax.plot(grid, np.median(rows, 0), color=colors[t], lw=2, label=f"T = {t:g}")
            ax.fill_between(
                grid, np.percentile(rows, 25, 0), np.percentile(rows, 75, 0), color=colors[t], alpha=0.15
            )
        ax.axhline(cfg["onset_loss_ratio"], color="#767676", ls=":", lw=1)
        if xkey == "r_scaled":
            ax.axvline(1.0, color="#3D3D3D", ls="--", lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.3, 1e4)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("one-step loss ratio")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_title("A) loss ratio vs raw step", fontsize=10)
    axes[1].set_title("B) loss ratio vs r_T (radius-scaled)", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")

    # C: each seed's onsets divided by that seed's mean onset, so that the two units share an axis
    # (the spread of these points is the coefficient of variation); the stds in their own units are
    # printed in the panel
    ax = axes[2]
    for key, color, label in (
        ("onset_tau", "#E3120B", r"onset in $\tau$"),
        ("onset_r", "#006BA2", r"onset in $r_T$"),
    ):
        table = np.array(
            [[np.nan if r[key] is None else r[key] for r in units[s]["runs"]] for s in seeds], dtype=float
        )
        table = table / np.nanmean(table, axis=1, keepdims=True)
        for row in table:
            ax.plot(temps, row, "o", color=color, alpha=0.35, ms=4)
        ax.plot(temps, np.nanmedian(table, 0), "-", color=color, lw=2, label=f"{label} (median of seeds)")
    spreads = tempfp_pooled_spreads(units)
    per_seed_tau = np.nanmean([units[s]["onset_spread_tau"] for s in seeds])
    per_seed_r = np.nanmean([units[s]["onset_spread_r"] for s in seeds])
    ax.text(
        0.02,
        0.98,
        "std of the onset over T:    tau -> r_T\n"
        f"per seed (mean)         {per_seed_tau:.3f} -> {per_seed_r:.3f}\n"
        f"all (T, seed) onsets    {spreads['pooled_tau']:.3f} -> {spreads['pooled_r']:.3f}\n"
        f"per-T medians           {spreads['median_tau']:.3f} -> {spreads['median_r']:.3f}\n"
        "paper (abstract)        0.992 -> 0.164",
        transform=ax.transAxes,
        fontsize=7,
        va="top",
        family="monospace",
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#BBBBBB"},
    )
    ax.axhline(1.0, color="#767676", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 2.4)
    ax.set_xlabel("temperature T")
    ax.set_ylabel(f"onset (loss ratio >= {cfg['onset_loss_ratio']:g}) / seed's mean")
    ax.set_title("C) onsets relative to their mean over T", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(
        f"Temperature fingerprint: one descent step from the MLP trained at each T ({len(seeds)} seeds; "
        "median and IQR)",
        fontsize=11,
    )
    return save_figure(fig, out_dir / "tempfp_fingerprint.png", dpi=110)


if __name__ == "__main__":
    torch.set_num_threads(1)
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2, 3, 4], "full": [0, 1, 2, 3, 4]},
        # Two worker processes halve the cpu scale on 2 cores; the smoke run stays in-process, since
        # each extra process pays about 10 s for `import torch`.
        default_workers={"smoke": 1, "cpu": 2, "full": 2},
    )
