"""Figures: greedy vs sampled leakage per model, and the pooled distribution of sampled ROUGE-L."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXPERIMENTS = ("unlearn", "eo_all")  # the experiments whose units hold per-model metrics


def _mean(results, key: str) -> tuple[float, float]:
    for exp in EXPERIMENTS:
        m = results.metrics.get(f"{exp}/{key}")
        if m and m["mean"] is not None:
            return m["mean"], m["std"]
    return float("nan"), 0.0


def _label(name: str) -> str:
    return name.upper().replace("_EO_ALL", "+EO(all)").replace("_EO", "+EO")


def _records(results, name: str) -> list[dict]:
    """The per-seed unit records of the experiment that evaluated model ``name``."""
    for exp in EXPERIMENTS:
        recs = list(results.per_seed.get(exp, {}).values())
        if recs and f"{name}_greedy_rouge" in recs[0]["metrics"]:
            return recs
    return []


def available(results, names: list[str]) -> list[str]:
    """The models of ``names`` that some experiment of this run evaluated (eo_all is cpu/smoke only)."""
    return [n for n in names if _records(results, n)]


def bounds_figure(results, out_dir: Path, names: list[str]) -> Path:
    """Per model: greedy ROUGE-L, sampled mean ROUGE-L, its upper bound M_mu and the ED score."""
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    series = [
        ("greedy_rouge", "greedy ROUGE-L"),
        ("sample_rouge", "sampled mean ROUGE-L"),
        ("m_mu", "M_mu (upper bound, alpha=0.01)"),
        ("m_bin", "M_bin (P(fact disclosed) upper bound)"),
        ("ed", "ED score = M_mu + 2 M_sigma"),
    ]
    x = np.arange(len(names))
    w = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        vals = [_mean(results, f"{n}_{key}") for n in names]
        ax.bar(
            x + (i - len(series) / 2 + 0.5) * w,
            [v[0] for v in vals],
            w,
            yerr=[v[1] for v in vals],
            label=label,
        )
    ax.set_xticks(x, [_label(n) for n in names], fontsize=7)
    ax.set_ylabel("forget-set leakage")
    ax.set_title("Greedy evaluation vs probabilistic bounds (mean over seeds, std bars)")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, out_dir / "leakage_bounds.png")


def histogram_figure(results, out_dir: Path, names: list[str]) -> Path:
    """Pooled histogram of the sampled ROUGE-L of every forget question, one panel per model."""
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(2.0 * len(names), 2.6), sharey=True)
    edges = np.linspace(0, 1, 11)
    for ax, n in zip(np.atleast_1d(axes), names):
        hist = np.zeros(10)
        greedy = []
        for rec in _records(results, n):
            hist += np.asarray(rec["artifacts"][f"{n}_q_hist"], dtype=float)
            greedy.append(rec["metrics"][f"{n}_greedy_rouge"])
        hist /= max(hist.sum(), 1.0)
        ax.bar(edges[:-1], hist, width=0.1, align="edge", color="tab:orange", alpha=0.7, label="samples")
        ax.axvline(float(np.mean(greedy)), color="tab:blue", ls="--", label="greedy (mean)")
        ax.set_title(_label(n), fontsize=8)
        ax.set_xlabel("ROUGE-L", fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("share of samples")
    np.atleast_1d(axes)[0].legend(fontsize=6)
    return save_figure(fig, out_dir / "rouge_histograms.png")
