"""SCIP (PySCIPOpt) solves: the labelling solve with its solution pool, plain SCIP and predict-and-search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coco_milp.instances import SetCover
from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the data cache key (``coco_milp.data.code_version``)"""


@dataclass
class SolveResult:
    obj: float  # best objective found (inf if none)
    sols: np.ndarray  # (Q, n_cols) 0/1 stored solutions, best first
    objs: np.ndarray  # (Q,) their objectives
    status: str
    n_nodes: int


HEURISTICS = ("default", "off")


def build_model(inst: SetCover, heuristics: str = "default"):
    """The set cover MILP in SCIP, one thread, fixed random seeds (deterministic). `heuristics="off"`
    switches SCIP's primal heuristics off (SCIP_PARAMSETTING.OFF): the tighter deterministic budget of
    the cpu protocol (README, "Budget"), under which solutions come from the tree search only."""
    from pyscipopt import SCIP_PARAMSETTING, Model, quicksum

    if heuristics not in HEURISTICS:
        raise ValueError(f"heuristics must be one of {HEURISTICS}, got {heuristics!r}")

    m = Model("setcover")
    m.hideOutput(True)
    x = [m.addVar(vtype="B", name=f"x{j}", obj=float(inst.c[j])) for j in range(inst.n_cols)]
    for i in range(inst.n_rows):
        (idx,) = np.nonzero(inst.A[i])
        m.addCons(quicksum(x[j] for j in idx) >= 1, name=f"r{i}")
    m.setMinimize()
    m.setParam("parallel/maxnthreads", 1)
    m.setParam("randomization/randomseedshift", 0)
    if heuristics == "off":
        m.setHeuristics(SCIP_PARAMSETTING.OFF)
    return m, x


def _solve(m, x, time_limit: float | None, node_limit: int | None, max_sols: int) -> SolveResult:
    if time_limit is not None:
        m.setParam("limits/time", float(time_limit))
    if node_limit is not None:
        m.setParam("limits/nodes", int(node_limit))
    m.optimize()
    sols = m.getSols()
    vals = np.array([[round(m.getSolVal(s, v)) for v in x] for s in sols], dtype=np.int8).reshape(-1, len(x))
    objs = np.array([m.getSolObjVal(s) for s in sols], dtype=np.float64)
    order = np.argsort(objs, kind="stable")[:max_sols]
    best = float(objs[order[0]]) if len(order) else float("inf")
    return SolveResult(best, vals[order], objs[order], m.getStatus(), int(m.getNTotalNodes()))


def label_instance(
    inst: SetCover, time_limit: float, max_sols: int = 50, node_limit: int | None = None
) -> SolveResult:
    """The labelling solve: default SCIP with a time limit (and optionally a node limit); its stored
    solutions (getSols, best `max_sols` by objective) play the role of Gurobi's PoolSearchMode=2 pool in
    process_data.py."""
    m, x = build_model(inst)
    m.setParam("limits/maxsol", 200)
    return _solve(m, x, time_limit, node_limit, max_sols)


def solve_plain(inst: SetCover, node_limit: int, heuristics: str = "default") -> SolveResult:
    """Plain SCIP under the tight (deterministic) budget: a node limit, with or without heuristics."""
    m, x = build_model(inst, heuristics)
    return _solve(m, x, None, node_limit, 1)


def solve_pas(
    inst: SetCover,
    scores: np.ndarray,
    k0: int,
    k1: int,
    delta: int,
    node_limit: int,
    heuristics: str = "default",
) -> SolveResult:
    """Predict-and-search (test.py::fix_pas + solve_mps): x_hat = 0 for the k0 lowest scores, 1 for the k1
    highest, and the trust region sum_j |x_j - x_hat_j| <= delta over those variables. For binaries
    |x_j - 0| = x_j and |x_j - 1| = 1 - x_j, so the official auxiliary alpha variables are not needed."""
    from pyscipopt import quicksum

    order = np.argsort(scores, kind="stable")
    zeros = order[:k0]
    ones = order[::-1][:k1] if k1 > 0 else np.array([], dtype=int)
    m, x = build_model(inst, heuristics)
    terms = [x[j] for j in zeros] + [1 - x[j] for j in ones]
    if terms:
        m.addCons(quicksum(terms) <= delta, name="trust_region")
    return _solve(m, x, None, node_limit, 1)
