from pathlib import Path

import torch

from xentlab.repro import RunContext
from xentlab.testing import load_reproduce, run_smoke
from xentlab.train import seed_everything

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def test_smoke_and_determinism(tmp_path):
    result = run_smoke(REPRODUCE, tmp_path / "run")
    assert result["package"] == "lase"
    assert {c["id"] for c in result["claims"]} >= {"lase-gap-ci-includes-zero", "eer-no-worse"}
    for name in ("embeddings_2d.png", "gap_margin.png", "training_curves.png"):
        assert (tmp_path / "run" / name).is_file()
    # the same unit again with the same seed gives the same metrics (the runner seeds torch per unit)
    rep = load_reproduce(REPRODUCE)
    seed_everything(0)
    ctx = RunContext("smoke", 0, torch.device("cpu"), "lase", tmp_path, tmp_path / "again.jsonl", False)
    again = rep.lase(rep.SMOKE | {"eval": rep.SMOKE["eval"] | {"projection": False}}, 0, ctx)
    for k in ("gap", "margin", "eer", "lang_probe_acc", "final_supcon"):
        assert again[k] == result["metrics"][f"lase/{k}"]["per_seed"]["0"], k
