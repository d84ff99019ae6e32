"""Reproduce LASE: Language-Adversarial Speaker Encoding for Indic Cross-Script Identity Preservation.

    uv run --package lase packages/lase/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Conditions, compared on held-out speakers (paired: same seed, same held-out pairs):
  raw      the frozen backbone's features (cpu: MFCC statistics; full: WavLM-base-plus layers 10-12)
  supcon   the LASE head trained with SupCon only (lambda = 0): the key ablation
  lase     SupCon + language classifier behind a GRL, the official loss (CE weighted by lambda_t)
  lase_sum the same with the README's reading of the loss (SupCon + CE, the GRL alone scaling by lambda_t)
At --scale full also the off-the-shelf baselines: WavLM-base-plus-sv, and ECAPA-TDNN if speechbrain is there.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import torch
from lase.data import Clips, frozen_features, load_clips
from lase.evaluate import evaluate_embeddings, project_2d
from lase.model import LambdaSchedule
from lase.train import TrainConfig, train_head

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="LASE: Language-Adversarial Speaker Encoding for Indic Cross-Script Identity Preservation",
    package="lase",
    arxiv="2605.00777",
    code="https://github.com/praxelhq/lase",
)

# --------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------

# official r1 (scripts/modal_lase_train.py): 1000 steps, batch 16, AdamW 1e-4 / wd 0.01, clip 1.0,
# SupCon tau 0.07, lambda 0 for 200 steps then linear to 0.1 over 500
TRAIN = dict(
    steps=1000,
    batch_size=16,
    lr=1e-4,
    weight_decay=0.01,
    grad_clip=1.0,
    temperature=0.07,
    warmup=200,
    ramp=500,
    peak=0.1,
)
# official evaluation: 200 pairs per bucket, 1000 bootstrap resamples
EVAL = dict(n_pairs=200, n_boot=1000, probe_folds=5, projection=True)
MFCC = {"name": "mfcc"}  # xentlab.audio.features.FrontendConfig defaults: 20 MFCCs + deltas, mean/std -> 80-d

CPU = {
    "data": {
        "source": "espeak",
        "corpus": {"n_train_speakers": 16, "n_heldout_speakers": 8, "utterances_per_language": 12},
    },
    "backbone": MFCC,
    "train": TRAIN,
    "eval": EVAL,
}
SMOKE = {
    "data": {
        "source": "espeak",
        "corpus": {"n_train_speakers": 4, "n_heldout_speakers": 3, "utterances_per_language": 3},
    },
    "backbone": MFCC,
    "train": TRAIN | {"steps": 40, "warmup": 10, "ramp": 20},
    "eval": EVAL | {"n_boot": 200},
}


def _full_config() -> dict:
    """The paper's setting. Data: the official corpora from local directories (LASE_TRAIN_DIR and
    LASE_HELDOUT_DIR, official manifest layout), else a larger espeak corpus. Backbone: LASE_WAVLM
    (a local path or a hub name; default microsoft/wavlm-base-plus)."""
    train_dir, heldout_dir = os.environ.get("LASE_TRAIN_DIR"), os.environ.get("LASE_HELDOUT_DIR")
    if train_dir and heldout_dir:
        data = {"source": "manifest", "train_dir": train_dir, "heldout_dir": heldout_dir}
    else:
        data = {
            "source": "espeak",
            "corpus": {"n_train_speakers": 40, "n_heldout_speakers": 24, "utterances_per_language": 40},
        }
    backbone = {
        "name": "wavlm",
        "path": os.environ.get("LASE_WAVLM", "microsoft/wavlm-base-plus"),
        "layers": [10, 12],
    }
    return {"data": data, "backbone": backbone, "train": TRAIN, "eval": EVAL}


FULL = _full_config()

# --------------------------------------------------------------------------------------------
# one unit: a condition at one seed
# --------------------------------------------------------------------------------------------


def _prepare(cfg: dict, device: str) -> tuple[Clips, np.ndarray, dict]:
    """Clips, their standardised frozen features, and provenance (corpus and feature costs)."""
    t0 = time.perf_counter()
    clips = load_clips(cfg["data"])
    t_data = time.perf_counter() - t0
    x, feature_s = frozen_features(clips, cfg["backbone"], device)
    # standardise every dimension with the *training* speakers' statistics (a fixed affine map)
    tr = clips.idx("train")
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    info = dict(clips.info)
    info.pop("speakers", None)
    info.update(
        data_seconds=round(t_data, 2), feature_seconds_if_computed=feature_s, feature_dim=int(x.shape[1])
    )
    return clips, ((x - mu) / sd).astype(np.float32), info


def _evaluate(emb: np.ndarray, clips: Clips, cfg: dict, seed: int) -> dict:
    ho = clips.idx("heldout")
    ev = cfg["eval"]
    # the same generator per seed in every condition: the same held-out pairs, paired comparisons
    rng = np.random.default_rng([seed, 7])
    out = evaluate_embeddings(
        emb[ho],
        clips.speaker[ho],
        clips.language[ho],
        len(clips.languages),
        rng,
        ev["n_pairs"],
        ev["n_boot"],
        ev["probe_folds"],
    )
    if ev["projection"]:
        xy = project_2d(emb[ho], seed=seed)
        out["proj"] = {
            "xy": np.round(xy, 3).tolist(),
            "speaker": clips.speaker[ho].tolist(),
            "language": clips.language[ho].tolist(),
            "languages": list(clips.languages),
        }
    return out


def _train_config(cfg: dict, adversarial: bool, ce_weight: str) -> TrainConfig:
    t = cfg["train"]
    return TrainConfig(
        steps=t["steps"],
        batch_size=t["batch_size"],
        lr=t["lr"],
        weight_decay=t["weight_decay"],
        grad_clip=t["grad_clip"],
        temperature=t["temperature"],
        schedule=LambdaSchedule(t["warmup"], t["ramp"], t["peak"]),
        adversarial=adversarial,
        ce_weight=ce_weight,
    )


def _trained(cfg: dict, seed: int, ctx: RunContext, adversarial: bool, ce_weight: str = "lambda") -> dict:
    clips, x, _ = _prepare(cfg, str(ctx.device))
    tr = clips.idx("train")
    t0 = time.perf_counter()
    head, curves = train_head(
        torch.from_numpy(x[tr]),
        clips.speaker[tr],
        clips.language[tr],
        len(clips.languages),
        _train_config(cfg, adversarial, ce_weight),
        np.random.default_rng(seed),
        log=ctx.log,
        device=ctx.device,
    )
    train_s = time.perf_counter() - t0
    emb = head.embed(torch.from_numpy(x).to(ctx.device)).cpu().numpy()
    out = _evaluate(emb, clips, cfg, seed)
    out["train_seconds"] = round(train_s, 2)
    out["final_supcon"] = curves["supcon"][-1]
    out["final_train_lang_acc"] = curves["lang_acc"][-1]
    out["curves"] = curves
    return out


def raw(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """The frozen features themselves (standardised), no head."""
    clips, x, info = _prepare(cfg, str(ctx.device))
    out = _evaluate(x, clips, cfg, seed)
    out["corpus"] = info
    return out


def supcon(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return _trained(cfg, seed, ctx, adversarial=False)


def lase(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return _trained(cfg, seed, ctx, adversarial=True, ce_weight="lambda")


def lase_sum(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return _trained(cfg, seed, ctx, adversarial=True, ce_weight="one")


def _baseline(cfg: dict, seed: int, ctx: RunContext, kind: str) -> dict:
    from lase.backbone import EcapaEmbedder, WavLMXVector

    clips = load_clips(cfg["data"])
    ho = clips.idx("heldout")
    model = (
        WavLMXVector(cfg["path"], ctx.device)
        if kind == "wavlm_sv"
        else EcapaEmbedder(cfg["path"], ctx.device)
    )
    e_ho = model.embed([clips.waves[i] for i in ho])
    emb = np.zeros((len(clips.waves), e_ho.shape[1]), np.float32)
    emb[ho] = e_ho
    return _evaluate(emb, clips, cfg, seed)


def wavlm_sv(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Off-the-shelf WavLM-base-plus-sv x-vectors (the paper's first baseline)."""
    return _baseline(cfg, seed, ctx, "wavlm_sv")


