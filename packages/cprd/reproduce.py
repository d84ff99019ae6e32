"""Reproduce "How to Make Cross Encoder a Good Teacher for Efficient Image-Text Retrieval?" (CPRD;
Chen et al., CVPR 2024; arXiv 2407.07479).

    uv run --package cprd packages/cprd/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

A cross-encoder teacher (ITM head) is trained once on captioned procedural shapes (two coloured
shapes and a spatial relation per image, in contrast groups of one-edit hard negatives) and cached.
Four dual-encoder students share every seed (same init, same batches): ITC alone, ITC + KL logit
distillation, ITC + full-list ListMLE ranking distillation, and ITC + CPRD (contrastive partial
ranking over the student-mined, teacher-sorted valid hard negatives). Metric: R@1 / R@5 in both
directions on a held-out gallery (a hit is any item with the query's meaning), plus in-group accuracy.
The ``teacher`` experiment reports the cached teacher's own retrieval on the same gallery.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from cprd.experiment import ARMS, RunConfig, get_teacher, train_student

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="How to Make Cross Encoder a Good Teacher for Efficient Image-Text Retrieval?",
    arxiv="2407.07479",
    package="cprd",
    code=None,
)

SMOKE = dict(
    train_groups=24,
    test_groups=8,
    n_colours=4,
    n_shapes=4,
    t_steps=4,
    t_batch=8,
    s_steps=4,
    batch_groups=4,
    k=4,
)
# cpu: teacher trained once (cached, shared by arms and seeds); 4 students x 3 seeds
CPU = dict(train_groups=400, test_groups=50, n_colours=4, n_shapes=4, t_steps=1600, s_steps=700)

# --scale full: a CLIP student on COCO (or Flickr30K) Karpathy splits, distilled from precomputed
# cross-encoder ITM scores (CPRD_DATA_ROOT / CPRD_CLIP / CPRD_TEACHER_SCORES; cprd.full and the README).
# The distillation choices (k, validity threshold, lambda, KL temperature) are the package's unverified ones.
FULL = dict(
    data_root=None,  # $CPRD_DATA_ROOT: dataset_coco.json + images/
    clip=None,  # $CPRD_CLIP: e.g. openai/clip-vit-base-patch32 saved locally
    teacher_scores=None,  # $CPRD_TEACHER_SCORES: batch_scores + test_scores (.pt)
    dataset="coco",  # or "flickr30k"
    batch_size=128,
    epochs=5,
    lr=1e-5,
    weight_decay=0.2,
    tau_init=None,  # None: CLIP's own 1 / logit_scale
    weight=1.0,
    k=8,
    valid_threshold=-6.0,
    kl_temp=1.0,
    max_text_len=77,
    eval_batch=256,
    num_workers=8,
    bf16=True,
    log_every=50,
)

DESCRIPTIONS = {
    "teacher": "cross-encoder teacher (ITM), trained once and cached; its own retrieval on the test gallery",
    "itc": "dual encoder, ITC only",
    "kl": "ITC + KL(teacher || student) over the in-batch rows, lambda 1",
    "listmle": "ITC + ListMLE over all in-batch negatives sorted by the teacher, lambda 1",
    "cprd": "ITC + CPRD: top-K student-mined negatives, teacher-sorted, valid prefix, lambda 1",
}


def unit(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One arm at one seed (the teacher is built on first use and then loaded from the cache)."""
    if ctx is not None and ctx.scale == "full":
        from cprd.full import run_full

        return run_full(cfg, seed, ctx)
    rc = RunConfig(**cfg)
    teacher = get_teacher(rc, log=ctx.log if ctx is not None else None)
    if rc.arm == "teacher":
        return dict(teacher["metrics"])
    return train_student(rc, seed, teacher, log=ctx.log if ctx is not None else None)


