"""The deterministic solver budget of plain SCIP and predict-and-search, chosen on probe instances.

One implementation of the budget rule (README, "Protocol fix"), used by ``scripts/select_budget.py``
(the cpu protocol's pilot) and by every unit at ``--scale full`` (``RunConfig.budget_select``):

* probes: ``n_probes`` set cover instances of the data set's size, drawn from
  ``np.random.default_rng(probe_seed)``, a stream other than the data set's (``DataConfig.data_seed``);
  none of them is a train / val / test instance (checked). Each is labelled like the data set to get its
  best known objective. Only plain SCIP runs here: no model, no test instance;
* budgets, tried in ladder order (the most generous first), each a SCIP node limit with the primal
  heuristics at their default or off (SCIP_PARAMSETTING.OFF); one thread, fixed seeds, no time limit;
* a budget qualifies when plain SCIP (i) has a nonzero primal gap (> 1e-9; no solution counts as
  nonzero) on at least half of the probes, (ii) finds a feasible solution on at least half of them, and
  (iii) takes at most ``max_mean_cpu_s`` CPU-s per solve on average;
* the FIRST qualifying budget is taken; if none qualifies, ``chosen`` is None and the caller does not run
  predict-and-search (the PaS claims are then not judged).

At ``--scale full`` the selection is cached under ``xentlab.data.cache_dir("coco_milp")`` (built once by
``xentlab.data.build_once``), keyed by the rule, the probe size and labelling, the data set it must stay
apart from, and the code that measures it (xentlab.data.cache, "The key rule").
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from coco_milp import instances as _instances
from coco_milp import solve as _solve
from coco_milp.instances import SetCover, generate_set_cover
from coco_milp.solve import HEURISTICS, label_instance, solve_plain
from xentlab.data.build_once import build_once
from xentlab.data.cache import cache_dir, code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the selection's cache key (``selection_key``)"""

NONZERO = 1e-9  # a primal gap above this counts as nonzero (rule (i))


def primal_gap(obj: float, best: float) -> float:
    """(obj - best) / |best|, clipped to [0, 1]; 1 when no solution was found (obj = inf)."""
    if not np.isfinite(obj):
        return 1.0
    return float(min(1.0, max(0.0, (obj - best) / max(abs(best), 1e-9))))


@dataclass(frozen=True)
class BudgetRule:
    """The budget rule's settings (README, "Protocol fix" for cpu, "--scale full" for full)."""

    ladder: tuple[tuple[int, str], ...]  # (node limit, heuristics "default" | "off"), most generous first
    max_mean_cpu_s: float  # (iii): mean CPU-s per plain solve
    n_probes: int = 8
    probe_seed: int = 1  # the data set uses data_seed 0

    def __post_init__(self) -> None:
        ladder = tuple((int(n), str(h)) for n, h in self.ladder)  # a config's lists of lists, too
        object.__setattr__(self, "ladder", ladder)
        if not ladder:
            raise ValueError("the budget ladder is empty")
        for nodes, heur in ladder:
            if nodes < 1 or heur not in HEURISTICS:
                raise ValueError(
                    f"bad ladder rung {(nodes, heur)}: need nodes >= 1 and heuristics in {HEURISTICS}"
                )
        if self.n_probes < 1:
            raise ValueError(f"n_probes must be >= 1, got {self.n_probes}")


def qualifies(row: Mapping, n_probes: int, max_mean_cpu_s: float) -> bool:
    """Rules (i)-(iii) on one ladder row (``measure_budget``'s fields)."""
    return bool(
        row["n_nonzero"] >= n_probes / 2  # (i) the budget binds on at least half of the probes
        and row["n_found"] >= n_probes / 2  # (ii) and is not all-or-nothing
        and row["mean_cpu_s"] <= max_mean_cpu_s  # (iii) and is affordable
    )


