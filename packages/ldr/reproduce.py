"""Reproduce 'Label Distributionally Robust Losses for Multi-class Classification: Consistency,
Robustness and Adaptivity' (Zhu, Ying, Yang; ICML 2023) at CPU scale: LDR-KL and ALDR-KL against CE,
GCE and SCE on KEEL letter (K=26) and vowel (K=11) -- two of the paper's own datasets -- with clean
labels, uniform noise 0.6 and class-dependent noise 0.3, generated as the official code does; letter with a
compressed 20-epoch schedule and, for clean and uniform-0.6 labels, also with the official 100-epoch one.

    uv run --package ldr packages/ldr/reproduce.py              # cpu scale (default)
    uv run --package ldr packages/ldr/reproduce.py --scale smoke
    LDR_DATA_ROOT=~/data uv run --package ldr packages/ldr/reproduce.py --scale full --device cuda

At full scale it also runs the paper's CIFAR-100 and Kuzushiji-49 experiments (ResNet-18, the official
30-epoch schedule, 7 label settings each) from LDR_DATA_ROOT.
"""

from __future__ import annotations

from pathlib import Path

from ldr.experiments import LOSSES, run_noisy
from ldr.images import run_noisy_images

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness "
    "and Adaptivity",
    arxiv="2112.14869",
    package="ldr",
    venue="ICML 2023",
    code="https://github.com/Optimization-AI/ICML2023_LDR",
)


def noisy(cfg: dict, seed: int, ctx: RunContext) -> dict:
    out = run_noisy(cfg, seed)
    ctx.log(**{k: v for k, v in out.items() if k.startswith("acc_")})
    return out


