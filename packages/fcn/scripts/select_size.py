"""Protocol v4 pilot: choose the cpu train / validation sizes on the validation split (never on test).

    OMP_NUM_THREADS=1 uv run --package fcn python packages/fcn/scripts/select_size.py

Rule, fixed (and written in the README, "Protocol v4") before this pilot ran:

- Candidates: train rows N in ``TRAIN_CANDIDATES`` (2x and 3x the v3 40k: 313 and 469 steps per epoch at
  batch 256), validation rows V in ``VALID_LADDER``. Extra rows come from the same world as the v1-v3 data
  (``SyntheticConfig.extra_train`` / ``extra_valid``); the test split is never built into a prediction here.
- For each N (and the v3 setting 40k / 10k as a reference row, not a candidate): arm ``fcn_tribce``, seed 0,
  the v3 protocol unchanged (Adam 1e-3, batch 256, patience 2, reduce-lr-on-plateau, clipping at 10), run
  for ``PILOT_EPOCHS`` epochs, validating on the first ``max(VALID_LADDER)`` validation rows.
- Learning signal g(N) = median of the epoch-to-epoch val-AUC gains of epochs 2..PILOT_EPOCHS (AUC on all
  the pilot's validation rows).
- Noise floor sigma(N, V) = the largest, over epochs 2..PILOT_EPOCHS, bootstrap std (``N_BOOT`` Poisson
  resamples of the first V validation rows) of the PAIRED difference AUC_e - AUC_(e-1), i.e. of the very
  comparison FuxiCTR's plateau test makes. The unpaired std of AUC_e is reported next to it.
- Cost: projected cpu run = 3 seeds x ``ASSUMED_EPOCHS`` x sum over the 7 arms of (measured fcn_tribce
  CPU-s per epoch at (N, max V)) x (that arm's v3 CPU-s per epoch / fcn_tribce's, ``V3_COST_RATIO``).
  It fits when <= ``BUDGET_CPU_S`` (~14 CPU-minutes). On the shared machine CPU time per epoch is inflated
  by contention, so every measured CPU-s per epoch is first rescaled by V3_FCN_CPU_S_PER_EPOCH / (the
  reference row's measured CPU-s per epoch): the reference row is the exact v3 computation, whose idle cost
  is known. (Amendment made after the first launch showed 6.2 CPU-s per epoch for the reference row against
  v3's 1.78, before any candidate row had run; that launch was stopped and the pilot rerun.)
- Choice: the smallest N with sigma(N, V) <= g(N) / 4 for some V whose projected cost fits; V = the smallest
  such V in the ladder. If no N passes the noise test within the budget: the largest N that fits, with
  V = max(VALID_LADDER), and the README says the noise rule is not met. If none fits: the smallest N.

Writes results/size_selection.json (validation numbers and CPU time only).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

TRAIN_CANDIDATES = [80_000, 120_000]
VALID_LADDER = [25_000, 50_000, 100_000]
REFERENCE = (40_000, 10_000)  # the v3 setting, reported only
PILOT_EPOCHS = 4
N_BOOT = 200
ASSUMED_EPOCHS = 10
BUDGET_CPU_S = 840.0
# v3 cpu run (results of 2026-11, 21 units): CPU-s per epoch of each arm / fcn_tribce's (1.78 s at 40k / 10k)
V3_COST_RATIO = {
    "lr": 0.13,
    "dnn": 1.40,
    "dcnv2": 1.67,
    "ecn": 0.51,
    "lcn": 0.64,
    "fcn_tribce": 1.00,
    "fcn_bce": 1.00,
}
V3_FCN_CPU_S_PER_EPOCH = 1.78


def weighted_auc(y: np.ndarray, order: np.ndarray, w: np.ndarray) -> float:
    """AUC = P(score_pos > score_neg) with row weights w (bootstrap counts); ``order`` sorts the scores
    ascending. Ties between float32 scores are ignored (a noise estimate, not a metric). Equal to
    ``sklearn.metrics.roc_auc_score(y, p, sample_weight=w)`` on tie-free scores (tests/test_fcn_select_size.py);
    written out because sklearn re-sorts per call, and the pilot needs N_BOOT replicates of one ordering."""
    ys, ws = y[order], w[order]
    wpos, wneg = ws * ys, ws * (1 - ys)
    pos_above = wpos.sum() - np.cumsum(wpos)  # positive weight strictly after each row in the order
    return float((wneg * pos_above).sum() / (wpos.sum() * wneg.sum()))


def noise(y: np.ndarray, preds: list[np.ndarray], v: int, rng: np.random.Generator) -> dict:
    """Bootstrap std of the paired epoch-to-epoch difference (max over epochs 2..) and of AUC_e itself."""
    y = y[:v].astype(np.float64)
    orders = [np.argsort(p[:v], kind="stable") for p in preds]
    weights = rng.poisson(1.0, size=(N_BOOT, v)).astype(np.float64)
    aucs = np.array([[weighted_auc(y, o, w) for o in orders] for w in weights])  # (boot, epoch)
    paired = np.diff(aucs, axis=1).std(0)
    return {"paired_std": float(paired.max()), "unpaired_std": float(aucs[:, 1:].std(0).max())}


def pilot(n_train: int, n_valid: int, cfg: dict) -> dict:
    from fcn.data import SyntheticConfig, make_synthetic
    from fcn.train import fit

    base = SyntheticConfig()
    data = make_synthetic(
        replace(base, extra_train=n_train - base.n_train, extra_valid=n_valid - base.n_valid)
    )
    data.x_test, data.y_test = data.x_test[:0], data.y_test[:0]  # the pilot never predicts the test split
    preds, cpu = [], []
    t0 = time.process_time()

    def on_epoch(epoch: int, p_valid: np.ndarray) -> None:
        nonlocal t0
        cpu.append(time.process_time() - t0)
        preds.append(p_valid.copy())
        if epoch == PILOT_EPOCHS:
            raise _Done  # stop before fit's test pass

    try:
        fit("fcn_tribce", data, {**cfg, "max_epochs": PILOT_EPOCHS}, seed=0, on_epoch=on_epoch)
    except _Done:
        pass
    from sklearn.metrics import roc_auc_score

    curve = [float(roc_auc_score(data.y_valid, p)) for p in preds]
    gains = np.diff(curve)
    row = {
        "n_train": n_train,
        "n_valid": n_valid,
        "steps_per_epoch": -(-n_train // cfg["batch_size"]),
        "val_curve": curve,
        "gains": gains.tolist(),
        "g": float(np.median(gains)),
        "cpu_s_per_epoch": float(np.mean(cpu)),
        "noise": {},
    }
    rng = np.random.default_rng(0)
    for v in [x for x in VALID_LADDER if x <= n_valid] or [n_valid]:
        row["noise"][v] = noise(data.y_valid, preds, v, rng)
    return row


class _Done(Exception):
    pass


def main() -> None:
    import reproduce  # the cpu config (protocol v3 rules, batch 256)

    torch.set_num_threads(1)
    cfg = {**reproduce.SCALES["cpu"], "arm": "fcn_tribce"}
    rows = [pilot(*REFERENCE, cfg)]
    print(json.dumps(rows[-1]), flush=True)
    for n in TRAIN_CANDIDATES:
        rows.append(pilot(n, max(VALID_LADDER), cfg))
        print(json.dumps(rows[-1]), flush=True)
    ratio = sum(V3_COST_RATIO.values())
    contention = rows[0]["cpu_s_per_epoch"] / V3_FCN_CPU_S_PER_EPOCH
    choice = None
    for r in rows[1:]:
        r["cpu_s_per_epoch_idle"] = r["cpu_s_per_epoch"] / contention
        r["projected_cpu_s"] = 3 * ASSUMED_EPOCHS * ratio * r["cpu_s_per_epoch_idle"]
        r["fits_budget"] = r["projected_cpu_s"] <= BUDGET_CPU_S
        passing = [v for v in VALID_LADDER if r["noise"][v]["paired_std"] <= r["g"] / 4]
        r["noise_ok_at"] = passing
        if choice is None and r["fits_budget"] and passing:
            choice = {"n_train": r["n_train"], "n_valid": min(passing), "noise_rule_met": True}
    if choice is None:
        fits = [r["n_train"] for r in rows[1:] if r["fits_budget"]]
        n = max(fits) if fits else min(TRAIN_CANDIDATES)
        choice = {"n_train": n, "n_valid": max(VALID_LADDER), "noise_rule_met": False}
    out = {"rule": __doc__, "contention_factor": contention, "rows": rows, "chosen": choice}
    path = Path(__file__).parents[1] / "results" / "size_selection.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print("chosen:", choice)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    main()
