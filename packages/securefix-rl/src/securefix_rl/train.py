"""The RL stage of the paper (Sec. 3): PPO on the SFT policy with the hybrid reward and a KL
penalty to the frozen SFT reference (``xentlab.rl.ppo``, a PPO-lite: a Monte-Carlo value baseline,
the mean return of the prompt's samples or of the batch, no learned critic).

One RL step:
  1. draw ``prompts_per_step`` training functions (a seeded permutation of the train split),
  2. ``xentlab.rl.rollout``: ``n`` sampled repairs each at ``temperature``, old log-probs,
  3. the reward of each repair (``reward.hybrid_rewards``: w_syn CodeBLEU + w_sem Sem against the
     reference fix; or the labelled checker ablation), the reference log-probs, the KL-penalised
     returns and the advantages of the whole rollout batch (return minus the baseline, whitened
     as trl's PPOTrainer does: by the advantages' own batch mean and std, ``ppo_advantages``),
  4. ``ppo_epochs`` passes over ``minibatches`` mini-batches, one AdamW step each (clip 1.0).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from securefix_rl.lang import Pair


@dataclass(frozen=True)
class RLConfig:
    """steps: rollout batches. prompts_per_step / n: functions per batch and samples per function.
    minibatches / ppo_epochs: optimiser steps per batch = minibatches * ppo_epochs. lr: AdamW.
    clip / beta / whiten: PPO-lite (``xentlab.rl.ppo.PPOConfig``). baseline: "prompt" (mean return of
    the prompt's n samples, standing in for the critic's V(prompt)) or "batch". w_syn / w_sem: reward weights.
    reward: "hybrid" (the paper's) or "checker" (ablation: the security checker as the reward)."""

    steps: int = 30
    prompts_per_step: int = 16
    n: int = 4
    minibatches: int = 2
    ppo_epochs: int = 1
    lr: float = 3e-4
    clip: float = 0.2
    beta: float = 0.05
    whiten: bool = True
    baseline: str = "prompt"
    w_syn: float = 0.5
    w_sem: float = 0.5
    reward: str = "hybrid"
    temperature: float = 1.0
    max_new_tokens: int = 72
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.baseline not in ("prompt", "batch"):
            raise ValueError(f"baseline must be 'prompt' or 'batch', got {self.baseline!r}")
        if self.reward not in ("hybrid", "checker"):
            raise ValueError(f"reward must be 'hybrid' or 'checker', got {self.reward!r}")
        if (self.prompts_per_step * self.n) % self.minibatches:
            raise ValueError("prompts_per_step * n must be a multiple of minibatches")


def _rows(ro: Any, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    width = int(ro.attention_mask[rows].sum(1).max())
    return {
        "input_ids": ro.input_ids[rows, :width],
        "attention_mask": ro.attention_mask[rows, :width],
        "response_mask": ro.response_mask[rows, :width],
        "old": ro.old_logprobs[rows, :width],
    }


def train_rl(
    model: Any,
    tok: Any,
    train: list[Pair],
    cfg: RLConfig,
    *,
    sem: Any,
    seed: int,
    on_log: Any = None,
    prompt_fn: Any = None,
    ref: Any = None,
    lang: str = "python",
    checker: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place; ``sem`` is the frozen-SFT semantic scorer, whose model is also the
    KL reference unless ``ref`` is given. Returns the per-step history.

    The keywords serve ``--scale full`` (``full.py``; the defaults are the cpu task's): ``prompt_fn``
    builds the prompt of a pair (default ``task.prompt_text``), ``ref`` is the KL reference model,
    ``lang`` CodeBLEU's grammar, and ``checker=False`` drops the synthetic-language security monitor."""
    from securefix_rl.reward import checker_rewards, hybrid_rewards
    from securefix_rl.task import prompt_text
    from xentlab.rl.ppo import PPOConfig, kl_penalised_returns, ppo_advantages, ppo_loss
    from xentlab.rl.rollout import rollout, token_logprobs

    if prompt_fn is None:
        prompt_fn = prompt_text
    if ref is None:
        ref = sem.model if sem is not None else copy.deepcopy(model).eval()
    pcfg = PPOConfig(clip=cfg.clip, beta=cfg.beta, whiten=cfg.whiten)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 101)
    order = torch.randperm(len(train), generator=gen).tolist()
    history: list[dict[str, float]] = []
    for step in range(cfg.steps):
        start = (step * cfg.prompts_per_step) % max(1, len(train) - cfg.prompts_per_step)
        batch = [train[i] for i in order[start : start + cfg.prompts_per_step]]
        ro = rollout(
            model,
            tok,
            [prompt_fn(p) for p in batch],
            lambda i, t: 0.0,  # scored below in one batch (the semantic term embeds all at once)
            n=cfg.n,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            seed=seed * 1_000_003 + step,
        )
        pairs = [batch[i // cfg.n] for i in range(len(ro.texts))]
        if cfg.reward == "hybrid":
            r, syn, sm = hybrid_rewards(ro.texts, pairs, sem, w_syn=cfg.w_syn, w_sem=cfg.w_sem, lang=lang)
        else:
            r = checker_rewards(ro.texts, pairs)
            syn, sm = r, r
        rewards = torch.tensor(r, dtype=torch.float32)
        with torch.no_grad():
            # the reference scores the sampled tokens at the sampling temperature, as the policy does
            ref_lp = token_logprobs(
                ref, ro.input_ids, ro.attention_mask, ro.response_mask, temperature=ro.temperature
            )
        returns, kl = kl_penalised_returns(rewards, ro.old_logprobs, ref_lp, ro.response_mask, cfg.beta)
        adv = ppo_advantages(
            returns, whiten=cfg.whiten, group_size=cfg.n if cfg.baseline == "prompt" else None
        )
        model.train()
        b = len(ro.texts)
        per = b // cfg.minibatches
        stats_sum: dict[str, float] = {}
        for _epoch in range(cfg.ppo_epochs):
            perm = torch.randperm(b, generator=gen)
            for mb in range(cfg.minibatches):
                rows = perm[mb * per : (mb + 1) * per]
                sub = _rows(ro, rows)
                logp = token_logprobs(
                    model,
                    sub["input_ids"],
                    sub["attention_mask"],
                    sub["response_mask"],
                    temperature=ro.temperature,
                )
                loss, stats = ppo_loss(logp, sub["old"], adv[rows], sub["response_mask"], pcfg)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite PPO loss at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                for k, v in stats.items():
                    stats_sum[k] = stats_sum.get(k, 0.0) + v / (cfg.minibatches * cfg.ppo_epochs)
        model.eval()
        from securefix_rl.checker import has_guard

        row = {
            "step": step + 1,
            "reward": float(rewards.mean()),
            "codebleu_term": sum(syn) / len(syn),
            "sem_term": sum(sm) / len(sm),
            "kl": float(kl.mean()),
            **stats_sum,
        }
        if checker:  # monitoring only; the checker knows the synthetic language's patterns alone
            from securefix_rl.reward import guard_gap

            guarded = [has_guard(t, p) for t, p in zip(ro.texts, pairs)]
            row["sample_sec_rate"] = sum(guarded) / b
            # how much the reward separates guarded from unguarded samples (None: one group empty)
            row["reward_gap_guard"] = guard_gap(r, guarded)
        history.append(row)
        if on_log:
            on_log(row)
    return history
