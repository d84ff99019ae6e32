"""Figures of reproduce.py: paired SFT vs RL held-out metrics, and the RL training curves."""

from __future__ import annotations

from pathlib import Path

METRICS = [("sec_strict", "sec. incl. (strict)"), ("sec_rate", "sec. incl. (shape)"), ("codebleu", "CodeBLEU"), ("sem", "Sem (F1)"),
           ("func_rate", "func. kept"), ("exact", "exact match")]  # fmt: skip


def metrics_figure(results, out_dir: Path) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.5))
    # at --scale full the checker metrics do not exist (synthetic language only): plot what was measured
    shown = [(k, lab) for k, lab in METRICS if f"securefix/sft_{k}" in results.metrics]
    xs = range(len(shown))
    for off, tag, colour in ((-0.2, "sft", "tab:gray"), (0.2, "rl", "tab:blue")):
        means, errs = [], []
        for key, _ in shown:
            m = results.metrics.get(f"securefix/{tag}_{key}")
            means.append(m["mean"] if m else 0.0)
            errs.append(m["std"] if m and m["n"] > 1 else 0.0)
        ax.bar([x + off for x in xs], means, 0.4, yerr=errs, color=colour, label=tag.upper())
    ax.set_xticks(list(xs), [lab for _, lab in shown])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out (mean over seeds, +-std)")
    ax.legend()
    ax.set_title("SFT vs SFT+PPO (CodeBLEU + Sem reward)")
    return save_figure(fig, out_dir / "sft_vs_rl.png")


def curves_figure(results, out_dir: Path) -> Path:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for seed, rec in sorted(results.per_seed.get("securefix", {}).items()):
        a = rec["artifacts"]
        axes[0].plot(range(1, len(a["reward_curve"]) + 1), a["reward_curve"], label=f"seed {seed}")
        right = a.get("sample_sec_curve", a.get("kl_curve", []))  # full scale: no checker, show the KL
        axes[1].plot(range(1, len(right) + 1), right, label=f"seed {seed}")
        full = "sample_sec_curve" not in a
        # the reward's contrast (guarded minus unguarded samples; None where a group was empty);
        # empty at full scale, where no checker exists
        gap = a.get("reward_gap_curve", [])
        pts = [(i + 1, g) for i, g in enumerate(gap) if g is not None]
        axes[2].plot([i for i, _ in pts], [g for _, g in pts], ".", ms=3, label=f"seed {seed}")
    axes[0].set_title("mean hybrid reward of rollouts")
    axes[1].set_title("KL to the SFT reference" if results.per_seed.get("securefix") and full
                      else "guard rate of sampled rollouts (monitor)")  # fmt: skip
    axes[2].axhline(0.0, color="k", lw=0.5)
    axes[2].set_title("reward: guarded - unguarded samples", fontsize=9)
    for ax in axes:
        ax.set_xlabel("PPO step")
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "rl_curves.png")
