"""reproduce.py --scale smoke runs offline end to end; the semantic scorer is frozen (a copy)."""

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    m = result["metrics"]
    for tag in ("sft", "rl"):
        assert 0.0 <= m[f"securefix/{tag}_sec_rate"]["mean"] <= 1.0
        assert 0.0 <= m[f"securefix/{tag}_codebleu"]["mean"] <= 1.0
    assert "gain/sec_pts" in m
    assert (tmp_path / "sft_vs_rl.png").exists()
