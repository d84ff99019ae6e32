"""Figures: test pass@N against epoch per method, pass@N against N at the final epoch, and the
confidence of the greedy answer (the paper's Fig. 1 analogue), all means over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xentlab.plotting import pyplot, save_figure

COLORS = {"ce": "tab:blue", "dco4": "tab:olive", "dco32": "tab:orange", "dco256": "tab:red"}


def _label(exp: str) -> str:
    return "CE" if exp == "ce" else f"DCO N'={exp[3:]}"


def _art(unit: dict, key: str) -> Any:
    return unit["artifacts"][key] if "artifacts" in unit else unit.get(key)


def _methods(results: Any) -> list[str]:
    return [e for e in ("ce", "dco4", "dco32", "dco256") if e in results.per_seed]


def _curves(results: Any, exp: str) -> list[list[dict]]:
    return [c for c in (_art(u, "curve") for u in results.per_seed[exp].values()) if c]


def _ns(curve: list[dict]) -> list[int]:
    return sorted(int(k.split("@")[1]) for k in curve[0] if k.startswith("pass@"))


def pass_vs_epoch_figure(results: Any, out_dir: Path) -> Path:
    plt = pyplot()
    methods = _methods(results)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, exp in zip(axes[0], methods):
        curves = _curves(results, exp)
        ns = _ns(curves[0])
        epochs = [r["epoch"] for r in curves[0]]
        for i, n in enumerate(ns):
            vals = np.array([[r[f"pass@{n}"] for r in c] for c in curves]) * 100
            ax.plot(epochs, vals.mean(0), "o-", ms=3, color=cmap(i / max(1, len(ns) - 1)), label=f"pass@{n}")
            ax.fill_between(epochs, vals.min(0), vals.max(0), color=cmap(i / max(1, len(ns) - 1)), alpha=0.15)
        ax.set_title(f"{_label(exp)} ({len(curves)} seeds)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test pass@N, exact (%)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("exact test pass@N over training (mean; band: min-max over seeds)")
    return save_figure(fig, out_dir / "pass_vs_epoch.png", dpi=110)


def pass_at_n_figure(results: Any, out_dir: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for exp in _methods(results):
        curves = _curves(results, exp)
        ns = _ns(curves[0])
        vals = np.array([[c[-1][f"pass@{n}"] for n in ns] for c in curves]) * 100
        ax.errorbar(
            ns, vals.mean(0), yerr=vals.std(0), fmt="o-", capsize=3, color=COLORS.get(exp), label=_label(exp)
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("test pass@N at the final epoch (%)")
    ax.set_title("exact pass@N at the final epoch\n(mean +- std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir / "pass_at_n_final.png", dpi=110)


def confidence_figure(results: Any, out_dir: Path) -> Path:
    """Left: CE's greedy-answer confidence histogram at each evaluated epoch (correct + wrong).
    Right: at the final epoch, per method, the histogram split into correct and wrong answers."""
    plt = pyplot()
    methods = _methods(results)
    fig, axes = plt.subplots(1, 1 + len(methods), figsize=(4.0 * (1 + len(methods)), 3.6), squeeze=False)
    axes = axes[0]
    edges = np.linspace(0, 1, 11)
    centers = (edges[:-1] + edges[1:]) / 2
    ce = _curves(results, "ce") if "ce" in results.per_seed else []
    if ce:
        cmap = plt.get_cmap("plasma")
        rows = ce[0]
        for j, r in enumerate(rows):
            if r["epoch"] == 0 or "hist_correct" not in r:
                continue
            h = np.mean([np.add(c[j]["hist_correct"], c[j]["hist_wrong"]) for c in ce], 0)
            axes[0].plot(
                centers,
                h / max(h.sum(), 1),
                "o-",
                ms=3,
                color=cmap(j / len(rows)),
                label=f"epoch {r['epoch']}",
            )
        axes[0].set_title("CE: confidence of the greedy answer")
        axes[0].set_xlabel("p_hat(y_greedy | x)")
        axes[0].set_ylabel("fraction of test problems")
        axes[0].legend(fontsize=7)
    for ax, exp in zip(axes[1:], methods):
        curves = [c for c in _curves(results, exp) if "hist_correct" in c[-1]]
        if not curves:
            continue
        right = np.mean([c[-1]["hist_correct"] for c in curves], 0)
        wrong = np.mean([c[-1]["hist_wrong"] for c in curves], 0)
        ax.bar(centers, wrong, width=0.09, color="tab:gray", label="wrong")
        ax.bar(centers, right, width=0.09, bottom=wrong, color="tab:green", label="correct")
        ax.set_title(f"{_label(exp)}: final epoch")
        ax.set_xlabel("p_hat(y_greedy | x)")
        ax.legend(fontsize=8)
    axes[1].set_ylabel("test problems (mean over seeds)")
    fig.suptitle("greedy-answer confidence on the test split (Fig. 1 analogue)")
    return save_figure(fig, out_dir / "confidence.png", dpi=110)
