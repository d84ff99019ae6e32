"""Exploratory experiments for "The Nature of Mathematical Modeling and Probabilistic Optimization
Engineering in Generative AI" (Fulu Li, 2024; arXiv 2410.18441). A proposal paper with no reported
numbers: nothing here reproduces a number of the paper.

    uv run python packages/genai-probopt/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

Three tiny multi-query-attention decoders (RoPE only; ALiBi only with geometric slopes; RoPE + ALiBi
with harmonic slopes 1/h, the proposal) are trained at context 64 on a seeded order-2 Markov source
(32 symbols, exact entropy rate), then
(a) scored at 64, 128 and 256 tokens (length extrapolation), and
(b) scored at 64 tokens with the KV cache read through uniform 8/4/2-bit quantisers and two staircase
    (SAQ) schedules whose mean cache memory is at most that of uniform 4-bit.
All losses are excess bits/token over the source's true conditional log-loss. Every claim is
exploratory; thresholds were fixed before the cpu run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from genai_probopt.experiment import SCHEDULES, RunConfig, run
from genai_probopt.model import POS_SCHEMES

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="The Nature of Mathematical Modeling and Probabilistic Optimization Engineering in Generative AI",
    arxiv="2410.18441",
    package="genai-probopt",
    code=None,
)

SMOKE = dict(hidden=16, heads=2, train_len=16, steps=3, batch=4, warmup=1, eval_lens=(16, 32),
             eval_tokens=256, saq_seqs=4, saq_from=8)  # fmt: skip
# cpu: 300 AdamW steps of 32 x 64 tokens (~0.6M tokens), about 22 CPU-s per unit on one thread
CPU = dict(steps=300, batch=32, eval_lens=(64, 128, 256), eval_tokens=16384, saq_seqs=256, saq_from=32)
# full: the same tiny setting trained 10x longer (the paper specifies no experiment to scale up to)
FULL = dict(steps=3000, batch=64, eval_lens=(64, 128, 256, 512, 1024), eval_tokens=65536, saq_seqs=1024)

DESCRIPTIONS = {
    "rope": "RoPE only (causal mask, no bias)",
    "alibi": "ALiBi only, geometric slopes 2^(-8h/H) (Press et al.)",
    "rope_alibi_harmonic": "RoPE + ALiBi with harmonic slopes 1/h (the paper's proposal, as read here)",
}


def train_scheme(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return run(RunConfig(**cfg), seed, log=ctx.log, progress=ctx.progress)


EXPERIMENTS = [
    Experiment(
        pos,
        train_scheme,
        {"smoke": {**SMOKE, "pos": pos}, "cpu": {**CPU, "pos": pos}, "full": {**FULL, "pos": pos}},
        description=DESCRIPTIONS[pos],
    )
    for pos in POS_SCHEMES
]

H = "rope_alibi_harmonic"
DERIVED = [
    # > 0: RoPE alone loses more when extrapolating from 64 to 256 tokens than the harmonic combination
    Derived("gain/rope_minus_harmonic_increase_256",
            lambda m: m["rope/increase_256"] - m[f"{H}/increase_256"], scales=("cpu", "full")),
    # > 0: the harmonic combination has lower excess loss at 256 tokens than ALiBi alone
    Derived("gain/alibi_minus_harmonic_excess_256",
            lambda m: m["alibi/excess_bits_256"] - m[f"{H}/excess_bits_256"], scales=("cpu", "full")),
    # > 0: on the harmonic model, uniform 4-bit costs more bits/token than SAQ 8/4/2 (at <= its memory)
    Derived("gain/uniform4_minus_saq842_penalty",
            lambda m: m[f"{H}/kv_uniform4_penalty"] - m[f"{H}/kv_saq_8_4_2_penalty"]),
]  # fmt: skip

CLAIMS = [
    Claim(
        id="harmonic-extrapolates-better-than-rope",
        statement="[exploratory] RoPE+ALiBi(harmonic) extrapolates from 64 to 256 tokens with a smaller "
        "increase in excess loss than RoPE alone",
        paper="proposed in the abstract (no number)",
        metric="gain/rope_minus_harmonic_increase_256",
        check="> 0",
        scales=("cpu", "full"),
    ),
    Claim(
        id="harmonic-flat-to-256",
        statement="[exploratory] RoPE+ALiBi(harmonic): excess loss at 256 tokens is within 0.05 bits/token "
        "of that at 64 (worst seed)",
        paper="proposed in the abstract (no number); threshold set here",
        metric=f"{H}/increase_256",
        check="< 0.05",
        agg="max",
        scales=("cpu", "full"),
    ),
    Claim(
        id="harmonic-beats-alibi-at-256",
        statement="[exploratory] RoPE+ALiBi(harmonic) has a lower excess loss at 256 tokens than ALiBi "
        "alone (geometric slopes)",
        paper="proposed in the abstract (no number)",
        metric="gain/alibi_minus_harmonic_excess_256",
        check="> 0",
        scales=("cpu", "full"),
    ),
    Claim(
        id="saq-memory-at-most-uniform4",
        statement="SAQ 8/4/2 stores at most the bits of uniform 4-bit per cached element (mean over the "
        "evaluated positions, scale/zero overhead included) - the equal-memory premise",
        paper="design check (no number in the paper)",
        metric=f"{H}/kv_saq_8_4_2_bits",
        check="<= 6.0",
        agg="max",
        scales=("cpu", "full"),  # the schedule's ages are sized for context 64, head dim 16
    ),
    Claim(
        id="saq-beats-uniform4",
        statement="[exploratory] On the RoPE+ALiBi(harmonic) MQA model, SAQ 8/4/2 at <= the memory of "
        "uniform 4-bit has a lower loss penalty than uniform 4-bit",
        paper="'gradual quantization degradation while achieving reasonable model quality' (abstract)",
        metric="gain/uniform4_minus_saq842_penalty",
        check="> 0",
    ),
    Claim(
        id="saq-penalty-small",
        statement="[exploratory] SAQ 8/4/2 costs under 0.01 bits/token on the RoPE+ALiBi(harmonic) "
        "model (worst seed)",
        paper="'reasonable model quality' (abstract); threshold set here",
        metric=f"{H}/kv_saq_8_4_2_penalty",
        check="< 0.01",
        agg="max",
    ),
]

COLORS = {"rope": "tab:blue", "alibi": "tab:orange", H: "tab:red"}


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    names = [n for n in POS_SCHEMES if n in results.per_seed]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    for n in names:
        recs = list(results.per_seed[n].values())
        lens = sorted(int(k.rsplit("_", 1)[1]) for k in recs[0]["metrics"] if k.startswith("excess_bits_"))
        ys = np.array([[r["metrics"][f"excess_bits_{L}"] for L in lens] for r in recs])
        for y in ys:
            ax.plot(lens, y, color=COLORS[n], alpha=0.3, lw=0.8)
        ax.plot(lens, ys.mean(0), "o-", color=COLORS[n], label=n)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("evaluation length (trained at 64)")
    ax.set_ylabel("excess loss (bits/token)")
    ax.set_title(f"length extrapolation ({len(recs)} seeds; thin = seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1]
    for n in names:
        recs = list(results.per_seed[n].values())
        for s in SCHEDULES:
            bits = recs[0]["metrics"][f"kv_{s}_bits"]
            pen = np.mean([r["metrics"][f"kv_{s}_penalty"] for r in recs])
            ax.scatter(bits, pen, color=COLORS[n], marker="s" if s.startswith("saq") else "o", s=25)
            if n == H:
                dy = -10 if s == "saq_16_8_4_2" else 3  # the two SAQ points sit close together
                ax.annotate(s, (bits, pen), fontsize=7, xytext=(3, dy), textcoords="offset points")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("KV cache bits per element (mean over scored positions)")
    ax.set_ylabel("loss penalty vs fp32 cache (bits/token)")
    ax.set_title("KV quantisation at context 64 (squares = SAQ; colour = model)", fontsize=9)
    return [save_figure(fig, out_dir / "genai_probopt.png", dpi=110)]


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
assert all(set(c) <= _FIELDS for e in EXPERIMENTS for c in e.configs.values() if c)

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS, derived=DERIVED, figures=figures,
            default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
            default_workers={"smoke": 1, "cpu": 2, "full": 1})  # fmt: skip
