"""Metric helpers and the whole reproduce.py at smoke scale."""

from pathlib import Path

import torch
from harmonic.experiments import build, prototype_alignment

from xentlab.testing import run_smoke


def test_alignment_is_one_when_prototypes_are_class_means():
    torch.manual_seed(0)
    model = build("euclidean", 4, 3, (5,), 1.0)
    x = torch.randn(30, 4)
    y = torch.arange(3).repeat(10)
    with torch.no_grad():
        z = model.embed(x)
        model.head.weight.copy_(torch.stack([z[y == c].mean(0) for c in range(3)]))
    assert abs(prototype_alignment(model, x, y, 3) - 1.0) < 1e-6


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=("--workers", "1"))
    assert "digits/acc_cosine" in result["metrics"]
