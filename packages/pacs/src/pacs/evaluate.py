"""Held-out evaluation: n samples per problem, and the unbiased pass@k (Chen et al. 2021) for every k
in ``ks`` (k <= n), overall and per difficulty level.

The samples are drawn as the official evaluation draws them: ``scripts/inference.sh`` runs
``src/inference.py`` with vLLM at temperature 0.6 and top-p 0.95 (protocol v2, see the README; the
config's "temperature" and "top_p"). ``xentlab.rl.rollout.sample_correct`` has no top-p, so the
samples come from ``xentlab.lm.generate.generate`` here, with sample_correct's batching, so that at
temperature 1 without top-p the draws are exactly sample_correct's (tested)."""

from __future__ import annotations

from typing import Any

import numpy as np

from xentlab.data.cache import source_digest
from xentlab.metrics.pass_at_k import mean_pass_at_k

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the SFT cache key (``pacs.task.sft_code``)"""

HELDOUT_STREAM = 10_007
VALIDATION_STREAM = 20_011


def sample_counts(
    model: Any,
    tokenizer: Any,
    problems: list,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float | None,
    seed: int,
) -> list[int]:
    """Number of correct completions among ``n`` samples of each problem, drawn at ``temperature``
    with nucleus ``top_p`` (None: no truncation)."""
    from pacs.task import prompts_of, reward_of
    from xentlab.lm import generate as lm_generate

    reward = reward_of(problems)
    gens = lm_generate.generate(
        model,
        tokenizer,
        prompts_of(problems),
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        num_return_sequences=n,
        batch_size=64,  # sample_correct's batching: the same draws at the same settings
        seed=seed,
    )
    counts = [0] * len(problems)
    for i, text in enumerate(gens.texts):
        counts[i // n] += int(float(reward(i // n, text)) >= 0.5)
    return counts


def evaluate_pass_at_k(
    model: Any, tokenizer: Any, problems: list, cfg: dict, *, seed: int, stream: int = HELDOUT_STREAM
) -> dict[str, Any]:
    """cfg: {"n_problems", "n_samples", "ks", "max_new_tokens", "temperature", "top_p"} ("top_p" is
    required, None for no nucleus truncation). The evaluation sampler has its own seed (``stream`` + the
    run seed), so it never shares draws with training; the validation split uses another stream than
    the held-out split."""
    probs = problems[: cfg["n_problems"]]
    n = cfg["n_samples"]
    counts = sample_counts(
        model,
        tokenizer,
        probs,
        n=n,
        max_new_tokens=cfg["max_new_tokens"],
        temperature=cfg["temperature"],
        top_p=cfg["top_p"],
        seed=stream + seed,
    )
    c = np.asarray(counts, dtype=np.int64)
    ns = np.full_like(c, n)
    out: dict[str, Any] = {f"pass@{k}": v for k, v in mean_pass_at_k(ns, c, cfg["ks"]).items()}
    levels = np.asarray([p.level for p in probs])
    for lv in sorted(set(levels.tolist())):
        sel = levels == lv
        out[f"pass@1_level{lv}"] = float(mean_pass_at_k(ns[sel], c[sel], [1])[1])
    out["pass_curve"] = {str(k): out[f"pass@{k}"] for k in cfg["ks"]}
    return out
