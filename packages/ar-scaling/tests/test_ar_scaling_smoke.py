"""The whole reproduce.py at smoke scale (in-process); the claims' thresholds are pinned in
test_ar_scaling_audit2.py."""

from __future__ import annotations

from pathlib import Path

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path, extra_args=("--workers", "1"))
    m = result["metrics"]
    assert "lN/l_inf" in m and "lN/heldout_abs_rel_err" in m
    # 3 fit widths + 1 held-out width, every one with its size and final loss
    sizes = [k for k in m if k.endswith("/n_nonemb")]
    assert len(sizes) == 4
    assert (tmp_path / "loss_vs_params.png").exists() and (tmp_path / "loss_vs_compute.png").exists()
