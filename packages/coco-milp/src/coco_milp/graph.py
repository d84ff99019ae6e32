"""Bipartite-graph encoding of a set cover instance, following utils.py::get_a_new2 of the official code.

Variable features (6): [objective coeff, sum_i A_ij / n_cons, degree, max coeff, min coeff, is_binary];
constraint features (4): [mean coeff, nnz, rhs, sense]; plus one extra "objective" constraint node, placed
LAST, with features [mean objective coeff, n_vars, 0, 0] and an edge to every variable (the ICC layer
drops exactly this node). Both feature matrices are min-max normalised per column and clamped to
[1e-5, 1]; constant columns map to 1 (test.py sets the NaN from 0/0 to 1). All edge features are 1
(test.py overwrites the coefficients with ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from coco_milp.instances import SetCover


@dataclass
class Graph:
    cons_feats: torch.Tensor  # (n_rows + 1, 4), the objective node last
    var_feats: torch.Tensor  # (n_cols, 6)
    edge_index: torch.Tensor  # (2, E) long: row 0 constraint index, row 1 variable index
    edge_feats: torch.Tensor  # (E, 1)
    n_cons: int  # including the objective node

    @property
    def n_vars(self) -> int:
        return self.var_feats.shape[0]


def _minmax(x: np.ndarray, constant_to: float | None) -> np.ndarray:
    lo, hi = x.min(0), x.max(0)
    diff = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (x - lo) / diff
    if constant_to is None:  # variable side in get_a_new2: a zero range divides by 1 instead
        out = np.where(diff == 0, x - lo, out)
    else:  # constraint side: 0/0 -> NaN, set to 1 in test.py
        out = np.where(np.isnan(out), constant_to, out)
    return np.clip(out, 1e-5, 1.0)


def encode(inst: SetCover) -> Graph:
    A = inst.A.astype(np.float64)
    m, n = A.shape
    deg = A.sum(0)
    # get_a_new2 starts max at 0 and min at 1e20 and updates them over a variable's (all 1) coefficients
    vmax = np.where(deg > 0, A.max(0), 0.0)
    vmin = np.where(deg > 0, 1.0, 1e20)
    var = np.stack(
        [np.clip(inst.c, 0, 20000).astype(np.float64), A.sum(0) / m, deg, vmax, vmin, np.ones(n)], axis=1
    )
    nnz = A.sum(1)
    # A x >= 1: lhs = 1, rhs = +inf -> sense 1 and rhs := lhs (get_a_new2)
    cons = np.stack([A.sum(1) / np.maximum(nnz, 1), nnz, np.ones(m), np.ones(m)], axis=1)
    obj_node = np.array([[inst.c.mean(), float(n), 0.0, 0.0]])
    cons = np.concatenate([cons, obj_node], 0)
    rows, cols = np.nonzero(A)
    rows = np.concatenate([rows, np.full(n, m)])  # objective node m -> every variable
    cols = np.concatenate([cols, np.arange(n)])
    return Graph(
        cons_feats=torch.tensor(_minmax(cons, constant_to=1.0), dtype=torch.float32),
        var_feats=torch.tensor(_minmax(var, constant_to=None), dtype=torch.float32),
        edge_index=torch.tensor(np.stack([rows, cols]), dtype=torch.long),
        edge_feats=torch.ones(len(rows), 1),
        n_cons=m + 1,
    )
