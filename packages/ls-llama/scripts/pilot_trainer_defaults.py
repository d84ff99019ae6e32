"""Diagnostic pilot (audit of the optimiser defaults; chooses nothing): seed 0, both NER tasks, the
causal and unmasked arms, finetuned with the official Trainer's defaults (``trainer_defaults=True``:
linear lr decay to 0, no decay on bias/norm, grad-norm clip 1.0) and otherwise the cpu config. It reads
VALIDATION data only: the test split is replaced by the validation split before finetuning, so no test
number is computed. Compare with ``val_f1_*`` of ``results/cpu/units/{right,left}/seed0.json`` (same
seed, constant lr). Run: OMP_NUM_THREADS=1 uv run python packages/ls-llama/scripts/pilot_trainer_defaults.py
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


def main(seed: int = 0) -> None:
    torch.set_num_threads(1)
    rows = {}
    for exp in (e for e in EXPERIMENTS if e.name in ("right", "left")):
        cfg = exp.configs["cpu"]
        seed_everything(seed)  # the runner seeds each unit the same way before calling it
        data = make_task(cfg["task"], task_config(**cfg["data"]), seed)
        data = dataclasses.replace(data, test=data.val)  # validation only: test is never read
        lm_cfg = TinyLMConfig(vocab_size=data.vocab_size, **cfg["lm"])
        backbone, _ = pretrain_lm(data, lm_cfg, cfg["pretrain_steps"], seed=seed)
        ft = FinetuneConfig(epochs=cfg["epochs"], trainer_defaults=True, **cfg["ft"])
        old = json.loads((ROOT / "results/cpu/units" / exp.name / f"seed{seed}.json").read_text())
        for arm in ("causal", "unmasked"):
            r = finetune(backbone, data, arm, ft, seed=seed)
            rows[f"{exp.name}/{arm}"] = {
                "val_f1_trainer_defaults": round(100 * r["val_f1"], 2),
                "val_f1_constant_lr": round(old["metrics"][f"val_f1_{arm}"], 2),
                "best_epoch": r["best_epoch"],
            }
            print(exp.name, arm, rows[f"{exp.name}/{arm}"], flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
