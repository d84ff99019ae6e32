"""reproduce.py --scale smoke runs end to end, offline, with finite metrics."""

from __future__ import annotations

import math
from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    metrics = result["metrics"]
    for exp in ("ce", "dco4", "dco32", "dco256"):
        assert math.isfinite(metrics[f"{exp}/pass@256"]["mean"])
    assert (tmp_path / "pass_vs_epoch.png").exists() or any(tmp_path.rglob("pass_vs_epoch.png"))
