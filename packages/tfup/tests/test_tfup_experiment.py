"""Strong view, ablation caches, determinism and the smoke run."""

from pathlib import Path

import pytest
import torch
from tfup.experiment import confidence_cache, random_cache, strong_view

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_strong_view_deterministic_and_keeps_constant_images():
    x = torch.rand(6, 3, 16, 16)
    a = strong_view(x, (0.5, 1.0), torch.Generator().manual_seed(0))
    b = strong_view(x, (0.5, 1.0), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    flat = torch.full((4, 3, 16, 16), 0.3)  # a crop of a constant image is the same constant
    assert torch.allclose(strong_view(flat, (0.5, 1.0), torch.Generator().manual_seed(1)), flat, atol=1e-6)


def test_random_cache_uses_zero_shot_labels():
    pred = torch.tensor([0, 0, 1, 1, 1, 2, 0, 1])
    idx, lab = random_cache(pred, 3, 2, torch.Generator().manual_seed(0))
    assert (pred[idx] == lab).all() and torch.bincount(lab).tolist() == [2, 2, 1]


def test_confidence_cache_takes_top_probabilities():
    w = torch.eye(2)
    f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5]])
    idx, lab = confidence_cache(f, w, 1)
    assert idx.tolist() == [0, 2] and lab.tolist() == [0, 1]


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    m = result["metrics"]
    assert 0.0 <= m["target/tfup"]["mean"] <= 1.0
    assert "gain/tfup_vs_zs_pts" in m
