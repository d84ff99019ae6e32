"""reproduce.py --scale smoke runs offline end to end, writes a valid result.json (with the lr
selected on validation for each method, and that lr's held-out metrics reported), and two runs
with one seed give identical metrics (the second run reuses the cached SFT model, so this also
checks that the cache reloads the very same weights)."""

from __future__ import annotations

from pathlib import Path

from pacs.select import exp_name

from xentlab.testing import run_smoke


def test_smoke_and_determinism(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    reproduce = Path(__file__).parents[1] / "reproduce.py"
    first = run_smoke(reproduce, tmp_path / "a")
    metrics = first["metrics"]
    for exp in ("sft", "pacs", "grpo"):
        assert 0.0 <= metrics[f"{exp}/pass@1"]["mean"] <= metrics[f"{exp}/pass@4"]["mean"] <= 1.0
    for method in ("pacs", "grpo"):
        lr = metrics[f"{method}/lr"]["per_seed"]["0"]
        chosen = exp_name(method, lr)
        assert first["config"][chosen]["rl"]["lr"] == lr
        assert metrics[f"{method}/pass@1"]["per_seed"] == metrics[f"{chosen}/pass@1"]["per_seed"]
        others = [e for e in first["config"] if e.startswith(f"{method}-lr") and e != chosen]
        assert others and all(
            metrics[f"{e}/val_pass@1"]["per_seed"]["0"] <= metrics[f"{chosen}/val_pass@1"]["per_seed"]["0"]
            for e in others
        )
    for png in ("pass_at_k.png", "reward_curves.png", "lr_selection.png"):
        assert (tmp_path / "a" / png).exists()
    second = run_smoke(reproduce, tmp_path / "b")
    assert {k: v["per_seed"] for k, v in second["metrics"].items()} == {
        k: v["per_seed"] for k, v in metrics.items()
    }
