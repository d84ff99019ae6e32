"""Learning-rate schedules, one lr per optimiser step (index i = 0 .. steps - 1 is step i + 1).

Every schedule shares the same linear warm-up (``warmup`` steps from peak/warmup to peak) and then
differs only after it, so that the runs of one seed are comparable step by step. All decays end at
``final_frac * peak`` (0.1x by default), the floor the research notes use for cosine.
"""

from __future__ import annotations

import numpy as np

SCHEDULES = ("constant", "cosine", "wsd", "step2", "restart")


def make_schedule(
    name: str, steps: int, peak: float, warmup: int, final_frac: float = 0.1, wsd_decay: float = 0.2
) -> np.ndarray:
    """The lr of every step (float64 array of length ``steps``).

    constant: peak after warm-up.
    cosine: cosine from peak (end of warm-up) to final_frac * peak at the last step.
    wsd: warm-up, stable at peak, then the last ``wsd_decay`` fraction of ALL steps decays linearly to
        final_frac * peak (warmup-stable-decay).
    step2: two step decays, to peak * sqrt(final_frac) at 50% and to peak * final_frac at 80% of the steps.
    restart: two cosine cycles after warm-up (each peak -> final_frac * peak, half the post-warm-up steps),
        the second restarting at peak without a new warm-up (SGDR-style warm restart).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {SCHEDULES}")
    if steps < 2 or not 0 <= warmup < steps:
        raise ValueError(f"need steps >= 2 and 0 <= warmup < steps, got steps={steps}, warmup={warmup}")
    if peak <= 0 or not 0 < final_frac <= 1 or not 0 < wsd_decay < 1:
        raise ValueError(
            f"need peak > 0, 0 < final_frac <= 1, 0 < wsd_decay < 1; got {peak}, {final_frac}, {wsd_decay}"
        )
    i = np.arange(steps, dtype=np.float64)
    lr = np.full(steps, peak, dtype=np.float64)
    lo = final_frac * peak
    post = i >= warmup
    n_post = steps - warmup
    # progress through the post-warm-up phase, 0 at its first step and 1 at the last step
    p = (i - warmup) / max(1, n_post - 1)
    if name == "cosine":
        lr = lo + (peak - lo) * 0.5 * (1 + np.cos(np.pi * p))
    elif name == "wsd":
        start = steps - int(round(wsd_decay * steps))  # first step of the linear decay
        q = (i - start + 1) / (steps - start)  # 1/n .. 1 over the decay steps
        lr = np.where(i >= start, peak - (peak - lo) * q, peak)
    elif name == "step2":
        lr = np.where(i >= int(0.5 * steps), peak * np.sqrt(final_frac), peak)
        lr = np.where(i >= int(0.8 * steps), lo, lr)
    elif name == "restart":
        half = n_post // 2
        k = i - warmup
        pc = np.where(k < half, k / max(1, half - 1), (k - half) / max(1, n_post - half - 1))
        lr = lo + (peak - lo) * 0.5 * (1 + np.cos(np.pi * pc))
    lr = np.where(post, lr, peak * (i + 1) / max(1, warmup))  # linear warm-up, the same for all
    return lr
