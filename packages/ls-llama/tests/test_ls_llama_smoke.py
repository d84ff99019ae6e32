from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    assert "right/gap_f1" in result["metrics"] and "left/gap_f1" in result["metrics"]
    assert "seqclf/gap_acc" in result["metrics"] and (tmp_path / "seqclf_acc.png").exists()
