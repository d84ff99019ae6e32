"""Reproduce FCN: Fusing Exponential and Linear Cross Network for Click-Through Rate Prediction.

uv run --package fcn packages/fcn/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

cpu/smoke: synthetic CTR data with planted 2nd/3rd/4th-order interactions (fcn.data.make_synthetic).
full: Criteo_x4 (or Avazu_x4 via cfg "dataset") in the reczoo CSV layout under $FCN_DATA_ROOT.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from fcn.data import SyntheticConfig, load_reczoo, make_synthetic
from fcn.train import ARMS, fit
from sklearn.metrics import roc_auc_score

from xentlab.plotting import pyplot, save_figure
from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli
from xentlab.repro.local_data import local_path

PAPER = Paper(
    title="FCN: Fusing Exponential and Linear Cross Network for Click-Through Rate Prediction",
    package="fcn",
    arxiv="2407.13349",
    code="https://github.com/salmon1802/FCN",
)

# Official Criteo_x4 hyperparameters (config/model_config.yaml): Adam 1e-3, embedding 16, ECN 3 layers
# dropout 0.1, LCN 4 layers dropout 0.2, LayerNorm on, 1 head, early stopping patience 2 on val AUC.
BASE = {
    "emb_dim": 16,
    "lr": 1e-3,
    "ecn_layers": 3,
    "lcn_layers": 4,
    "ecn_dropout": 0.1,
    "lcn_dropout": 0.2,
    "dcn_layers": 3,
    "dnn_hidden": [400, 400, 400],
    "dnn_dropout": 0.1,
    "patience": 2,
    # Protocol v3 (fixed before the rerun): FuxiCTR's trainer defaults, which the official configs keep
    # (the official ECN/FCN Criteo logs print "Reduce learning rate on plateau" and no max_gradient_norm).
    "reduce_lr_on_plateau": True,  # lr *= 0.1 (floor 1e-6) on every non-improving epoch
    "max_gradient_norm": 10.0,  # clip_grad_norm_ before every Adam step
    # Protocol v5 (fixed before the rerun; README "Protocol v5"): the model as FuxiCTR builds it. x_0 in the
    # official MultiHeadFeatureEmbedding order (first halves of all fields, then the second halves), so each
    # cross-layer row couples the two halves of ONE field; every nn.Linear re-initialised xavier_normal_ with
    # zero bias (FuxiCTR BaseModel.reset_parameters). v1-v4 used field-contiguous x_0 and torch's default init.
    "init": "fuxictr",
    "embedding_layout": "halves",
    # Protocol v6 (fixed before the rerun; README "Protocol v6"): the official Criteo configs' embedding
    # regulariser (embedding_regularizer: 1.e-5 in config/model_config.yaml, printed in the ECN Criteo log):
    # FuxiCTR adds (1e-5 / 2) * sum ||W||^2 over the embedding tables to every batch loss. v1-v5 left it out.
    "embedding_regularizer": 1e-5,
}
# Epoch cap: the official config's `epochs: 100` at every scale, so that the official early stopping
# (patience 2 on val AUC, best weights restored) ends each run, not the cap. Protocol fix (v2), fixed
# before the rerun: v1 capped cpu at 6 epochs and every arm hit the cap. Cost pilot (seed 0, cap 100,
# validation only): DNN stopped at epoch 13 (2.5 CPU-s/epoch), LR at 21, FCN Tri-BCE at 18 (1.8 CPU-s/
# epoch), so 7 arms x 3 seeds fit in ~10 CPU-minutes without shrinking the data or the seeds.
SCALES = {
    # batch 4096 would give ~20 steps/epoch on 80k rows; 256 keeps the step count sensible on CPU.
    "smoke": {
        **BASE,
        "batch_size": 512,
        "max_epochs": 1,
        "data": {"n_train": 3000, "n_valid": 1000, "n_test": 2000},
    },
    # Protocol v4: 80k train rows (313 steps per epoch) and 50k validation rows, the same world as the
    # v1-v3 data (40k / 10k rows plus extra rows; test split unchanged). Chosen by the validation-only
    # pilot scripts/select_size.py (rule in the README, fixed before it ran): the smallest train size whose
    # early epoch-to-epoch val-AUC gain is >= 4x the bootstrap noise of that comparison within ~14 CPU-min.
    "cpu": {
        **BASE,
        "batch_size": 256,
        "max_epochs": 100,
        "data": {"extra_train": 40_000, "extra_valid": 40_000},
    },
    # full (never run here): the official setting; the model as FuxiCTR builds it (BASE, protocol v5).
    "full": {
        **BASE,
        "batch_size": 4096,
        "max_epochs": 100,
        "dataset": "Criteo_x4",
        "data_root": None,
    },  # fmt: skip
}


def load_data(cfg: dict):
    if cfg.get("dataset"):
        root = local_path(
            cfg, "data_root", "FCN_DATA_ROOT", needs="a folder holding Criteo_x4/{train,valid,test}.csv"
        )
        return load_reczoo(root, cfg["dataset"])
    return make_synthetic(replace(SyntheticConfig(), **cfg["data"]))


def train_arm(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One (arm, seed) unit: same data for every seed (fixed data seed), seed sets init and batch order."""
    data = load_data(cfg)
    out = fit(cfg["arm"], data, cfg, seed, log=ctx.log, progress=ctx.progress)
    if data.bayes_logit_test is not None:
        out["bayes_auc"] = float(roc_auc_score(data.y_test, data.bayes_logit_test))
    return out


