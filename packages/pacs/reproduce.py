"""Reproduce "Implicit Actor Critic Coupling via a Supervised Learning Framework for RLVR" (PACS,
arXiv 2509.02522) at CPU scale.

    uv run --package pacs packages/pacs/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

A 1M-parameter Llama (byte tokens) is fine-tuned (SFT) on part of a pool of generated arithmetic
problems with verifiable integer answers, then trained with RL from that start by PACS (implicit
reward, RLOO, class-balanced BCE; the official code) and by GRPO (clip 0.2, no KL; trl's loss),
with identical rollouts, steps and seeds. The learning rate of each method is chosen on a
validation split (disjoint from the train pool and the held-out problems) from the same grid:
per seed, the lr with the best validation pass@1 (``pacs.select``). The claims read the held-out
pass@k for k in {1, 2, 4, 8, 16} (16 samples per problem at the official evaluation sampler's
temperature 0.6 and top-p 0.95, unbiased estimator) of the selected lr only.
``--scale full`` runs PACS / GRPO through trl on a local Qwen2.5 model and local DeepScaleR-style
data (see the README).
"""

from __future__ import annotations

from pathlib import Path

from pacs.experiment import run_rl, run_sft
from pacs.select import exp_name, selected_lr_fn, selected_metric_fn

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Implicit Actor Critic Coupling via a Supervised Learning Framework for RLVR",
    package="pacs",
    arxiv="2509.02522",
    code="https://github.com/ritzz-ai/PACS",
)

KS = [1, 2, 4, 8, 16]

# Protocol v2 (README, "Protocol v2"): every pass@k sample (held-out and validation, every scale) is
# drawn as the official evaluation draws it: scripts/inference.sh -> src/inference.py, vLLM at
# temperature 0.6, top-p 0.95. Protocol v1 sampled the cpu/smoke evaluation at the training
# temperature 1.0 without top-p. The RL rollouts keep verl's rollout temperature 1.0.
EVAL_TEMPERATURE = 0.6
EVAL_TOP_P = 0.95
EVAL_SAMPLER = {"temperature": EVAL_TEMPERATURE, "top_p": EVAL_TOP_P}

# The SFT start ("a base model with a nonzero pass rate"): the task, the model, SFT on the first
# n_sft problems of the train pool, and the held-out evaluation every method uses.
SFT = {
    "cpu": {
        "task": {"n_train": 1500, "n_heldout": 300, "max_operand": 19, "max_factor": 9},
        "model": "llama-1m",
        "n_sft": 1000,
        "sft_steps": 600,
        "sft_batch": 128,
        "sft_lr": 3e-3,
        "eval": {"n_problems": 300, "n_samples": 16, "ks": KS, "max_new_tokens": 8, **EVAL_SAMPLER},
    },
    "smoke": {
        "task": {"n_train": 60, "n_heldout": 20, "max_operand": 19, "max_factor": 9},
        "model": "llama-1m",
        "n_sft": 40,
        "sft_steps": 4,
        "sft_batch": 16,
        "sft_lr": 3e-3,
        "eval": {"n_problems": 8, "n_samples": 4, "ks": [1, 2, 4], "max_new_tokens": 6, **EVAL_SAMPLER},
    },
}

# The validation split for the lr selection (pacs.task.build_validation): problems in neither the
# train pool nor the held-out split, with the pool's level mix. 100 is close to the most the cpu task
# allows (~115: the pool leaves only 18 unused level-3 expressions with operands <= 19).
VAL = {
    "cpu": {
        "n_val": 100,
        "eval": {"n_problems": 100, "n_samples": 16, "ks": [1], "max_new_tokens": 8, **EVAL_SAMPLER},
    },
    "smoke": {
        "n_val": 10,
        "eval": {"n_problems": 10, "n_samples": 4, "ks": [1], "max_new_tokens": 6, **EVAL_SAMPLER},
    },
}

