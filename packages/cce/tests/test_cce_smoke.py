"""The whole pipeline at --scale smoke: valid result.json with finite metrics, report, figures."""

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    assert "lm/curve_max_abs_diff" in result["metrics"]
    assert "memory_time/ours_loss_err" in result["metrics"]
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == [
        "lm_convergence_filtering.png",
        "memory_time.png",
    ]
