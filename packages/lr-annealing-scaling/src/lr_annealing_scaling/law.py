"""The scaling law with LR annealing and its fit (Tissue et al., abstract / Sec. 3).

    L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s)

Fit (the third-party reproduction zkshan2002/ScalingLaw ``_mtl_fit``; the paper's own procedure was not
read): minimise sum_j Huber_delta(log pred_j - log loss_j) with delta = 1e-3, by L-BFGS-B inside bounds,
from every start of a grid (L0 in {1, 2, 4}, A in {1, 2, 4}, alpha in {0.2, ..., 1.2}, C in {0.5, 1});
the best end point wins. Several curves (schedules) are fitted jointly by pooling their points.
``use_s2=False`` is the ablation L0 + A * S1^(-alpha) (C fixed at 0).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

HUBER_DELTA = 1e-3
GRID = {"l0": (1.0, 2.0, 4.0), "a": (1.0, 2.0, 4.0), "alpha": (0.2, 0.4, 0.6, 0.8, 1.0, 1.2), "c": (0.5, 1.0)}
BOUNDS = {"l0": (0.0, 10.0), "a": (0.0, 20.0), "alpha": (0.0, 10.0), "c": (0.0, 20.0)}
OUT_OF_DOMAIN = 1e10  # the objective's value where the law predicts a loss <= 0


@dataclass(frozen=True)
class LawParams:
    """L0 (irreducible-loss term), A and alpha (power law in the forward area), C (annealing gain)."""

    l0: float
    a: float
    alpha: float
    c: float = 0.0

    def predict(self, s1, s2) -> np.ndarray:
        s1 = np.asarray(s1, dtype=np.float64)
        if np.any(s1 <= 0):
            raise ValueError("S1 must be > 0 where the law is evaluated")
        return self.l0 + self.a * s1 ** (-self.alpha) - self.c * np.asarray(s2, dtype=np.float64)

    def as_dict(self) -> dict:
        return asdict(self)


def huber(x: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """Huber loss: x^2 / 2 for |x| <= delta, delta * (|x| - delta / 2) beyond."""
    ax = np.abs(x)
    return np.where(ax <= delta, 0.5 * x * x, delta * (ax - 0.5 * delta))


def law_objective(theta, s1, s2, log_loss, *, use_s2: bool = True, delta: float = HUBER_DELTA) -> float:
    """The fit's objective: sum_j Huber_delta(log pred_j - log loss_j), theta = (L0, A, alpha[, C]).

    A theta that predicts a loss <= 0 at any point is outside the law's domain (log of a non-positive
    loss): it gets the constant OUT_OF_DOMAIN, which has no gradient, so L-BFGS-B cannot leave such a start.
    """
    l0, a, alpha = theta[:3]
    pred = l0 + a * s1 ** (-alpha) - (theta[3] * s2 if use_s2 else 0.0)
    if np.any(pred <= 0):
        return OUT_OF_DOMAIN
    return float(huber(np.log(pred) - log_loss, delta).sum())


@dataclass(frozen=True)
class FitResult:
    params: LawParams
    objective: float
    n_points: int
    n_starts: int
    n_valid_starts: int  # starts whose objective is finite (< OUT_OF_DOMAIN); 0 means the fit never moved


def fit_law(s1, s2, loss, *, use_s2: bool = True, grid: dict | None = None, bounds: dict | None = None,
            delta: float = HUBER_DELTA) -> FitResult:  # fmt: skip
    """Fit the law to pooled points (S1_j, S2_j, loss_j) of one or more curves."""
    s1, s2, loss = (np.asarray(v, dtype=np.float64).ravel() for v in (s1, s2, loss))
    if not (s1.size == s2.size == loss.size):
        raise ValueError(f"s1, s2, loss must have one value per point, got {s1.size}, {s2.size}, {loss.size}")
    if s1.size < (4 if use_s2 else 3):
        raise ValueError(f"need at least {4 if use_s2 else 3} points to fit, got {s1.size}")
    if not (np.all(np.isfinite(s1)) and np.all(np.isfinite(s2)) and np.all(np.isfinite(loss))):
        raise ValueError("s1, s2 and loss must be finite")
    if np.any(s1 <= 0) or np.any(loss <= 0):
        raise ValueError("s1 and loss must be > 0 (the fit is on log loss and S1^-alpha)")
    grid = {**GRID, **(grid or {})}
    bounds = {**BOUNDS, **(bounds or {})}
    names = ["l0", "a", "alpha"] + (["c"] if use_s2 else [])
    log_loss = np.log(loss)

    def objective(theta: np.ndarray) -> float:
        return law_objective(theta, s1, s2, log_loss, use_s2=use_s2, delta=delta)

    best, n, n_valid = None, 0, 0
    for start in itertools.product(*(grid[k] for k in names)):
        x0 = np.array(start, dtype=np.float64)
        n_valid += objective(x0) < OUT_OF_DOMAIN  # a start predicting a loss <= 0 cannot move (see above)
        r = minimize(objective, x0, method="L-BFGS-B",
                     bounds=[bounds[k] for k in names], options={"maxiter": 10_000, "ftol": 1e-12, "gtol": 1e-9})  # fmt: skip
        n += 1
        if best is None or r.fun < best.fun:
            best = r
    p = dict(zip(names, (float(v) for v in best.x)))
    return FitResult(LawParams(**p), float(best.fun), int(s1.size), n, int(n_valid))


def mape(pred, obs) -> float:
    """Mean absolute percentage error as a fraction: mean |pred - obs| / obs."""
    pred, obs = np.asarray(pred, dtype=np.float64), np.asarray(obs, dtype=np.float64)
    if pred.shape != obs.shape or obs.size == 0:
        raise ValueError(f"pred and obs must have the same non-empty shape, got {pred.shape}, {obs.shape}")
    return float(np.mean(np.abs(pred - obs) / obs))