# The lr grid, the same for both methods (see the README for why these two values): every grid point
# is a full RL run (the protocol of RL below), evaluated on validation and held out.
LR_GRID = {"cpu": [2.5e-5, 5e-5], "smoke": [5e-5, 1e-4]}

# RL: the same budget for both methods; only the loss (and each official script's clipping) differs.
# "lr" is set per grid point.
RL = {
    "cpu": {
        "steps": 150,
        "prompts_per_step": 16,
        "n": 8,
        "minibatches": 4,
        "max_new_tokens": 8,
        "temperature": 1.0,
        "log_every": 5,
    },
    "smoke": {
        "steps": 2,
        "prompts_per_step": 4,
        "n": 4,
        "minibatches": 2,
        "max_new_tokens": 6,
        "temperature": 1.0,
        "log_every": 1,
    },
}
METHOD = {
    # official PACS: beta 1, RLOO, balanced weights; its actor never clips the gradient norm
    "pacs": {"method": "pacs", "beta": 1.0, "adv_estimator": "rloo", "grad_clip": None},
    # GRPO: clip 0.2, beta 0 (no KL), trl 1.16's default "dapo" token aggregation; verl/trl clip at 1.0
    "grpo": {"method": "grpo", "epsilon": 0.2, "loss_type": "dapo", "grad_clip": 1.0},
}

# --scale full: the paper's setting through trl (paths from PACS_MODEL, PACS_TRAIN_DATA,
# PACS_EVAL_DATA; see pacs.full and the README).
FULL = {
    "model": None,
    "train_data": None,
    "eval_data": None,
    "lr": 1e-6,
    "beta": 1.0,
    "num_generations": 8,
    "prompts_per_step": 128,
    "steps": 300,
    "max_prompt_length": 512,
    "max_completion_length": 4096,
    "temperature": 1.0,  # training rollouts (verl's rollout default)
    # evaluation sampler of the official scripts/inference.sh: temperature 0.6, top_p 0.95
    "eval_temperature": EVAL_TEMPERATURE,
    "eval_top_p": EVAL_TOP_P,
    "eval_samples": 16,
    "eval_ks": KS,
    "eval_max_problems": 500,
    "eval_max_new_tokens": 4096,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 16,
    "bf16": True,
}


