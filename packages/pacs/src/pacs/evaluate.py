"""Held-out evaluation: n samples per problem at temperature 1, and the unbiased pass@k
(Chen et al. 2021) for every k in ``ks`` (k <= n), overall and per difficulty level."""

from __future__ import annotations

from typing import Any

import numpy as np

from xentlab.data.cache import source_digest
from xentlab.metrics.pass_at_k import mean_pass_at_k

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the SFT cache key (``pacs.task.sft_code``)"""

HELDOUT_STREAM = 10_007
VALIDATION_STREAM = 20_011


def evaluate_pass_at_k(
    model: Any, tokenizer: Any, problems: list, cfg: dict, *, seed: int, stream: int = HELDOUT_STREAM
) -> dict[str, Any]:
    """cfg: {"n_problems", "n_samples", "ks", "max_new_tokens", "temperature"}. The evaluation
    sampler has its own seed (``stream`` + the run seed), so it never shares draws with training;
    the validation split uses another stream than the held-out split."""
    from pacs.task import prompts_of, reward_of
    from xentlab.rl.rollout import sample_correct

    probs = problems[: cfg["n_problems"]]
    n = cfg["n_samples"]
    counts = sample_correct(
        model,
        tokenizer,
        prompts_of(probs),
        reward_of(probs),
        n=n,
        max_new_tokens=cfg["max_new_tokens"],
        temperature=cfg["temperature"],
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
