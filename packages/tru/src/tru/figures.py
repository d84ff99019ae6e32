"""The two figures of the report: the forget-retain trade-off per method, and the output rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xentlab.plotting import pyplot, save_figure

COLORS = {
    "ga": "tab:red",
    "graddiff": "tab:orange",
    "npo": "tab:purple",
    "refusal": "tab:gray",
    "tru": "tab:blue",
}


def _mean_std(results: Any, key: str) -> tuple[float, float]:
    vals = [v for v in results.values(key) if v is not None]
    return (float(np.mean(vals)), float(np.std(vals))) if vals else (float("nan"), 0.0)


def tradeoff_figure(results: Any, out_dir: Path, labels: dict[str, str]) -> Path:
    """Left: test forget exact match vs retain exact match (mean +- std over seeds) per method.
    Right: the validation trajectory of each method's selected run (every seed), from the
    original model (step 0) to the end of unlearning."""
    plt = pyplot()

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2))
    fx, fs = _mean_std(results, "base/forget_em")
    rx, rs = _mean_std(results, "base/retain_em")
    ax.errorbar(fx, rx, xerr=fs, yerr=rs, marker="*", ms=14, color="k", label="original", ls="none")
    for m, label in labels.items():
        if m not in results.per_seed:
            continue
        x, xs = _mean_std(results, f"{m}/forget_em")
        y, ys = _mean_std(results, f"{m}/retain_em")
        ax.errorbar(
            x, y, xerr=xs, yerr=ys, marker="o", ms=8, color=COLORS[m], label=label, ls="none", capsize=3
        )
        for seed, unit in results.per_seed[m].items():
            traj = unit.get("artifacts", unit).get("trajectory") or []
            if traj:
                bx.plot(
                    [p["forget_em"] for p in traj],
                    [p["retain_em"] for p in traj],
                    "-o",
                    ms=3,
                    color=COLORS[m],
                    alpha=0.7,
                    label=label if seed == min(results.per_seed[m]) else None,
                )
    for a, title in (
        (ax, "test: after unlearning (mean ± std over seeds)"),
        (bx, "validation: trajectory per seed"),
    ):
        a.set_xlabel("forget exact match (lower = forgotten)")
        a.set_ylabel("retain exact match")
        a.set_xlim(-0.05, 1.05)
        a.set_ylim(-0.05, 1.05)
        a.grid(alpha=0.3)
        a.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    bx.legend(fontsize=8, loc="lower right")
    fig.suptitle("Forget-retain trade-off (ideal: top left)", fontsize=11)
    return save_figure(fig, out_dir / "tradeoff.png", dpi=120)


RATES = (
    ("forget_refusal", "coherent refusal\n(forget)"),
    ("forget_gibberish", "gibberish\n(forget)"),
    ("retain_refusal", "over-refusal\n(retain)"),
    ("paraphrase_refusal", "coherent refusal\n(paraphrase)"),
    ("paraphrase_em", "leak\n(paraphrase)"),
    ("cipher_em", "leak\n(cipher)"),
    ("relearn_em", "leak after\nrelearning"),
)


def rates_figure(results: Any, out_dir: Path, labels: dict[str, str]) -> Path:
    """Grouped bars: how each method answers forget, retain, paraphrased and cipher queries."""
    plt = pyplot()

    methods = [m for m in labels if m in results.per_seed]
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(len(methods) + 1, 1)
    xs = np.arange(len(RATES))
    groups = [("base", "original", "k")] + [(m, labels[m], COLORS[m]) for m in methods]
    for i, (m, label, color) in enumerate(groups):
        stats = [_mean_std(results, f"{m}/{k}") for k, _ in RATES]
        ax.bar(
            xs + (i - len(groups) / 2 + 0.5) * width,
            [s[0] for s in stats],
            width,
            yerr=[s[1] for s in stats],
            color=color,
            alpha=0.85,
            label=label,
            capsize=2,
        )
    ax.set_xticks(xs, [t for _, t in RATES], fontsize=8)
    ax.set_ylim(0, 1.22)
    ax.set_ylabel("rate (mean ± std over seeds)")
    ax.legend(fontsize=8, ncol=len(groups), loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("How each method answers (test panels)", fontsize=11)
    return save_figure(fig, out_dir / "rates.png", dpi=120)
