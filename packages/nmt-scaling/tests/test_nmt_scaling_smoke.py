"""The whole reproduce.py at smoke scale (in-process): a valid result.json, the fits and both figures."""

from __future__ import annotations

from pathlib import Path

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path, extra_args=("--workers", "1"))
    m = result["metrics"]
    assert "bi/r2" in m and "cmp/uni_minus_bi_heldout_err" in m
    # 5 fit models (1..3 per side around the (2,2) base) + the held-out (3,3)
    assert len([k for k in m if k.endswith("/n_enc")]) == 6
    assert (tmp_path / "ladders_and_fits.png").exists() and (tmp_path / "learning_curves.png").exists()
