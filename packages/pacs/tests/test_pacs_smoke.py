"""reproduce.py --scale smoke runs offline end to end, writes a valid result.json, and two runs
with one seed give identical metrics (the second run reuses the cached SFT model, so this also
checks that the cache reloads the very same weights)."""

from __future__ import annotations

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke_and_determinism(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    reproduce = Path(__file__).parents[1] / "reproduce.py"
    first = run_smoke(reproduce, tmp_path / "a")
    metrics = first["metrics"]
    for exp in ("sft", "pacs", "grpo"):
        assert 0.0 <= metrics[f"{exp}/pass@1"]["mean"] <= metrics[f"{exp}/pass@4"]["mean"] <= 1.0
    assert any((tmp_path / "a").rglob("pass_at_k.png")) and any((tmp_path / "a").rglob("reward_curves.png"))
    second = run_smoke(reproduce, tmp_path / "b")
    assert {k: v["per_seed"] for k, v in second["metrics"].items()} == {
        k: v["per_seed"] for k, v in metrics.items()
    }
