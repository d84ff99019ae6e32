"""Figures: mean judge reward and win rate per arm (seeds as dots), and the preference-phase curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _records(results) -> dict:
    return results.per_seed["main"]


def plot_rewards(results, out_dir: Path, labels: dict[str, str]) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    recs = _records(results)
    seeds = sorted(recs)
    arms = [a for a in labels if f"{a}_reward" in recs[seeds[0]]["metrics"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (key, ylabel) in zip(
        axes, (("reward", "mean judge reward (greedy)"), ("winrate", "win rate vs SFT")), strict=True
    ):
        shown = [a for a in arms if f"{a}_{key}" in recs[seeds[0]]["metrics"]]
        vals = np.array([[recs[s]["metrics"][f"{a}_{key}"] for s in seeds] for a in shown])
        for i, a in enumerate(shown):
            ax.bar(i, vals[i].mean(), color="tab:gray" if a in ("sft", "dpo") else "tab:blue", alpha=0.6)
            ax.scatter([i] * len(seeds), vals[i], color="k", s=10, zorder=3)
        for j in range(len(seeds)):
            ax.plot(range(len(shown)), vals[:, j], color="k", alpha=0.25, lw=0.8)
        if key == "winrate":
            ax.axhline(0.5, color="k", lw=0.6, ls=":")
        ax.set_xticks(range(len(shown)), [labels[a] for a in shown], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        n_eval = recs[seeds[0]]["metrics"].get("n_eval_prompts")  # full scale: held-out prompts
        held_out = f"{n_eval} held-out prompts" if n_eval else "200 held-out authors"
        ax.set_title(f"{len(seeds)} seeds x {held_out} (dots = seeds)", fontsize=9)
    return save_figure(fig, out_dir / "rewards.png", dpi=110)


def plot_curves(results, out_dir: Path, labels: dict[str, str]) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    recs = _records(results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = {"dpo": "tab:gray", "spo": "tab:blue", "spo_lam05": "tab:green", "control": "tab:orange"}
    for s, rec in sorted(recs.items()):
        curves = rec["artifacts"].get("curves", {})
        for arm, hist in curves.items():
            steps = [r["step"] for r in hist]
            kw = dict(
                color=colors.get(arm, "k"),
                alpha=0.7,
                lw=1,
                label=labels.get(arm, arm) if s == min(recs) else None,
            )
            axes[0].plot(steps, [r["pref_loss"] for r in hist], **kw)
            if "degree_acc" in hist[0]:
                axes[1].plot(steps, [r["degree_acc"] for r in hist], **kw)
    axes[0].set_xlabel("preference step")
    axes[0].set_ylabel("DPO loss (train batch)")
    axes[1].set_xlabel("preference step")
    axes[1].set_ylabel("degree-head accuracy (train batch)")
    axes[1].axhline(0.25, color="k", lw=0.6, ls=":")
    for ax in axes:
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "curves.png", dpi=110)
