"""The whole reproduce.py pipeline at smoke scale (MDP, MinAtar, speed benchmark and Atari through ale-py)."""

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    assert {c["id"] for c in result["claims"]} >= {
        "mdp-noisy-hl-vs-mse",
        "sps-vs-cleanrl",
        "atari-hl-gauss-scales",
    }
    assert "atari_pong_hl_gauss_w2/hns" in result["metrics"]
    assert (tmp_path / "atari_iqm.json").exists() and (tmp_path / "minatar_curves.png").exists()