def sft_fn(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """The SFT start model of this seed (cpu/smoke), or the base model's evaluation (full)."""
    if ctx.scale == "full":
        from pacs.full import run_full_base

        return run_full_base(cfg, seed, ctx)
    return run_sft(cfg, seed, ctx)


def rl_fn(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """PACS or GRPO from this seed's SFT model (cpu/smoke), or through trl (full)."""
    if ctx.scale == "full":
        from pacs.full import run_full

        return run_full(cfg, seed, ctx)
    return run_rl(cfg, seed, ctx)


def _grid_experiments(method: str) -> list[Experiment]:
    """One experiment per lr of the grid (cpu/smoke); a scale whose grid lacks the lr skips it.
    Version "2": protocol v2's evaluation sampler (temperature 0.6, top-p 0.95)."""
    lrs = sorted({lr for grid in LR_GRID.values() for lr in grid})
    return [
        Experiment(
            exp_name(method, lr),
            rl_fn,
            {
                s: {"sft": SFT[s], "val": VAL[s], "rl": {**RL[s], **METHOD[method], "lr": lr}}
                for s in ("smoke", "cpu")
                if lr in LR_GRID[s]
            },
            description=f"{method.upper()} from the SFT model at lr {lr:g}",
            version="2",
        )
        for lr in lrs
    ]


EXPERIMENTS = [
    Experiment(
        "sft",
        sft_fn,
        {
            "smoke": {"sft": SFT["smoke"], "val": VAL["smoke"]},
            "cpu": {"sft": SFT["cpu"], "val": VAL["cpu"]},
            "full": {**FULL, "method": "base"},
        },
        description="the SFT start model (full scale: the base model)",
        # "2": protocol v2's evaluation sampler; the SFT model's cache key holds its eval config, so the
        # cached model is rebuilt and re-evaluated (pacs.task.sft_key)
        version="2",
    ),
    *_grid_experiments("pacs"),
    *_grid_experiments("grpo"),
    # --scale full: one run per method at the paper's lr (no grid; see the README). Version "2": the
    # official prompt instruction and evaluation sampler (second fidelity audit; full-only experiments,
    # never run here).
    Experiment(
        "pacs", rl_fn, {"full": {**FULL, "method": "pacs"}}, description="PACS through trl", version="2"
    ),
    Experiment(
        "grpo", rl_fn, {"full": {**FULL, "method": "grpo"}}, description="GRPO through trl", version="2"
    ),
]


def _selection(scale: str) -> list[Derived]:
    """Per seed and method: the lr with the best validation pass@1 ("<method>/lr", read by
    ``pacs.select`` from the val_* metrics only) and the metrics of that run as "<method>/<metric>",
    which the gaps and claims below read. At full scale "<method>/..." are the trl runs' own metrics."""
    metrics = ["val_pass@1", *(f"pass@{k}" for k in SFT[scale]["eval"]["ks"])]
    if scale == "cpu":  # the smoke held-out split is too small to hold every level
        metrics += [f"pass@1_level{lv}" for lv in (1, 2, 3, 4)]
    metrics += ["train_reward_first10", "train_reward_last10"]
    out = []
    for method in ("pacs", "grpo"):
        out.append(Derived(f"{method}/lr", selected_lr_fn(method, LR_GRID[scale]), scales=(scale,)))
        out += [
            Derived(f"{method}/{m}", selected_metric_fn(method, LR_GRID[scale], m), scales=(scale,))
            for m in metrics
        ]
    return out


DERIVED = [
    *_selection("smoke"),
    *_selection("cpu"),
    Derived("gap/pacs_minus_sft_pass@1", lambda m: m["pacs/pass@1"] - m["sft/pass@1"]),
    Derived("gap/grpo_minus_sft_pass@1", lambda m: m["grpo/pass@1"] - m["sft/pass@1"]),
    Derived("gap/pacs_minus_grpo_pass@1", lambda m: m["pacs/pass@1"] - m["grpo/pass@1"]),
    Derived(
        "gap/pacs_minus_grpo_pass@16", lambda m: m["pacs/pass@16"] - m["grpo/pass@16"], scales=("cpu", "full")
    ),
    Derived(
        "gap/grpo_minus_sft_pass@16", lambda m: m["grpo/pass@16"] - m["sft/pass@16"], scales=("cpu", "full")
    ),
    Derived(
        "gap/pacs_minus_sft_pass@16", lambda m: m["pacs/pass@16"] - m["sft/pass@16"], scales=("cpu", "full")
    ),
]

CLAIMS = [
    Claim(
        id="pacs-raises-pass1",
        statement="PACS raises held-out pass@1 over the SFT start by at least 5 points",
        paper="average gains of +8.26 (4B) and +9.57 (8B) points over the base models (abstract v2)",
        metric="gap/pacs_minus_sft_pass@1",
        check=">= 0.05",
        scales=("cpu", "full"),
    ),
    Claim(
        id="pacs-vs-grpo-pass16",
        statement="PACS's pass@16 is at least GRPO's (within 1 point)",
        paper="AIME 2025 pass@256: PACS 59.78%, +14.36 over GRPO, +13.32 over PPO",
        metric="gap/pacs_minus_grpo_pass@16",
        check=">= -0.01",
        scales=("cpu", "full"),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from pacs.figures import lr_selection_figure, pass_at_k_figure, reward_curves_figure

    paths = [pass_at_k_figure(results, out_dir), reward_curves_figure(results, out_dir)]
    if results.scale in LR_GRID:
        paths.append(lr_selection_figure(results, out_dir, LR_GRID[results.scale]))
    return paths


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0]},
        # two worker processes (one per core) at cpu scale; smoke and full (one GPU job) run in this process
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )
