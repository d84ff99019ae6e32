"""Choose the deterministic solver budget of plain SCIP and predict-and-search on probe instances.

    OMP_NUM_THREADS=1 uv run python packages/coco-milp/scripts/select_budget.py

Why: in the first cpu run, SCIP with default settings found the optimum of every 150 x 300 test instance
within its 1-node budget, so plain SCIP and PaS both had a gap of exactly 0 and the two PaS claims were
empty. Sizing (measured before this rule was written, one probe each): default SCIP also finds the
optimum at the root of Balas-Ho set cover of 250 x 500, 400 x 500 and 500 x 1000 (Ecole's default
size), so a larger instance alone does not make the budget bind; the budget itself must be tighter.

Stage 1 (rule fixed before it ran; result in results/budget_selection_stage1.json): at the cpu size
150 x 300, 8 probes, the ladder below: NO budget qualified (plain SCIP had gap 0 on all 8 probes even
with heuristics off and 10 nodes). Stage 2 (this script now; rule fixed after stage 1, before stage 2
ran) extends the rule to larger instances, as below.

Rule, fixed before running (README, "Protocol fix"):
* sizes, tried in this order: ``SIZES`` (rows x cols, density 0.05). The columns stay at 300, so the GNN
  cost barely grows; more rows make Balas-Ho set cover harder (Gasse et al. 2019 scale it by rows);
* probes: ``N_PROBES`` instances per size drawn from ``np.random.default_rng(PROBE_SEED)``, a stream that
  is neither the train / val / test stream (data_seed 0) nor any of its instances; each is labelled with
  the deterministic labelling solve of the new data set (default SCIP, ``LABEL_NODES`` nodes, a 60 s
  wall-clock safety limit) to get its best known objective;
* budgets, tried in this order (the most generous first): ``LADDER``, each a SCIP node limit with the
  primal heuristics at their default or switched off (SCIP_PARAMSETTING.OFF); presolve, cuts and
  branching stay at their defaults, one thread, fixed random seeds, no time limit (deterministic);
* a budget qualifies when plain SCIP (i) has a nonzero primal gap (> 1e-9; no solution found counts as
  nonzero) on at least half of the probes, (ii) finds a feasible solution on at least half of the
  probes (the gap must not be all-or-nothing), and (iii) takes at most ``MAX_MEAN_CPU_S`` CPU-s per
  solve on average (the 9 units' 20 PaS solves stay within ~2 CPU-min);
* a size qualifies when labelling is affordable and a good reference: (iv) at most
  ``MAX_LABEL_CPU_S`` CPU-s per instance on average (70 instances within ~5 CPU-min) and proven optimal
  on at least 3/4 of the probes;
* take the FIRST size that qualifies and has a qualifying budget, and its FIRST qualifying budget;
* if none, the PaS claims stay judged at --scale full only.
Stage 3 (``--stage3``; README, written after stage 2's 300 x 300 ladder was seen): if stage 2 chose
nothing, apply the same rule to the stage 2 measurements, in the same order, with (iii) relaxed to
``STAGE3_MAX_MEAN_CPU_S`` CPU-s per solve (SCIP's root alone costs 1.2-2.8 CPU-s at 300 x 300, whatever
the node limit). No new solve runs; the result is added to results/budget_selection.json.
Only plain SCIP runs here (no model, no test instance). Writes results/budget_selection.json.
The rule (i)-(iii) and the ladder run in ``coco_milp.budget``, the same code that ``--scale full`` runs
before its units; this script adds the cpu pilot's size loop and its size rule (iv).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from coco_milp.budget import first_qualifying, label_probes, probe_instances, run_ladder

N_PROBES = 8
PROBE_SEED = 1  # the cpu data set uses data_seed 0
SIZES = [(300, 300), (450, 300)]
LABEL_NODES = 200
LADDER = [(1, "default"), (1000, "off"), (300, "off"), (100, "off"), (30, "off"), (10, "off")]
MAX_MEAN_CPU_S = 0.5
MAX_LABEL_CPU_S = 4.5
STAGE3_MAX_MEAN_CPU_S = 1.5


def probe_size(n_rows: int, n_cols: int) -> dict:
    probes = probe_instances(n_rows, n_cols, 0.05, N_PROBES, PROBE_SEED)
    labels, label_cpu = label_probes(probes, 60.0, 50, LABEL_NODES)
    best = [r.obj for r in labels]
    n_opt = sum(r.status == "optimal" for r in labels)
    size = dict(
        n_rows=n_rows,
        n_cols=n_cols,
        probe_best_obj=best,
        label_status=[r.status for r in labels],
        label_mean_cpu_s=round(float(np.mean(label_cpu)), 3),
    )
    # (iv): labelling affordable and a good reference
    size["label_ok"] = bool(size["label_mean_cpu_s"] <= MAX_LABEL_CPU_S and n_opt >= 0.75 * N_PROBES)
    rows, chosen = run_ladder(
        probes, best, LADDER, MAX_MEAN_CPU_S, echo=lambda row: print(n_rows, n_cols, row, flush=True)
    )
    size["ladder"], size["budget"] = rows, chosen
    print(n_rows, n_cols, {k: v for k, v in size.items() if k != "ladder"}, flush=True)
    return size


def main() -> None:
    sizes, chosen = [], None
    for n_rows, n_cols in SIZES:
        size = probe_size(n_rows, n_cols)
        sizes.append(size)
        if size["label_ok"] and size["budget"] is not None:
            chosen = dict(n_rows=n_rows, n_cols=n_cols, **size["budget"])
            break
    out = dict(
        rule=__doc__.split("Rule, fixed before running")[1].split("Only plain SCIP")[0].strip(),
        n_probes=N_PROBES,
        probe_seed=PROBE_SEED,
        label_nodes=LABEL_NODES,
        sizes=sizes,
        chosen=chosen,
    )
    path = Path(__file__).parents[1] / "results" / "budget_selection.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("chosen:", chosen, "->", path)


def stage3_choice(out: dict) -> dict | None:
    """Stage 3 on stage 2's recorded measurements: the same rule with (iii) relaxed, no new solve."""
    if out["chosen"] is not None:
        return None
    for size in out["sizes"]:
        if not size["label_ok"]:
            continue
        budget = first_qualifying(size["ladder"], N_PROBES, STAGE3_MAX_MEAN_CPU_S)
        if budget is not None:
            return dict(n_rows=size["n_rows"], n_cols=size["n_cols"], **budget)
    return None


def stage3() -> None:
    path = Path(__file__).parents[1] / "results" / "budget_selection.json"
    out = json.loads(path.read_text())
    chosen = stage3_choice(out)
    out["stage3"] = dict(max_mean_cpu_s=STAGE3_MAX_MEAN_CPU_S, applies=out["chosen"] is None, chosen=chosen)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("stage 3 chosen:", chosen)


if __name__ == "__main__":
    stage3() if "--stage3" in sys.argv else main()
