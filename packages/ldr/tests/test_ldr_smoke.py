"""Noise generation as the official code does it, and the whole reproduce.py at smoke scale."""

from pathlib import Path

import torch
from ldr.experiments import noisy_labels

from xentlab.data.label_noise import LETTER_PAIRS, pair_mapping
from xentlab.testing import run_smoke


def test_noise_settings():
    y = torch.arange(26).repeat(400)
    assert torch.equal(noisy_labels(y, 26, "letter", "clean", 0.0, seed=0), y)
    u = noisy_labels(y, 26, "letter", "uniform", 0.6, seed=0)
    # uniform noise may redraw the true class: about 0.6 * 25/26 of the labels change
    assert abs((u != y).float().mean().item() - 0.6 * 25 / 26) < 0.02
    c = noisy_labels(y, 26, "letter", "class_dependent", 0.3, seed=0)
    m = torch.from_numpy(pair_mapping(26, LETTER_PAIRS))
    assert torch.all((c == y) | (c == m[y]))
    assert torch.all(c[y == 0] == 0)  # A is in no pair
    other = noisy_labels(torch.arange(5).repeat(10), 5, "wine", "class_dependent", 1.0, seed=0)
    assert torch.equal(other, (torch.arange(5).repeat(10) + 1) % 5)


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=("--workers", "1"))
    assert any(c["id"] == "ldr-beats-ce-uniform0.6-letter" for c in result["claims"])
