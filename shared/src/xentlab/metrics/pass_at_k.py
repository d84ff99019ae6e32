"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on
Code", arXiv 2107.03374, Sec. 2.1 and Fig. 3).

With n samples of a problem of which c are correct, the probability that k samples drawn without
replacement contain at least one correct one is

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

The product form (the paper's numpy snippet) never forms the huge binomials. When n - c < k every
draw of k contains a correct sample and pass@k = 1.

``pass_at_n_exact`` is the exact counterpart when the probability p of a correct answer is known
(e.g. the model's probability of a canonical answer string): N independent samples contain a
correct one with probability 1 - (1 - p)^N. The unbiased estimator above, averaged over draws of n
samples, has exactly this expectation for every k <= n.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int | Sequence[int] | np.ndarray, c: int | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Per-problem unbiased pass@k (float64 array of the broadcast shape of n and c).

    n: samples per problem; c: correct samples per problem; k: 1 <= k <= n.
    """
    n_arr = np.asarray(n)
    c_arr = np.asarray(c)
    if not (np.issubdtype(n_arr.dtype, np.integer) and np.issubdtype(c_arr.dtype, np.integer)):
        raise TypeError("n and c must be integers")
    n_arr, c_arr = np.broadcast_arrays(n_arr.astype(np.int64), c_arr.astype(np.int64))
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if np.any(c_arr < 0):
        raise ValueError("c (correct samples) must be >= 0")
    if np.any(c_arr > n_arr):
        bad = int(np.argmax(c_arr > n_arr))
        raise ValueError(f"c > n for problem {bad}: c={int(c_arr.flat[bad])}, n={int(n_arr.flat[bad])}")
    if np.any(k > n_arr):
        raise ValueError(f"k={k} exceeds the number of samples n={int(n_arr.min())}")
    out = np.ones(n_arr.shape, dtype=np.float64)
    flat_n, flat_c, flat_o = n_arr.reshape(-1), c_arr.reshape(-1), out.reshape(-1)
    for j in range(flat_n.size):
        n_j, c_j = int(flat_n[j]), int(flat_c[j])
        if n_j - c_j < k:
            continue  # every k-subset holds a correct sample
        i = np.arange(n_j - c_j + 1, n_j + 1, dtype=np.float64)
        flat_o[j] = 1.0 - np.prod(1.0 - k / i)
    return out


def mean_pass_at_k(
    n: Sequence[int] | np.ndarray, c: Sequence[int] | np.ndarray, ks: Sequence[int]
) -> dict[int, float]:
    """Mean over problems of pass@k, for every k in ``ks``."""
    return {int(k): float(np.mean(pass_at_k(n, c, k))) for k in ks}


def pass_at_n_exact(p: float | Sequence[float] | np.ndarray, n: int, *, log_prob: bool = False) -> np.ndarray:
    """Per-problem exact pass@n = 1 - (1 - p)^n (float64 array of p's shape).

    p: the per-sample probability of a correct answer, in [0, 1]; with ``log_prob=True``, log p
    (<= 0), which keeps 1 - p exact when p is close to 1 (log p = -1e-12 gives 1 - p = 1e-12, which
    1 - exp(log p) would round). Computed as -expm1(n * log(1 - p)) so that p << 1/n does not cancel
    to 0.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    x = np.asarray(p, dtype=np.float64)
    if np.any(np.isnan(x)):
        raise ValueError("p contains NaN")
    if log_prob:
        if np.any(x > 0):
            raise ValueError("log p must be <= 0")
        with np.errstate(divide="ignore"):  # log(1 - p) = -inf at p = 1
            # log(1 - e^s): log(-expm1(s)) near s = 0, log1p(-exp(s)) below -ln 2
            log_q = np.where(x > -np.log(2), np.log(-np.expm1(np.minimum(x, -1e-300))), np.log1p(-np.exp(x)))
            log_q = np.where(x == 0, -np.inf, log_q)
    else:
        if np.any((x < 0) | (x > 1)):
            raise ValueError("p must be in [0, 1]")
        with np.errstate(divide="ignore"):
            log_q = np.log1p(-x)
    return -np.expm1(int(n) * log_q)
