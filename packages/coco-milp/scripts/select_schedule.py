"""Choose the early-stopping patience and the epoch cap at the official lr on the validation split.

    OMP_NUM_THREADS=1 uv run python packages/coco-milp/scripts/select_schedule.py

Why: the first cpu run trained 8 epochs at lr 1e-3 (the official lr is 1e-4 for up to 5000 epochs with
the best validation checkpoint), and the tau = 0.1 losses spiked at that step size. The fix trains at
lr 1e-4 with early stopping on the validation loss (xentlab.train.early_stopping, min_delta 0) and keeps
the best-validation checkpoint; this pilot sizes the patience and the epoch cap.

Rule, fixed before running (README, "Protocol fix"):
* pilot: training seed 0, the three conditions (ps, vcl, coco), Adam lr 1e-4, batch 1, patience 5, run
  until the rule fires or ``PILOT_EPOCHS`` epochs, on the new cpu train / val split (the data set of
  reproduce.py's CPU config, built here and cached); only the validation loss is read, the test split
  is never evaluated. The CPU time per epoch of each condition is measured;
* the stopping epoch of each condition for patience 3 is read off the same validation curve (the run
  is identical up to that epoch);
* patience: 5 if the estimated training cost of the 9 units, 3 seeds x sum over conditions of
  (stopping epoch x CPU-s per epoch), is <= ``TRAIN_BUDGET_CPU_S``; else 3 if that fits; else 3 with the
  cap the budget allows (the cap then binds, reported);
* epoch cap: the smallest of ``CAPS`` that is >= 1.5 x the latest pilot stopping epoch for the chosen
  patience (the largest of ``CAPS`` if none), so that the stopping rule, not the cap, ends training.
Writes results/schedule_selection.json.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

PILOT_EPOCHS = 60
TRAIN_BUDGET_CPU_S = 250.0
CAPS = [20, 30, 40, 60, 80]
ARMS = {
    "ps": dict(loss="bce", icc=False),
    "vcl": dict(loss="vcl", icc=False),
    "coco": dict(loss="coco", icc=True),
}


def _cpu_data() -> dict:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import reproduce

    return reproduce.CPU["data"]


def pilot_arm(name: str) -> dict:
    from coco_milp.data import DataConfig, load_dataset
    from coco_milp.experiment import RunConfig, train

    torch.set_num_threads(1)
    data_cfg = _cpu_data()
    cfg = RunConfig(**ARMS[name], data=data_cfg, epochs=PILOT_EPOCHS, lr=1e-4, patience=5, run_pas=False)
    data = load_dataset(DataConfig(**data_cfg))
    t = time.process_time()
    tr = train(cfg, {"train": data["train"], "val": data["val"]}, seed=0)
    cpu = time.process_time() - t
    return dict(
        arm=name,
        val_curve=[c[1] for c in tr.curve],
        epochs_run=tr.epochs_run,
        fired=tr.stopped_early,
        best_epoch=tr.best_epoch,
        cpu_s_per_epoch=cpu / tr.epochs_run,
    )


def stop_epoch(curve: list[float], patience: int) -> tuple[int, bool]:
    from xentlab.train.early_stopping import EarlyStopping

    es = EarlyStopping(patience)
    for i, v in enumerate(curve):
        if es.update(v):
            return i + 1, True
    return len(curve), False


def main() -> None:
    from coco_milp.data import DataConfig, load_dataset

    t = time.process_time()
    load_dataset(DataConfig(**_cpu_data()), workers=2)  # build and cache the labels once (2 processes)
    # the labelling workers have exited and been reaped: their CPU time is in RUSAGE_CHILDREN
    label_cpu = time.process_time() - t + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    with ProcessPoolExecutor(3) as ex:
        arms = list(ex.map(pilot_arm, ARMS))
    per_p = {}
    for p in (5, 3):
        stops = {a["arm"]: stop_epoch(a["val_curve"], p) for a in arms}
        est = 3 * sum(stops[a["arm"]][0] * a["cpu_s_per_epoch"] for a in arms)
        latest = max(s for s, _ in stops.values())
        cap = next((c for c in CAPS if c >= 1.5 * latest), CAPS[-1])
        per_p[p] = dict(stops={k: dict(epoch=s, fired=f) for k, (s, f) in stops.items()},
                        est_train_cpu_s=round(est, 1), cap=cap)  # fmt: skip
        print(p, per_p[p], flush=True)
    if per_p[5]["est_train_cpu_s"] <= TRAIN_BUDGET_CPU_S:
        chosen = dict(patience=5, epochs=per_p[5]["cap"], cap_binds=False)
    elif per_p[3]["est_train_cpu_s"] <= TRAIN_BUDGET_CPU_S:
        chosen = dict(patience=3, epochs=per_p[3]["cap"], cap_binds=False)
    else:
        per_epoch = 3 * sum(a["cpu_s_per_epoch"] for a in arms)
        chosen = dict(patience=3, epochs=int(math.floor(TRAIN_BUDGET_CPU_S / per_epoch)), cap_binds=True)
    out = dict(
        rule=__doc__.split("Rule, fixed before running")[1].split("Writes")[0].strip(),
        data=_cpu_data(),
        label_cpu_s=round(label_cpu, 1),
        arms=arms,
        per_patience=per_p,
        chosen=chosen,
    )
    path = Path(__file__).parents[1] / "results" / "schedule_selection.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("chosen:", chosen, "->", path)


if __name__ == "__main__":
    main()
