"""The bivariate (encoder/decoder) scaling law of Ghorbani et al. (2022, arXiv 2109.07740, their Eq. 2):

    L(N_e, N_d) = alpha * (Nbar_e / N_e)^p_e * (Nbar_d / N_d)^p_d + L_inf

N_e, N_d: encoder and decoder parameter counts; Nbar_e, Nbar_d: fixed normalisers (the base model's
sizes, so that alpha is the base model's reducible loss); p_e, p_d: separate exponents; L_inf: the
irreducible loss. The paper fits it JOINTLY on encoder-scaling runs (N_d fixed) and decoder-scaling
runs (N_e fixed), then checks it on runs that scale both.

Consequences used by the packages (derivations in the functions):

* at a fixed total N = N_e + N_d the loss is smallest at N_e / N_d = p_e / p_d (``optimal_ratio``);
* scaling both sides by the same factor k multiplies the reducible loss by k^-(p_e + p_d).

``fit_univariate`` fits the same law in the total size N only, L(N) = alpha (Nbar/N)^p + L_inf (the
power-law-plus-constant of ``power_law`` reparametrised around a normaliser, with the same sign-free
exponent and fitting procedure), the baseline for "total parameters alone are not sufficient".

Fitting. Parameters (ln alpha, p_e, p_d, L_inf), least squares on the loss itself (the residuals are in
nats, the paper's R^2 is the fraction of the variance of L explained). The exponents are bounded to
[-p_max, p_max], NOT to be positive: a loss that rises with one side's size then shows as a negative
exponent instead of a fit stuck at a bound. L_inf is in [0, min L) (alpha > 0 makes L > L_inf).
Starting points come from profiling L_inf: for a fixed L_inf,
ln(L - L_inf) = ln alpha + p_e ln(Nbar_e/N_e) + p_d ln(Nbar_d/N_d) is linear in the three others, so a
linear least-squares solve gives them; the best few L_inf of a grid seed scipy's bounded
trust-region least squares, and the lowest SSE wins.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BivariateFit:
    """L(N_e, N_d) = alpha (ne_bar/N_e)^p_e (nd_bar/N_d)^p_d + l_inf, fitted to n_points points."""

    alpha: float
    p_e: float
    p_d: float
    l_inf: float
    ne_bar: float
    nd_bar: float
    r2: float  # 1 - SS_res / SS_tot on L
    rmse: float  # root-mean-square residual of L (nats)
    n_points: int

    def predict(self, n_e, n_d) -> np.ndarray | float:
        """L at (n_e, n_d) (scalars in, scalar out; arrays broadcast)."""
        ne = np.asarray(n_e, dtype=np.float64)
        nd = np.asarray(n_d, dtype=np.float64)
        y = self.l_inf + self.alpha * np.exp(
            self.p_e * np.log(self.ne_bar / ne) + self.p_d * np.log(self.nd_bar / nd)
        )
        return float(y) if np.ndim(y) == 0 else y

    def optimal_ratio(self) -> float:
        """N_e / N_d that minimises L at a fixed total N = N_e + N_d (NaN unless p_e, p_d > 0).

        Minimise ln(L - L_inf) = const - p_e ln N_e - p_d ln N_d subject to N_e + N_d = N: the Lagrange
        condition p_e / N_e = p_d / N_d gives N_e / N_d = p_e / p_d (a minimum when both are > 0)."""
        return self.p_e / self.p_d if (self.p_e > 0 and self.p_d > 0) else math.nan

    def as_dict(self) -> dict:
        keys = ("alpha", "p_e", "p_d", "l_inf", "ne_bar", "nd_bar", "r2", "rmse", "n_points")
        return {k: getattr(self, k) for k in keys}


def _check(n_e, n_d, loss, min_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ne = np.asarray(n_e, dtype=np.float64).ravel()
    nd = np.asarray(n_d, dtype=np.float64).ravel()
    y = np.asarray(loss, dtype=np.float64).ravel()
    if not (ne.shape == nd.shape == y.shape):
        raise ValueError(f"n_e, n_d and loss must have the same length, got {ne.size}, {nd.size}, {y.size}")
    if y.size < min_points:
        raise ValueError(f"need at least {min_points} points to fit 4 parameters, got {y.size}")
    if not (np.all(np.isfinite(ne)) and np.all(np.isfinite(nd)) and np.all(np.isfinite(y))):
        raise ValueError("n_e, n_d and loss must be finite")
    if np.any(ne <= 0) or np.any(nd <= 0) or np.any(y <= 0):
        raise ValueError("n_e, n_d and loss must be positive")
    if np.unique(ne).size < 2 or np.unique(nd).size < 2:
        raise ValueError("both N_e and N_d must take at least two values (one exponent is unidentified)")
    return ne, nd, y


@dataclass(frozen=True)
class UnivariateFit:
    """L(N) = alpha (n_bar/N)^p + l_inf: the same law in the total size only (the baseline the paper
    argues against), fitted by the same procedure and with the same sign-free exponent."""

    alpha: float
    p: float
    l_inf: float
    n_bar: float
    r2: float
    rmse: float
    n_points: int

    def predict(self, n) -> np.ndarray | float:
        na = np.asarray(n, dtype=np.float64)
        y = self.l_inf + self.alpha * np.exp(self.p * np.log(self.n_bar / na))
        return float(y) if np.ndim(y) == 0 else y


def _fit_product_law(feats: np.ndarray, y: np.ndarray, p_max: float) -> tuple[np.ndarray, float, float]:
    """Least squares of L = l_inf + exp(ln alpha + feats @ p) on L; feats (n, k) = ln(Nbar/N) columns.

    Returns (theta = [ln alpha, p_1..p_k, l_inf], r2, rmse)."""
    from scipy.optimize import least_squares

    n, k = feats.shape
    design = np.concatenate([np.ones((n, 1)), feats], axis=1)
    hi = float(y.min()) * (1 - 1e-9)

    def model(theta):
        return theta[-1] + np.exp(theta[0] + feats @ theta[1:-1])

    # profile over L_inf (denser near min L, where the fit is most sensitive): for a fixed L_inf,
    # ln(L - L_inf) is linear in (ln alpha, p), solved by linear least squares
    cands = []
    for l0 in list(hi * (1 - np.geomspace(1, 1e-4, 41))) + [0.0]:
        coef, *_ = np.linalg.lstsq(design, np.log(y - l0), rcond=None)
        theta = np.array([coef[0], *np.clip(coef[1:], -p_max, p_max), l0])
        sse = float(((model(theta) - y) ** 2).sum())
        if math.isfinite(sse):
            cands.append((sse, theta))
    cands.sort(key=lambda c: c[0])
    lo = np.array([-50.0] + [-p_max] * k + [0.0])
    up = np.array([50.0] + [p_max] * k + [hi])
    best = None
    for _, theta0 in cands[:4]:
        theta0 = np.clip(theta0, lo + 1e-12, up - 1e-12)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = least_squares(lambda t: model(t) - y, theta0, bounds=(lo, up), method="trf",
                                    x_scale="jac", max_nfev=5000)  # fmt: skip
        except (ValueError, FloatingPointError):
            continue
        sse = float((res.fun**2).sum())
        if best is None or sse < best[0]:
            best = (sse, res.x)
    if best is None:
        raise RuntimeError("the scaling-law fit did not converge from any starting point")
    pred = model(best[1])
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return best[1], r2, float(np.sqrt(ss_res / n))


def fit_bivariate(n_e, n_d, loss, *, ne_bar: float, nd_bar: float, p_max: float = 5.0) -> BivariateFit:
    """Fit the bivariate law jointly to points (N_e_i, N_d_i, L_i) (see the module docstring).

    ne_bar, nd_bar: the normalisers (the base model's N_e and N_d). Needs >= 5 points (4 parameters
    plus one degree of freedom) with at least two distinct N_e and two distinct N_d."""
    ne, nd, y = _check(n_e, n_d, loss, 5)
    if not (ne_bar > 0 and nd_bar > 0):
        raise ValueError(f"ne_bar and nd_bar must be > 0, got {ne_bar}, {nd_bar}")
    feats = np.stack([np.log(ne_bar / ne), np.log(nd_bar / nd)], axis=1)
    theta, r2, rmse = _fit_product_law(feats, y, p_max)
    log_a, pe, pd, l_inf = (float(v) for v in theta)
    return BivariateFit(math.exp(log_a), pe, pd, l_inf, float(ne_bar), float(nd_bar), r2, rmse, int(y.size))


def fit_univariate(n, loss, *, n_bar: float, p_max: float = 5.0) -> UnivariateFit:
    """Fit L(N) = alpha (n_bar/N)^p + L_inf (3 parameters, >= 4 points, >= 2 distinct N)."""
    na = np.asarray(n, dtype=np.float64).ravel()
    y = np.asarray(loss, dtype=np.float64).ravel()
    if na.shape != y.shape:
        raise ValueError(f"n and loss must have the same length, got {na.size} and {y.size}")
    if y.size < 4:
        raise ValueError(f"need at least 4 points to fit 3 parameters, got {y.size}")
    if not (np.all(np.isfinite(na)) and np.all(np.isfinite(y))) or np.any(na <= 0) or np.any(y <= 0):
        raise ValueError("n and loss must be finite and positive")
    if np.unique(na).size < 2:
        raise ValueError("N must take at least two values")
    if not n_bar > 0:
        raise ValueError(f"n_bar must be > 0, got {n_bar}")
    theta, r2, rmse = _fit_product_law(np.log(n_bar / na)[:, None], y, p_max)
    return UnivariateFit(math.exp(float(theta[0])), float(theta[1]), float(theta[2]), float(n_bar), r2, rmse,
                         int(y.size))  # fmt: skip


def bootstrap_bivariate(
    n_e, n_d, loss, *, ne_bar: float, nd_bar: float, n_boot: int = 200, seed: int = 0, min_ok: int = 20
) -> dict:
    """Refit on points resampled with replacement: percentile 95% intervals of p_e, p_d, L_inf, alpha.

    Resamples with fewer than 5 distinct points, or with a single N_e or N_d value, are skipped.
    With fewer than ``min_ok`` successful refits the intervals are NaN: a 2.5th/97.5th percentile of
    a handful of draws (5 ladder points leave few valid resamples) is not an interval.
    Returns {"p_e": array, "p_d": ..., "l_inf": ..., "alpha": ..., "<name>_ci95": (lo, hi), "n_ok"}."""
    ne, nd, y = _check(n_e, n_d, loss, 5)
    rng = np.random.default_rng(seed)
    keys = ("p_e", "p_d", "l_inf", "alpha")
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n_boot):
        idx = rng.integers(0, y.size, y.size)
        if np.unique(idx).size < 5 or np.unique(ne[idx]).size < 2 or np.unique(nd[idx]).size < 2:
            continue
        try:
            f = fit_bivariate(ne[idx], nd[idx], y[idx], ne_bar=ne_bar, nd_bar=nd_bar)
        except (RuntimeError, ValueError):
            continue
        for k in keys:
            draws[k].append(getattr(f, k))
    out: dict = {k: np.asarray(v) for k, v in draws.items()}
    for k in keys:
        v = out[k]
        out[f"{k}_ci95"] = (
            (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
            if v.size >= max(min_ok, 1)
            else (math.nan, math.nan)
        )
    out["n_ok"] = int(out["p_e"].size)
    return out


__all__ = ["BivariateFit", "UnivariateFit", "bootstrap_bivariate", "fit_bivariate", "fit_univariate"]
