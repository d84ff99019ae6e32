"""The whole pipeline at --scale smoke (tiny model, 2 unlearning steps, 8 samples per question)."""

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    assert result["scale"] == "smoke"