EXPERIMENTS = [
    Experiment(
        arm,
        unit,
        {"smoke": {**SMOKE, "arm": arm}, "cpu": {**CPU, "arm": arm}, "full": {**FULL, "arm": arm}},
        description=DESCRIPTIONS[arm],
    )
    for arm in ("teacher", *ARMS)
]


def _diff(a: str, b: str, metric: str = "r1_mean"):
    return lambda m: m[f"{a}/{metric}"] - m[f"{b}/{metric}"]


DERIVED = [
    Derived("gain/cprd_vs_itc_r1", _diff("cprd", "itc")),
    Derived("gain/cprd_vs_kl_r1", _diff("cprd", "kl")),
    Derived("gain/cprd_vs_listmle_r1", _diff("cprd", "listmle")),
    Derived("gain/teacher_vs_itc_r1", _diff("teacher", "itc")),
    # contrast groups exist only in the procedural data (not at --scale full)
    Derived("gain/teacher_vs_itc_group_acc", _diff("teacher", "itc", "group_acc"), scales=("smoke", "cpu")),
]

CLAIMS = [
    Claim(
        id="teacher-beats-student",
        statement="Precondition: the cross-encoder teacher beats the ITC student on mean R@1 (else distillation "
        "results are meaningless)",
        paper="cross-encoders are more accurate than dual encoders (abstract; Sec. 1)",
        metric="gain/teacher_vs_itc_r1",
        check="> 0",
        scales=("cpu", "full"),
    ),
    Claim(
        id="cprd-beats-itc",
        statement="ITC + CPRD beats ITC alone by at least 2 points of mean R@1 (i2t and t2i)",
        paper="CPRD improves the dual encoder's recall on MSCOCO / Flickr30K (Tables 2-3); +2 R@1 threshold from "
        "the research notes",
        metric="gain/cprd_vs_itc_r1",
        check=">= 2.0",
        scales=("cpu", "full"),
    ),
    Claim(
        id="cprd-at-least-kl",
        statement="ITC + CPRD is at least as good as ITC + KL logit distillation on mean R@1",
        paper="CPRD surpasses other distillation methods, logit distillation among them (abstract; Table 1)",
        metric="gain/cprd_vs_kl_r1",
        check=">= 0.0",
        scales=("cpu", "full"),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    names = [n for n in ("teacher", *ARMS) if n in results.per_seed]
    seeds = sorted(results.per_seed[names[0]])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    full = "group_acc" not in results.per_seed[names[0]][seeds[0]]["metrics"]  # --scale full: no groups
    for ax, metric, label in (
        (axes[0], "r1_mean", "mean R@1 (i2t, t2i) %"),
        (axes[1], "rsum", "rsum (R@1+5+10, both ways)")
        if full
        else (axes[1], "group_acc", "in-group accuracy %"),
    ):
        vals = np.array([[results.per_seed[n][s]["metrics"][metric] for s in seeds] for n in names])
        colours = ["tab:purple", "tab:gray", "tab:blue", "tab:orange", "tab:red"][: len(names)]
        for i in range(len(names)):
            ax.bar(i, vals[i].mean(), color=colours[i], alpha=0.6)
            ax.scatter([i] * len(seeds), vals[i], color="k", s=10, zorder=3)
        for j in range(len(seeds)):
            ax.plot(range(1, len(names)), vals[1:, j], color="k", alpha=0.3, lw=0.8)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(label)
        ax.set_ylim(max(0, vals.min() - 10), min(600 if metric == "rsum" else 100, vals.max() + 5))
    axes[0].set_title(f"test gallery retrieval ({len(seeds)} seeds; lines pair seeds)", fontsize=9)
    axes[1].set_title(
        "test rsum" if full else "pick the right caption/image inside its contrast group", fontsize=9
    )
    return [save_figure(fig, out_dir / "retrieval.png", dpi=110)]


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
assert all(set(c) <= _FIELDS for e in EXPERIMENTS for s, c in e.configs.items() if c and s != "full")

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
            default_workers={"smoke": 1, "cpu": 1, "full": 1})  # fmt: skip
