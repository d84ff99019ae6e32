"""Reproduce Label Supervised LLaMA Finetuning (LS-LLaMA / LS-unLLaMA, arXiv 2310.01208) on NER.

uv run --package ls-llama packages/ls-llama/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

cpu scale: a tiny Llama is pretrained as a causal LM on unlabeled sentences of each task, then LoRA +
label head finetuned with causal attention (LS-LLaMA) and without the causal mask (LS-unLLaMA) on
  * right: entity type given only by a trigger word AFTER the span (the mechanism's case);
  * left:  the mirror-image control, trigger BEFORE the span.
and, for claim (c), on an SST-5-like sentence task (seqclf): LS-LLaMA's sequence label head vs
generating the label word with the LM head (instruction tuning), same decoder, LoRA and steps.
The epoch is chosen on the validation split; test scores are read at that epoch (never selected on test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ls_llama.train import CPU_PEAK_LR

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Label Supervised LLaMA Finetuning",
    package="ls-llama",
    arxiv="2310.01208",
    code="https://github.com/4AI/LS-LLaMA",
)

LM = {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128, "max_positions": 64}
# trainer_defaults (second cpu run; fixed before it ran, README "Trainer defaults"): the optimiser the official
# scripts inherit from transformers' Trainer: lr decayed linearly to 0, grad-norm clip 1.0, no weight decay
# on bias/norm. The first cpu run used a constant lr without clipping (the fidelity audit's finding).
# lr CPU_PEAK_LR = 4e-3 (third cpu run; defined in ls_llama.train, also FinetuneConfig's default): re-selected
# under the Trainer defaults by scripts/select_lr.py on validation data of probe seed 100 from
# {5e-4, 1e-3, 2e-3, 4e-3} (rule in the README, written before the pilot ran); the first two runs used 2e-3,
# chosen under the constant lr.
FT = {"batch_size": 16, "lr": CPU_PEAK_LR, "weight_decay": 0.01, "lora_r": 12, "lora_alpha": 32, "lora_dropout": 0.1,
      "trainer_defaults": True}  # fmt: skip
# claim (c) budget, sized on seed 0's validation curve and CPU time before the claim was judged:
# 1500 sentences x 20 epochs, ~30 CPU-s per arm (~65 CPU-s per seed with pretraining)
SEQ_N_TRAIN, SEQ_EPOCHS = 1500, 20
# NER budget (every NER arm and task, right and left): 10 in the first cpu run; raised by 4 to 14 because
# LS-unLLaMA's validation F1 on the right task was still rising at the last epoch; raised by the same step to
# 18 (fifth cpu run) because the same rule, re-applied by scripts/check_epoch_budget.py to the fourth run's
# validation curves, still flagged it at 14 (+4.86 points). The lr was re-selected at 18 epochs before the
# rerun (README, "NER epoch budget 14 -> 18", written before it ran). No further raise in that session.
NER_EPOCHS = 18


def ner_unit(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One (task, seed): pretrain the tiny decoder once, then finetune each arm from it (paired arms)."""
    from ls_llama.data import make_task, task_config
    from ls_llama.train import FinetuneConfig, finetune, pretrain_lm

    from xentlab.models.tiny_lm import TinyLMConfig

    data = make_task(cfg["task"], task_config(**cfg["data"]), seed)
    lm_cfg = TinyLMConfig(vocab_size=data.vocab_size, **cfg["lm"])
    backbone, lm_losses = pretrain_lm(data, lm_cfg, cfg["pretrain_steps"], seed=seed)
    ctx.log(stage="pretrain", lm_loss_first=lm_losses[0], lm_loss_last=lm_losses[-1])
    out: dict = {"lm_loss_final": float(np.mean(lm_losses[-10:]))}
    ft = FinetuneConfig(epochs=cfg["epochs"], **cfg["ft"])
    for arm in cfg["arms"]:
        r = finetune(backbone, data, arm, ft, seed=seed, log=ctx.log)
        out[f"f1_{arm}"] = 100 * r["test_f1"]  # seqeval micro span-F1, in points
        out[f"val_f1_{arm}"] = 100 * r["val_f1"]
        out[f"best_epoch_{arm}"] = r["best_epoch"]
        out[f"val_curve_{arm}"] = [100 * v for v in r["val_curve"]]  # artifact
    out["gap_f1"] = out["f1_unmasked"] - out["f1_causal"]
    return out


