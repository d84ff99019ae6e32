"""Protocol pilot, run once BEFORE the replicated cpu rerun: does training longer lower the run-to-run
noise of family A's loss at a fixed mixture? (README, "Protocol fix").

Only the VALIDATION sample (train.VAL_SEED, disjoint from the test sample) is looked at, and only seeds
500.. that the study never uses, so no choice of the study is made on its test split. Four replicas
(init = stream seed = 500 + r) of the independence mixture M3 (p = .3, .6, .1) at the smaller size d16,
trained for 240k tokens (the study's budget) and for 480k; prints each run's validation loss of family A,
their relative std and the validation curve of the longer runs (convergence).

    OMP_NUM_THREADS=1 uv run python packages/multilingual-scaling/scripts/pilot_noise.py > /tmp/pilot.json
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from multilingual_scaling.experiment import GAMMA_MIXES, world_config
from multilingual_scaling.families import make_world
from multilingual_scaling.train import TrainConfig, train_mixture

SEEDS = [500, 501, 502, 503]
BUDGETS = [240_000, 480_000]


def one(args: tuple[int, int]) -> dict:
    seed, tokens = args
    torch.set_num_threads(1)
    world = make_world(world_config()["world"])
    cfg = TrainConfig(hidden=16, heads=2, tokens=tokens, batch=16, seq_len=16, lr=1e-2, test_seqs=512)
    t0 = time.process_time()
    res = train_mixture(world, GAMMA_MIXES["M3"], cfg, seed, val_every=max(1, tokens // 256 // 10))
    curve = [[s, v[0]] for s, v in res["val_curve"]]  # family A only; the test losses are not printed
    return {"seed": seed, "tokens": tokens, "val_A": curve[-1][1], "curve_A": curve,
            "cpu_s": time.process_time() - t0}  # fmt: skip


if __name__ == "__main__":
    jobs = [(s, t) for t in BUDGETS for s in SEEDS]
    with ProcessPoolExecutor(int(sys.argv[1]) if len(sys.argv) > 1 else 2) as ex:
        runs = list(ex.map(one, jobs))
    summary = {}
    for t in BUDGETS:
        v = np.array([r["val_A"] for r in runs if r["tokens"] == t])
        summary[t] = {"val_A": v.round(4).tolist(), "mean": float(v.mean()), "rel_std": float(v.std(ddof=1) / v.mean()),
                      "rel_range": float((v.max() - v.min()) / v.mean())}  # fmt: skip
    print(json.dumps({"summary": summary, "runs": runs}, indent=1))
