r"""Distribution-free confidence bounds from n i.i.d. samples: a binomial proportion, the CDF, and the
mean / variance / standard deviation of a score supported on [0, 1].

These are the bounds of the PyPI package ``conbo`` (0.1.1), which the probabilistic-unlearning paper
(Scholten et al., ICLR 2025, arXiv 2410.03523) uses for its leakage metrics; ``conbo`` pins
``statsmodels==0.14.4`` exactly, so the same math is written here with scipy and numpy. Every function
is two-sided at level 1 - alpha; for a one-sided bound at level 1 - alpha pass ``2 * alpha`` and keep one
side (conbo's note).

Arrays: ``samples`` is (n,) for one population or (R, n) for R populations (one row each); every
function works along the last axis and returns arrays of shape () or (R,).

* ``binomial_bounds``: Clopper-Pearson (exact) interval on a success probability from k successes in
  n draws, lower = Beta^{-1}(alpha/2; k, n-k+1), upper = Beta^{-1}(1-alpha/2; k+1, n-k), with
  lower = 0 at k = 0 and upper = 1 at k = n (Clopper & Pearson 1934; statsmodels' ``method="beta"``,
  scipy's ``binomtest(...).proportion_ci(method="exact")``).
* ``dkw_epsilon`` / ``cdf_bounds`` / ``survival_bounds``: the Dvoretzky-Kiefer-Wolfowitz band
  P(sup_x |F_n(x) - F(x)| > eps) <= 2 exp(-2 n eps^2), i.e. eps = sqrt(log(2/alpha) / (2n)) holds for
  every x at once with probability >= 1 - alpha (Massart 1990's tight constant).
* ``expectation_bounds``: E[X] = int_0^1 (1 - F(x)) dx for X in [0, 1]; Riemann sums of the DKW band on
  a uniform grid of ``steps`` points (Anderson 1969): upper = 1 - sum_i F_lower(t_i) h (left rule on the
  lower CDF), lower = 1 - sum_i F_upper(t_{i+1}) h (right rule on the upper CDF).
* ``variance_bounds`` / ``std_bounds``: the CDF-band bound on the variance of Schuchardt et al.
  (ICLR 2023) as conbo implements it (see ``variance_bounds``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "binomial_bounds",
    "cdf_bounds",
    "dkw_epsilon",
    "expectation_bounds",
    "std_bounds",
    "survival_bounds",
    "variance_bounds",
]


def _check_samples(samples: np.ndarray, unit: bool = False) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] < 1:
        raise ValueError(f"samples must be (n,) or (R, n) with n >= 1, got shape {x.shape}")
    if unit and (x.min() < 0 or x.max() > 1):
        raise ValueError("scores must lie in [0, 1] (the bounds assume support [0, 1])")
    return x


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def dkw_epsilon(n: int, alpha: float) -> float:
    """Half-width of the DKW band at level 1 - alpha: sqrt(log(2/alpha) / (2n))."""
    _check_alpha(alpha)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return float(np.sqrt(np.log(2.0 / alpha) / (2.0 * n)))


def binomial_bounds(successes: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact, conservative) interval (lower, upper) on the success probability of 0/1
    outcomes ``successes`` (n,) or (R, n)."""
    _check_alpha(alpha)
    x = _check_samples(successes)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("binomial_bounds needs 0/1 outcomes")
    n = x.shape[-1]
    k = x.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return lower, upper


def cdf_bounds(samples: np.ndarray, x: np.ndarray, alpha: float = 0.01):
    """(empirical CDF at the points ``x``, DKW lower band, DKW upper band), clipped to [0, 1]."""
    s = _check_samples(samples)
    x = np.asarray(x, dtype=np.float64)
    eps = dkw_epsilon(s.shape[-1], alpha)
    cdf = (s[..., None, :] <= x[:, None]).mean(-1)  # (..., len(x))
    return cdf, np.maximum(cdf - eps, 0.0), np.minimum(cdf + eps, 1.0)


def survival_bounds(samples: np.ndarray, x: np.ndarray, alpha: float = 0.01):
    """P(X > x) and its DKW band: 1 - CDF, with the bounds swapped."""
    cdf, lo, hi = cdf_bounds(samples, x, alpha)
    return 1.0 - cdf, 1.0 - hi, 1.0 - lo


def expectation_bounds(samples: np.ndarray, alpha: float = 0.01, steps: int = 100):
    """(sample mean, lower, upper) bounds on E[X] for X in [0, 1]."""
    s = _check_samples(samples, unit=True)
    grid = np.linspace(0.0, 1.0, steps)
    _, lo, hi = cdf_bounds(s, grid, alpha)
    h = np.diff(grid)
    lower = 1.0 - (hi[..., 1:] * h).sum(-1)  # right rule on the upper CDF
    upper = 1.0 - (lo[..., :-1] * h).sum(-1)  # left rule on the lower CDF
    return s.mean(-1), lower, upper


def variance_bounds(samples: np.ndarray, alpha: float = 0.01, steps: int = 100):
    r"""(sample variance, lower, upper) bounds on Var[X] for X in [0, 1].

    With the grid t_0 < ... < t_{m-1} and [mu_lo, mu_hi] the expectation bounds, on each cell
    [t_i, t_{i+1}] the squared deviation (x - mu)^2 lies between eta_min_i and eta_max_i (the
    min / max of (t - mu)^2 over the cell's ends and mu's ends). Then
    Var <= eta_max_{last} - eta_max_0 F_lo(t_0) + sum_{i=1}^{m-2} (F_n(t_i) + s_i eps) d_i with
    d_i = eta_max_{i-1} - eta_max_i and s_i = +1 if d_i > 0 else -1 (the CDF value inside the band
    that maximises each term), and symmetrically for the lower bound with eta_min and -s_i.
    This is conbo's ``variance_bounds`` (Schuchardt et al., 2023); the lower bound is floored at 0.
    """
    s = _check_samples(samples, unit=True)
    _, mu_lo, mu_hi = expectation_bounds(s, alpha, steps)
    grid = np.linspace(0.0, 1.0, steps)
    a, b = grid[:-1], grid[1:]
    mu_lo, mu_hi = np.asarray(mu_lo)[..., None], np.asarray(mu_hi)[..., None]
    corners = np.stack([(a - mu_lo) ** 2, (a - mu_hi) ** 2, (b - mu_lo) ** 2, (b - mu_hi) ** 2])
    eta_max, eta_min = corners.max(0), corners.min(0)  # (..., steps - 1)
    cdf, lo, hi = cdf_bounds(s, grid, alpha)
    eps = dkw_epsilon(s.shape[-1], alpha)
    inner = cdf[..., 1:-1]

    d = eta_max[..., :-1] - eta_max[..., 1:]
    sign = np.where(d > 0, 1.0, -1.0)
    upper = ((inner + sign * eps) * d).sum(-1) + eta_max[..., -1] - eta_max[..., 0] * lo[..., 0]

    d = eta_min[..., :-1] - eta_min[..., 1:]
    sign = np.where(d > 0, 1.0, -1.0)
    lower = ((inner - sign * eps) * d).sum(-1) + eta_min[..., -1] - eta_min[..., 0] * hi[..., 0]
    lower = np.maximum(lower, 0.0)

    var = np.maximum((s**2).mean(-1) - s.mean(-1) ** 2, 0.0)
    return var, lower, upper


def std_bounds(samples: np.ndarray, alpha: float = 0.01, steps: int = 100):
    """(sample std, lower, upper) bounds on the standard deviation: square roots of the variance bounds."""
    var, lo, hi = variance_bounds(samples, alpha, steps)
    return np.sqrt(var), np.sqrt(lo), np.sqrt(np.maximum(hi, 0.0))
