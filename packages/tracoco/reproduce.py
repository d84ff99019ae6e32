"""Reproduce TraCoCo (Liu et al., IEEE TMI 2024, arXiv 2203.14523) at smoke / cpu / full scale.

cpu: synthetic volumes (n labelled / 24 - n unlabelled / 10 test, 48^3; the volume spec and n were
chosen on validation volumes by scripts/select_setting.py so that labels are the bottleneck), a
small MONAI UNet on 32^3 crops, 300 iterations; supervised-only vs TraCoCo vs TraCoCo without
translation consistency, and the fully labelled supervised upper bound, scored at the last iteration. full: Left Atrium (8 and 16 labels) and BraTS19 (25 and 50 labels)
from local h5 folders, V-Net / 3D U-Net and the official hyperparameters.

    uv run --package tracoco packages/tracoco/reproduce.py [--scale smoke|cpu|full]
"""

from __future__ import annotations

from pathlib import Path

from tracoco.experiment import run_unit

from xentlab.repro import Claim, Derived, Experiment, Paper, run_cli

PAPER = Paper(
    title="Translation Consistent Semi-supervised Segmentation for 3D Medical Images",
    arxiv="2203.14523",
    package="tracoco",
    code="https://github.com/yyliu01/TraCoCo",
    venue="IEEE TMI 2024",
)

# --- cpu scale: the synthetic task --------------------------------------------------------------
# Chosen by the rule of scripts/select_setting.py (README "How the setting was chosen"), on the
# validation volumes of data seed 1 only: candidate "ellipsoids-hard-n2" (validation gap between
# 2 and 24 labelled volumes: 13.5 Dice points, mean of pilot seeds 0 and 1; results/setting_selection.json).
VOLUME_SPEC = dict(
    size=48,
    shape="ellipsoid",  # one randomly rotated ellipsoid per scan (the "atrium"), semi-axes 5-15 ...
    num_objs=1,
    rad_min=5,
    rad_max=15,
    num_distractors=8,  # ... among 8 smaller unlabelled ellipsoids of the same intensity law
    distractor_rad_min=2,
    distractor_rad_max=8,
    distractor_contrast=1.0,
    bias_strength=1.0,
    bias_scale=0.3,
    blur_sigma=1.2,
    noise_std=0.35,
    gamma_spread=0.5,  # per-scan contrast curve
    jitter=0.4,  # per-scan +-40% spread of bias, blur, noise and distractor contrast
)
N_TRAIN = 24  # training volumes: N_LABELLED labelled + the rest unlabelled (the upper bound labels all)
N_LABELLED = 2  # of 24 (8%; the paper's LA: 8 of 80, 10%)
CPU = dict(
    dataset="synthetic",
    volume_spec=VOLUME_SPEC,
    data_seed=1,  # test volumes: indices 24-33; validation (the pilot's): 34-43
    n_labelled=N_LABELLED,
    n_unlabelled=N_TRAIN - N_LABELLED,
    n_test=10,
    network="unet_small",
    crop=[32, 32, 32],
    eval_stride=[16, 16, 16],
    iterations=300,
    unsup_weight=0.3,  # the official value for the smallest labelled set (LA, 8 labels)
    log_every=25,
)
SMOKE = dict(
    CPU,
    volume_spec=dict(
        VOLUME_SPEC,
        size=24,
        rad_min=5,
        rad_max=8,
        num_distractors=2,
        distractor_rad_min=2,
        distractor_rad_max=4,
    ),
    n_labelled=2,
    n_unlabelled=2,
    n_test=1,
    crop=[16, 16, 16],
    eval_stride=[8, 8, 8],
    iterations=3,
    log_every=1,
)

# --- full scale: the official settings (scripts/train_la.sh, train_brats.sh, Configs/config.py) -
LA = dict(
    dataset="left_atrium",
    data_root=None,  # or $TRACOCO_LA_ROOT
    network="vnet",
    crop=[112, 112, 80],
    eval_stride=[18, 18, 4],
    iterations=9000,
    n_labelled=8,
    unsup_weight=0.3,
    log_every=50,
)
BRATS = dict(
    dataset="brats19",
    data_root=None,  # or $TRACOCO_BRATS_ROOT
    network="unet3d",
    crop=[96, 96, 96],
    eval_stride=[16, 16, 16],
    iterations=30000,
    n_labelled=25,
    unsup_weight=1.0,
    hyp=0.05,
    input_noise=0.05,
    clamp_input=True,
    entropy_prob_clamp=1e-7,
    log_every=50,
)


def configs(method: str, full: dict | None = None) -> dict:
    return {
        "smoke": dict(SMOKE, method=method),
        "cpu": dict(CPU, method=method),
        "full": dict(full, method=method) if full is not None else None,
    }


# Version 2 of every experiment: HD95 is medpy's (the 95th percentile of both directions' surface
# distances pooled, as the official validate.py calls metric.binary.hd95), no longer MONAI's max of the
# two directed 95th percentiles (version 1). Training, Dice, Jaccard and ASD are unchanged.
V = "2"

EXPERIMENTS = [
    Experiment(
        "supervised", run_unit, configs("supervised", LA), version=V, description="labelled volumes only"
    ),
    Experiment(
        "supervised_all",
        run_unit,
        {
            "smoke": dict(SMOKE, method="supervised", n_labelled=4, n_unlabelled=0),
            "cpu": dict(CPU, method="supervised", n_labelled=N_TRAIN, n_unlabelled=0),
            "full": dict(LA, method="supervised", n_labelled=80),
        },
        version=V,
        description="fully supervised upper bound: every training volume labelled",
    ),
    Experiment("tracoco", run_unit, configs("tracoco", LA), version=V, description="the full method"),
    Experiment(
        "no_tc",
        run_unit,
        configs("no_tc", LA),
        version=V,
        description="TraCoCo without translation consistency",
    ),
    # Not run at cpu scale since the protocol fix: a fifth arm of ~120 CPU-s per seed would take
    # the run past its ~12 CPU-minute budget (README "previous run" has its numbers on the old setting).
    Experiment(
        "tracoco_class_kl",
        run_unit,
        {"smoke": dict(SMOKE, method="tracoco", kl_softmax_axis="class", logit_clamp=False)},
        version=V,
        description="TraCoCo with the TC KL over classes per voxel and no logit clamp (the paper's description in words)",
    ),
    Experiment(
        "tracoco_la16",
        run_unit,
        {"full": dict(LA, method="tracoco", n_labelled=16, unsup_weight=1.0)},
        version=V,
        description="Left Atrium, 16 labels",
    ),
    Experiment(
        "tracoco_brats25",
        run_unit,
        {"full": dict(BRATS, method="tracoco")},
        version=V,
        description="BraTS19, 25 labels",
    ),
    Experiment(
        "tracoco_brats50",
        run_unit,
        {"full": dict(BRATS, method="tracoco", n_labelled=50)},
        version=V,
        description="BraTS19, 50 labels",
    ),
]

# Paired per seed: the methods share the data, the seed and the initialisation of network 1.
DERIVED = [
    Derived("gain/tracoco_vs_supervised", lambda m: m["tracoco/dice"] - m["supervised/dice"]),
    Derived("gain/no_tc_vs_supervised", lambda m: m["no_tc/dice"] - m["supervised/dice"]),
    Derived("gain/tracoco_vs_no_tc", lambda m: m["tracoco/dice"] - m["no_tc/dice"]),
    Derived(
        "gain/tracoco_class_kl_vs_supervised",
        lambda m: m["tracoco_class_kl/dice"] - m["supervised/dice"],
        scales=("smoke",),
    ),
    # the label-scarcity gap on the test volumes, and the share of it that each method closes (%)
    Derived("gain/all_vs_supervised", lambda m: m["supervised_all/dice"] - m["supervised/dice"]),
    Derived("gap_closed/tracoco", lambda m: gap_closed(m, "tracoco"), scales=("cpu", "full")),
    Derived("gap_closed/no_tc", lambda m: gap_closed(m, "no_tc"), scales=("cpu", "full")),
]


def gap_closed(m: dict, method: str) -> float:
    """100 (method - supervised) / (supervised_all - supervised): the share of the label gap closed."""
    gap = m["supervised_all/dice"] - m["supervised/dice"]
    return 100.0 * (m[f"{method}/dice"] - m["supervised/dice"]) / gap if gap != 0 else float("nan")


LA_PAPER = "Left Atrium, V-Net, last iteration: TraCoCo 89.29 Dice (8 labels), 90.94 (16 labels); UA-MT 84.25 / 88.88"
CLAIMS = [
    Claim(
        id="tracoco-beats-supervised",
        statement="TraCoCo beats supervised-only training on the same labelled volumes by >= 2 Dice points",
        paper=LA_PAPER,
        metric="gain/tracoco_vs_supervised",
        check=">= 2",
    ),
    Claim(
        id="ablation-above-supervised",
        statement="TraCoCo without translation consistency (CBC + CutMix co-training) still beats supervised-only",
        paper="the paper's ablation study (LA): CBC co-training with CutMix beats the supervised V-Net",
        metric="gain/no_tc_vs_supervised",
        check="> 0",
    ),
    Claim(
        id="tc-adds",
        statement="Adding translation consistency improves on the ablation (the ablation lies in between)",
        paper="the paper's ablation study (LA): adding TC raises Dice further",
        metric="gain/tracoco_vs_no_tc",
        check="> 0",
    ),
    # Added with the protocol fix: the premise of the three claims above. The setting was chosen so
    # that this gap is >= 5 Dice points on validation volumes; this checks it on the test volumes.
    Claim(
        id="label-gap",
        statement="The setting is label-limited: supervised-only with every training volume labelled "
        "beats supervised-only with the claims' labelled volumes by >= 5 Dice points",
        paper="LA, V-Net (the MC-Net / UA-MT rows of the paper's LA table): 79.99 Dice with 8 labels, "
        "91.14 with all 80 (not re-checked here)",
        metric="gain/all_vs_supervised",
        check=">= 5",
        scales=("cpu", "full"),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    import numpy as np

    paths = []
    per = results.per_seed
    methods = [
        m for m in ("supervised", "no_tc", "tracoco", "tracoco_class_kl", "supervised_all") if m in per
    ]
    labels = {
        "supervised_all": "all labelled\n(upper bound)",
        "supervised": "supervised only",
        "no_tc": "TraCoCo w/o TC",
        "tracoco": "TraCoCo",
        "tracoco_class_kl": "TraCoCo, class KL",
    }
    seed = results.seeds[0]
    if all(seed in per[m] for m in methods) and "supervised" in methods:
        sl = per["supervised"][seed]["artifacts"]["slice"]
        panels = [("image", np.array(sl["image"]), "gray"), ("truth", np.array(sl["truth"]), "viridis")]
        for m in methods:
            pred = np.array(per[m][seed]["artifacts"]["slice"]["pred"])
            dice = per[m][seed]["metrics"]["dice"]
            panels.append((f"{labels[m]}\n(test Dice {dice:.1f}, all volumes)", pred, "viridis"))
        fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3))
        for ax, (title, arr, cmap) in zip(axes, panels):
            ax.imshow(arr.T, cmap=cmap, origin="lower", interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.suptitle(
            f"Test volume 0, slice z={sl['z']} (seed {seed}, network 1, last iteration)", fontsize=10
        )
        paths.append(save_figure(fig, out_dir / "test_slice.png", dpi=110))
    if methods:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, metric, unit in ((axes[0], "dice", "Dice (%)"), (axes[1], "hd95", "HD95 (voxels)")):
            for k, m in enumerate(methods):
                vals = [per[m][s]["metrics"][metric] for s in sorted(per[m])]
                ax.bar(k, np.mean(vals), color=f"C{k}", alpha=0.6)
                ax.scatter([k] * len(vals), vals, color="k", s=12, zorder=3)
            ax.set_xticks(range(len(methods)), [labels[m] for m in methods], fontsize=8)
            ax.set_ylabel(unit)
        lo = min(per[m][s]["metrics"]["dice"] for m in methods for s in per[m])
        axes[0].set_ylim(max(lo - 10, 0), 100)
        axes[0].set_title("held-out Dice per seed (bars: mean)", fontsize=9)
        axes[1].set_title("held-out HD95 per seed (lower is better)", fontsize=9)
        paths.append(save_figure(fig, out_dir / "dice_by_method.png", dpi=110))
    return paths


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2, 3, 4, 5], "full": [0, 1, 2]},
        default_workers=2,
    )
