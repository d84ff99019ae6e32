"""Figures of reproduce.py: paired SFT vs RL held-out metrics, and the RL training curves."""

from __future__ import annotations

from pathlib import Path

METRICS = [("sec_strict", "sec. incl. (strict)"), ("sec_rate", "sec. incl. (shape)"), ("codebleu", "CodeBLEU"), ("sem", "Sem (F1)"),
           ("func_rate", "func. kept"), ("exact", "exact match")]  # fmt: skip


def metrics_figure(results, out_dir: Path) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.5))
    xs = range(len(METRICS))
    for off, tag, colour in ((-0.2, "sft", "tab:gray"), (0.2, "rl", "tab:blue")):
        means, errs = [], []
        for key, _ in METRICS:
            m = results.metrics.get(f"securefix/{tag}_{key}")
            means.append(m["mean"] if m else 0.0)
            errs.append(m["std"] if m and m["n"] > 1 else 0.0)
        ax.bar([x + off for x in xs], means, 0.4, yerr=errs, color=colour, label=tag.upper())
    ax.set_xticks(list(xs), [lab for _, lab in METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out (mean over seeds, +-std)")
    ax.legend()
    ax.set_title("SFT vs SFT+PPO (CodeBLEU + Sem reward)")
    return save_figure(fig, out_dir / "sft_vs_rl.png")


def curves_figure(results, out_dir: Path) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for seed, rec in sorted(results.per_seed.get("securefix", {}).items()):
        a = rec["artifacts"]
        axes[0].plot(range(1, len(a["reward_curve"]) + 1), a["reward_curve"], label=f"seed {seed}")
        axes[1].plot(range(1, len(a["sample_sec_curve"]) + 1), a["sample_sec_curve"], label=f"seed {seed}")
    axes[0].set_title("mean hybrid reward of rollouts")
    axes[1].set_title("guard rate of sampled rollouts (monitor)")
    for ax in axes:
        ax.set_xlabel("PPO step")
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "rl_curves.png")
