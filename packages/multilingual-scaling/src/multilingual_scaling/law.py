"""The multilingual scaling law and its optimal sampling ratios (He et al. 2024, §3-§4).

Law (the paper's joint form):

    L_i(N, D, p_i) = (E_i + A_i / N^alpha_i + B_i / D^beta_i) * p_i^(-gamma_i)

family i's test loss depends on its own sampling ratio p_i only, through p_i^-gamma_i, and gamma_i does
not depend on N or D. At a fixed model size N and token budget D the bracket is one constant K_i, so

    L_i(p_i) = K_i * p_i^(-gamma_i),     ln L_i = ln K_i - gamma_i ln p_i,

a straight line in (ln p, ln L): gamma_i is fitted per size with xentlab.scaling.fit_power_law (least
squares in log-log space). K_i is the predicted loss of family i trained alone (p_i = 1).

Optimal ratios (§4): p* = argmin_{p in simplex} sum_i c_i p_i^(-gamma_i), with c_i = w_i K_i / R_i for
weights w_i and a per-family normaliser R_i (R_i = 1: the raw weighted loss). Each term is convex and
decreasing in p_i (c_i, gamma_i > 0), so the KKT conditions with multiplier mu are necessary and
sufficient:

    d/dp_i [c_i p_i^-gamma_i] = -c_i gamma_i p_i^(-gamma_i - 1) = -mu
    =>  p_i(mu) = (c_i gamma_i / mu)^(1 / (gamma_i + 1)),

every p_i(mu) is decreasing in mu, so sum_i p_i(mu) = 1 has one root, found by bisection on ln mu.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from xentlab.scaling import fit_power_law


@dataclass(frozen=True)
class RatioFit:
    """L(p) = k * p^-gamma fitted to n_points (p, L) pairs of one family at one model size."""

    k: float
    gamma: float
    r2: float  # on ln L
    n_points: int

    def predict(self, p) -> np.ndarray | float:
        return predict_loss(self.k, self.gamma, p)


def predict_loss(k: float, gamma: float, p):
    """K * p^-gamma (the law at fixed N, D)."""
    pa = np.asarray(p, dtype=np.float64)
    if np.any(pa <= 0):
        raise ValueError("sampling ratios must be > 0 for the law (p^-gamma diverges at 0)")
    out = k * pa ** (-gamma)
    return float(out) if np.ndim(p) == 0 else out


def fit_ratio_law(p, loss) -> RatioFit:
    """Fit L = K p^-gamma to one family's (sampling ratio, test loss) points (>= 2 distinct ratios)."""
    pa = np.asarray(p, dtype=np.float64)
    if np.any(pa <= 0) or np.any(pa > 1):
        raise ValueError(f"sampling ratios must be in (0, 1], got {pa.tolist()}")
    f = fit_power_law(pa, loss)  # y = a x^beta  ->  K = a, gamma = -beta
    return RatioFit(k=f.a, gamma=-f.beta, r2=f.r2, n_points=f.n_points)


def mixture_objective(p, c, gamma) -> float:
    """sum_i c_i p_i^-gamma_i (the weighted, normalised predicted loss of the mixture p)."""
    p, c, g = (np.asarray(a, dtype=np.float64) for a in (p, c, gamma))
    if np.any(p <= 0):
        return math.inf
    return float((c * p ** (-g)).sum())


def _check_cg(c, gamma) -> tuple[np.ndarray, np.ndarray]:
    c, g = np.asarray(c, dtype=np.float64), np.asarray(gamma, dtype=np.float64)
    if c.ndim != 1 or c.shape != g.shape or c.size < 1:
        raise ValueError(f"c and gamma must be 1-D of the same length, got {c.shape}, {g.shape}")
    if np.any(c <= 0) or np.any(g <= 0) or not np.all(np.isfinite(c)) or not np.all(np.isfinite(g)):
        raise ValueError(
            f"c and gamma must be finite and > 0 (a family whose loss does not fall with p has no "
            f"interior optimum), got c={c.tolist()}, gamma={g.tolist()}"
        )
    return c, g


def optimal_ratios(c, gamma, tol: float = 1e-13, max_iter: int = 400) -> np.ndarray:
    """p* = argmin_{p in simplex} sum_i c_i p_i^-gamma_i by bisection on the Lagrange multiplier (see the
    module docstring). Returns p* (sums to 1 within tol)."""
    c, g = _check_cg(c, gamma)

    def ratios(log_mu: float) -> np.ndarray:
        # p_i = (c_i g_i / mu)^(1/(g_i+1)) in logs, for range safety
        return np.exp((np.log(c * g) - log_mu) / (g + 1.0))

    lo, hi = -1.0, 1.0  # bracket ln mu: sum p(lo) >= 1 >= sum p(hi)
    while ratios(lo).sum() < 1:
        lo -= 2 * (hi - lo)
    while ratios(hi).sum() > 1:
        hi += 2 * (hi - lo)
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        s = ratios(mid).sum()
        if abs(s - 1) <= tol:
            break
        lo, hi = (mid, hi) if s > 1 else (lo, mid)
    p = ratios(mid)
    return p / p.sum()


def grid_optimum(c, gamma, step: float = 0.005) -> np.ndarray:
    """Brute-force argmin of the objective over the simplex grid {p : p_i in step * N, sum 1} (tests)."""
    c, g = _check_cg(c, gamma)
    n = int(round(1 / step))
    best, arg = math.inf, None
    for head in itertools.product(range(1, n), repeat=len(c) - 1):
        last = n - sum(head)
        if last < 1:
            continue
        p = np.array([*head, last], dtype=np.float64) / n
        v = mixture_objective(p, c, g)
        if v < best:
            best, arg = v, p
    return arg
