"""Pre-training cache and RNG isolation, arm errors, determinism of one unit, and the smoke run."""

from pathlib import Path

import pytest
import torch
from core_tuning.experiment import RunConfig, run
from core_tuning.pretrain import PretrainConfig, pretrained_backbone

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"
TINY_PRE = dict(n_per_class=20, widths=(4, 8, 8), proj_dim=8, epochs=1, batch_size=64)
TINY = dict(pretrain=TINY_PRE, n_labelled_per_class=4, n_val_per_class=2, n_test_per_class=3, epochs=2,
            batch_size=16, contrast_dim=8)  # fmt: skip


def test_pretraining_is_cached_and_leaves_the_rng_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    cfg = PretrainConfig(**{**TINY_PRE, "widths": (4, 8, 8)})
    torch.manual_seed(123)
    first = pretrained_backbone(cfg, "cpu")
    after_training = torch.rand(1)
    torch.manual_seed(123)
    second = pretrained_backbone(cfg, "cpu")  # read from the cache
    assert torch.equal(torch.rand(1), after_training)  # same stream whether trained or cached
    assert all(torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    assert len(list(tmp_path.rglob("simclr-*.pt"))) == 1


def test_unit_is_deterministic_and_arms_differ(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    out = {}
    for arm, rep in (("core", 0), ("core", 1), ("ce", 0)):
        torch.manual_seed(7)
        out[arm, rep] = run(RunConfig(**TINY, arm=arm), 7, device="cpu", log=lambda **k: None)
    assert out["core", 0]["curves"] == out["core", 1]["curves"]
    assert out["core", 0]["test_acc"] == out["core", 1]["test_acc"]
    assert out["ce", 0]["final_con_loss"] == 0.0 and out["core", 0]["final_con_loss"] > 0
    assert 0 <= out["ce", 0]["test_acc"] <= 1 and 1 <= out["ce", 0]["best_epoch"] <= 2


def test_bad_arm():
    with pytest.raises(ValueError, match="arm"):
        run(RunConfig(arm="mocov2"), 0, device="cpu", log=lambda **k: None)


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert result["package"] == "core-tuning"
    assert set(result["metrics"]) >= {"core/test_acc", "ce/test_acc", "gain/test_acc_pts"}
