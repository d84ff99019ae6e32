"""Report figures: test AUC and TPR@5%FPR per method (every seed), ROC curves of one seed, and the
AUC within commonness terciles (the confound DC-PDD is meant to remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xentlab.plotting import pyplot, save_figure

LABELS = {
    "ppl": "PPL",
    "zlib": "Zlib",
    "min_k": "Min-K%",
    "min_k_pp": "Min-K%++",
    "ref_unigram": "Ref (unigram)",
    "dc_pdd": "DC-PDD",
}


def _vals(results: Any, key: str) -> np.ndarray:
    return np.array([v for v in results.values(key) if v is not None], dtype=float)


def auc_figure(results: Any, out_dir: Path, exp: str) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(LABELS))
    for ax, (metric, title) in zip(axes, (("auc", "test AUC"), ("tpr5", "test TPR @ 5% FPR")), strict=True):
        for i, m in enumerate(LABELS):
            v = _vals(results, f"{exp}/{metric}_{m}")
            if v.size == 0:
                continue
            color = "tab:red" if m == "dc_pdd" else "tab:blue"
            ax.bar(i, v.mean(), color=color, alpha=0.35)
            ax.errorbar(i, v.mean(), yerr=v.std(), color=color, capsize=4)
            ax.scatter(np.full(v.size, i) + np.linspace(-0.15, 0.15, v.size), v, s=12, color="k", zorder=3)
        if metric == "auc":
            ax.axhline(0.5, color="gray", lw=0.8, ls="--")
            ax.set_ylim(0.4, 1.0)
        ax.set_xticks(x, list(LABELS.values()), rotation=30, ha="right")
        ax.set_title(f"{title} (mean, std, seeds)")
    return save_figure(fig, out_dir / "auc_per_method.png")


def roc_figure(results: Any, out_dir: Path, exp: str) -> Path | None:
    runs = results.per_seed.get(exp, {})
    if not runs:
        return None
    seed = sorted(runs)[0]
    unit = runs[seed]  # the unit record: {"metrics": ..., "artifacts": ...}
    roc = unit.get("artifacts", unit).get("roc", {})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for m, label in LABELS.items():
        if m in roc:
            fpr, tpr = roc[m]
            ax.plot(fpr, tpr, label=label, lw=2.2 if m == "dc_pdd" else 1.2)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
    ax.axvline(0.05, color="gray", lw=0.6, ls=":")
    ax.set_xlabel("FPR")
    ax.set_ylabel("TPR")
    ax.set_title(f"ROC, test split, seed {seed}")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir / "roc_seed.png")


def commonness_figure(results: Any, out_dir: Path, exp: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    bins = ("low", "mid", "high")
    width = 0.8 / len(LABELS)
    for j, (m, label) in enumerate(LABELS.items()):
        means = [_vals(results, f"{exp}/auc_{m}_common_{b}") for b in bins]
        ax.bar(
            np.arange(3) + (j - len(LABELS) / 2 + 0.5) * width,
            [v.mean() if v.size else np.nan for v in means],
            width,
            yerr=[v.std() if v.size else 0 for v in means],
            label=label,
            capsize=2,
        )
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xticks(range(3), ["low commonness", "mid", "high commonness"])
    ax.set_ylabel("test AUC within tercile")
    ax.set_ylim(0.4, 1.02)
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return save_figure(fig, out_dir / "auc_by_commonness.png")


def all_figures(results: Any, out_dir: Path, exp: str) -> list[Path]:
    paths = [auc_figure(results, out_dir, exp), roc_figure(results, out_dir, exp)]
    if results.scale != "full":
        paths.append(commonness_figure(results, out_dir, exp))
    return [p for p in paths if p is not None]