def ecapa(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Off-the-shelf ECAPA-TDNN (the paper's second baseline), when speechbrain is installed."""
    return _baseline(cfg, seed, ctx, "ecapa")


_BASE_FULL = {"data": FULL["data"], "eval": EVAL}
EXPERIMENTS = [
    Experiment(
        "raw", raw, {"smoke": SMOKE, "cpu": CPU, "full": FULL}, description="frozen features, no head"
    ),
    Experiment(
        "supcon", supcon, {"smoke": SMOKE, "cpu": CPU, "full": FULL}, description="SupCon only (lambda = 0)"
    ),
    Experiment(
        "lase", lase, {"smoke": SMOKE, "cpu": CPU, "full": FULL}, description="SupCon + GRL, official loss"
    ),
    Experiment(
        "lase_sum",
        lase_sum,
        {"smoke": SMOKE, "cpu": CPU, "full": FULL},
        description="SupCon + GRL, README loss",
    ),
    Experiment(
        "wavlm_sv",
        wavlm_sv,
        {"full": _BASE_FULL | {"path": os.environ.get("LASE_WAVLM_SV", "microsoft/wavlm-base-plus-sv")}},
    ),
    Experiment(
        "ecapa",
        ecapa,
        {
            "full": _BASE_FULL | {"path": os.environ.get("LASE_ECAPA", "speechbrain/spkrec-ecapa-voxceleb")}
            if importlib.util.find_spec("speechbrain")
            else None
        },
    ),
]

# --------------------------------------------------------------------------------------------
# derived metrics (paired per seed) and claims
# --------------------------------------------------------------------------------------------

DERIVED = [
    Derived("lase_vs_supcon/gap_ratio", lambda m: m["lase/gap"] / m["supcon/gap"]),
    Derived("lase_vs_raw/margin_ratio", lambda m: m["lase/margin"] / m["raw/margin"]),
    Derived("lase_vs_supcon/margin_gain", lambda m: m["lase/margin"] - m["supcon/margin"]),
    Derived("lase_vs_supcon/probe_drop", lambda m: m["supcon/lang_probe_acc"] - m["lase/lang_probe_acc"]),
    Derived("lase_vs_supcon/eer_increase", lambda m: m["lase/eer"] - m["supcon/eer"]),
    Derived("lase_sum_vs_supcon/gap_ratio", lambda m: m["lase_sum/gap"] / m["supcon/gap"]),
    Derived(
        "lase_sum_vs_supcon/probe_drop", lambda m: m["supcon/lang_probe_acc"] - m["lase_sum/lang_probe_acc"]
    ),
]

CLAIMS = [
    Claim(
        id="lase-gap-ci-includes-zero",
        statement="LASE's cross-script gap (within-script minus cross-script median cosine) has a bootstrap 95% CI that includes 0",
        paper="LASE gap 0.013 (Western) / 0.026 (Indian), both CIs include 0 (abstract; README: -0.000 Indian)",
        metric="lase/gap_ci_includes_zero",
        agg="all",
    ),
    Claim(
        id="supcon-gap-ci-above-zero",
        statement="Without the GRL (SupCon only) the gap's CI lies above 0",
        paper="baselines' CIs bounded above 0: WavLM-SV 0.082 / 0.006, ECAPA 0.105 / 0.044 (abstract)",
        metric="supcon/gap_ci_above_zero",
        agg="all",
    ),
    Claim(
        id="gap-halved",
        statement="LASE's gap is at most half of SupCon-only's",
        paper="0.013 vs 0.082-0.105 on Western voices (abstract)",
        metric="lase_vs_supcon/gap_ratio",
        check="<= 0.5",
    ),
    Claim(
        id="margin-grows-vs-raw",
        statement="LASE's cross-script margin over the across-voice floor is larger than the frozen features'",
        paper="margin amplified 2.4-2.7x over the baselines (abstract)",
        metric="lase_vs_raw/margin_ratio",
        check="> 1",
    ),
    Claim(
        id="margin-grows-vs-supcon",
        statement="The GRL adds margin over the floor beyond what SupCon alone gives",
        paper="margin amplified 2.4-2.7x over the baselines (abstract)",
        metric="lase_vs_supcon/margin_gain",
        check="> 0",
    ),
    Claim(
        id="language-probe-toward-chance",
        statement="A language probe on held-out LASE embeddings loses at least 20 points of accuracy vs SupCon-only (toward chance, 0.25)",
        paper="the GRL removes language information (Sec. 3); the paper reports no probe, the 20-point bar is our pre-set threshold",
        metric="lase_vs_supcon/probe_drop",
        check=">= 0.2",
    ),
    Claim(
        id="eer-no-worse",
        statement="Held-out speaker-verification EER is no worse than SupCon-only's plus 2 points",
        paper="identity kept: cross-script diarisation recall 0.788 (LASE) vs 0.789 (ECAPA) (abstract)",
        metric="lase_vs_supcon/eer_increase",
        check="<= 0.02",
    ),
]

# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------

MARKERS = ("o", "^", "s", "D", "v", "P")


def _unit(results, cond: str, seed: int) -> dict:
    """One unit's metrics and artifacts in one dict."""
    u = results.per_seed[cond][seed]
    return {**u["metrics"], **u["artifacts"]}


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()

    paths = []
    seeds = results.seeds
    conds = [c for c in ("raw", "supcon", "lase", "lase_sum") if c in results.per_seed]

    # 1. before / after: 2-D t-SNE of held-out embeddings, colour = speaker, marker = language
    first = _unit(results, conds[0], seeds[0])
    if "proj" in first:
        fig, axes = plt.subplots(1, len(conds), figsize=(4.2 * len(conds), 4.4))
        for ax, c in zip(np.atleast_1d(axes), conds):
            u = _unit(results, c, seeds[0])
            p = u["proj"]
            xy, spk, lang = np.array(p["xy"]), np.array(p["speaker"]), np.array(p["language"])
            cmap = plt.get_cmap("tab10" if len(np.unique(spk)) <= 10 else "tab20")
            colour = {s: cmap(k % cmap.N) for k, s in enumerate(np.unique(spk))}
            for li, name in enumerate(p["languages"]):
                m = lang == li
                ax.scatter(xy[m, 0], xy[m, 1], c=[colour[s] for s in spk[m]], marker=MARKERS[li], s=16,
                           edgecolors="k", linewidths=0.2, label=name)  # fmt: skip
            ax.set_title(
                f"{c}: gap {u['gap']:.3f}, margin {u['margin']:.3f}\nlanguage probe {u['lang_probe_acc']:.2f}, EER {u['eer']:.3f}",
                fontsize=9,
            )
            ax.set_xticks([])
            ax.set_yticks([])
        np.atleast_1d(axes)[0].legend(title="language (marker)", fontsize=7, title_fontsize=7, loc="best")
        fig.suptitle(f"held-out speakers (colour = speaker), t-SNE, seed {seeds[0]}", fontsize=10)
        paths.append(save_figure(fig, out_dir / "embeddings_2d.png", dpi=110))

    # 2. the three buckets, and gap / margin with their per-seed bootstrap CIs
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(conds)
    for k, c in enumerate(conds):
        for b, name in enumerate(("within", "cross", "floor")):
            vals = [_unit(results, c, s)[name] for s in seeds]
            a1.scatter(np.full(len(vals), b + (k - (len(conds) - 1) / 2) * width), vals, color=f"C{k}", s=18,
                       label=c if b == 0 else None)  # fmt: skip
        for j, name in enumerate(("gap", "margin")):
            for si, s in enumerate(seeds):
                u = _unit(results, c, s)
                xpos = (
                    j
                    + (k - (len(conds) - 1) / 2) * width
                    + (si - (len(seeds) - 1) / 2) * width / (len(seeds) + 1)
                )
                a2.errorbar(xpos, u[name], yerr=[[u[name] - u[f"{name}_lo"]], [u[f"{name}_hi"] - u[name]]], fmt="o",
                            color=f"C{k}", ms=3, capsize=2, label=c if (j == 0 and si == 0) else None)  # fmt: skip
    a1.set_xticks(range(3), ["within-script", "cross-script", "across-voice (floor)"])
    a1.set_ylabel("median cosine (held-out)")
    a1.legend(fontsize=8)
    a2.axhline(0, color="k", lw=0.6)
    a2.set_xticks(range(2), ["gap = within - cross", "margin = cross - floor"])
    a2.set_ylabel("with 95% bootstrap CI (one bar per seed)")
    a2.legend(fontsize=8)
    paths.append(save_figure(fig, out_dir / "gap_margin.png", dpi=110))

    # 3. training curves (mean over seeds)
    trained = [c for c in conds if "curves" in _unit(results, c, seeds[0])]
    if trained:
        keys = [("supcon", "SupCon loss"), ("lang_ce", "language CE (train batches)"),
                ("lang_acc", "language classifier acc. (train batches)"), ("lambda", "GRL lambda")]  # fmt: skip
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
        for ax, (key, title) in zip(axes, keys):
            for c in trained:
                curves = [_unit(results, c, s)["curves"] for s in seeds]
                ax.plot(
                    curves[0]["step"],
                    np.mean([cv[key] for cv in curves], 0),
                    color=f"C{conds.index(c)}",
                    label=c,
                )
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("step")
        axes[0].set_yscale("log")
        axes[0].legend(fontsize=8)
        paths.append(save_figure(fig, out_dir / "training_curves.png", dpi=110))
    return paths


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
    )