def noisy_images(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return run_noisy_images(cfg, seed, ctx.device, log=ctx.log)


# Official tabular protocol (experiment.py): FFNN with 2 tanh hidden layers of width min(d, K), SGD
# momentum 0.9, lr 0.01, weight decay 5e-3, batch 64, 100 epochs with lr / 10 at epochs 50 and 75;
# LDR/ALDR lambda = 10, margin 0.1, alpha = 2. CPU scale: letter 20 epochs, lr / 10 at 10 and 15 (the
# same schedule shape, compressed; see README); vowel the official 100 epochs. GCE q and SCE balance are fixed to the middle of the official
# grids ({0.05, 0.7, 0.95} and {0.05, 0.5, 0.95}) instead of 5-fold selection.
BASE = {
    "n_folds": 5, "losses": list(LOSSES), "width": None, "depth": 2, "lr": 0.01, "weight_decay": 5e-3,
    "batch_size": 64, "gce_q": 0.7, "sce_balance": 0.5, "sce_a": 4.0, "lam": 10.0, "margin": 0.1, "alpha": 2.0,
}  # fmt: skip
SCHEDULES = {
    "smoke": {"epochs": 1, "milestones": []},
    "cpu": {"epochs": 20, "milestones": [10, 15]},
    "full": {"epochs": 100, "milestones": [50, 75]},
}
SETTINGS = {"clean": ("clean", 0.0), "uniform0.6": ("uniform", 0.6), "classdep0.3": ("class_dependent", 0.3)}


def _configs(dataset: str, setting: str) -> dict:
    kind, rate = SETTINGS[setting]
    out = {}
    for scale, sched in SCHEDULES.items():
        cfg = {**BASE, **sched, "dataset": dataset, "noise": kind, "rate": rate}
        if dataset == "vowel":
            # the authors' vowel files: Deterding's speaker-disjoint 528/462 split, 10 formant features
            # (ldr.experiments.load_split; version 3 of the vowel experiments, second fidelity audit)
            cfg["split"] = "official"
        if dataset == "vowel" and scale == "cpu":
            cfg.update(SCHEDULES["full"])  # vowel is small (422 training rows): the official 100 epochs fit
        if scale == "smoke":
            cfg["losses"] = ["ce", "ldr", "aldr"]
        if scale == "full":
            cfg["lr"] = (
                1e-3  # the official README's letter commands (--lr=1e-3); experiment.py's default is 0.01
            )
        out[scale] = cfg
    return out


# The official letter protocol, run at cpu scale too (3 seeds, ~95 CPU-s per unit): the authors' README
# commands and run script for letter pass --lr=1e-3 --decay=5e-3 --alpha=2 to experiment.py, whose tabular
# branch trains 100 epochs with lr / 10 at epochs 50 and 75 (batch 64, momentum 0.9; LDR/ALDR lambda 10,
# margin 0.1: BASE above). It answers whether ALDR-KL's gap to CE on letter is an artefact of the compressed
# 20-epoch schedule. Not offered at full scale, where letter_* already run this schedule.
OFFICIAL_LETTER = {"epochs": 100, "milestones": [50, 75], "lr": 1e-3}
OFFICIAL_SETTINGS = ("clean", "uniform0.6")


def _official_configs(setting: str) -> dict:
    kind, rate = SETTINGS[setting]
    cfg = {**BASE, **OFFICIAL_LETTER, "dataset": "letter", "noise": kind, "rate": rate}
    return {"smoke": {**cfg, **SCHEDULES["smoke"], "losses": ["ce", "ldr", "aldr"]}, "cpu": cfg}


# full scale: CIFAR-100 as the official experiment.py runs it (see ldr/images.py): ResNet-18, SGD momentum
# 0.9, lr 0.01, weight decay 5e-3, batch 64 without shuffling, 30 epochs with lr / 10 at 10 and 20, the
# fold (seed mod 5) of an unshuffled 5-fold split for training; the official README's 7 label settings.
# The data folder is LDR_DATA_ROOT (read when a unit starts; a missing folder is a clear error).
CIFAR100_FULL = {
    **BASE, "dataset": "cifar100", "data_root": None, "width": 64, "epochs": 30, "milestones": [10, 20],
    "shuffle": False, "crop": 30, "eval_every": 5,
}  # fmt: skip
IMAGE_SETTINGS = {
    "clean": ("clean", 0.0),
    "uniform0.3": ("uniform", 0.3), "uniform0.6": ("uniform", 0.6), "uniform0.9": ("uniform", 0.9),
    "classdep0.1": ("class_dependent", 0.1), "classdep0.3": ("class_dependent", 0.3),
    "classdep0.5": ("class_dependent", 0.5),
}  # fmt: skip

# Kuzushiji-49 through the official code's other image path: 1-channel ResNet-18, same schedule, no
# augmentation, ALDR without softplus, class-balanced accuracy (see ldr/images.py).
K49_FULL = {**CIFAR100_FULL, "dataset": "k49", "crop": None}
IMAGE_SETS = {"cifar100": ("CIFAR-100", CIFAR100_FULL), "k49": ("Kuzushiji-49", K49_FULL)}

# version 2 of vowel_classdep0.3: the vowel pairs are now swapped by class value (0<->1, ..., 8<->9, as the
# official classDep_vowel), not by the index of the string-sorted KEEL labels ('0', '1', '10', '2', ...),
# which paired 10<->2, 3<->4, 5<->6, 7<->8 and left 9 fixed (fidelity audit; README, Known defects fixed).
# letter's names sort as A..Z, so its map, and every other unit, is unchanged.
# vowel_* version 3 (vowel_clean, vowel_uniform0.6: 2): the second fidelity audit found that the KEEL
# stratified folds mixed all 15 speakers between training and test and fed the TT (train/test), speaker and
# sex columns to the network; the authors' separate vowel train/test files are (presumably LIBSVM's vowel /
# vowel.t) Deterding's speaker-disjoint split (528 training rows of speakers 0-7, 462 test rows of speakers
# 8-14) with the 10 formant features, and experiment.py
# trains on an unshuffled KFold(5) part of the training file (ldr.experiments.load_split).
VERSIONS = {"vowel_clean": "2", "vowel_uniform0.6": "2", "vowel_classdep0.3": "3"}

EXPERIMENTS = [
    Experiment(f"{ds}_{setting}", noisy, _configs(ds, setting), description=f"{ds}, {setting} labels",
               version=VERSIONS.get(f"{ds}_{setting}", "1"))
    for ds in ("letter", "vowel")
    for setting in SETTINGS
] + [
    Experiment(f"{ds}_{setting}", noisy_images, {"full": {**base, "noise": kind, "rate": rate}},
               description=f"{label} (ResNet-18), {setting} labels")
    for ds, (label, base) in IMAGE_SETS.items()
    for setting, (kind, rate) in IMAGE_SETTINGS.items()
] + [
    Experiment(f"letter_official_{setting}", noisy, _official_configs(setting),
               description=f"letter, {setting} labels, the official schedule (100 epochs, lr 1e-3)")
    for setting in OFFICIAL_SETTINGS
]  # fmt: skip


def _gap(method: str, exp: str):
    return lambda m: m[f"{exp}/acc_{method}"] - m[f"{exp}/acc_ce"]


DERIVED = [
    Derived(f"gap/{method}_minus_ce_{e.name}", _gap(method, e.name),
            scales=("full",) if e.name.split("_")[0] in IMAGE_SETS
            else ("smoke", "cpu") if e.config("full") is None else None)
    for method in ("ldr", "aldr")
    for e in EXPERIMENTS
]  # fmt: skip

CLAIMS = [
    Claim(
        id=f"{method}-beats-ce-uniform0.6-letter",
        statement=f"{label} beats CE by >= 3 points in clean-test accuracy on letter with uniform noise 0.6",
        paper="stable, competitive accuracy under noisy labels (abstract; letter is one of its 7 datasets; table values not read)",
        metric=f"gap/{method}_minus_ce_letter_uniform0.6", check=">= 0.03",
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
] + [
    Claim(
        id=f"{method}-near-ce-clean-letter",
        statement=f"{label} is within 1 point of CE (or better) on clean letter",
        paper="competitive in the clean setting (abstract: 6 noisy + 1 clean settings; table values not read)",
        metric=f"gap/{method}_minus_ce_letter_clean", check=">= -0.01",
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
] + [
    # the same claims and thresholds on letter with the official schedule (added after the compressed-schedule
    # results were known, before these were run; at full scale letter_* already use this schedule)
    Claim(
        id=f"{method}-beats-ce-uniform0.6-letter-official",
        statement=f"{label} beats CE by >= 3 points in clean-test accuracy on letter with uniform noise 0.6, "
        "official schedule (100 epochs, lr 1e-3, lr / 10 at 50 and 75)",
        paper="stable, competitive accuracy under noisy labels (abstract; letter is one of its 7 datasets; table values not read)",
        metric=f"gap/{method}_minus_ce_letter_official_uniform0.6", check=">= 0.03", scales=("smoke", "cpu"),
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
] + [
    Claim(
        id=f"{method}-near-ce-clean-letter-official",
        statement=f"{label} is within 1 point of CE (or better) on clean letter, official schedule (100 epochs, "
        "lr 1e-3, lr / 10 at 50 and 75)",
        paper="competitive in the clean setting (abstract: 6 noisy + 1 clean settings; table values not read)",
        metric=f"gap/{method}_minus_ce_letter_official_clean", check=">= -0.01", scales=("smoke", "cpu"),
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
] + [
    Claim(
        id=f"{method}-beats-ce-uniform0.6-cifar100",
        statement=f"{label} beats CE by >= 3 points in clean-test accuracy on CIFAR-100 with uniform noise 0.6",
        paper="stable, competitive accuracy under noisy labels (abstract; CIFAR-100 table values not read)",
        metric=f"gap/{method}_minus_ce_cifar100_uniform0.6", check=">= 0.03", scales=("full",),
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
] + [
    Claim(
        id=f"{method}-near-ce-clean-cifar100",
        statement=f"{label} is within 1 point of CE (or better) on clean CIFAR-100",
        paper="competitive in the clean setting (abstract; CIFAR-100 table values not read)",
        metric=f"gap/{method}_minus_ce_cifar100_clean", check=">= -0.01", scales=("full",),
    )
    for method, label in (("ldr", "LDR-KL"), ("aldr", "ALDR-KL"))
]  # fmt: skip


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    import numpy as np

    # one panel per experiment prefix ("<prefix>_<setting>"), those that have results at this scale
    panels = [
        (p, title)
        for p, title in (
            ("letter", "letter"),
            ("letter_official", "letter, official 100 epochs lr 1e-3"),
            ("vowel", "vowel"),
            ("cifar100", "cifar100"),
        )
        if any(f"{p}_{s}/acc_ce" in results.metrics for s in IMAGE_SETTINGS)
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), sharey=False, squeeze=False)
    axes = axes[0]
    for ax, (ds, title) in zip(axes, panels):
        settings = [s for s in IMAGE_SETTINGS if f"{ds}_{s}/acc_ce" in results.metrics]
        losses = (
            [name for name in LOSSES if f"{ds}_{settings[0]}/acc_{name}" in results.metrics]
            if settings
            else []
        )
        width = 0.8 / max(len(losses), 1)
        for i, name in enumerate(losses):
            means = [results.metrics[f"{ds}_{s}/acc_{name}"]["mean"] for s in settings]
            errs = [results.metrics[f"{ds}_{s}/acc_{name}"]["std"] or 0.0 for s in settings]
            ax.bar(
                np.arange(len(settings)) + i * width, means, width, yerr=errs, capsize=2, label=name.upper()
            )
        ax.set_xticks(np.arange(len(settings)) + 0.4 - width / 2, settings)
        ax.set_title(f"{title}: clean-test accuracy", fontsize=10)
        ax.set_ylabel("accuracy (mean ± std over seeds)")
        ax.set_ylim(0, 1)
    axes[0].legend(ncol=5, fontsize=8, loc="lower left")
    p = save_figure(fig, out_dir / "accuracy_by_noise.png", dpi=120)
    return [p]


if __name__ == "__main__":
    run_cli(
        PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
        default_workers={"smoke": 2, "cpu": 2, "full": 1},  # full: one GPU, one unit at a time
    )  # fmt: skip
