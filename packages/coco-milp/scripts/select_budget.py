"""Choose the deterministic solver budget of plain SCIP and predict-and-search on probe instances.

    OMP_NUM_THREADS=1 uv run python packages/coco-milp/scripts/select_budget.py              # stage 2
    OMP_NUM_THREADS=1 uv run python packages/coco-milp/scripts/select_budget.py --stage 1    # stage 1
    OMP_NUM_THREADS=1 uv run python packages/coco-milp/scripts/select_budget.py --stage 3    # or --stage3
    (``--out PATH`` writes the record elsewhere than results/, e.g. to compare a rerun with it)

Why: in the first cpu run, SCIP with default settings found the optimum of every 150 x 300 test instance
within its 1-node budget, so plain SCIP and PaS both had a gap of exactly 0 and the two PaS claims were
empty. Sizing (measured before this rule was written, one probe each): default SCIP also finds the
optimum at the root of Balas-Ho set cover of 250 x 500, 400 x 500 and 500 x 1000 (Ecole's default
size), so a larger instance alone does not make the budget bind; the budget itself must be tighter.

Stage 1 (``--stage 1``; rule fixed before it ran, ``STAGE1_RULE``; result in
results/budget_selection_stage1.json): at the first protocol's cpu size 150 x 300, 8 probes labelled as
the first data set was (default SCIP, a 2 s wall-clock limit, no node limit), the ladder below, (iii) at
0.3 CPU-s and no size rule (iv): NO budget qualified (plain SCIP had gap 0 on all 8 probes even with
heuristics off and 10 nodes). The 2 s wall-clock labelling depends on the machine's load, so a rerun
can give other best objectives (and CPU times) on a loaded machine. Stage 2 (the default; rule fixed
after stage 1, before stage 2 ran) extends the rule to larger instances, as below.

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

import argparse
import json
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
RESULTS = Path(__file__).parents[1] / "results"

# Stage 1 as it ran: the first protocol's cpu size and labelling (DataConfig's first-protocol defaults),
# (iii) at 0.3 CPU-s, no size rule (iv); its rule, word for word as recorded in budget_selection_stage1.json
STAGE1 = dict(n_rows=150, n_cols=300, density=0.05, label_time_limit=2.0, label_node_limit=None,
              max_mean_cpu_s=0.3)  # fmt: skip
STAGE1_RULE = (
    '(README, "Protocol fix"):\n'
    "* probes: ``N_PROBES`` set cover instances of the cpu size (150 x 300, density 0.05) drawn from\n"
    "  ``np.random.default_rng(PROBE_SEED)``, a stream that is neither the train / val / test stream\n"
    "  (data_seed 0) nor any of its instances; each is labelled exactly as the cpu data set (SCIP, 2 s\n"
    "  limit) to get its best known objective;\n"
    "* budgets, tried in this order (the most generous first): ``LADDER``, each a SCIP node limit with the\n"
    "  primal heuristics at their default or switched off (SCIP_PARAMSETTING.OFF); presolve, cuts and\n"
    "  branching stay at their defaults, one thread, fixed random seeds, no time limit (deterministic);\n"
    "* take the FIRST budget under which plain SCIP (i) has a nonzero primal gap (> 1e-9; no solution found\n"
    "  counts as nonzero) on at least half of the probes, (ii) finds a feasible solution on at least half of\n"
    "  the probes (the gap must not be all-or-nothing), and (iii) takes at most ``MAX_MEAN_CPU_S`` CPU-s\n"
    "  per solve on average (so that the 9 units' 20 PaS + 20 plain solves stay within ~2 CPU-min);\n"
    "* if no budget qualifies, the PaS claims stay judged at --scale full only."
)


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


def stage1(path: Path) -> dict:
    """Stage 1 as it ran: one size, the first data set's labelling, the ladder under the 0.3 CPU-s cap."""
    c = STAGE1
    probes = probe_instances(c["n_rows"], c["n_cols"], c["density"], N_PROBES, PROBE_SEED)
    labels, label_cpu = label_probes(probes, c["label_time_limit"], 50, c["label_node_limit"])
    best = [r.obj for r in labels]
    rows, chosen = run_ladder(
        probes, best, LADDER, c["max_mean_cpu_s"], echo=lambda row: print(row, flush=True)
    )
    out = dict(
        rule=STAGE1_RULE,
        n_probes=N_PROBES,
        probe_seed=PROBE_SEED,
        probe_best_obj=best,
        label_cpu_s_per_probe=round(float(np.mean(label_cpu)), 3),
        ladder=rows,
        chosen=chosen,
    )
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("stage 1 chosen:", chosen, "->", path)
    return out


def main(path: Path) -> None:
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


def stage3(path: Path) -> None:
    out = json.loads(path.read_text())
    chosen = stage3_choice(out)
    out["stage3"] = dict(max_mean_cpu_s=STAGE3_MAX_MEAN_CPU_S, applies=out["chosen"] is None, chosen=chosen)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("stage 3 chosen:", chosen)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="the cpu pilot's budget selection, stage by stage")
    ap.add_argument("--stage", type=int, choices=(1, 2, 3), default=2, help="1, 2 (default) or 3")
    ap.add_argument("--stage3", dest="stage", action="store_const", const=3, help="the same as --stage 3")
    ap.add_argument("--out", type=Path, default=None, help="the record's path (default: results/...)")
    return ap.parse_args(argv)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage == 1:
        stage1(args.out or RESULTS / "budget_selection_stage1.json")
    elif args.stage == 2:
        main(args.out or RESULTS / "budget_selection.json")
    else:  # stage 3 reads stage 2's record and adds its verdict to it
        stage3(args.out or RESULTS / "budget_selection.json")


if __name__ == "__main__":
    cli()
