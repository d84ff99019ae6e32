"""Reproduce "Orthogonal Projection Loss" (Ranasinghe, Naseer, Hayat, Khan, Khan; ICCV 2021).

    uv run --package opl packages/opl/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Four arms share every seed (same initial weights, batches and noisy labels): CE and CE + OPL
(gamma 0.5, lambda 1: the official CIFAR-100 setting), on clean labels and with 40% symmetric label
noise. Four more arms follow the paper's label-noise table (label_noise/truncated_loss/ of the
official code): the truncated L_q loss (TL) vs TL + 0.1 * OPL (gamma 2), under 40% uniform and 40%
pair-flip ("class dependent") noise, with that code's optimiser and pruning schedule.
cpu scale: the procedural 10-class shapes set (xentlab.data.shapes, 16x16 RGB) and a 3-stage
CNN. full scale: CIFAR-100 with ResNet-56 (ResNet-18 for the TL arms) from OPL_DATA_ROOT.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from opl.experiment import RunConfig, run

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, difference, run_cli

PAPER = Paper(
    title="Orthogonal Projection Loss",
    arxiv="2103.14021",
    package="opl",
    code="https://github.com/kahnchana/opl",
    venue="ICCV 2021",
)

# --------------------------------------------------------------------------- configs per scale

SMOKE = dict(dataset="shapes", image_size=16, n_train_per_class=10, n_test_per_class=5, widths=(4, 8, 16),
             epochs=1, batch_size=50, milestones=(), lr=0.05)  # fmt: skip
# cpu: 2,000 training images (200 per class) of 16x16 shapes, 30 epochs of SGD (480 steps).
CPU = dict(dataset="shapes", image_size=16, n_train_per_class=200, n_test_per_class=100, widths=(16, 32, 64),
           epochs=30, batch_size=128, lr=0.1, milestones=(15, 24), lr_decay=0.2)  # fmt: skip
# full: the official CIFAR-100 recipe (classification/cifar/train.py + conf/global_settings.py):
# ResNet-56, SGD lr 0.1, batch 128, 200 epochs, milestones 60/120/160 (x0.2), 1 warm-up epoch. train.py
# calls train_scheduler.step(epoch) with the 1-based epoch before training it, so 1-based epoch 60 already
# runs at 0.02: in lr_at's 0-based "after m epochs" convention that is 59/119/159.
FULL = dict(dataset="cifar100", data_root=os.environ.get("OPL_DATA_ROOT", "~/data/cifar"), model="resnet56",
            epochs=200, batch_size=128, lr=0.1, milestones=(59, 119, 159), lr_decay=0.2, warmup_epochs=1)  # fmt: skip

ARMS = {
    "ce_clean": ("ce", 0.0),
    "opl_clean": ("opl", 0.0),
    "ce_noisy": ("ce", 0.4),
    "opl_noisy": ("opl", 0.4),
}


# The label-noise table (TL vs TL + OPL), label_noise/truncated_loss/scripts/train_c100.sh and main.py:
# ResNet-18, SGD lr 0.01 (momentum 0.9, weight decay 1e-4), batch 128, 150 epochs, x0.1 at 80 and 120,
# TL weights re-set before every 10th epoch from epoch 80 on; noise rate 0.4; OPL gamma 2
# (hard-coded in its TruncatedLoss.py) with opl_ratio (lambda) 0.1.
TL_OFFICIAL = dict(lr=0.01, weight_decay=1e-4, lr_decay=0.1, warmup_epochs=0, gamma=2.0, lam=0.1, noise=0.4)
# cpu: the CIFAR-100 schedule scaled by 3/10 to 45 epochs (720 SGD steps): milestones 24 and 36, pruning
# before epochs 24, 27, ..., 45 (8 prunings, as before 80, 90, ..., 150 in the official run). lr 0.1 as
# in the cpu arms above, not the official 0.01: the official run takes ~58,600 steps, ours 720; a
# pilot at lr 0.01 (seed 99, not a reported seed) ended at 22% accuracy on the clean training labels
# and its first pruning dropped 94% of the samples (README, Deviations).
TL_CPU = {
    **CPU,
    **TL_OFFICIAL,
    "lr": 0.1,
    "epochs": 45,
    "milestones": (24, 36),
    "prune_start": 24,
    "prune_every": 3,
}
# smoke: prune before the only epoch, so the pruning path runs too
TL_SMOKE = {**SMOKE, **TL_OFFICIAL, "prune_start": 1, "prune_every": 1}
TL_FULL = {**FULL, **TL_OFFICIAL, "model": "resnet18", "epochs": 150, "milestones": (80, 120),
           "prune_start": 80, "prune_every": 10}  # fmt: skip
NOISE_TYPES = {"uniform": "symmetric", "pairflip": "pairflip"}  # the paper's column name -> noise_type
TL_ARMS = {
    f"{arm}_{col}": (loss, kind)
    for col, kind in NOISE_TYPES.items()
    for arm, loss in (("tl", "tl"), ("tlopl", "tl_opl"))
}


def train_arm(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One arm at one seed: train, then measure test accuracy and the test-set feature geometry."""
    rc = RunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return run(rc, seed, device=ctx.device, log=ctx.log, progress=ctx.progress)


def _configs(loss: str, noise: float) -> dict:
    return {scale: {**base, "loss": loss, "noise": noise} for scale, base in (("smoke", SMOKE), ("cpu", CPU),
                                                                              ("full", FULL))}  # fmt: skip


# version 2 (fidelity audit): the warm-up epoch starts at lr 0 and its b-th batch runs at lr * b / steps, as
# the official WarmUpLR (version 1 ran at lr * (b + 1) / steps, one batch ahead). The TL arms have no
# warm-up and are unchanged.
EXPERIMENTS = [
    Experiment(
        name,
        train_arm,
        _configs(loss, noise),
        description=f"{loss.upper()}, label noise {noise:.0%}",
        version="2",
    )
    for name, (loss, noise) in ARMS.items()
]
EXPERIMENTS += [
    Experiment(
        name,
        train_arm,
        {
            scale: {**base, "loss": loss, "noise_type": kind}
            for scale, base in (("smoke", TL_SMOKE), ("cpu", TL_CPU), ("full", TL_FULL))
        },
        description=f"{'TL + OPL' if loss == 'tl_opl' else 'TL'}, 40% {kind} label noise",
    )  # fmt: skip
    for name, (loss, kind) in TL_ARMS.items()
]


DERIVED = []
for cond in ("clean", "noisy"):
    DERIVED += [
        # relative drop of the mean |cos| between different-class test features (Eq. 2 on the test set)
        Derived(
            f"{cond}/s_neg_reduction",
            lambda m, c=cond: 1.0 - m[f"opl_{c}/test_s_neg"] / m[f"ce_{c}/test_s_neg"],
        ),  # fmt: skip
        Derived(f"{cond}/s_pos_gain", lambda m, c=cond: m[f"opl_{c}/test_s_pos"] - m[f"ce_{c}/test_s_pos"]),
        Derived(
            f"{cond}/acc_gain_pts", difference(f"opl_{cond}/test_acc", f"ce_{cond}/test_acc", scale=100.0)
        ),
    ]

for col in NOISE_TYPES:  # TL vs TL + OPL, paired per seed
    DERIVED += [
        Derived(
            f"{col}/acc_gain_pts", difference(f"tlopl_{col}/test_acc", f"tl_{col}/test_acc", scale=100.0)
        ),
        Derived(
            f"{col}/s_neg_reduction",
            lambda m, c=col: 1.0 - m[f"tlopl_{c}/test_s_neg"] / m[f"tl_{c}/test_s_neg"],
        ),  # fmt: skip
        Derived(f"{col}/s_pos_gain", lambda m, c=col: m[f"tlopl_{c}/test_s_pos"] - m[f"tl_{c}/test_s_pos"]),
    ]
# the paper's gain is larger under class-dependent than under uniform noise (C-10 +0.83 vs +4.74,
# C-100 +2.98 vs +6.28): the paired difference of the two gains
DERIVED.append(Derived("pairflip_vs_uniform/acc_gain_pts", lambda m: m["pairflip/acc_gain_pts"] - m["uniform/acc_gain_pts"]))  # fmt: skip

CLAIMS = [
    Claim(
        id="s-neg-halved",
        statement="OPL lowers the test-set mean |cos| between classes (s_neg) by at least 50% vs CE",
        paper="OPL enforces inter-class orthogonality (Sec. 3, Fig. 1); issue threshold >= 50%",
        metric="clean/s_neg_reduction",
        check=">= 0.5",
    ),  # fmt: skip
    Claim(
        id="s-pos-up",
        statement="OPL raises the test-set mean cosine within classes (s_pos) vs CE",
        paper="OPL enforces intra-class clustering (Sec. 3)",
        metric="clean/s_pos_gain",
        check="> 0",
    ),
    Claim(
        id="no-acc-cost",
        statement="OPL costs no accuracy on clean labels (gain >= -0.3 points)",
        paper="ImageNet top-1: ResNet-18 69.91 -> 70.27, ResNet-50 76.15 -> 76.98 (official README)",
        metric="clean/acc_gain_pts",
        check=">= -0.3",
    ),  # fmt: skip
    Claim(
        id="noisy-acc-gain",
        statement="Under 40% symmetric label noise OPL improves test accuracy over CE",
        paper="no CE-based noise number; the paper's are TL vs TL+OPL (CIFAR-100 uniform 62.64 -> 65.62, "
        "class-dependent 47.66 -> 53.94; official README), tested by the tl-* claims",
        metric="noisy/acc_gain_pts",
        check="> 0",
    ),  # fmt: skip
    Claim(
        id="noisy-s-neg-halved",
        statement="Under label noise too, OPL lowers test s_neg by at least 50%",
        paper="(geometry under noise; not a number in the paper)",
        metric="noisy/s_neg_reduction",
        check=">= 0.5",
    ),
    # the paper's label-noise table: TL vs TL + OPL (official code: gamma 2, lambda 0.1), 40% noise
    Claim(
        id="tl-uniform-acc-gain",
        statement="Under 40% uniform noise, TL + OPL beats TL in test accuracy",
        paper="CIFAR-100 uniform: TL 62.64 -> TL+OPL 65.62 (CIFAR-10 87.62 -> 88.45; official README)",
        metric="uniform/acc_gain_pts",
        check="> 0",
    ),  # fmt: skip
    Claim(
        id="tl-pairflip-acc-gain",
        statement="Under 40% pair-flip (class-dependent) noise, TL + OPL beats TL in test accuracy",
        paper="CIFAR-100 class dependent: TL 47.66 -> TL+OPL 53.94 (CIFAR-10 82.28 -> 87.02; official README)",
        metric="pairflip/acc_gain_pts",
        check="> 0",
    ),  # fmt: skip
    Claim(
        id="tl-gain-larger-pairflip",
        statement="OPL's accuracy gain over TL is larger under pair-flip than under uniform noise",
        paper="gain +6.28 vs +2.98 (CIFAR-100), +4.74 vs +0.83 (CIFAR-10)",
        metric="pairflip_vs_uniform/acc_gain_pts",
        check="> 0",
    ),
    Claim(
        id="tl-uniform-s-neg-halved",
        statement="Under 40% uniform noise, TL + OPL lowers test s_neg by at least 50% vs TL",
        paper="(geometry under noise; not a number in the paper; the issue's 50% threshold)",
        metric="uniform/s_neg_reduction",
        check=">= 0.5",
    ),
    Claim(
        id="tl-pairflip-s-neg-halved",
        statement="Under 40% pair-flip noise, TL + OPL lowers test s_neg by at least 50% vs TL",
        paper="(geometry under noise; not a number in the paper; the issue's 50% threshold)",
        metric="pairflip/s_neg_reduction",
        check=">= 0.5",
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()

    paths = []
    seeds = sorted(results.per_seed["ce_clean"])
    s0 = seeds[0]
    # 1. class-pair cosine matrices before (CE) and after (CE + OPL), clean and noisy, first seed
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.7))
    for ax, name in zip(axes, ARMS):
        mat = np.array(results.per_seed[name][s0]["artifacts"]["class_pair_cos"])
        im = ax.imshow(mat, vmin=-0.2, vmax=1.0, cmap="viridis")
        off = mat[~np.eye(len(mat), dtype=bool)]
        ax.set_title(f"{name}\ndiag {np.diag(mat).mean():.2f} | off-diag {off.mean():.2f}", fontsize=9)
        ax.set_xticks(range(len(mat)))
        ax.set_yticks(range(len(mat)))
        ax.tick_params(labelsize=7)
        ax.set_xlabel("class b")
        ax.set_ylabel("class a")
    fig.colorbar(im, ax=axes, shrink=0.8, label="mean cosine of test features")
    fig.suptitle(f"Test-feature cosine per class pair (seed {s0}): same-class on the diagonal")
    p = save_figure(fig, out_dir / "class_pair_cosine.png", dpi=110, tight=False, bbox_inches="tight")
    paths.append(p)

    # 2. s_pos, s_neg and accuracy per arm, mean and per-seed points
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric, label in zip(
        axes, ("test_s_pos", "test_s_neg", "test_acc"), ("s_pos", "s_neg", "test accuracy")
    ):
        for i, name in enumerate(ARMS):
            vals = [results.per_seed[name][s]["metrics"][metric] for s in seeds]
            ax.bar(i, np.mean(vals), color="tab:orange" if name.startswith("opl") else "tab:blue", alpha=0.7)
            ax.scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(ARMS)), list(ARMS), rotation=20)
        ax.set_title(label)
    fig.suptitle("CE vs CE + OPL (gamma 0.5, lambda 1); dots are seeds")
    p = save_figure(fig, out_dir / "geometry_and_accuracy.png", dpi=110)
    paths.append(p)

    # 3. learning curves: test accuracy and batch s_neg per epoch
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name in ARMS:
        curves = [results.per_seed[name][s]["artifacts"]["curve"] for s in seeds]
        ep = [r["epoch"] for r in curves[0]]
        for ax, key in zip(axes, ("test_acc", "s_neg")):
            ax.plot(ep, np.mean([[r[key] for r in c] for c in curves], 0), label=name,
                    ls="-" if name.startswith("opl") else "--")  # fmt: skip
    axes[0].set_ylabel("test accuracy")
    axes[1].set_ylabel("train-batch s_neg")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    p = save_figure(fig, out_dir / "curves.png", dpi=110)
    paths.append(p)

    # 4. the label-noise table's setting: TL vs TL + OPL under uniform and pair-flip noise
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.7))
    for i, name in enumerate(TL_ARMS):
        vals = [100 * results.per_seed[name][s]["metrics"]["test_acc"] for s in seeds]
        axes[0].bar(
            i, np.mean(vals), color="tab:orange" if name.startswith("tlopl") else "tab:blue", alpha=0.7
        )
        axes[0].scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
        curves = [results.per_seed[name][s]["artifacts"]["curve"] for s in seeds]
        ep = [r["epoch"] for r in curves[0]]
        style = dict(
            ls="-" if name.startswith("tlopl") else "--",
            color="tab:red" if "pairflip" in name else "tab:green",
        )
        axes[1].plot(ep, 100 * np.mean([[r["test_acc"] for r in c] for c in curves], 0), label=name, **style)
        for key, marker in (("kept_clean_frac", "o"), ("kept_noisy_frac", "x")):
            axes[2].plot(ep, np.mean([[r[key] for r in c] for c in curves], 0), marker=marker, ms=3,
                         label=f"{name}: {key.split('_')[1]}", **style)  # fmt: skip
    axes[0].set_xticks(range(len(TL_ARMS)), list(TL_ARMS), rotation=20)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("final test accuracy (dots: seeds)")
    axes[1].set_ylabel("test accuracy (%)")
    axes[2].set_ylabel("share of samples kept by TL's pruning")
    for ax in axes[1:]:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle("TL vs TL + OPL (gamma 2, lambda 0.1), 40% uniform / pair-flip noise")
    p = save_figure(fig, out_dir / "tl_noise.png", dpi=110)
    paths.append(p)
    return paths


def _config_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(RunConfig)}


assert all(set(c) <= _config_fields() for e in EXPERIMENTS for c in e.configs.values())

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            default_seeds={"smoke": [0], "cpu": [0, 1, 2, 3, 4], "full": [0, 1, 2]}, default_workers=2)  # fmt: skip
