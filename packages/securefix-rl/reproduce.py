"""Reproduce "Code Security Vulnerability Repair Using Reinforcement Learning with Large Language
Models" (Islam, Karkevandi, Najafirad; arXiv 2401.07031) at CPU scale.

    uv run python packages/securefix-rl/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

A tiny Llama is fine-tuned with cross-entropy (SFT) to map a vulnerable function (synthetic, one
injected vulnerability) to its repair (the same function plus 1-2 guard lines), then trained
with PPO (a PPO-lite: clipped ratio, KL to the SFT reference, a per-prompt mean-reward baseline) on the
paper's hybrid reward, w_syn * CodeBLEU + w_sem * Sem, where Sem is a BERTScore-style greedy
F1 over the frozen SFT model's hidden states. The SFT and the RL model of each seed are
evaluated on the same held-out functions (paired): security-measure inclusion (a checker),
CodeBLEU (PyPI ``codebleu``), Sem, functional preservation and exact match.
No official code exists. ``--scale full`` runs the same SFT + PPO-lite with LoRA on a local causal code
LM (CodeGen2-style) and local vulnerable / fixed pairs (``securefix_rl.full``; see the README).
"""

from __future__ import annotations

from pathlib import Path

from securefix_rl.code import unit_version
from securefix_rl.experiment import run_sft_then_rl

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, difference, run_cli

PAPER = Paper(
    title="Code Security Vulnerability Repair Using Reinforcement Learning with Large Language Models",
    package="securefix-rl",
    arxiv="2401.07031",
    code=None,
)

MODEL = {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 192}

CPU = {
    "sft": {
        "data": {"n_train": 4000, "n_dev": 200, "n_test": 200},
        "vocab_size": 600,
        "model": MODEL,
        # Per-seed stopping point on the dev split (never test), rule fixed before the rerun
        # (securefix_rl.task.choose_stop): lr schedule of a 1,600-step run (the cap); every 50 steps
        # from step 400, the strict guard inclusion of greedy repairs of 100 dev functions; stop at the
        # first checkpoint in [0.3, 0.7] (if it jumps over the band, keep whichever of the last two
        # checkpoints is closer to 0.5). The old fixed 1,200 steps (seed 0 only) left seeds 1-2 at
        # 98-100% inclusion, with no headroom for RL.
        "sft_steps": 1600,
        "sft_batch": 16,
        "sft_lr": 5e-3,
        "select": {"start": 400, "every": 50, "n_dev": 100, "lo": 0.3, "hi": 0.7, "max_new_tokens": 56},
    },
    "n_eval": 200,
    "rl": {
        # Fixed before the third cpu run (protocol fix): 150 steps. One seed measured first: SFT with its
        # dev checkpoints 49 CPU-s, a PPO step 0.74 CPU-s, so 3 x (49 + 150 x 0.74 + ~8 eval) ~ 8 CPU-min,
        # the allowance. 30 steps (first run) and 80 (second) moved the policy by 1-3 points only
        # (KL to the reference 0.2-1.1 nats).
        "steps": 150,
        "prompts_per_step": 16,
        "n": 4,
        "minibatches": 2,
        "ppo_epochs": 1,
        "lr": 3e-4,  # 1e-3 diverged on dev (KL ~ 6-8 nats, CodeBLEU down); 3e-4 kept KL < 1
        "clip": 0.2,
        "beta": 0.05,
        "baseline": "prompt",
        # whiten (RLConfig default True): the fourth run's protocol fix is in xentlab.rl.ppo, not here:
        # the advantages are whitened by their own batch mean and std as trl's masked_whiten does (the
        # first three runs divided them by the std of the returns); every setting is the third run's.
        "w_syn": 0.5,
        "w_sem": 0.5,
        "temperature": 1.0,
        "max_new_tokens": 56,
    },
}

SMOKE = {
    "sft": {
        **CPU["sft"],
        "data": {"n_train": 64, "n_dev": 8, "n_test": 8},
        "sft_steps": 3,
        "sft_batch": 8,
        "select": {**CPU["sft"]["select"], "start": 2, "every": 1, "n_dev": 4, "max_new_tokens": 8},
    },
    "n_eval": 8,
    "rl": {**CPU["rl"], "steps": 1, "prompts_per_step": 2, "n": 2, "max_new_tokens": 12},
}


