"""Reproduce "Training-Free Unsupervised Prompt for Vision-Language Models" (TFUP / TFUP-T; arXiv 2404.16339).

    uv run python packages/tfup/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Stand-in VLM: a tiny CLIP trained once from scratch on 'plain'-style captioned shapes (cached; the
same weights for every seed; 2500 steps, 48 channels, generic shift / brightness / contrast augmentation,
chosen on the validation pool only: see the README's "Protocol fix"). Target: N unlabelled 'texture'-style images whose two objects share a
shape; 8 shape classes. Each seed draws a different target pool (generator seed 1000 + seed) and runs,
paired on that pool: zero-shot, TFUP, TFUP with cosine-only affinity (no MSM weight), TFUP with a random
cache, TFUP with a confidence-only cache, and TFUP-T (last epoch). TFUP is transductive on the pool.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfup.experiment import RunConfig, run

from xentlab.plotting import pyplot, save_figure
from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli
from xentlab.repro.spec import difference

PAPER = Paper(
    title="Training-Free Unsupervised Prompt for Vision-Language Models",
    arxiv="2404.16339",
    package="tfup",
    code="https://github.com/wlb12345/TFUP",
)

# smoke: a tiny CLIP (few steps), a small pool, 3 TFUP-T epochs
SMOKE = dict(clip=dict(n_groups=200, steps=20, batch=64, warmup_steps=5), n_target=120, gen_groups=1400,
             epochs=3, warmup_epochs=1)  # fmt: skip
# cpu: the RunConfig / ClipConfig defaults, spelled out. The stand-in CLIP (trained once, cached) is the protocol
# fix of the second run: 16000 source pairs, 48 channels, 2500 steps (200 warm-up + cosine), random shifts of
# <= 2 px and brightness / contrast jitter 0.3; chosen by its zero-shot accuracy on the validation pool
# (generator seed 999, never reported) against a target written down first (>= 60%; README). The first run used
# 6000 pairs, 32 channels, 1500 steps, no augmentation (48.7% on that pool). Third run: the same config trained
# with the shared warm-up + cosine schedule (once marked by tfup.clip.CODE_VERSION 3; the stand-in's cache key
# now hashes the code), re-checked against the same target by scripts/check_standin.py before the rerun
# (README, "Third run").
CPU = dict(
    clip=dict(n_groups=4000, channels=48, steps=2500, warmup_steps=200, aug_shift=2, aug_photo=0.3),
    style="texture",
    n_target=1500,
    gen_groups=17000,
    epochs=30,
    warmup_epochs=5,
    lr=0.012,
)
# --scale full: a local CLIP ViT-B/16 on one target domain folder (TFUP_CLIP / TFUP_TARGET / TFUP_DATASET /
# TFUP_PROMPTS; tfup.full and the README). lr and training_proportion come from the dataset's official
# configs/*.yaml (tfup.full.DATASETS) unless set here; the rest is common to all four configs.
FULL = dict(
    clip=None,  # $TFUP_CLIP: e.g. openai/clip-vit-base-patch16 saved locally
    target=None,  # $TFUP_TARGET: <root>/<domain> with one folder per class
    dataset=None,  # $TFUP_DATASET: office_home | office31 | visda17 | domainnet
    prompts=None,  # $TFUP_PROMPTS (optional): gpt-3.5-turbo-instruct_<dataset>.json of the official repo
    lr=None,
    training_proportion=None,
    alpha=0.3,
    beta=1.0,
    cache_proportion=0.3,
    epochs=30,
    warmup_epochs=5,
    batch=256,
    eps=3e-3,
    weight_decay=0.1,
    ratio_text=0.5,
    ratio_image=0.2,
    conf_threshold=0.9,
    marginal_weight=0.3,
    eval_batch=256,
    num_workers=8,
)


def target_unit(cfg: dict, seed: int, ctx: RunContext) -> dict:
    if ctx is not None and ctx.scale == "full":
        from tfup.full import run_full

        return run_full(cfg, seed, ctx)
    cfg = dict(cfg)
    if "crop_scale" in cfg:
        cfg["crop_scale"] = tuple(cfg["crop_scale"])
    return run(RunConfig(**cfg), seed, log=ctx.log)


EXPERIMENTS = [
    Experiment(
        "target",
        target_unit,
        {"smoke": SMOKE, "cpu": CPU, "full": FULL},
        # version 2 (third run): the stand-in is trained with xentlab.train.schedules.warmup_cosine_lr
        # (once marked by tfup.clip.CODE_VERSION 3; the cache key now hashes the code), so earlier units are
        # not reused. version 3 (fourth run, fidelity audit): TFUP-T's batches follow dassl's training loader
        # (last partial batch dropped, so T_max = 30 x 4 refine batches, 5 pool batches per main epoch) and the
        # random-cache ablation draws among the zero-shot predictions on unit class weights (README, "Fourth run")
        version="3",
        description="all arms on one shifted target pool per seed (paired)",
    )
]

DERIVED = [
    Derived("gain/tfup_vs_zs_pts", difference("target/tfup", "target/zero_shot", scale=100.0)),
    Derived("gain/tfupt_vs_tfup_pts", difference("target/tfup_t", "target/tfup", scale=100.0)),
    Derived("gain/msm_vs_cosine_pts", difference("target/tfup", "target/tfup_cosine", scale=100.0)),
    Derived(
        "gain/selection_vs_random_pts", difference("target/tfup", "target/tfup_random_cache", scale=100.0)
    ),
]

CLAIMS = [
    Claim(
        id="tfup-beats-zero-shot",
        statement="TFUP beats zero-shot CLIP on the unlabelled target by at least 1 point",
        paper="DomainNet avg 59.3 -> 60.9 (+1.6), Quickdraw 13.6 -> 17.8 (README/logs); +1 point from the notes",
        metric="gain/tfup_vs_zs_pts",
        check=">= 1.0",
        agg="mean",
    ),
    Claim(
        id="tfupt-beats-tfup",
        statement="TFUP-T (last epoch) beats TFUP on the same target pool",
        paper="DomainNet avg 60.9 -> 63.5 (TFUP-T with best-test-epoch selection)",
        metric="gain/tfupt_vs_tfup_pts",
        check="> 0",
        agg="mean",
    ),
    Claim(
        id="msm-helps",
        statement="Ablation: the MSM (KL) weight beats plain cosine affinity in the cache",
        paper="ablation tables: each of FCM / MSM adds accuracy (Sec. 4.3)",
        metric="gain/msm_vs_cosine_pts",
        check="> 0",
        agg="mean",
    ),
    Claim(
        id="selection-helps",
        statement="Ablation: confidence + prototype selection beats a random (zero-shot-labelled) cache",
        paper="ablation tables: feature cache selection adds accuracy (Sec. 4.3)",
        metric="gain/selection_vs_random_pts",
        check="> 0",
        agg="mean",
    ),
]

ARMS = ["zero_shot", "tfup_cosine", "tfup_random_cache", "tfup_conf_only", "tfup", "tfup_t"]


def figures(results, out_dir: Path) -> list[Path]:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    m = [100 * results.metrics[f"target/{k}"]["mean"] for k in ARMS]
    s = [100 * results.metrics[f"target/{k}"]["std"] for k in ARMS]
    a.bar(range(len(ARMS)), m, yerr=s, color=["grey", "C1", "C2", "C4", "C0", "C3"])
    a.set_xticks(range(len(ARMS)), [k.replace("tfup_", "tfup\n") for k in ARMS], fontsize=8)
    a.set_ylim(min(m) - 10, max(m) + 5)
    a.set_ylabel("target accuracy (%)")
    a.set_title("arms (mean +- std over target pools)")
    for seed, rec in results.per_seed["target"].items():
        curve = rec["artifacts"].get("tfup_t_curve", [])
        b.plot(range(1, len(curve) + 1), [100 * v for v in curve], label=f"seed {seed}")
        b.axhline(100 * rec["metrics"]["tfup"], ls=":", color=b.lines[-1].get_color())
    b.set_xlabel("TFUP-T epoch (dotted: TFUP; the last epoch is reported)")
    b.set_ylabel("target accuracy (%)")
    b.legend(fontsize=8)
    return [save_figure(fig, out_dir / "arms.png")]


if __name__ == "__main__":
    assert dataclasses.is_dataclass(RunConfig)
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
        default_workers={"smoke": 1, "cpu": 1, "full": 1},
    )
