"""Cost pilot for protocol v2: which model fits the cpu budget at T = 5000 steps (rule in the README).

Times 1000 steps of one cosine run (validation every 100 steps on the 512 fixed sequences) per candidate
model, projects 15 runs (5 schedules x 3 seeds) x 5 (5000 / 1000 steps), and picks the first candidate
whose projection is <= 540 CPU-s. Only CPU time enters the choice; no loss value is used.

    OMP_NUM_THREADS=1 uv run python packages/lr-annealing-scaling/scripts/cost_pilot.py
"""

from __future__ import annotations

import time

import torch
from lr_annealing_scaling.schedules import make_schedule
from lr_annealing_scaling.train import TrainConfig, train_schedule

from xentlab.data.markov_source import MarkovSourceConfig

SOURCE = MarkovSourceConfig(vocab_size=32, order=2, support=4, concentration=0.5, eps=0.02, zipf=1.0, seed=0)
CANDIDATES = [  # in the README's order of preference
    {"hidden": 32, "layers": 2, "heads": 2},  # (a) the v1 model
    {"hidden": 32, "layers": 1, "heads": 2},  # (b)
    {"hidden": 16, "layers": 2, "heads": 2},  # (c)
]
BUDGET_S = 540.0  # projected CPU-s for the 15 training runs
RUNS, SCALE = 15, 5  # 5 schedules x 3 seeds; 5000 / 1000 steps


def main() -> None:
    torch.set_num_threads(1)
    chosen = None
    for cand in CANDIDATES:
        cfg = TrainConfig(steps=1000, warmup=50, eval_every=100, val_seqs=512, **cand)
        t0 = time.process_time()
        train_schedule(cfg, SOURCE, make_schedule("cosine", 1000, cfg.peak_lr, 50), seed=0)
        cpu = time.process_time() - t0
        proj = RUNS * SCALE * cpu
        ok = proj <= BUDGET_S
        print(f"{cand}: {cpu:.2f} CPU-s / 1000 steps -> projected {proj:.0f} CPU-s for 15 x 5000 steps"
              f" ({'fits' if ok else 'over'} {BUDGET_S:.0f})")  # fmt: skip
        if ok and chosen is None:
            chosen = cand
    print(
        f"chosen: {chosen if chosen is not None else CANDIDATES[-1]} (2 seeds if None fitted: {chosen is None})"
    )


if __name__ == "__main__":
    main()
