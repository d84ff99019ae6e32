"""Choose the cpu-scale training budget (episodes per arm) and seed count on META-VALIDATION only.

    OMP_NUM_THREADS=1 uv run --package susana packages/susana/scripts/select_budget.py                # schedule
    OMP_NUM_THREADS=1 uv run --package susana packages/susana/scripts/select_budget.py --constant-lr  # v3 record

Rule, fixed (and written into the README) before running:
- Pilot units: the cpu config of reproduce.py, trained to the largest candidate budget, meta-val 5-way
  1-shot accuracy every 200 episodes (the checkpoint-selection evaluation of every unit); arms CE on pilot
  seeds 100 and 101, CE + ICNN (the slowest arm per episode) on pilot seed 100. Pilot seeds are not run
  seeds. The meta-test split is never loaded.
- Per pilot curve: the smallest candidate B at which the best of the last K = 3 evaluations up to B is
  within DELTA = 1.0 point of the best evaluation of the whole pilot curve (susana.budget.plateau_budget).
  The chosen budget is the largest of the per-curve budgets; the largest candidate is the cap.
- Seeds: floor(CPU_BUDGET_S / (cost per seed per episode x budget)), at least 3 and at most 8, with the
  cost per seed per episode measured by the previous cpu run (246 CPU-s for 3 seeds x 3 arms x 1200
  episodes).
Writes results/budget_selection.json; reproduce.py's CPU["episodes"] and cpu seeds are set from it.

Fifth protocol fix (re-pilot): the pilot units use the cpu config as it is now, i.e. with the author's lr
schedule (halve every 2000 episodes, fourth protocol fix); the rule above is unchanged. The first pilot (third
protocol fix) ran under a constant lr; `--constant-lr` re-runs that pilot (lr_step=None) and writes
results/budget_selection_constant_lr.json, the record the README's version-3 numbers come from.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CANDIDATES = [1200, 1800, 2400, 3000, 3600]
K = 3
DELTA = 1.0  # accuracy points
PILOTS = [("ce", 100), ("ce", 101), ("ce_icnn", 100)]
CPU_BUDGET_S = 720.0  # ~12 CPU-minutes for the whole cpu run
CPU_S_PER_SEED_PER_EPISODE = 246.0 / (3 * 1200)  # previous cpu run: 3 arms per seed
MIN_SEEDS, MAX_SEEDS = 3, 8

PKG = Path(__file__).parents[1]


def pilot_config(arm: str, constant_lr: bool) -> dict:
    """The cpu config of reproduce.py for `arm`, trained to the largest candidate budget.

    constant_lr=True drops the lr schedule (lr_step=None): the first pilot (third protocol fix) ran so,
    before the fourth protocol fix added the author's StepLR to the cpu config."""
    # loaded by path under its own name (not `import reproduce`, which another package's module may hold)
    spec = importlib.util.spec_from_file_location("_susana_reproduce", PKG / "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    cfg = {**reproduce.CPU, **reproduce.ARMS[arm], "episodes": max(CANDIDATES)}
    return {**cfg, "lr_step": None} if constant_lr else cfg


def output_path(constant_lr: bool) -> Path:
    name = "budget_selection_constant_lr.json" if constant_lr else "budget_selection.json"
    return PKG / "results" / name


def pilot(arm: str, seed: int, constant_lr: bool) -> dict:
    import torch
    from susana.experiment import RunConfig, run

    torch.set_num_threads(1)
    cfg = pilot_config(arm, constant_lr)
    t0, c0 = time.time(), time.process_time()
    out = run(RunConfig(**cfg), seed, test=False)  # train + meta-val only
    return {"arm": arm, "seed": seed, "curve": out["curve"], "wall_s": time.time() - t0,
            "cpu_s": time.process_time() - c0}  # fmt: skip


def main() -> None:
    from susana.budget import plateau_budget, seeds_for_budget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constant-lr", action="store_true",
                        help="re-run the first (constant-lr) pilot into budget_selection_constant_lr.json")  # fmt: skip
    args = parser.parse_args()
    arms, seeds = zip(*PILOTS)
    with ProcessPoolExecutor(len(PILOTS)) as pool:
        rows = list(pool.map(pilot, arms, seeds, [args.constant_lr] * len(PILOTS)))
    for r in rows:
        eps = [c["episode"] for c in r["curve"]]
        val = [c["val_1shot"] for c in r["curve"]]
        r["budget"] = plateau_budget(eps, val, CANDIDATES, K, DELTA)
        print(r["arm"], r["seed"], f"cpu {r['cpu_s']:.0f}s", "budget", r["budget"],
              " ".join(f"{v:.1f}" for v in val), flush=True)  # fmt: skip
    chosen = max(r["budget"] for r in rows)
    n_seeds = seeds_for_budget(chosen, CPU_BUDGET_S, CPU_S_PER_SEED_PER_EPISODE, MIN_SEEDS, MAX_SEEDS)
    lr_step = pilot_config(PILOTS[0][0], args.constant_lr)["lr_step"]
    out = {"rule": __doc__, "candidates": CANDIDATES, "k": K, "delta": DELTA, "lr_step": lr_step,
           "pilots": rows, "chosen_episodes": chosen, "n_seeds": n_seeds}  # fmt: skip
    path = output_path(args.constant_lr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print("chosen episodes:", chosen, "seeds:", n_seeds)


if __name__ == "__main__":
    main()
