"""Seed-level summaries: mean, spread and a bootstrap confidence interval of the mean."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy.stats.bootstrap), deterministic for a given seed.

    With fewer than two values, or all values equal, the interval collapses to the mean: there is
    no spread to resample. The percentile method is used rather than BCa because BCa is undefined
    for the tiny, often tied, samples that seed-level results give (3-5 seeds).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("bootstrap_ci needs a non-empty 1-D sequence")
    if not np.all(np.isfinite(x)):
        return (math.nan, math.nan)
    if x.size < 2 or np.all(x == x[0]):
        m = float(x.mean())
        return (m, m)
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_boot,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def summarize(values: Sequence[float], **kwargs) -> dict:
    """mean, sample std (ddof=1; 0 for one value), n and the bootstrap 95% CI of ``values``."""
    x = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(x, **kwargs)
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "n": int(x.size),
        "ci95": [lo, hi],
    }