# --scale full: local CodeGen2-style LM + LoRA, local {vulnerable, fixed, cwe} pairs, a local encoder for
# the BERTScore term (SECUREFIX_MODEL / SECUREFIX_DATA / SECUREFIX_ENCODER; securefix_rl.full, README).
# The paper's PPO / LoRA hyperparameters are not in the sources we could read: these are assumptions.
FULL = {
    "model": None,  # $SECUREFIX_MODEL, e.g. Salesforce/codegen2-1B_P saved locally
    "data": None,  # $SECUREFIX_DATA: pairs.jsonl, or a folder with train.jsonl / test.jsonl
    "encoder": None,  # $SECUREFIX_ENCODER, e.g. microsoft/codebert-base saved locally
    "trust_remote_code": False,  # CodeGen2 ships its own modelling code: opt in per config
    "dtype": "bf16",
    "lang": "c",  # CodeBLEU grammar (falls back to python when tree-sitter-c is not installed)
    "separator": "# fix\n",
    "max_len": 512,  # prompt + repair tokens; longer pairs are skipped
    "test_frac": 0.1,
    "n_eval": 500,
    "sem_layer": None,  # encoder layer for Sem (None: last)
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "lora_targets": None,  # None: every linear layer
    "sft": {"steps": 2000, "batch": 8, "lr": 2e-4},
    "rl": {
        **CPU["rl"],
        "steps": 300,
        "prompts_per_step": 16,
        "n": 4,
        "minibatches": 4,
        "lr": 1e-5,
        "max_new_tokens": 256,
    },  # fmt: skip
}


def securefix(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """SFT, evaluate, PPO with the hybrid reward, evaluate (one paired unit per seed)."""
    if ctx.scale == "full":
        from securefix_rl.full import run_full

        return run_full(cfg, seed, ctx)
    return run_sft_then_rl(cfg, seed, ctx)


EXPERIMENTS = [
    Experiment(
        "securefix",
        securefix,
        {"smoke": SMOKE, "cpu": CPU, "full": FULL},
        description="SFT then PPO (CodeBLEU + BERTScore-style reward), paired held-out metrics",
        # the resume key follows the code a unit runs (securefix_rl.code): with the default "1" an edit
        # of xentlab.rl.ppo (the fourth run's whitening fix) would have left the old units in place
        version=unit_version(),
        # CodeBLEU's data-flow match (PyPI codebleu, as the official code) iterates sets of strings, so
        # its value follows Python's per-process string-hash seed: every unit runs with PYTHONHASHSEED=0
        # (fifth cpu run; README). It applies at every scale, --scale full included.
        fixed_hash_seed=True,
    )
]

CHECKER_SCALES = ("smoke", "cpu")  # the checker knows the synthetic language only (not --scale full)

DERIVED = [
    Derived(
        "gain/sec_strict_pts",
        difference("securefix/rl_sec_strict", "securefix/sft_sec_strict", scale=100.0),
        scales=CHECKER_SCALES,
    ),
    Derived(
        "gain/sec_pts",
        difference("securefix/rl_sec_rate", "securefix/sft_sec_rate", scale=100.0),
        scales=CHECKER_SCALES,
    ),
    Derived("gain/codebleu_pts", difference("securefix/rl_codebleu", "securefix/sft_codebleu", scale=100.0)),
    Derived("gain/sem_pts", difference("securefix/rl_sem", "securefix/sft_sem", scale=100.0)),
    Derived(
        "gain/func_pts",
        difference("securefix/rl_func_rate", "securefix/sft_func_rate", scale=100.0),
        scales=CHECKER_SCALES,
    ),
    Derived("gain/exact_pts", difference("securefix/rl_exact", "securefix/sft_exact", scale=100.0)),
]

CLAIMS = [
    Claim(
        id="rl-raises-security-inclusion",
        statement="PPO with the CodeBLEU + semantic reward raises the security-measure inclusion rate "
        "(reference guard above the reference dangerous line, strict checker) over SFT-only by at "
        "least 10 points (held-out, paired per seed)",
        paper="RL repairs include security measures more often than the SFT baseline (abstract); "
        "threshold from the issue contract",
        metric="gain/sec_strict_pts",
        check=">= 10",
        agg="mean",
        scales=("cpu",),
    ),
    Claim(
        id="rl-raises-security-inclusion-shape",
        statement="the same with the lenient checker (the pattern's guard on whatever variable the "
        "generated dangerous operation uses)",
        paper="as above (secondary reading of inclusion)",
        metric="gain/sec_pts",
        check=">= 10",
        agg="mean",
        scales=("cpu",),
    ),
    Claim(
        id="rl-keeps-codebleu",
        statement="...without lowering CodeBLEU (corpus, held-out) by more than 1 point",
        paper="RL improves CodeBLEU over SFT (abstract); threshold from the issue contract",
        metric="gain/codebleu_pts",
        check=">= -1",
        agg="mean",
        scales=("cpu", "full"),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from securefix_rl.figures import curves_figure, metrics_figure

    return [metrics_figure(results, out_dir), curves_figure(results, out_dir)]


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )
