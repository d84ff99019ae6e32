"""Figures: held-out pass@k against k per method (mean and spread over seeds), the training
reward of every RL step per method (both for the lr selected on validation), and the validation
pass@1 of every lr of the grid (the selection itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xentlab.plotting import pyplot, save_figure

LABELS = {"sft": "SFT start", "pacs": "PACS", "grpo": "GRPO"}
COLORS = {"sft": "0.4", "pacs": "tab:red", "grpo": "tab:blue"}


def _artifact(unit: dict, key: str) -> Any:
    return unit["artifacts"][key] if "artifacts" in unit else unit.get(key)


def method_units(results: Any, exp: str) -> list[dict]:
    """The units of ``exp`` per seed: for a method run over an lr grid, each seed's unit at the lr
    selected on validation (the derived metric "<exp>/lr"); otherwise the experiment's own units."""
    from pacs.select import exp_name

    if exp in results.per_seed:
        return list(results.per_seed[exp].values())
    chosen = results.metrics.get(f"{exp}/lr", {}).get("per_seed", {})
    units = []
    for seed in results.seeds:
        lr = chosen.get(str(seed))
        unit = results.per_seed.get(exp_name(exp, lr), {}).get(seed) if lr is not None else None
        if unit is not None:
            units.append(unit)
    return units


def pass_at_k_figure(results: Any, out_dir: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for exp in ("sft", "pacs", "grpo"):
        curves = [c for c in (_artifact(u, "pass_curve") for u in method_units(results, exp)) if c]
        if not curves:
            continue
        ks = sorted(int(k) for k in curves[0])
        vals = np.array([[c[str(k)] for k in ks] for c in curves]) * 100
        mean, lo, hi = vals.mean(0), vals.min(0), vals.max(0)
        ax.plot(ks, mean, "o-", color=COLORS[exp], label=f"{LABELS[exp]} (n={len(curves)} seeds)")
        ax.fill_between(ks, lo, hi, color=COLORS[exp], alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("held-out pass@k (%)")
    ax.set_title("held-out pass@k, lr selected on validation\n(mean, min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir / "pass_at_k.png", dpi=120)


def reward_curves_figure(results: Any, out_dir: Path, window: int = 5) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for exp in ("pacs", "grpo"):
        curves = [_artifact(u, "reward_curve") for u in method_units(results, exp)]
        curves = [np.asarray(c, dtype=float) for c in curves if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        vals = np.stack([c[:length] for c in curves]) * 100
        w = max(1, min(window, length))
        kernel = np.ones(w) / w
        smooth = np.stack([np.convolve(v, kernel, mode="valid") for v in vals])
        steps = np.arange(w, length + 1)
        ax.plot(
            steps,
            smooth.mean(0),
            color=COLORS[exp],
            label=f"{LABELS[exp]}, selected lr (mean of {len(curves)} seeds)",
        )
        ax.fill_between(steps, smooth.min(0), smooth.max(0), color=COLORS[exp], alpha=0.15)
    ax.set_xlabel("RL step")
    ax.set_ylabel(f"training reward (%, moving average of {window})")
    ax.set_title("mean verifiable reward of each rollout batch")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir / "reward_curves.png", dpi=120)


def lr_selection_figure(results: Any, out_dir: Path, lrs: list[float]) -> Path:
    """Validation pass@1 against the lr of each method (every seed, and the mean); the SFT start's
    validation pass@1 as a dashed line."""
    plt = pyplot()

    from pacs.select import exp_name

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, exp in enumerate(("pacs", "grpo")):
        per_lr = []
        for lr in lrs:
            vals = results.values(f"{exp_name(exp, lr)}/val_pass@1")
            per_lr.append([100 * v for v in vals if v is not None])
        xs = np.asarray(lrs) * (1.03 if i else 0.97)  # side by side
        for x, vals in zip(xs, per_lr):
            ax.plot([x] * len(vals), vals, "o", color=COLORS[exp], alpha=0.35, ms=4)
        means = [np.mean(v) if v else np.nan for v in per_lr]
        ax.plot(xs, means, "s-", color=COLORS[exp], label=f"{LABELS[exp]} (mean; dots: seeds)")
    sft = [v for v in results.values("sft/val_pass@1") if v is not None]
    if sft:
        ax.axhline(100 * float(np.mean(sft)), color=COLORS["sft"], ls="--", label="SFT start (mean)")
    ax.set_xscale("log")
    ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
    ax.minorticks_off()
    ax.set_xlabel("RL learning rate")
    ax.set_ylabel("validation pass@1 (%)")
    ax.set_title("lr selection: validation pass@1 per lr")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir / "lr_selection.png", dpi=120)
