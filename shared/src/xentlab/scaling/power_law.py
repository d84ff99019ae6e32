"""Power-law fits for scaling laws.

Power law plus constant (Henighan et al. 2020, arXiv 2010.14701, their central form; Kaplan et al.
2020 without the constant):

    L(x) = L_inf + (x0 / x)^alpha,        x0 > 0, alpha > 0, L_inf >= 0

L_inf is the irreducible loss (an estimate of the data entropy S(True)), the power-law term the
reducible loss (D_KL(True || Model)). The fit is parametrised as (L_inf, ln x0, alpha), so x may span
many decades (x = compute in FLOPs ~ 1e12) without scaling problems, and minimises squared residuals
of ln L: every point counts by its relative error, whatever its magnitude. scipy's bounded
least squares (``curve_fit``, trust-region reflective) runs from a few starting points and
keeps the best, because the three parameters are strongly correlated and a single start can stop
in a poor local minimum; the starting points come from profiling L_inf (see the code).

Pure power law (the compute-optimal model size, N_opt(C) proportional to C^beta):

    y = a x^beta      fitted as a straight line in (ln x, ln y)

R^2 is the usual 1 - SS_res / SS_tot, on y itself for the power-law-plus-constant fit and on ln y
for the pure power law (the space the fit is made in).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    """L(x) = l_inf + (x0 / x)^alpha, fitted to n_points points."""

    l_inf: float
    x0: float
    alpha: float
    r2: float  # on L, 1 - SS_res / SS_tot
    rmse_log: float  # root-mean-square residual of ln L
    n_points: int
    # ln x0 as fitted. When alpha is driven to its lower bound (points that do not fall with x), the
    # fit moves ln x0 to a huge negative value and x0 = exp(ln x0) underflows to 0; predictions then
    # need the logarithm itself.
    log_x0: float | None = None

    def predict(self, x) -> np.ndarray | float:
        """L at x (scalar in, scalar out)."""
        xa = np.asarray(x, dtype=np.float64)
        lx0 = math.log(self.x0) if self.x0 > 0 and math.isfinite(self.x0) else self.log_x0
        if lx0 is None:
            raise ValueError(f"x0 = {self.x0} has no usable logarithm and log_x0 was not given")
        y = self.l_inf + np.exp(self.alpha * (lx0 - np.log(xa)))
        return float(y) if np.ndim(x) == 0 else y

    def reducible(self, x) -> np.ndarray | float:
        """The power-law term (x0 / x)^alpha alone (the reducible loss)."""
        return self.predict(x) - self.l_inf

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("l_inf", "x0", "alpha", "r2", "rmse_log", "n_points")}


@dataclass(frozen=True)
class PurePowerLawFit:
    """y = a x^beta, fitted to n_points points (least squares in log-log)."""

    a: float
    beta: float
    r2: float  # on ln y
    n_points: int

    def predict(self, x) -> np.ndarray | float:
        xa = np.asarray(x, dtype=np.float64)
        y = self.a * xa**self.beta
        return float(y) if np.ndim(x) == 0 else y

    def as_dict(self) -> dict:
        return {"a": self.a, "beta": self.beta, "r2": self.r2, "n_points": self.n_points}


def _check_xy(x, y, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    if xa.size < min_points:
        raise ValueError(f"need at least {min_points} points to fit, got {xa.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite")
    if np.any(xa <= 0) or np.any(ya <= 0):
        raise ValueError("x and y must be positive (the fits work in log space)")
    return xa, ya


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)


def fit_power_law_plus_constant(
    x, y, *, l_inf_max: float | None = None, fix_l_inf: float | None = None
) -> PowerLawFit:
    """Fit L(x) = L_inf + (x0/x)^alpha to points (x_i, L_i) (see the module docstring).

    l_inf_max: upper bound of L_inf (default: just below min(L), since the power-law term is > 0).
    fix_l_inf: hold L_inf at this value and fit only x0 and alpha (e.g. L_inf = a known entropy).
    Needs at least 3 points (2 with fix_l_inf); raises ValueError otherwise or on bad input.
    """
    from scipy.optimize import curve_fit

    xa, ya = _check_xy(x, y, 2 if fix_l_inf is not None else 3)
    lx, ly = np.log(xa), np.log(ya)
    y_min = float(ya.min())
    if l_inf_max is not None and not l_inf_max > 0:
        raise ValueError(f"l_inf_max must be > 0, got {l_inf_max}")
    hi = y_min * (1 - 1e-9) if l_inf_max is None else min(float(l_inf_max), y_min * (1 - 1e-9))
    if fix_l_inf is not None:
        if not 0 <= fix_l_inf < y_min:
            raise ValueError(f"fix_l_inf must be in [0, min(y)={y_min:.6g}), got {fix_l_inf}")
        hi = float(fix_l_inf)

    def model(lxv, l_inf, log_x0, alpha):
        # ln(L_inf + exp(alpha (ln x0 - ln x))), evaluated stably with logaddexp
        return np.logaddexp(np.log(max(l_inf, 1e-300)), alpha * (log_x0 - lxv))

    # Starting points: profile over L_inf. For a fixed L_inf the law is a straight line in
    # (ln x, ln(L - L_inf)), so (alpha, ln x0) follow from a linear fit; the few best candidates
    # on a grid of L_inf (dense near min(L), where the fit is most sensitive) seed the 3-parameter
    # bounded least squares, and the best result is kept.
    grid = [fix_l_inf] if fix_l_inf is not None else list(hi * (1 - np.geomspace(1, 1e-4, 41))) + [0.0]
    cands = []
    for l0 in grid:
        slope, icpt = np.polyfit(lx, np.log(ya - l0), 1)
        a0 = float(np.clip(-slope, 1e-3, 19.0))
        lx00 = float(icpt / a0)  # ln(L - L_inf) = alpha ln x0 - alpha ln x
        sse0 = float(((model(lx, l0, lx00, a0) - ly) ** 2).sum())
        if math.isfinite(sse0):
            cands.append((sse0, [l0, lx00, a0]))
    cands.sort(key=lambda c: c[0])
    best = None
    for _, p0 in cands[:3]:
        if fix_l_inf is not None:
            f = lambda lxv, log_x0, alpha: model(lxv, fix_l_inf, log_x0, alpha)  # noqa: E731
            p0, lo, up = p0[1:], [-np.inf, 1e-6], [np.inf, 20.0]
        else:
            f = model
            lo, up = [0.0, -np.inf, 1e-6], [hi, np.inf, 20.0]
        p0 = np.clip(p0, np.add(lo, 1e-12), np.subtract(up, 1e-12)).tolist()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                popt, _ = curve_fit(f, lx, ly, p0=p0, bounds=(lo, up), maxfev=5000)
        except (RuntimeError, ValueError):
            continue
        sse = float(((f(lx, *popt) - ly) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, popt)
    if best is None:
        raise RuntimeError("the power-law-plus-constant fit did not converge from any starting point")
    popt = best[1]
    l_inf, log_x0, alpha = (fix_l_inf, *popt) if fix_l_inf is not None else popt
    x0 = math.exp(log_x0) if log_x0 < 709.0 else math.inf  # exp overflows beyond ~709.78
    fit = PowerLawFit(float(l_inf), float(x0), float(alpha), 0.0, 0.0, int(xa.size), float(log_x0))
    pred = np.asarray(fit.predict(xa))
    return PowerLawFit(
        fit.l_inf,
        fit.x0,
        fit.alpha,
        r2=_r2(ya, pred),
        rmse_log=float(np.sqrt(((np.log(pred) - ly) ** 2).mean())),
        n_points=int(xa.size),
        log_x0=fit.log_x0,
    )


def fit_power_law(x, y) -> PurePowerLawFit:
    """Fit y = a x^beta by least squares on (ln x, ln y); needs at least 2 points (3 for a
    meaningful R^2)."""
    xa, ya = _check_xy(x, y, 2)
    lx, ly = np.log(xa), np.log(ya)
    if np.ptp(lx) == 0:
        raise ValueError("x must take at least two distinct values")
    beta, ln_a = np.polyfit(lx, ly, 1)
    return PurePowerLawFit(float(math.exp(ln_a)), float(beta), _r2(ly, ln_a + beta * lx), int(xa.size))


def bootstrap_power_law_plus_constant(x, y, n_boot: int = 200, seed: int = 0) -> dict:
    """Refit on points resampled with replacement: the spread of L_inf and alpha over resamples.

    With few points (5-6 sizes) many resamples have fewer than 3 distinct x; those are skipped.
    Returns {"l_inf": array, "alpha": array, "l_inf_ci95": (lo, hi), "alpha_ci95": (lo, hi), "n_ok"}.
    """
    xa, ya = _check_xy(x, y, 3)
    rng = np.random.default_rng(seed)
    l_infs, alphas = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, xa.size, xa.size)
        if np.unique(xa[idx]).size < 3:
            continue
        try:
            f = fit_power_law_plus_constant(xa[idx], ya[idx])
        except (RuntimeError, ValueError):
            continue
        l_infs.append(f.l_inf)
        alphas.append(f.alpha)
    li, al = np.asarray(l_infs), np.asarray(alphas)

    def ci(v):
        return (
            (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v.size else (math.nan, math.nan)
        )

    return {"l_inf": li, "alpha": al, "l_inf_ci95": ci(li), "alpha_ci95": ci(al), "n_ok": int(li.size)}
