"""The compute-efficient frontier of a family of learning curves, and the optimal model size N_opt(C).

Henighan et al. (2020), like Kaplan et al. (2020), read L(C) off the learning curves of all model sizes:
each curve is a set of (compute, test loss) points, C = 6 N D for the tokens D seen so far, and the
frontier is their lower envelope, the best loss reachable with compute C by any model of the family.
The model size that attains the envelope at C is the compute-optimal size N_opt(C); the paper fits it
with a power law N_opt proportional to C^beta.

Here the envelope is evaluated on a log-spaced compute grid (each curve interpolated linearly in
(ln C, L) inside its own compute range), then made non-increasing in C (a larger budget can always be
spent like a smaller one). N_opt(C) of a discrete ladder is a step function, so beta is
fitted to its steps: where the optimal size changes from N_a to N_b at compute C_ab, the point
(C_ab, sqrt(N_a N_b)) is on the N_opt(C) line (the size midway, in log, between the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """One model's learning curve: non-embedding size n, compute points (FLOPs) and test losses."""

    n: float
    compute: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class Frontier:
    compute: np.ndarray  # the log-spaced grid
    loss: np.ndarray  # the envelope at each grid point
    n_opt: np.ndarray  # the size whose curve attains it


def envelope(curves: Sequence[Curve], n_grid: int = 60) -> Frontier:
    """The lower envelope of the curves on a log grid spanning all of them (n_grid points plus the
    curves' own compute points), made non-increasing (see module docstring)."""
    if len(curves) < 1:
        raise ValueError("need at least one learning curve")
    for c in curves:
        if len(c.compute) != len(c.loss) or len(c.compute) < 2:
            raise ValueError("every curve needs >= 2 (compute, loss) points of equal length")
        if np.any(np.diff(c.compute) <= 0) or np.any(np.asarray(c.compute) <= 0):
            raise ValueError("compute must be positive and strictly increasing along a curve")
    lo = min(float(c.compute[0]) for c in curves)
    hi = max(float(c.compute[-1]) for c in curves)
    # a log grid plus every curve's own points, so that no curve's end point falls between grid points
    pts = np.concatenate([np.asarray(c.compute, dtype=np.float64) for c in curves])
    grid = np.unique(np.concatenate([np.geomspace(lo, hi, n_grid), pts]))
    n_grid = grid.size
    lg = np.log(grid)
    vals = np.full((len(curves), n_grid), np.inf)
    for i, c in enumerate(curves):
        lc = np.log(np.asarray(c.compute, dtype=np.float64))
        inside = (lg >= lc[0] - 1e-12) & (lg <= lc[-1] + 1e-12)
        vals[i, inside] = np.interp(lg[inside], lc, np.asarray(c.loss, dtype=np.float64))
    best = np.argmin(vals, axis=0)
    sizes = np.array([c.n for c in curves], dtype=np.float64)
    loss, n_opt = vals[best, np.arange(n_grid)], sizes[best]
    # A budget C also buys every smaller budget (stop early), so the best loss reachable with compute C
    # is non-increasing in C. Where a curve ends (at C = 6 N D, D = the tokens of that run) the next
    # size may not yet be below that end point: the frontier keeps the end point,
    # and its size, until some curve goes below it (a running minimum along the grid).
    for i in range(1, n_grid):
        if loss[i] > loss[i - 1]:
            loss[i], n_opt[i] = loss[i - 1], n_opt[i - 1]
    return Frontier(grid, loss, n_opt)


def n_opt_steps(front: Frontier) -> tuple[np.ndarray, np.ndarray]:
    """(C_ab, sqrt(N_a N_b)) at every change of the optimal size along the frontier."""
    c, n = front.compute, front.n_opt
    idx = np.nonzero(n[1:] != n[:-1])[0]
    # the change happens between grid points idx and idx+1: take their geometric mean
    cs = np.sqrt(c[idx] * c[idx + 1])
    ns = np.sqrt(n[idx] * n[idx + 1])
    return cs, ns
