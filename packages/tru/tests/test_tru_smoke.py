"""reproduce.py --scale smoke runs end to end in this process and writes a valid result."""

from __future__ import annotations

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    assert result["package"] == "tru"
    metrics = result["metrics"]
    for m in ("ga", "graddiff", "npo", "refusal", "tru"):
        for k in (
            "forget_em",
            "forget_refusal",
            "retain_em",
            "retain_refusal",
            "paraphrase_em",
            "relearn_em",
        ):
            assert f"{m}/{k}" in metrics, f"{m}/{k}"
    assert "tru/alpha" in metrics and "ga/alpha" not in metrics
    assert {c["id"] for c in result["claims"]} >= {"tru-coherent-refusal", "refusal-only-over-refuses"}
    assert (tmp_path / "tradeoff.png").exists() and (tmp_path / "rates.png").exists()