def first_qualifying(rows: Sequence[Mapping], n_probes: int, max_mean_cpu_s: float) -> dict | None:
    """The first row, in ladder order, that meets (i)-(iii), as ``{"nodes", "heuristics"}``; else None."""
    for row in rows:
        if qualifies(row, n_probes, max_mean_cpu_s):
            return dict(nodes=row["nodes"], heuristics=row["heuristics"])
    return None


def probe_instances(
    n_rows: int, n_cols: int, density: float, n_probes: int, probe_seed: int
) -> list[SetCover]:
    rng = np.random.default_rng(probe_seed)
    return [generate_set_cover(n_rows, n_cols, density, rng) for _ in range(n_probes)]


def measure_budget(probes: Sequence[SetCover], best: Sequence[float], nodes: int, heuristics: str) -> dict:
    """Plain SCIP under one budget on every probe: the primal gaps (percent), how many are nonzero,
    how many found a solution, and the mean CPU-s per solve (process time: not inflated by other load)."""
    gaps, found, cpu = [], [], []
    for p, b in zip(probes, best):
        t = time.process_time()
        r = solve_plain(p, nodes, heuristics)
        cpu.append(time.process_time() - t)
        gaps.append(primal_gap(r.obj, b))
        found.append(bool(np.isfinite(r.obj)))
    return dict(
        nodes=nodes,
        heuristics=heuristics,
        gaps_pct=[round(100 * g, 4) for g in gaps],
        n_nonzero=int(sum(g > NONZERO for g in gaps)),
        n_found=int(sum(found)),
        mean_cpu_s=round(float(np.mean(cpu)), 4),
    )


def run_ladder(
    probes: Sequence[SetCover],
    best: Sequence[float],
    ladder: Sequence[tuple[int, str]],
    max_mean_cpu_s: float,
    echo: Callable[[dict], None] | None = None,
) -> tuple[list[dict], dict | None]:
    """Measure the ladder in order and stop at the first budget that qualifies: (rows, chosen or None)."""
    rows = []
    for nodes, heur in ladder:
        row = measure_budget(probes, best, nodes, heur)
        row["qualifies"] = qualifies(row, len(probes), max_mean_cpu_s)
        rows.append(row)
        if echo is not None:
            echo(row)
        if row["qualifies"]:
            return rows, dict(nodes=nodes, heuristics=heur)
    return rows, None


def label_probes(
    probes: Sequence[SetCover], time_limit: float, max_sols: int, node_limit: int | None
) -> tuple[list, list[float]]:
    """The labelling solve of each probe (its best objective is the gap's reference) and its CPU-s."""
    labels, cpu = [], []
    for p in probes:
        t = time.process_time()
        labels.append(label_instance(p, time_limit, max_sols, node_limit))
        cpu.append(time.process_time() - t)
    return labels, cpu


def _data_instances(dcfg) -> list[SetCover]:
    """The data set's instances, generated as ``coco_milp.data`` does (one stream, split order)."""
    rng = np.random.default_rng(dcfg.data_seed)
    n = dcfg.n_train + dcfg.n_val + dcfg.n_test
    return [generate_set_cover(dcfg.n_rows, dcfg.n_cols, dcfg.density, rng) for _ in range(n)]


def check_disjoint(probes: Sequence[SetCover], dcfg) -> None:
    """Raise if the probe stream is the data set's, or if a probe equals a train / val / test instance."""
    seen = {hashlib.sha256(i.A.tobytes() + i.c.tobytes()).hexdigest() for i in _data_instances(dcfg)}
    for k, p in enumerate(probes):
        if hashlib.sha256(p.A.tobytes() + p.c.tobytes()).hexdigest() in seen:
            raise ValueError(f"budget probe {k} is an instance of the data set: use another probe_seed")


