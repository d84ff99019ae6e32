"""The (experiment, seed) units of reproduce.py: the SFT start model, and RL from it with PACS or
GRPO. Every unit of a seed loads the same cached SFT weights (``pacs.task.get_sft``)."""

from __future__ import annotations

from typing import Any


def run_sft(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """Train (or load) the SFT model of this seed; its held-out pass@k is the RL starting point."""
    from pacs.task import get_sft
    from xentlab.models.tiny_lm import count_parameters

    sft = get_sft(cfg["sft"], seed, log=ctx.log)
    out = {k: v for k, v in sft.metrics.items()}
    out["n_params"] = count_parameters(sft.model)
    out["n_train_pool"] = len(sft.task.train)
    out["n_heldout"] = len(sft.task.heldout)
    return out


def run_rl(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """RL from this seed's SFT model with cfg["rl"]["method"], then the held-out pass@k."""
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
    out: dict[str, Any] = evaluate_pass_at_k(
        sft.model, sft.tokenizer, sft.task.heldout, cfg["sft"]["eval"], seed=seed
    )
    for k in list(out):
        if k.startswith("pass@") and k in sft.metrics:
            out[f"gain_{k}"] = out[k] - sft.metrics[k]
    out["train_reward_first10"] = sum(h["reward"] for h in history[:10]) / max(1, len(history[:10]))
    out["train_reward_last10"] = sum(h["reward"] for h in history[-10:]) / max(1, len(history[-10:]))
    out["reward_curve"] = [h["reward"] for h in history]
    out["mixed_curve"] = [h["frac_mixed_groups"] for h in history]
    return out
