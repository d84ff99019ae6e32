"""Re-check of the NER epoch budget (14; 18 since the fifth cpu run) by the rule that set it (README,
"Learning-rate re-selection under per-arm dropout streams", written before this script ran). Reads validation
curves only; trains nothing.

The rule (first cpu run): LS-unLLaMA's validation F1 on the right task was still rising at the last epoch of a
10-epoch budget, so the budget was raised by 4 epochs to 14 for every arm and task. It gave no number; here
"still rising at the end" is: the last epoch of the seed-mean validation curve beats the best epoch up to 4
epochs before the end (the stretch the raise added) by more than ``TIE_POINTS`` (the lr rule's 1.0 point).
Applied to every NER arm of the committed cpu units (seeds 0-3, the fourth run: per-arm dropout streams) and,
as a one-seed cross-check, to the probe seed's curves at the chosen lr in the re-selection's result file.

Raised to 18 (README, "NER epoch budget 14 -> 18", written before the rerun): the rule flagged right-task
LS-unLLaMA at 14 (+4.86), so the budget was raised by the same step (+4 -> 18), the lr re-selected at 18 and
``right`` / ``left`` rerun. The rule is unchanged at 18 (``ADDED`` stays 4: the last epoch against the best of
epochs 1-14, the stretch this raise added) and is re-applied to the rerun's units and to the 18-epoch
selection's probe-seed curves; its answer is reported, and the budget is not raised again in that session.

Run: uv run python packages/ls-llama/scripts/check_epoch_budget.py [--pilot scripts/select_lr_ep18_result.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIE_POINTS = 1.0  # the lr rule's margin (select_lr.TIE_POINTS)
ADDED = 4  # epochs the first raise added (10 -> 14)
NER_ARMS = {"right": ("causal", "unmasked", "unmasked_official"), "left": ("causal", "unmasked")}


def late_gain(curve) -> float:
    """Last epoch minus the best epoch before the last ``ADDED`` epochs (points)."""
    curve = np.asarray(curve, dtype=float)
    if len(curve) <= ADDED:
        raise ValueError(f"a curve of {len(curve)} epochs has no epoch before the last {ADDED}")
    return float(curve[-1] - curve[:-ADDED].max())


def still_rising(curve) -> bool:
    return late_gain(curve) > TIE_POINTS


def unit_curves(units: Path, exp: str, arm: str) -> dict[int, list[float]]:
    out = {}
    for f in sorted((units / exp).glob("seed*.json")):
        unit = json.loads(f.read_text())
        out[unit["seed"]] = unit["artifacts"][f"val_curve_{arm}"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=Path, default=ROOT / "results" / "cpu" / "units")
    ap.add_argument("--pilot", type=Path, default=None, help="re-selection result file (probe-seed curves)")
    args = ap.parse_args()
    rows = []
    for exp, arms in NER_ARMS.items():
        for arm in arms:
            curves = unit_curves(args.units, exp, arm)
            mean = np.mean(list(curves.values()), axis=0)
            per_seed = {s: round(late_gain(c), 2) for s, c in curves.items()}
            last_is_best = [s for s, c in curves.items() if int(np.argmax(c)) == len(c) - 1]
            rows.append({"curves": f"{exp}/{arm}, seeds {sorted(curves)} mean", "epochs": len(mean),
                         "late_gain": round(late_gain(mean), 2), "still_rising": still_rising(mean),
                         "late_gain_per_seed": per_seed, "seeds_best_at_last_epoch": last_is_best,
                         "mean_curve": [round(v, 2) for v in mean]})  # fmt: skip
    if args.pilot is not None:
        pilot = json.loads(args.pilot.read_text())
        lr = pilot["chosen_lr"]
        for job in pilot["jobs"]:
            if (
                job["lr"] != lr
                or job["exp"] not in NER_ARMS
                or "val_curve" not in next(iter(job["arms"].values()))
            ):
                continue
            for arm, v in job["arms"].items():
                rows.append({"curves": f"{job['exp']}/{arm}, probe seed {pilot['probe_seed']}, lr {lr:g}",
                             "epochs": len(v["val_curve"]), "late_gain": round(late_gain(v["val_curve"]), 2),
                             "still_rising": still_rising(v["val_curve"]),
                             "mean_curve": [round(x, 2) for x in v["val_curve"]]})  # fmt: skip
    for r in rows:
        print(json.dumps(r))
    flagged = [r["curves"] for r in rows if r["still_rising"]]
    print("still rising at the end:", flagged if flagged else "none")


if __name__ == "__main__":
    main()
