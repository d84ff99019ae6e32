"""Reproduce "SuSana Distancia is all you need" (Mendez-Ruiz et al., 2023; arXiv 2305.09062).

    uv run --package susana packages/susana/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Three arms share every seed (same Conv-4 init, same training episodes, same test episodes): ProtoNet
(logits -||q - c||^2, the author's code) with cross-entropy (CE), with (CE + Proto-Triplet) / 2 and with
(CE + ICNN) / 2. Trained on 5-way 5-shot episodes
of meta-train classes, checkpoint chosen on meta-val 5-way 1-shot accuracy, tested on 5-way 1-shot
and 5-shot episodes of disjoint meta-test classes. cpu scale: 74 procedural glyph/shape classes
(xentlab.data.shapes, 16x16 RGB) split 46/12/16. full scale: miniImageNet-style folders from
SUSANA_DATA_ROOT (train/, val/, test/, one subfolder per class), 84x84, Conv-4 with 64 channels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from susana.experiment import RunConfig, run

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli
from xentlab.repro.local_data import local_path

PAPER = Paper(
    title="SuSana Distancia is all you need: Enforcing class separability in metric learning via two novel "
    "distance-based loss functions for few-shot image classification",
    arxiv="2305.09062",
    package="susana",
    code=None,
)

SMOKE = dict(
    n_per_class=20, episodes=6, val_every=3, val_episodes=10, test_episodes=10, channels=8, test_query=5
)
# cpu: the training budget (episodes per arm) and the number of seeds are chosen on META-VALIDATION only by
# scripts/select_budget.py (rule in its docstring and the README, fixed before the pilot ran; output
# results/budget_selection.json): the smallest candidate in (1200, 1800, 2400, 3000, 3600) at which the
# pilot meta-val curves (CE, pilot seeds 100/101; CE + ICNN, pilot seed 100) have plateaued (best of the
# last 3 evaluations within 1 point of the pilot's best), and as many seeds (3..8) as ~12 CPU-minutes allow.
# 200 meta-val episodes every 200 training episodes (checkpoint = best meta-val evaluation), 600 meta-test.
# Fifth protocol fix: the same rule re-piloted with the cpu config's lr schedule (the first pilot, under a
# constant lr, chose 3600 episodes and 3 seeds; results/budget_selection_constant_lr.json).
CPU_EPISODES = 2400  # results/budget_selection.json: chosen_episodes (all three pilot curves: 2400)
CPU_SEEDS = [0, 1, 2, 3]  # results/budget_selection.json: n_seeds = floor(720 / (0.0683 x 2400)) = 4
# Fourth protocol fix (fidelity audit): the author's FSL-Loss train.py halves Adam's lr every 2000 episodes
# (StepLR(step_size=20, gamma=0.5) stepped per epoch of 100 episodes), so the cpu config does too (episodes
# 1-2000 at 1e-3, 2001-2400 at 5e-4). The step stays the author's 2000 episodes whatever the budget.
CPU = dict(n_per_class=30, episodes=CPU_EPISODES, val_every=200, val_episodes=200, test_episodes=600,
           channels=32, lr_step=2000, lr_gamma=0.5)  # fmt: skip
# full: miniImageNet Conv-4 ProtoNet setting (84x84, 64 channels) with the author's FSL-Loss train.py defaults:
# 200 epochs x 100 episodes, Adam 1e-3 halved every 20 epochs (StepLR), meta-val every epoch on 500
# episodes, 1000 test episodes (fidelity audit; the cpu config uses the same lr schedule since version 4)
FULL = dict(dataset="folder", data_root=None, image_size=84, channels=64, episodes=20_000, lr_step=2000,
            lr_gamma=0.5, val_every=100, val_episodes=500, test_episodes=1000, max_per_class=600)  # fmt: skip

# ce_icnn was added after the first run with the same protocol (ICNN defaults: k = 4, full variant).
# Version 2 (protocol fix): the CE logits became the author's -||q - c||^2 / T (T = 1) instead of -sqrt(.),
# so every arm changed and no unit of version 1 may resume.
# Version 3 (protocol fix): the cpu training budget is chosen on meta-val by scripts/select_budget.py.
# Version 4 (protocol fix): the cpu config halves the lr every 2000 episodes (the author's StepLR), so every
# arm changed and no unit of version 3 may resume.
# Version 5 (protocol fix): the cpu budget and seeds re-chosen by the same rule under the schedule (2400
# episodes, 4 seeds), so every unit is recomputed.
VERSION = "5"
ARMS = {"ce": dict(triplet=False), "ce_triplet": dict(triplet=True), "ce_icnn": dict(icnn=True)}
DESCRIPTIONS = {
    "ce": "ProtoNet (logits -squared Euclidean distance), cross-entropy only",
    "ce_triplet": "ProtoNet, (CE + Proto-Triplet) / 2, margin 0.5",
    "ce_icnn": "ProtoNet, (CE + ICNN) / 2, ICNN on support + query, k = 4, ipc = shot + query",
}


def train_arm(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One arm at one seed."""
    cfg = dict(cfg)
    if cfg.get("dataset") == "folder":
        root = local_path(cfg, "data_root", "SUSANA_DATA_ROOT", needs="a folder holding train/, val/, test/")
        cfg["data_root"] = str(root)
    return run(RunConfig(**cfg), seed, device=ctx.device, log=ctx.log, progress=ctx.progress)


