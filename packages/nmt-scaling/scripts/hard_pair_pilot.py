"""Pilot that chose the cpu regime of the hard-pair rerun, on the VALIDATION sample only (README, "Harder pair").

Why: on the original synthetic pair the converged loss does not depend on depth (d_model 32 and 64: every
model within the seed noise of the others) and at d_model 16 nothing converges within 1,000 steps. The
fix is a harder pair: the original one plus case markers from an arbitrary (verb, role, noun) table
(``TaskConfig.n_cases``; nmt_scaling.task), a table the models must store in their layers.

Rule, written (here and in the README) before this pilot ran:

* candidates, tried in this order: (1) d_model 32, (2) d_model 64; both with 4 heads, FFN 4 * d_model and
  the hard pair with n_cases = 4 (the rest of TaskConfig at its defaults);
* for a candidate, the models (2,1) (the smallest (L_e, L_d) of the ladder in N_e + N_d), (1,2), (4,2),
  (2,4) and (4,4) (the largest) are trained for seeds 0 and 1 under exactly the cpu protocol
  (early stopping on the validation sample every 25 steps, patience 4, min_delta 0.003, cap 1000 steps,
  batch 64, AdamW lr 2e-3 after 40 warm-up steps then constant); only validation losses are read
  (the test loss computed by ``train_one`` is neither printed nor stored);
* with v[m, s] the best validation loss of model m, seed s, and a[m, s], b[m, s] the same checkpoint's
  loss on the first and second half of the validation sample:
      gap         = mean_s v[(2,1), s] - mean_s v[(4,4), s]
      noise_seed  = sqrt(mean_m var_s v[m, s])                (n - 1 in the variance)
      noise_split = sqrt(mean_{m,s} ((a[m, s] - b[m, s]) / 2)^2)   (sd of a full-sample loss)
      noise       = max(noise_seed, noise_split)
  the candidate is chosen if gap >= 5 * noise AND the stopping rule fired (converged) in every unit;
* if no candidate meets it, the candidate with the largest gap / noise among those where every unit
  converged is used (else the largest gap / noise), and the README says the rule was not met.

The per-unit CPU time is recorded to size the cpu run (cost only, never a loss).

Amendments (before the rerun; README "Harder pair"): d_model 64 was stopped after its first model in each
seed, for COST (57 CPU-s for (2,1) alone: the 27-unit run would be ~3x the ~12 CPU-minute budget). At
d_model 32, (2,1) hit the 1,000-step cap in both seeds, so no candidate could meet the rule; d_model 32, the
only affordable one, is used under the fallback. The pilot was then stopped after (2,1) and (1,2) per seed
to give the cpu rerun the shared CPUs; its (4,4) was never trained, so ``summarise`` needs the full five
models and was not run on the stopped files.

    OMP_NUM_THREADS=1 uv run python packages/nmt-scaling/scripts/hard_pair_pilot.py --d-model 32 --seed 0 \
        --out /tmp/hp32_s0.json
    uv run python packages/nmt-scaling/scripts/hard_pair_pilot.py --summarise /tmp/hp32_s0.json /tmp/hp32_s1.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

PILOT_MODELS = [(2, 1), (1, 2), (4, 2), (2, 4), (4, 4)]
PROTOCOL = dict(batch=64, lr=2e-3, warmup_steps=40, max_steps=1000, eval_every=25, patience=4,
                min_delta=0.003, valid_sents=500, test_sents=1000)  # fmt: skip
N_CASES = 4


def summarise(paths: list[str]) -> dict:
    """The rule's numbers for one candidate from its per-seed pilot files."""
    runs = [json.load(open(p)) for p in paths]
    d = {r["d_model"] for r in runs}
    assert len(d) == 1, f"files of different candidates: {d}"
    v: dict[str, list[float]] = {}
    halves, converged, cpu = [], [], []
    for r in runs:
        for row in r["rows"]:
            v.setdefault(row["model"], []).append(row["best_valid_loss"])
            a, b = row["best_valid_halves"]
            halves.append((a - b) / 2)
            converged.append(row["converged"])
            cpu.append(row["cpu_s"])
    means = {m: float(np.mean(x)) for m, x in v.items()}
    gap = means["e2d1"] - means["e4d4"]
    noise_seed = math.sqrt(np.mean([np.var(x, ddof=1) for x in v.values() if len(x) > 1]))
    noise_split = math.sqrt(np.mean(np.square(halves)))
    noise = max(noise_seed, noise_split)
    return {
        "d_model": d.pop(), "means": means, "per_seed": v, "gap": gap, "noise_seed": noise_seed,
        "noise_split": noise_split, "gap_over_noise": gap / noise, "all_converged": all(converged),
        "units": len(converged), "cpu_s": float(np.sum(cpu)),
        "meets_rule": bool(gap >= 5 * noise and all(converged)),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", default=None)
    ap.add_argument("--summarise", nargs="+", default=None)
    args = ap.parse_args()
    if args.summarise:
        print(json.dumps(summarise(args.summarise), indent=1))
        return
    from dataclasses import asdict

    import torch
    from nmt_scaling.task import TaskConfig
    from nmt_scaling.train import TrainConfig, train_one

    torch.set_num_threads(1)
    d = args.d_model
    task = asdict(TaskConfig(n_cases=N_CASES))
    rows = []
    for e, dd in PILOT_MODELS:
        cfg = TrainConfig(enc_layers=e, dec_layers=dd, d_model=d, heads=4, enc_ffn=4 * d, dec_ffn=4 * d,
                          task=task, **PROTOCOL)  # fmt: skip
        t0 = time.process_time()
        out = train_one(cfg, args.seed)
        row = {"model": f"e{e}d{dd}", "best_valid_loss": out["best_valid_loss"], "best_step": out["best_step"],
               "stop_step": out["stop_step"], "converged": bool(out["converged"]),
               "best_valid_halves": out["best_valid_halves"], "cpu_s": time.process_time() - t0,
               "curve_valid": out["curve_valid"]}  # fmt: skip
        rows.append(row)  # the test loss (out["final_loss"]) is deliberately dropped
        print(json.dumps({k: v for k, v in row.items() if k != "curve_valid"} | {"tail": out["curve_valid"][-6:]}),
              flush=True)  # fmt: skip
        if args.out:  # after every model, so that a stopped pilot keeps what it measured
            with open(args.out, "w") as f:
                json.dump({"d_model": d, "seed": args.seed, "n_cases": N_CASES, "rows": rows}, f)


if __name__ == "__main__":
    main()
