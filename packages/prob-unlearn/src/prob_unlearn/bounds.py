r"""Distribution-free bounds on the leakage distribution of one query (Sec. 4 of the paper).

For one forget query we draw n outputs from the model, score each in [0, 1] (ROUGE-L, or a 0/1
leak indicator) and bound properties of the score distribution with confidence 1 - alpha. These
are the formulas of the PyPI package ``conbo`` (0.1.1) that the official code uses; ``conbo`` pins
``statsmodels==0.14.4`` exactly, which would downgrade the workspace's statsmodels, so the same
math is written here with scipy (the tests check it against hand derivations and a literal,
loop-based transcription of conbo's documented formulas).

Arrays: ``samples`` is (n,) for one query or (R, n) for R queries (one row each); every function
works along the last axis.

* M_bin (binomial_bounds): Clopper-Pearson interval on P(leak) from k leaks in n draws,
  lower = Beta^{-1}(alpha/2; k, n-k+1), upper = Beta^{-1}(1-alpha/2; k+1, n-k) (0 / 1 at k = 0 / n).
* M_gen (cdf_bounds / survival_bounds): Dvoretzky-Kiefer-Wolfowitz band
  |F_n(x) - F(x)| <= eps = sqrt(log(2/alpha) / (2n)) for all x at once.
* M_mu (expectation_bounds): E[X] = int_0^1 (1 - F(x)) dx for X in [0, 1]; Riemann sums of the DKW
  band on a grid of ``steps`` points (Anderson 1969): upper = 1 - sum_i F_lower(t_i) h (left rule),
  lower = 1 - sum_i F_upper(t_{i+1}) h (right rule).
* M_sigma (variance_bounds / std_bounds): the CDF-band bound on the variance of Schuchardt et al.
  (ICLR 2023) as conbo implements it.
* One-sided use: pass 2 * alpha (conbo's note; the official notebook does so for both M_mu and
  M_sigma).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


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
    """Half-width of the DKW band: sqrt(log(2/alpha) / (2n))."""
    _check_alpha(alpha)
    return float(np.sqrt(np.log(2.0 / alpha) / (2.0 * n)))


def binomial_bounds(leaks: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact, conservative) interval on the success probability (M_bin)."""
    _check_alpha(alpha)
    x = _check_samples(leaks)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("binomial_bounds needs 0/1 outcomes")
    n = x.shape[-1]
    k = x.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return lower, upper


def cdf_bounds(samples: np.ndarray, x: np.ndarray, alpha: float = 0.01):
    """Empirical CDF at points ``x`` and its DKW band, clipped to [0, 1] (M_gen)."""
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
    """(sample mean, lower, upper) bounds on E[X] for X in [0, 1] (M_mu)."""
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
    """(sample std, lower, upper) bounds on the standard deviation (M_sigma): sqrt of the variance bounds."""
    var, lo, hi = variance_bounds(samples, alpha, steps)
    return np.sqrt(var), np.sqrt(lo), np.sqrt(np.maximum(hi, 0.0))


def ed_score(mu_upper: np.ndarray, sigma_upper: np.ndarray, k: float = 2.0) -> np.ndarray:
    """The ED score of the paper: upper bound on the mean plus k upper bounds on the std (k = 2)."""
    return np.asarray(mu_upper) + k * np.asarray(sigma_upper)