def seqclf_unit(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Claim (c), one seed: pretrain the tiny decoder on the task's unlabeled sentences, then finetune
    LS-LLaMA's sequence label head and the LM-head label generation baseline from it (paired arms)."""
    from ls_llama.sentiment import make_sentiment, sentiment_config
    from ls_llama.seqclf import finetune_seqclf
    from ls_llama.train import FinetuneConfig, pretrain_lm

    from xentlab.models.tiny_lm import TinyLMConfig

    data = make_sentiment(sentiment_config(**cfg["data"]), seed)
    lm_cfg = TinyLMConfig(vocab_size=data.vocab_size, **cfg["lm"])
    backbone, lm_losses = pretrain_lm(data.tagging, lm_cfg, cfg["pretrain_steps"], seed=seed)
    ctx.log(stage="pretrain", lm_loss_first=lm_losses[0], lm_loss_last=lm_losses[-1])
    out: dict = {"lm_loss_final": float(np.mean(lm_losses[-10:]))}
    ft = FinetuneConfig(epochs=cfg["epochs"], **cfg["ft"])
    for arm in cfg["arms"]:
        r = finetune_seqclf(backbone, data, arm, ft, seed=seed, log=ctx.log)
        out[f"acc_{arm}"] = 100 * r["acc"]  # test accuracy at the best-validation epoch, in points
        out[f"macro_f1_{arm}"] = 100 * r["macro_f1"]
        out[f"val_acc_{arm}"] = 100 * r["val_acc"]
        out[f"best_epoch_{arm}"] = r["best_epoch"]
        out[f"val_curve_{arm}"] = [100 * v for v in r["val_curve"]]  # artifact
        if "valid_label_rate" in r:
            out[f"valid_label_rate_{arm}"] = 100 * r["valid_label_rate"]
    out["gap_acc"] = out["acc_label_head"] - out["acc_lm_generation"]
    out["gap_macro_f1"] = out["macro_f1_label_head"] - out["macro_f1_lm_generation"]
    return out


def _seqclf_configs() -> dict:
    def c(n_train, n_val, n_test, steps, epochs):
        return {
            "arms": ["label_head", "lm_generation"],
            "data": {"n_train": n_train, "n_val": n_val, "n_test": n_test},
            "lm": LM,
            "ft": FT,  # the NER finetuning budget, identical for both arms
            "pretrain_steps": steps,
            "epochs": epochs,
        }

    return {"smoke": c(48, 24, 24, 10, 1), "cpu": c(SEQ_N_TRAIN, 300, 600, 200, SEQ_EPOCHS), "full": None}


def _configs(task: str, arms: list[str]) -> dict:
    def c(n_train, n_val, n_test, steps, epochs):
        data = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
        return {
            "task": task,
            "arms": arms,
            "data": data,
            "lm": LM,
            "ft": FT,
            "pretrain_steps": steps,
            "epochs": epochs,
        }

    return {"smoke": c(64, 32, 32, 10, 1), "cpu": c(600, 200, 400, 200, NER_EPOCHS), "full": None}


def full_unit(cfg: dict, seed: int, ctx: RunContext) -> dict:
    from ls_llama.full import run_full

    return run_full(cfg, seed, ctx)


EXPERIMENTS = [
    # version "2": third cpu run, peak lr re-selected on validation (4e-3; README "Learning-rate re-selection");
    # "3" (right, left): fourth cpu run, each NER arm's dropout stream seeded from the unit seed (README,
    # "Fidelity audit, second reader (audit 2)"); seqclf already seeded its arms and keeps "2";
    # "4" (right, left): fifth cpu run, NER budget 14 -> 18 epochs (README, "NER epoch budget 14 -> 18")
    Experiment("right", ner_unit, _configs("right", ["causal", "unmasked", "unmasked_official"]), version="4"),
    Experiment("left", ner_unit, _configs("left", ["causal", "unmasked"]), version="4"),
    Experiment("seqclf", seqclf_unit, _seqclf_configs(), version="2"),
    Experiment(
        "conll03",
        full_unit,
        {
            "smoke": None,
            "cpu": None,
            # official unllama_token_clf.py hyperparameters; paths from the environment (see README)
            "full": {"model_path": None, "data_dir": None, "arms": ["causal", "unmasked"], "epochs": 10,
                     "batch_size": 8, "lr": 1e-4, "weight_decay": 0.01, "max_length": 64,
                     "lora_r": 12, "lora_alpha": 32, "lora_dropout": 0.1, "bf16": True},
        },
        version="2",  # 2: each arm's dropout stream seeded from the unit seed (never run; no results)
    ),
]  # fmt: skip

DERIVED: list[Derived] = []

CLAIMS = [
    Claim(
        id="unmasking-uses-right-context",
        statement="With the entity type given only by right context, LS-unLLaMA beats LS-LLaMA by >= 10 F1",
        paper="LS-unLLaMA reaches SOTA NER, well above LS-LLaMA (abstract, Tables 2-3); threshold from the notes",
        metric="right/gap_f1",
        check=">= 10",
        agg="mean",
        scales=("cpu",),
    ),
    Claim(
        id="left-control-gap-upper",
        statement="Left-context control: LS-unLLaMA - LS-LLaMA <= 2 F1 (the gain is specific to right context)",
        paper="control designed for this reproduction (notes claim b: |gap| <= 2)",
        metric="left/gap_f1",
        check="<= 2",
        agg="mean",
        scales=("cpu",),
    ),
    Claim(
        id="left-control-gap-lower",
        statement="Left-context control: LS-unLLaMA - LS-LLaMA >= -2 F1",
        paper="control designed for this reproduction (notes claim b: |gap| <= 2)",
        metric="left/gap_f1",
        check=">= -2",
        agg="mean",
        scales=("cpu",),
    ),
    Claim(
        id="label-head-vs-lm-generation",
        statement="SST-5-like sequence classification: LS-LLaMA's label head (bias-free score, last-token "
        "pooling) is at least as accurate as label-word generation with the LM head, same backbone and steps",
        paper="label supervision beats instruction tuning on classification; LS-LLaMA outperforms LLMs 10x its "
        "size (abstract); threshold from the notes, claim (c): >= 0 points (non-inferiority)",
        metric="seqclf/gap_acc",
        check=">= 0",
        agg="mean",
        scales=("cpu",),
    ),
]


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    arms = [
        ("causal", "LS-LLaMA (causal)"),
        ("unmasked", "LS-unLLaMA"),
        ("unmasked_official", "LS-unLLaMA, pads visible"),
    ]
    tasks = [t for t in ("right", "left") if t in results.per_seed]
    for k, (arm, label) in enumerate(arms):
        for ti, task in enumerate(tasks):
            key = f"{task}/f1_{arm}"
            if key not in results.metrics:
                continue
            vals = results.metrics[key]["per_seed"]
            vals = list(vals.values()) if isinstance(vals, dict) else list(vals)
            x = ti + (k - 1) * 0.25
            ax.bar(x, np.mean(vals), width=0.23, color=f"C{k}", alpha=0.6, label=label if ti == 0 else None)
            ax.scatter([x] * len(vals), vals, color="k", s=10, zorder=3)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(
        [{"right": "type given by RIGHT context", "left": "LEFT context (control)"}[t] for t in tasks]
    )
    ax.set_ylabel("test span-F1 (seqeval, %)")
    ax.set_ylim(0, 118)  # headroom for the legend
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax.set_title("LS-LLaMA vs LS-unLLaMA, tiny pretrained Llama + LoRA (dots: seeds)")
    paths = [save_figure(fig, out_dir / "f1_by_arm.png")]
    if "seqclf" in results.per_seed:
        paths.append(_seqclf_figure(results, out_dir))
    return paths


def _seqclf_figure(results, out_dir: Path) -> Path:
    """Claim (c): test accuracy per arm (dots: seeds) and the validation accuracy per epoch."""
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
    arms = [("label_head", "label head (LS-LLaMA)"), ("lm_generation", "LM-head label generation")]
    for k, (arm, label) in enumerate(arms):
        key = f"seqclf/acc_{arm}"
        if key not in results.metrics:
            continue
        vals = results.metrics[key]["per_seed"]
        vals = list(vals.values()) if isinstance(vals, dict) else list(vals)
        ax.bar(k, np.mean(vals), width=0.6, color=f"C{k}", alpha=0.6)
        ax.scatter([k] * len(vals), vals, color="k", s=10, zorder=3)
        curves = [r["artifacts"][f"val_curve_{arm}"] for r in results.per_seed["seqclf"].values()]
        bx.plot(np.arange(1, len(curves[0]) + 1), np.mean(curves, axis=0), color=f"C{k}", label=label)
    ax.axhline(20, color="gray", ls=":", lw=1)  # five classes: chance level of a uniform guess
    ax.set_xticks([0, 1])
    ax.set_xticklabels([a[1] for a in arms], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("SST-5-like task (dotted: 20% chance)", fontsize=9)
    bx.set_xlabel("epoch")
    bx.set_ylabel("validation accuracy (%), mean over seeds")
    bx.legend(fontsize=8)
    return save_figure(fig, out_dir / "seqclf_acc.png")


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2, 3], "full": [0, 1, 2]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )
