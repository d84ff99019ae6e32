"""The whole pipeline at smoke scale: valid result.json, finite metrics, deterministic."""

from __future__ import annotations

from pathlib import Path

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_smoke_runs_and_is_deterministic(tmp_path):
    a = run_smoke(REPRO, tmp_path / "a")
    b = run_smoke(REPRO, tmp_path / "b")
    for key in ("main/dpo_reward", "main/spo_reward", "main/spo_lam05_degree_acc", "main/sft_loss"):
        assert a["metrics"][key]["mean"] == b["metrics"][key]["mean"], key
