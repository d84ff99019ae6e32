"""Pilot that chose the cpu regime of the width rerun, on the VALIDATION sample only (README, "Regime rule").

Rule, written before this pilot ran: candidate widths d_model in (16, 32) (4 heads, FFN 4 * d_model),
tried smallest first, the language pair unchanged. For a candidate, the 7 fit models of the ladder are
trained for seeds 0 and 1 under exactly the rerun's protocol (early stopping on the validation sample,
every 25 steps, patience 4, min_delta 0.003, cap 1000 steps, AdamW lr 2e-3 after 40 warm-up steps,
then constant). With v[m, s] the best validation loss of model m and seed s:
    span  = max_m mean_s v[m, s] - min_m mean_s v[m, s]
    noise = sqrt(mean_m var_s v[m, s])     (the seed-to-seed sd, n - 1 in the variance)
The candidate is chosen if span >= 10 * noise. If no candidate meets it, the one with the largest
span / noise is used and the README says the rule was not met. The test sample's loss is computed by
``train_one`` but is neither printed nor stored here.

Amendment (before any rerun, from validation losses only): the first run of this pilot used a 700-step cap;
at d_model 16 the first two models of both seeds, (1,2) and (2,1), hit the cap while still improving, so it
was stopped there and restarted with the cap at 1000 steps, the most the ~12 CPU-minute budget allows for
18 units at this width. The rule itself is unchanged.

    OMP_NUM_THREADS=1 uv run python packages/nmt-scaling/scripts/regime_pilot.py --d-model 16 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from nmt_scaling.train import TrainConfig, train_one

FIT_MODELS = [(1, 2), (2, 1), (2, 2), (3, 2), (4, 2), (2, 3), (2, 4)]
PROTOCOL = dict(batch=64, lr=2e-3, warmup_steps=40, max_steps=1000, eval_every=25, patience=4,
                min_delta=0.003, valid_sents=500, test_sents=1000)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = args.d_model
    rows = []
    for e, dd in FIT_MODELS:
        cfg = TrainConfig(
            enc_layers=e, dec_layers=dd, d_model=d, heads=4, enc_ffn=4 * d, dec_ffn=4 * d, **PROTOCOL
        )
        t0 = time.process_time()
        out = train_one(cfg, args.seed)
        row = {"model": f"e{e}d{dd}", "best_valid_loss": out["best_valid_loss"], "best_step": out["best_step"],
               "stop_step": out["stop_step"], "converged": bool(out["converged"]),
               "cpu_s": time.process_time() - t0, "curve_valid": out["curve_valid"]}  # fmt: skip
        rows.append(row)  # the test loss (out["final_loss"]) is deliberately dropped
        print(json.dumps({k: v for k, v in row.items() if k != "curve_valid"} | {"tail": out["curve_valid"][-6:]}),
              flush=True)  # fmt: skip
        if args.out:  # after every model, so that a stopped pilot keeps what it measured
            with open(args.out, "w") as f:
                json.dump({"d_model": d, "seed": args.seed, "rows": rows}, f)


if __name__ == "__main__":
    main()
