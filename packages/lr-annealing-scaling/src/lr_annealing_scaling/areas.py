"""The forward area S1 and the annealing area S2 of an lr schedule (the paper's abstract and Sec. 3).

    S1(s) = sum_{i<=s} eta_i                                       (forward area)
    m_i   = lam * m_{i-1} + (eta_{i-1} - eta_i),   S2(s) = sum_{i<=s} m_i   (annealing area)

lam = 0.999 is the decay factor of the third-party reproduction (zkshan2002/ScalingLaw, ``MTL_LAMBDA``).
Both are computed PER OPTIMISER STEP; a caller that only has the loss at some steps indexes these arrays
at those steps afterwards. (Subsampling the lr first, as the third-party ``fit`` does with ``[::100]``,
turns lam into a per-100-steps factor and changes S2.)

Warm-up (this package's choice; the paper's treatment was not read): S1 counts every step, warm-up
included (the literal sum from i = 1). The momentum is held at 0 through the warm-up and starts at its
last step, so the RISING warm-up lr does not enter S2 as negative annealing. With ``warmup=0`` the first
step has m_1 = 0 (eta_0 := eta_1); the third-party code instead sets m_1 = eta_1, a constant offset to S2.
"""

from __future__ import annotations

import numpy as np

LAMBDA = 0.999


def annealing_areas(lr, lam: float = LAMBDA, warmup: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after every step of the per-step lr array ``lr`` (float64, same length)."""
    lr = np.asarray(lr, dtype=np.float64)
    if lr.ndim != 1 or lr.size == 0:
        raise ValueError(f"lr must be a non-empty 1-D per-step array, got shape {lr.shape}")
    if not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise ValueError("lr must be finite and >= 0")
    if not 0 <= lam < 1:
        raise ValueError(f"lam must be in [0, 1), got {lam}")
    if not 0 <= warmup < lr.size:
        raise ValueError(f"warmup must be in [0, {lr.size}), got {warmup}")
    s1 = np.cumsum(lr)
    m = np.zeros_like(lr)
    # the momentum recursion starts after the warm-up: steps <= warmup keep m = 0
    for i in range(max(warmup, 1), lr.size):
        m[i] = lam * m[i - 1] + (lr[i - 1] - lr[i])
    return s1, np.cumsum(m)
