"""The RL loop shared by PACS and GRPO: identical rollouts, batch sizes, steps, optimiser and seeds;
only the loss differs.

One RL step (the verl/official structure, scaled down):
  1. draw ``prompts_per_step`` training prompts (a seeded permutation of the pool per epoch),
  2. ``xentlab.rl.rollout``: n samples each at temperature 1, verifiable rewards, old log-probs,
  3. split the groups into ``minibatches`` mini-batches (official: train batch 1,024 / PPO
     mini-batch 256 = 4) and take one optimiser step on each; the first mini-batch is on-policy
     (ratio 1), the later ones are slightly off-policy, where GRPO's clip and PACS's non-zero
     implicit reward come into play.

Optimiser: AdamW at a constant lr (verl's actor default: no warm-up, weight decay 0.01). Gradient
clipping follows each official script: PACS's actor overrides verl's optimiser step and never
clips (it only measures the norm); verl's GRPO clips the global norm at 1.0 (trl's default too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from xentlab.rl.grpo import GRPOConfig, group_advantages, grpo_loss
from xentlab.rl.rollout import rollout, token_logprobs


@dataclass(frozen=True)
class RLConfig:
    """method: "pacs" | "grpo". steps: rollout batches. prompts_per_step: prompts per rollout
    batch. n: samples per prompt. minibatches: optimiser steps per rollout batch. lr: AdamW lr.
    max_new_tokens / temperature: sampling. grad_clip: None for PACS (official), 1.0 for GRPO.
    beta / adv_estimator: PACS. epsilon / loss_type: GRPO (trl's defaults)."""

    method: str = "pacs"
    steps: int = 150
    prompts_per_step: int = 16
    n: int = 8
    minibatches: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.01
    max_new_tokens: int = 8
    temperature: float = 1.0
    grad_clip: float | None = None
    beta: float = 1.0
    adv_estimator: str = "rloo"
    epsilon: float = 0.2
    loss_type: str = "dapo"
    log_every: int = 5

    def __post_init__(self) -> None:
        if self.method not in ("pacs", "grpo"):
            raise ValueError(f"method must be 'pacs' or 'grpo', got {self.method!r}")
        if self.prompts_per_step % self.minibatches:
            raise ValueError(
                "prompts_per_step must be a multiple of minibatches (whole groups per mini-batch)"
            )


def method_loss(
    model: Any, ro: Any, cfg: RLConfig, num_items: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one mini-batch of whole groups under the current model."""
    from pacs.loss import PACSConfig, pacs_loss

    logp = token_logprobs(
        model, ro.input_ids, ro.attention_mask, ro.response_mask, temperature=ro.temperature
    )
    if cfg.method == "pacs":
        pcfg = PACSConfig(beta=cfg.beta, adv_estimator=cfg.adv_estimator)
        return pacs_loss(logp, ro.old_logprobs, ro.response_mask, ro.rewards, ro.n, pcfg)
    # GRPO advantages are computed per group, so a mini-batch of whole groups has the same ones as
    # the whole rollout batch; "dapo" divides by the token count of the whole generation batch.
    adv = group_advantages(ro.rewards, ro.n)
    gcfg = GRPOConfig(epsilon=cfg.epsilon, loss_type=cfg.loss_type)
    return grpo_loss(logp, ro.old_logprobs, adv, ro.response_mask, gcfg, num_items=num_items)


def train_rl(
    model: Any,
    tokenizer: Any,
    problems: list,
    cfg: RLConfig,
    *,
    seed: int,
    on_log: Any = None,
    progress: Any = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place; returns the per-step history (mean reward of each rollout batch)."""
    from pacs.task import prompts_of, reward_of
    from xentlab.train.loop import EpochSampler

    sampler = EpochSampler(len(problems), cfg.prompts_per_step, seed + 101, drop_last=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, float]] = []
    steps = range(cfg.steps)
    for step in progress(steps) if progress else steps:
        idx = sampler(step).tolist()
        batch_problems = [problems[i] for i in idx]
        ro = rollout(
            model,
            tokenizer,
            prompts_of(batch_problems),
            reward_of(batch_problems),
            n=cfg.n,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            seed=seed * 1_000_003 + step,
        )
        num_items = float(ro.response_mask.sum())
        per_mb = cfg.prompts_per_step // cfg.minibatches
        # the rollout batch's num_items spans all mini-batches; each optimiser step sees 1/minibatches
        # of it, so scale as trl does (normalizer * grad_accum / steps_per_generation with accum 1)
        model.train()
        losses, extras = [], {}
        for mb in range(cfg.minibatches):
            sub = ro.select(range(mb * per_mb, (mb + 1) * per_mb))
            loss, stats = method_loss(model, sub, cfg, num_items / cfg.minibatches)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite {cfg.method} loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
            for k, v in stats.items():
                extras[k] = extras.get(k, 0.0) + v / cfg.minibatches
        g = ro.grouped_rewards()
        row = {
            "step": step + 1,
            "reward": float(ro.rewards.mean()),
            "frac_mixed_groups": float(((g.min(1).values < 0.5) & (g.max(1).values > 0.5)).float().mean()),
            "loss": sum(losses) / len(losses),
            "response_len": float(ro.response_mask.sum(1).mean()),
            **extras,
        }
        history.append(row)
        if on_log and (cfg.log_every and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps)):
            on_log(row)
    model.eval()
    return history