EXPERIMENTS = [
    Experiment(
        name,
        train_arm,
        {"smoke": {**SMOKE, **arm}, "cpu": {**CPU, **arm}, "full": {**FULL, **arm}},
        description=DESCRIPTIONS[name],
        version=VERSION,
    )
    for name, arm in ARMS.items()
]

DERIVED = [
    Derived(
        f"gain/triplet_vs_ce_{s}shot", lambda m, s=s: m[f"ce_triplet/test_{s}shot"] - m[f"ce/test_{s}shot"]
    )
    for s in (1, 5)
] + [
    Derived(f"gain/icnn_vs_ce_{s}shot", lambda m, s=s: m[f"ce_icnn/test_{s}shot"] - m[f"ce/test_{s}shot"])
    for s in (1, 5)
]

CLAIMS = [
    Claim(
        id="triplet-beats-ce-1shot",
        statement="CE + Proto-Triplet beats CE (ProtoNet) by at least 1 point in 5-way 1-shot accuracy",
        paper="about +2% over metric-based few-shot methods on miniImageNet (abstract); threshold +1 point "
        "from the research notes",
        metric="gain/triplet_vs_ce_1shot",
        check=">= 1.0",
        scales=("cpu", "full"),
    ),
    # added with the ICNN arm, threshold written before its run: same style and threshold as above
    Claim(
        id="icnn-beats-ce-1shot",
        statement="CE + ICNN beats CE (ProtoNet) by at least 1 point in 5-way 1-shot accuracy",
        paper="about +2% over metric-based few-shot methods on miniImageNet with the proposed losses "
        "(abstract); threshold +1 point as for the Proto-Triplet claim",
        metric="gain/icnn_vs_ce_1shot",
        check=">= 1.0",
        scales=("cpu", "full"),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    names = [n for n in ARMS if n in results.per_seed]
    seeds = sorted(results.per_seed[names[0]])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, shot in zip(axes, (1, 5)):
        acc = np.array(
            [[results.per_seed[n][s]["metrics"][f"test_{shot}shot"] for s in seeds] for n in names]
        )
        for i in range(len(names)):
            ax.bar(i, acc[i].mean(), color=("tab:gray", "tab:red", "tab:blue")[i], alpha=0.6)
            ax.scatter([i] * len(seeds), acc[i], color="k", s=10, zorder=3)
        for j in range(len(seeds)):
            ax.plot(range(len(names)), acc[:, j], color="k", alpha=0.3, lw=0.8)
        ax.set_ylim(max(0, acc.min() - 8), min(100, acc.max() + 4))
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("meta-test accuracy (%)")
        ax.set_title(f"5-way {shot}-shot ({len(seeds)} seeds; dots = seeds)", fontsize=9)
    paths = [save_figure(fig, out_dir / "accuracy.png", dpi=110)]
    # meta-val curves (the checkpoint-selection evaluations): is the budget past the plateau?
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, n in enumerate(names):
        color = ("tab:gray", "tab:red", "tab:blue")[i]
        curves = [results.per_seed[n][s]["artifacts"]["curve"] for s in seeds]
        eps = [c["episode"] for c in curves[0]]
        vals = np.array([[c["val_1shot"] for c in cur] for cur in curves])
        for v in vals:
            ax.plot(eps, v, color=color, alpha=0.25, lw=0.7)
        ax.plot(eps, vals.mean(0), color=color, lw=2, label=f"{n} (mean of {len(seeds)} seeds)")
    ax.set_xlabel("training episode")
    ax.set_ylabel("meta-val 5-way 1-shot accuracy (%)")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, out_dir / "val_curves.png", dpi=110))
    return paths


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
assert all(set(c) <= _FIELDS for e in EXPERIMENTS for c in e.configs.values() if c)

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            default_seeds={"smoke": [0], "cpu": CPU_SEEDS, "full": [0, 1, 2]},
            default_workers={"smoke": 1, "cpu": 2, "full": 1})  # fmt: skip
