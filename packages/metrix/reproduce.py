"""Reproduce "It Takes Two to Tango: Mixup for Deep Metric Learning" (Metrix; ICLR 2022; arXiv 2106.04990).

    uv run python packages/metrix/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Three arms share every seed (same CNN init, same random batches): the contrastive loss alone (baseline),
and contrastive + Metrix in embedding mode and in feature mode (official code: billpsomas/metrix,
train.py). Trained on 30 procedural glyph classes (xentlab.data.shapes, 16x16 RGB, 40 images per class)
and evaluated by Recall@1/2/4 (cosine, leave-one-out) on 30 disjoint, unseen classes after the last epoch.
``--scale full`` trains an ImageNet ResNet-50 on CUB-200-2011 from local files (metrix.full; see the README).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from metrix.experiment import RunConfig, run

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, difference, run_cli

PAPER = Paper(
    title="It Takes Two to Tango: Mixup for Deep Metric Learning",
    arxiv="2106.04990",
    package="metrix",
    code="https://github.com/billpsomas/Metrix_ICLR22",
)

SMOKE = dict(n_train_classes=6, n_test_classes=6, n_per_class=10, channels=8, embedding_size=16, batch_size=30,
             epochs=2, lr_decay_step=1)  # fmt: skip
# cpu: 30 seen / 30 unseen classes x 40 images, 20 epochs of 12 batches of 100 (official batch size and
# StepLR step of 10 epochs); ~15 s (baseline, embed) and ~55 s (feature) per unit on one core
CPU = dict(epochs=20)
# cpu seeds (protocol v2, fixed before the rerun): 6 seeds instead of 3. With 3 seeds the seed-to-seed spread
# of the paired R@1 gain (SD 2.3-3.5 points) exceeded the paper's effect, so the claims could not be resolved.
# The unit and its config are unchanged (seeds 0-2 resume as they were); only seeds 3-5 are added. Cost:
# ~87 CPU-s per seed for the three arms (14 + 16 + 57 s, measured), so 6 seeds ~ 520 CPU-s, the most that
# fits the ~10 CPU-minute budget with margin (7 seeds ~ 610 s). All three arms need the extra seeds: both
# claims are paired against the baseline. Expected resolution: bootstrap 95% CI half-width ~ 1.7-2.6 points,
# so a claim holds only if the mean gain is >~ 3 points and fails if it is <~ -1; a true 1-2 point gain
# would need ~35 seeds (~50 CPU-minutes) and stays inconclusive at this budget.
CPU_SEEDS = [0, 1, 2, 3, 4, 5]
# --scale full: CUB-200-2011 (classes 1-100 train, 101-200 test) with an ImageNet ResNet-50, the official
# main.py setting; paths from METRIX_DATA_ROOT and METRIX_RESNET50_WEIGHTS (see metrix.full and the README)
FULL = dict(
    data_root=None,  # $METRIX_DATA_ROOT: the folder holding CUB_200_2011/
    pretrained=None,  # $METRIX_RESNET50_WEIGHTS: torchvision resnet50 ImageNet state dict (.pth)
    n_train_classes=100,  # dataset/cub.py: classes 0-99 train, 100-199 test
    image_size=224,  # RandomResizedCrop(224) / CenterCrop(224)
    resize=256,  # test: Resize(256)
    width=64,  # ResNet-50 base width (torchvision's); tests use a narrower one
    embedding_size=512,  # paper Sec. 4 (the README commands pass 128)
    batch_size=100,  # README commands: --batch_size 100, random sampling with drop_last on CUB
    lr=1e-4,
    weight_decay=1e-4,
    lr_decay_step=10,
    lr_decay_gamma=0.1,
    warm=5,  # main.py --warm: epochs that train only the embedding layer
    bn_freeze=True,  # main.py --bn_freeze 1
    clip_value=10.0,
    alpha=2.0,
    w_posneg=0.4,
    w_ancneg_embed=0.3,
    w_ancneg_feature=0.4,
    recall_ks=(1, 2, 4, 8),
    eval_every=1,  # test R@1 logged every epoch for the figure (never used to select a model)
    eval_batch=200,
    num_workers=8,
)
# README commands: the baseline for 60 epochs, contrastive + Metrix for 100
FULL_EPOCHS = {"baseline": 60, "embed": 100, "feature": 100}

ARMS = {"baseline": dict(mode="baseline"), "embed": dict(mode="embed"), "feature": dict(mode="feature")}
DESCRIPTIONS = {
    "baseline": "contrastive loss (pos margin 0, neg margin 0.5, AvgNonZero), all pairs of the batch",
    "embed": "contrastive + Metrix, embedding-mode mixing (w = 0.4 pos-neg / 0.3 anchor-neg)",
    "feature": "contrastive + Metrix, feature-mode mixing of the last feature maps (w = 0.4 / 0.4)",
}


def train_arm(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One arm at one seed (full scale: CUB-200-2011 + ResNet-50, metrix.full)."""
    if ctx.scale == "full":
        from metrix.full import run_full

        return run_full(cfg, seed, ctx)
    return run(RunConfig(**cfg), seed, device=ctx.device, log=ctx.log, progress=ctx.progress)


