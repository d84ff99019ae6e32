"""Figures: held-out pass@k against k per method (mean and spread over seeds), and the training
reward of every RL step per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LABELS = {"sft": "SFT start", "pacs": "PACS", "grpo": "GRPO"}
COLORS = {"sft": "0.4", "pacs": "tab:red", "grpo": "tab:blue"}


def pass_at_k_figure(results: Any, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for exp in ("sft", "pacs", "grpo"):
        seeds = results.per_seed.get(exp, {})
        curves = [
            u["artifacts"]["pass_curve"] if "artifacts" in u else u["pass_curve"] for u in seeds.values()
        ]
        curves = [c for c in curves if c]
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
    ax.set_title("pass@k on held-out arithmetic (mean, min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = out_dir / "pass_at_k.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reward_curves_figure(results: Any, out_dir: Path, window: int = 5) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for exp in ("pacs", "grpo"):
        seeds = results.per_seed.get(exp, {})
        curves = [
            u["artifacts"]["reward_curve"] if "artifacts" in u else u["reward_curve"] for u in seeds.values()
        ]
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
            steps, smooth.mean(0), color=COLORS[exp], label=f"{LABELS[exp]} (mean of {len(curves)} seeds)"
        )
        ax.fill_between(steps, smooth.min(0), smooth.max(0), color=COLORS[exp], alpha=0.15)
    ax.set_xlabel("RL step")
    ax.set_ylabel(f"training reward (%, moving average of {window})")
    ax.set_title("mean verifiable reward of each rollout batch")
    ax.grid(alpha=0.3)
    ax.legend()
    path = out_dir / "reward_curves.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