def select_budget(dcfg, rule: BudgetRule, echo: Callable[[dict], None] | None = None) -> dict:
    """The whole selection at the data set's size and labelling (``dcfg``, a ``DataConfig``): probes,
    their labels, the ladder, the chosen budget (or None). Returns a JSON-serialisable record."""
    if rule.probe_seed == dcfg.data_seed:
        raise ValueError(
            f"probe_seed {rule.probe_seed} is the data set's data_seed: the probes must be other instances"
        )
    probes = probe_instances(dcfg.n_rows, dcfg.n_cols, dcfg.density, rule.n_probes, rule.probe_seed)
    check_disjoint(probes, dcfg)
    labels, label_cpu = label_probes(probes, dcfg.label_time_limit, dcfg.max_sols, dcfg.label_node_limit)
    best = [r.obj for r in labels]
    rows, chosen = run_ladder(probes, best, rule.ladder, rule.max_mean_cpu_s, echo)
    return dict(
        rule=asdict(rule),
        size=dict(n_rows=dcfg.n_rows, n_cols=dcfg.n_cols, density=dcfg.density),
        probe_best_obj=best,
        label_status=[r.status for r in labels],
        label_mean_cpu_s=round(float(np.mean(label_cpu)), 3),
        ladder=rows,
        chosen=chosen,
    )


def selection_key(dcfg, rule: BudgetRule) -> str:
    """The cache file name: the rule, what the probes are (size, labelling) and the code that measures
    them (this module, the generator and the solves, numpy / PySCIPOpt / SCIP versions)."""
    from coco_milp.data import scip_version

    probe = {k: getattr(dcfg, k) for k in ("n_rows", "n_cols", "density", "label_time_limit", "label_node_limit",
                                           "max_sols", "data_seed", "n_train", "n_val", "n_test")}  # fmt: skip
    code = code_key(
        SOURCE_DIGEST,
        _instances.SOURCE_DIGEST,
        _solve.SOURCE_DIGEST,
        f"scip-{scip_version()}",
        libraries=("numpy", "pyscipopt"),
    )
    blob = json.dumps({"rule": asdict(rule), "probe": probe, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_selection(dcfg, rule: BudgetRule) -> dict:
    """``select_budget`` once per key (``xentlab.data.build_once``: parallel units wait on a file lock
    while the first one runs it). The record carries its ``key`` and ``cached`` (False for the call
    that measured it)."""
    key = selection_key(dcfg, rule)
    path = cache_dir("coco_milp") / f"budget-{key}.json"
    measured = []

    def build(tmp):
        print(
            f"coco-milp: choosing the PaS budget on {rule.n_probes} probe instances of "
            f"{dcfg.n_rows} x {dcfg.n_cols} (ladder {list(rule.ladder)}; cached as {path.name})",
            file=sys.stderr,
            flush=True,
        )
        tmp.write_text(json.dumps({**select_budget(dcfg, rule), "key": key}, indent=1) + "\n")
        measured.append(True)

    # threads=None: only SCIP and numpy run (no torch reductions to pin)
    record = json.loads(build_once(path, build, threads=None).read_text())
    return {**record, "cached": not measured}


def plain_objectives(
    dcfg, insts: Sequence[SetCover], nodes: int, heuristics: str, use_cache: bool = True
) -> list:
    """Plain SCIP's objective on each of ``insts`` (the test split of ``dcfg``'s data set) under a budget
    other than the one stored with the labels. The solve is deterministic, so it runs once and every unit
    reads the cache (keyed by the data set's key, which carries the solve code, and the budget)."""
    if not use_cache:
        return [solve_plain(i, nodes, heuristics).obj for i in insts]

    def build(tmp):
        objs = [solve_plain(i, nodes, heuristics).obj for i in insts]
        tmp.write_text(json.dumps([o if np.isfinite(o) else "inf" for o in objs]))

    path = cache_dir("coco_milp") / f"plain-{dcfg.key()}-{nodes}-{heuristics}.json"
    return [float(o) for o in json.loads(build_once(path, build, threads=None).read_text())]
