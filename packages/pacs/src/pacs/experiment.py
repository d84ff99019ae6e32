"""The (experiment, seed) units of reproduce.py: the SFT start model, and RL from it with PACS or
GRPO at one learning rate of the grid. Every unit of a seed loads the same cached SFT weights
(``pacs.task.get_sft``). Each unit reports the validation pass@1 (``val_pass@1``, what the lr
selection reads; ``pacs.select``) and the held-out metrics (what the claims read, for the
selected lr only)."""

from __future__ import annotations

from typing import Any


def run_sft(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """Train (or load) the SFT model of this seed; its held-out pass@k is the RL starting point."""
    from pacs.task import get_sft
    from xentlab.models.tiny_lm import count_parameters

    sft = get_sft(cfg["sft"], seed, log=ctx.log)
    out = {k: v for k, v in sft.metrics.items()}
    if "val" in cfg:
        out.update(evaluate_validation(sft.model, sft.tokenizer, cfg, seed))
    out["n_params"] = count_parameters(sft.model)
    out["n_train_pool"] = len(sft.task.train)
    out["n_heldout"] = len(sft.task.heldout)
    return out


def evaluate_validation(model: Any, tokenizer: Any, cfg: dict, seed: int) -> dict[str, float]:
    """pass@1 on the validation split (cfg["val"]: {"n_val", "eval"}), as ``val_pass@1``."""
    from pacs.evaluate import VALIDATION_STREAM, evaluate_pass_at_k
    from pacs.task import build_validation

    problems = build_validation(cfg["sft"]["task"], cfg["val"]["n_val"])
    out = evaluate_pass_at_k(
        model, tokenizer, problems, cfg["val"]["eval"], seed=seed, stream=VALIDATION_STREAM
    )
    return {f"val_pass@{k}": out[f"pass@{k}"] for k in cfg["val"]["eval"]["ks"]}


def run_rl(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """RL from this seed's SFT model with cfg["rl"]["method"] at cfg["rl"]["lr"], then the
    validation pass@1 and the held-out pass@k."""
    from pacs.evaluate import evaluate_pass_at_k
    from pacs.task import get_sft
    from pacs.train import RLConfig, train_rl

    sft = get_sft(cfg["sft"], seed, log=None)
    rl = RLConfig(**cfg["rl"])
    history = train_rl(
        sft.model,
        sft.tokenizer,
        sft.task.train,
        rl,
        seed=seed,
        on_log=lambda row: ctx.log(**row),
        progress=lambda it: ctx.progress(it, desc=rl.method),
    )
    out: dict[str, Any] = evaluate_validation(sft.model, sft.tokenizer, cfg, seed) if "val" in cfg else {}
    out.update(evaluate_pass_at_k(sft.model, sft.tokenizer, sft.task.heldout, cfg["sft"]["eval"], seed=seed))
    for k in list(out):
        if k.startswith("pass@") and k in sft.metrics:
            out[f"gain_{k}"] = out[k] - sft.metrics[k]
    out["train_reward_first10"] = sum(h["reward"] for h in history[:10]) / max(1, len(history[:10]))
    out["train_reward_last10"] = sum(h["reward"] for h in history[-10:]) / max(1, len(history[-10:]))
    out["reward_curve"] = [h["reward"] for h in history]
    out["mixed_curve"] = [h["frac_mixed_groups"] for h in history]
    return out
