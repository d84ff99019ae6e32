"""Scoring generations with the programmatic judge: mean reward and win rate against the SFT model.

Win rate (the paper's GPT-4 win rate, here judged by ``spo.task.reward``): on each held-out prompt
the method's response wins (1) if its reward is higher than the SFT model's, ties (0.5) if equal,
loses (0) otherwise; the win rate is the mean over prompts (ties split, as in AlpacaEval's
win rate with ties counted half).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def score(
    model: Any, tokenizer: Any, entities: list, *, max_new_tokens: int, temperature: float, seed: int
) -> dict:
    """Rewards of the greedy and of one temperature-``temperature`` sample per prompt."""
    from spo.task import reward
    from xentlab.data.tokenizer import chat_prompt
    from xentlab.lm.generate import generate

    prompts = [chat_prompt(e.prompt_question) for e in entities]
    greedy = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    sampled = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        seed=seed,
    )
    return {
        "greedy": np.array([reward(t, e) for t, e in zip(greedy.texts, entities, strict=True)], dtype=float),
        "sampled": np.array(
            [reward(t, e) for t, e in zip(sampled.texts, entities, strict=True)], dtype=float
        ),
        "examples": [t.strip() for t in greedy.texts[:3]],
    }


def win_rate(rewards: np.ndarray, baseline: np.ndarray) -> float:
    """Mean over prompts of 1 (higher reward), 0.5 (tie), 0 (lower)."""
    rewards, baseline = np.asarray(rewards, float), np.asarray(baseline, float)
    if rewards.shape != baseline.shape or rewards.ndim != 1 or rewards.size == 0:
        raise ValueError(f"need two equal, non-empty 1-d arrays, got {rewards.shape} and {baseline.shape}")
    return float(np.mean((rewards > baseline) + 0.5 * (rewards == baseline)))