# version 6: protocol v6 (embedding regulariser) changes every arm's loss, so every unit is recomputed.
EXPERIMENTS = [
    Experiment(arm, train_arm, {s: {**c, "arm": arm} for s, c in SCALES.items()}, version="6") for arm in ARMS
]


def _best_baseline(m: dict) -> float:
    return max(m[f"{a}/test_auc"] for a in ("lr", "dnn", "dcnv2"))


DERIVED = [
    Derived("gap/tribce_minus_bce", lambda m: m["fcn_tribce/test_auc"] - m["fcn_bce/test_auc"]),
    Derived("gap/fcn_minus_best_baseline", lambda m: m["fcn_tribce/test_auc"] - _best_baseline(m)),
    Derived("gap/ecn_minus_lcn", lambda m: m["ecn/test_auc"] - m["lcn/test_auc"]),
    # Descriptive, not claims (added in the second fidelity audit): the paired gap to EACH baseline. The
    # claim's metric takes the best baseline per seed on test AUC, which is stricter than the paper's
    # comparison of per-model means (E[max] >= max E); these show the gap to every baseline on its own.
    Derived("gap/fcn_minus_dnn", lambda m: m["fcn_tribce/test_auc"] - m["dnn/test_auc"]),
    Derived("gap/fcn_minus_dcnv2", lambda m: m["fcn_tribce/test_auc"] - m["dcnv2/test_auc"]),
]

# Thresholds fixed before the cpu run (notes §11): the paired AUC difference must be >= 0 with the
# whole seed bootstrap CI (holds), mean and CI below 0 (fails), else inconclusive.
CLAIMS = [
    Claim(
        id="tribce-helps",
        statement="FCN trained with Tri-BCE reaches at least the test AUC of FCN trained with BCE on y_hat only",
        paper="the paper's ablation: FCN without Tri-BCE scores lower AUC (section and numbers not verified)",
        metric="gap/tribce_minus_bce",
        check=">= 0",
        agg="mean",
    ),
    Claim(
        id="fcn-beats-baselines",
        statement="FCN (Tri-BCE) reaches at least the test AUC of the best baseline run (LR, DNN, DCNv2)",
        paper="FCN is first on the Criteo_x4 BARS leaderboard (test AUC 0.8162 in the official logs)",
        metric="gap/fcn_minus_best_baseline",
        check=">= 0",
        agg="mean",
    ),
    Claim(
        id="ecn-beats-lcn",
        statement=(
            "ECN-only (3 layers) beats LCN-only (4 layers; the official depths, not equal depth) when "
            "3rd/4th-order terms are planted (optional mechanism check)"
        ),
        paper="ECN captures exponential-order interactions (Sec. 3.2); ECN alone 0.8155 on Criteo_x4",
        metric="gap/ecn_minus_lcn",
        check="> 0",
        agg="mean",
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bayes = []
    for i, arm in enumerate(ARMS):
        vals = [r["metrics"]["test_auc"] for r in results.per_seed.get(arm, {}).values()]
        bayes += [
            r["metrics"]["bayes_auc"]
            for r in results.per_seed.get(arm, {}).values()
            if "bayes_auc" in r["metrics"]
        ]
        if vals:
            ax.scatter([i] * len(vals), vals, color="C0", alpha=0.6, s=15)
            ax.errorbar(i, np.mean(vals), yerr=np.std(vals), fmt="_", color="k", markersize=14, capsize=4)
    if bayes:
        ax.axhline(np.mean(bayes), color="C3", ls="--", label=f"Bayes AUC {np.mean(bayes):.4f}")
        ax.legend(loc="lower right")
    ax.set_xticks(range(len(ARMS)), ARMS, rotation=20)
    ax.set_ylabel("test AUC")
    ax.set_title("Test AUC per arm (dots: seeds; bar: mean ± std)")
    paths = [save_figure(fig, out_dir / "test_auc.png")]

    # validation curves: where each run peaked (dot) and where early stopping ended it (curve end)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, arm in enumerate(ARMS):
        for k, r in enumerate(results.per_seed.get(arm, {}).values()):
            curve = r["artifacts"].get("val_curve", [])
            if not curve:
                continue
            epochs = np.arange(1, len(curve) + 1)
            ax.plot(epochs, curve, color=f"C{i}", alpha=0.7, lw=1, label=arm if k == 0 else None)
            best = int(np.argmax(curve))
            ax.plot(epochs[best], curve[best], "o", color=f"C{i}", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation AUC")
    ax.set_title("Validation AUC per epoch (curve end: stopping epoch; dot: restored best)")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    paths.append(save_figure(fig, out_dir / "val_curves.png"))
    return paths


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )
