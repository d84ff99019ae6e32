"""Diagnostic pilot (audit of the optimiser defaults; chooses nothing): seed 0, both NER tasks, the
causal and unmasked arms, finetuned with the official Trainer's defaults (``trainer_defaults=True``:
linear lr decay to 0, no decay on bias/norm, grad-norm clip 1.0) and otherwise the cpu config. It reads
VALIDATION data only: the test split is replaced by the validation split before finetuning, so no test
number is computed. Both optimisers run here at the first two cpu runs' peak lr 2e-3 (``FIRST_RUNS_LR``):
when the pilot first ran it read the constant-lr side from the committed units, which since the second cpu run
are no longer that run's. Each optimiser gets its own process-like sequence (seed, pretrain, then the arms in
the unit's order), because the finetuning dropout drew from the global torch RNG: an arm's numbers depended on
the arms run before it in the same process. ``trainer_defaults=False`` is the first cpu run's optimiser.
Since the fourth cpu run ``finetune`` seeds each arm's dropout stream itself (README, "Fidelity audit, second
reader (audit 2)"), so rerunning this script now gives other numbers than the ones the README records.
Run: OMP_NUM_THREADS=1 uv run python packages/ls-llama/scripts/pilot_trainer_defaults.py
"""

import dataclasses
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ls_llama.data import make_task, task_config  # noqa: E402
from ls_llama.train import FinetuneConfig, finetune, pretrain_lm  # noqa: E402
from reproduce import EXPERIMENTS  # noqa: E402

from xentlab.models.tiny_lm import TinyLMConfig  # noqa: E402
from xentlab.train import seed_everything  # noqa: E402

FIRST_RUNS_LR = 2e-3  # the peak lr of the first two cpu runs, under which this pilot ran


def main(seed: int = 0) -> None:
    torch.set_num_threads(1)
    rows = {}
    for exp in (e for e in EXPERIMENTS if e.name in ("right", "left")):
        cfg = exp.configs["cpu"]
        for name, trainer_defaults in (("trainer_defaults", True), ("constant_lr", False)):
            seed_everything(seed)  # the runner seeds each unit the same way before calling it
            data = make_task(cfg["task"], task_config(**cfg["data"]), seed)
            data = dataclasses.replace(data, test=data.val)  # validation only: test is never read
            lm_cfg = TinyLMConfig(vocab_size=data.vocab_size, **cfg["lm"])
            backbone, _ = pretrain_lm(data, lm_cfg, cfg["pretrain_steps"], seed=seed)
            ft = FinetuneConfig(**{**cfg["ft"], "epochs": cfg["epochs"], "lr": FIRST_RUNS_LR,
                                   "trainer_defaults": trainer_defaults})  # fmt: skip
            for arm in ("causal", "unmasked"):  # the unit's order
                r = finetune(backbone, data, arm, ft, seed=seed)
                row = rows.setdefault(f"{exp.name}/{arm}", {})
                row[f"val_f1_{name}"] = round(100 * r["val_f1"], 2)
                row[f"best_epoch_{name}"] = r["best_epoch"]
                print(exp.name, arm, name, row, flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
