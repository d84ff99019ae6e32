"""Learning-rate schedules written as plain functions of the step (set ``group["lr"]`` each step)."""

from __future__ import annotations

import math

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


def warmup_cosine_lr(step: int, n_steps: int, *, lr: float, warmup: float, final_lr_frac: float) -> float:
    """Linear warm-up over the first ``warmup`` fraction of ``n_steps`` (at least one step), then a
    half-cosine from ``lr`` down to ``lr * final_lr_frac`` at the last step, used by the scaling
    packages. Kaplan et al. 2020 warm up and decay with a cosine to zero [recalled, not re-read here];
    that Henighan et al. 2020 use the same is [unverified]; each package states its ``final_lr_frac``."""
    warm = max(1, int(round(warmup * n_steps)))
    if step < warm:
        return lr * (step + 1) / warm
    p = (step - warm) / max(1, n_steps - warm)
    return lr * (final_lr_frac + (1 - final_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))