# version 2 (audit 2, protocol fix written before the rerun): the unseen test classes are rendered with their
# own generator seed (1) instead of the training seed (0), which had given every test image the pose, colours,
# texture and background of the training image at the same index (metrix.experiment.load_split). The training
# data, the unit, the seeds (0-5) and the claims' thresholds are unchanged; every unit is recomputed.
EXPERIMENTS = [
    Experiment(
        name,
        train_arm,
        {
            "smoke": {**SMOKE, **arm},
            "cpu": {**CPU, **arm},
            "full": {**FULL, **arm, "epochs": FULL_EPOCHS[name]},
        },  # fmt: skip
        description=DESCRIPTIONS[name],
        version="2",
    )
    for name, arm in ARMS.items()
]

DERIVED = [
    Derived(f"gain/{mode}_r{k}", difference(f"{mode}/r{k}", f"baseline/r{k}"))
    for mode in ("embed", "feature")
    for k in (1, 2, 4)
]

CLAIMS = [
    Claim(
        id=f"metrix-{mode}-r1",
        statement=f"Contrastive + Metrix ({mode} mode) beats the contrastive baseline by at least 1 point of "
        "Recall@1 on unseen classes",
        paper="CUB200 contrastive R@1 64.7 -> 67.4 (feature mode; README table); Cars196 81.6 -> 85.1; "
        "threshold +1 point from the research notes",
        metric=f"gain/{mode}_r1",
        check=">= 1.0",
        scales=("cpu", "full"),
    )
    for mode in ("embed", "feature")
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    names = [n for n in ARMS if n in results.per_seed]
    seeds = sorted(results.per_seed[names[0]])
    colours = {"baseline": "tab:gray", "embed": "tab:blue", "feature": "tab:red"}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    ax = axes[0]
    for n in names:
        curves = np.array([results.per_seed[n][s]["artifacts"]["r1_curve"] for s in seeds])
        ep = np.arange(1, curves.shape[1] + 1)
        ax.plot(ep, curves.mean(0), color=colours[n], label=n)
        ax.fill_between(ep, curves.min(0), curves.max(0), color=colours[n], alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("R@1 on unseen classes (%)")
    ax.set_title(f"mean and range over {len(seeds)} seeds", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1]
    r1 = np.array([[results.per_seed[n][s]["metrics"]["r1"] for s in seeds] for n in names])
    for i, n in enumerate(names):
        ax.bar(i, r1[i].mean(), color=colours[n], alpha=0.6)
        ax.scatter([i] * len(seeds), r1[i], color="k", s=10, zorder=3)
    for j in range(len(seeds)):
        ax.plot(range(len(names)), r1[:, j], color="k", alpha=0.3, lw=0.8)
    ax.set_ylim(max(0, r1.min() - 8), min(100, r1.max() + 4))
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("final R@1 (%)")
    ax.set_title("final epoch (dots and lines = seeds)", fontsize=9)
    return [save_figure(fig, out_dir / "recall.png", dpi=110)]


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
assert all(set(e.configs[s]) <= _FIELDS for e in EXPERIMENTS for s in ("smoke", "cpu"))

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            default_seeds={"smoke": [0], "cpu": CPU_SEEDS, "full": [0, 1, 2]},
            default_workers={"smoke": 1, "cpu": 2, "full": 1})  # fmt: skip
