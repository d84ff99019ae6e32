"""Choose the cpu-scale pre-training length and fine-tuning budget on VALIDATION data only (never on test).

    OMP_NUM_THREADS=1 uv run --package core-tuning packages/core-tuning/scripts/select_protocol.py

Why (protocol fix): with a 6-epoch SimCLR backbone and 50 fine-tuning epochs (400 steps), neither arm fitted its
training set (last-epoch train accuracy CE 0.91, Core 0.86), so the claim was tested in an under-trained regime;
the paper fine-tunes a strong pre-trained backbone for 100 epochs. The rules below were written (here and in the
README) before this script was run. Seeds 100 and 101 only (never the evaluation seeds 0, 1, 2); the labelled
training split and the validation split are those of reproduce.py's cpu config; the test set is never read
(``run(..., score_test=False)``).

Stage 1, backbone (rule fixed before running):
* one SimCLR run of max(PRE_CANDIDATES) epochs with the cpu pre-training config (architecture unchanged, 16/32/64
  channels: a wider one does not fit the CPU budget); the candidates are its checkpoints after E epochs, which
  equal separate E-epoch runs (constant Adam lr; tested in test_core_tuning_experiment.py);
* for each, a linear probe (core_tuning.probe: logistic regression on frozen, standardised features) fitted on
  the 500 labelled training images and scored on the 200 validation images;
* take the SMALLEST E whose probe validation accuracy is within PROBE_PLATEAU_PTS of the best candidate's (the
  pre-training plateau of this architecture and data).

Stage 2, fine-tuning budget (rule fixed before running): CE-tuning only (the baseline), from the stage-1 backbone,
with the cpu config of reproduce.py except the number of epochs E (official cosine annealing with T_max = E,
stepped per epoch; lr 0.1, batch 64, as before), for E in FT_CANDIDATES and both pilot seeds;
* a candidate is admissible if the projected cpu run (pre-training CPU time + 6 units x E epochs x the measured
  CPU time per CE epoch) is <= RUN_CPU_CAP_S;
* score = the mean over the pilot seeds of the LAST-epoch CE validation accuracy (no best-epoch maximum, which
  favours longer runs by giving them more draws);
* take the SMALLEST admissible E whose score is within FT_PLATEAU_PTS of the best admissible score (the CE
  baseline's validation plateau). Both arms then get this budget; the epoch is still chosen on validation.
Writes results/protocol_selection.json and caches the chosen checkpoints where reproduce.py reads them.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

PRE_CANDIDATES = [6, 12, 24, 36]
PROBE_PLATEAU_PTS = 2.0
FT_CANDIDATES = [50, 100, 150]
FT_PLATEAU_PTS = 1.0
PILOT_SEEDS = [100, 101]
RUN_CPU_CAP_S = 660.0  # the brief: the whole cpu run <= ~12 CPU-minutes including pre-training; ~10% margin
N_UNITS = 6  # 3 seeds x 2 arms
OUT = Path(__file__).parents[1] / "results" / "protocol_selection.json"


def _reproduce():
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import reproduce

    return reproduce


def stage1() -> dict:
    from core_tuning.experiment import RunConfig, labelled_splits
    from core_tuning.model import build_backbone
    from core_tuning.pretrain import PretrainConfig, load_pool, save_checkpoint, train_simclr
    from core_tuning.probe import frozen_features, linear_probe_accuracy

    torch.set_num_threads(1)
    base = _reproduce().CPU
    pre_base = {**base["pretrain"], "widths": tuple(base["pretrain"]["widths"])}
    cfg_max = PretrainConfig(**{**pre_base, "epochs": max(PRE_CANDIDATES)})
    run_cfg = RunConfig(**{**base, "arm": "ce"})
    (x_tr, y_tr), (x_va, y_va), _ = labelled_splits(
        run_cfg, cfg_max
    )  # the test split is returned, never used
    t0, c0 = time.time(), time.process_time()
    x_pool = load_pool(cfg_max).x.float()
    rows, probe_cost = [], [0.0, 0.0]  # wall, cpu spent probing: not pre-training time

    def on_epoch(e: int, state: dict, curve: list) -> None:
        if e not in PRE_CANDIDATES:
            return
        w1, c1 = time.time(), time.process_time()
        wall, cpu = w1 - t0 - probe_cost[0], c1 - c0 - probe_cost[1]
        cfg_e = PretrainConfig(**{**pre_base, "epochs": e})
        save_checkpoint(cfg_e, state, curve, wall, cpu)  # what reproduce.py's units will read
        bb = build_backbone(cfg_e.widths, cfg_e.convs_per_stage)
        bb.load_state_dict(state)
        acc = linear_probe_accuracy(
            frozen_features(bb, x_tr), y_tr.numpy(), frozen_features(bb, x_va), y_va.numpy()
        )
        rows.append({"pretrain_epochs": e, "probe_val_acc": acc, "ntxent": curve[-1], "pretrain_cpu_s": cpu,
                     "pretrain_wall_s": wall, "key": cfg_e.key()})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        probe_cost[0] += time.time() - w1
        probe_cost[1] += time.process_time() - c1

    with torch.random.fork_rng(devices=[]):
        train_simclr(cfg_max, x_pool, "cpu", lambda **k: None, on_epoch=on_epoch)
    best = max(r["probe_val_acc"] for r in rows)
    chosen = min(r["pretrain_epochs"] for r in rows if r["probe_val_acc"] >= best - PROBE_PLATEAU_PTS / 100)
    return {"candidates": rows, "best_probe_val_acc": best, "chosen_pretrain_epochs": chosen}


def _ce_unit(args) -> dict:
    epochs, seed, pre_epochs = args
    from core_tuning.experiment import RunConfig, run

    from xentlab.train import seed_everything

    torch.set_num_threads(1)
    base = _reproduce().CPU
    cfg = RunConfig(
        **{**base, "arm": "ce", "epochs": epochs, "pretrain": {**base["pretrain"], "epochs": pre_epochs}}
    )
    seed_everything(seed)
    c0 = time.process_time()
    r = run(cfg, seed, device="cpu", log=lambda **k: None, score_test=False)
    cpu = time.process_time() - c0
    return {"epochs": epochs, "seed": seed, "final_val_acc": r["final_val_acc"], "best_val_acc": r["best_val_acc"],
            "best_epoch": r["best_epoch"], "final_train_acc": r["final_train_acc"], "cpu_s": cpu,
            "cpu_s_per_epoch": cpu / epochs, "val_acc": r["curves"]["val_acc"]}  # fmt: skip


def stage2(pre_epochs: int, pretrain_cpu_s: float) -> dict:
    jobs = [(e, s, pre_epochs) for e in sorted(FT_CANDIDATES, reverse=True) for s in PILOT_SEEDS]
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(_ce_unit, jobs))
    per_epoch = max(r["cpu_s_per_epoch"] for r in runs)  # the slowest measurement: a conservative projection
    rows = []
    for e in sorted(FT_CANDIDATES):
        rs = [r for r in runs if r["epochs"] == e]
        projected = pretrain_cpu_s + N_UNITS * e * per_epoch
        rows.append({"epochs": e, "score_final_val_acc": sum(r["final_val_acc"] for r in rs) / len(rs),
                     "mean_best_val_acc": sum(r["best_val_acc"] for r in rs) / len(rs),
                     "mean_final_train_acc": sum(r["final_train_acc"] for r in rs) / len(rs),
                     "projected_run_cpu_s": projected, "admissible": projected <= RUN_CPU_CAP_S})  # fmt: skip
    ok = [r for r in rows if r["admissible"]]
    chosen = None
    if ok:
        best = max(r["score_final_val_acc"] for r in ok)
        chosen = min(r["epochs"] for r in ok if r["score_final_val_acc"] >= best - FT_PLATEAU_PTS / 100)
    return {"candidates": rows, "runs": runs, "cpu_s_per_epoch": per_epoch, "chosen_finetune_epochs": chosen}


def main() -> None:
    t0 = time.time()
    s1 = stage1()
    print("stage 1:", json.dumps({k: v for k, v in s1.items() if k != "candidates"}), flush=True)
    pre_cpu = next(
        r["pretrain_cpu_s"] for r in s1["candidates"] if r["pretrain_epochs"] == s1["chosen_pretrain_epochs"]
    )
    s2 = stage2(s1["chosen_pretrain_epochs"], pre_cpu)
    print("stage 2:", json.dumps({k: v for k, v in s2.items() if k not in ("runs",)}), flush=True)
    rules = {"PRE_CANDIDATES": PRE_CANDIDATES, "PROBE_PLATEAU_PTS": PROBE_PLATEAU_PTS, "FT_CANDIDATES": FT_CANDIDATES,
             "FT_PLATEAU_PTS": FT_PLATEAU_PTS, "PILOT_SEEDS": PILOT_SEEDS, "RUN_CPU_CAP_S": RUN_CPU_CAP_S}  # fmt: skip
    OUT.write_text(json.dumps({"rules": rules, "stage1_backbone": s1, "stage2_budget": s2,
                               "wall_s": time.time() - t0}, indent=1))  # fmt: skip
    OUT.chmod(0o644)


if __name__ == "__main__":
    main()
