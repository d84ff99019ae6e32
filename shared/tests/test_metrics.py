import numpy as np
import pytest
import torch

from xentlab.metrics import accuracy, bootstrap_ci, ece, summarize


def test_bootstrap_ci_deterministic_and_brackets_mean():
    x = [0.2, 0.4, 0.5, 0.9, 0.7]
    lo, hi = bootstrap_ci(x)
    assert (lo, hi) == bootstrap_ci(x)
    assert lo < np.mean(x) < hi
    assert min(x) <= lo and hi <= max(x)


def test_bootstrap_ci_degenerate_cases():
    assert bootstrap_ci([0.3]) == (0.3, 0.3)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_summarize():
    s = summarize([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["std"] == pytest.approx(1.0)  # sample std, ddof=1


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(logits, torch.tensor([0, 1]))


def test_ece_hand_computed():
    # 4 samples, confidences 0.9, 0.9, 0.6, 0.6; the first bin (0.9) has accuracy 1/2, the 0.6 bin 1/2.
    # ECE = 0.5*|0.9-0.5| + 0.5*|0.6-0.5| = 0.25
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    target = torch.tensor([0, 1, 0, 1])
    assert ece(probs, target, n_bins=10) == pytest.approx(0.25, abs=1e-6)
