"""Truncated L_q loss (the label-noise table's base loss) and the official noise models."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from opl.experiment import RunConfig, noisy_labels
from opl.truncated import OFFICIAL_K, OFFICIAL_Q, is_prune_epoch, lq, pruning_weights, truncated_loss

from xentlab.data.label_noise import next_class_mapping, transition_matrix
from xentlab.testing import assert_close, check_gradients

PKG = Path(__file__).parents[1]


def two_class_logits(*p0):
    """Logits (log(p / (1 - p)), 0): softmax gives class 0 exactly probability p."""
    return torch.tensor([[math.log(p / (1 - p)), 0.0] for p in p0], dtype=torch.float64)


def test_official_constants():
    # label_noise/truncated_loss/TruncatedLoss.py: TruncatedLoss(q=0.7, k=0.5)
    assert OFFICIAL_Q == 0.7 and OFFICIAL_K == 0.5


def test_lq_hand_values():
    # q = 0.5: L_q(p) = 2 (1 - sqrt p); p = 0.25 -> 1, p = 0.64 -> 0.4; q = 1: 1 - p
    p = torch.tensor([0.25, 0.64], dtype=torch.float64)
    assert_close(lq(p, 0.5), torch.tensor([1.0, 0.4], dtype=torch.float64))
    assert_close(lq(p, 1.0), 1 - p)


def test_truncated_loss_hand_derived():
    # two samples of label 0 with p_0 = 0.25 and 0.64; q = 0.5, k = 0.36 (sqrt k = 0.6, L_q(k) = 0.8):
    # per-sample L_q(p) - L_q(k) = 1.0 - 0.8 = 0.2 and 0.4 - 0.8 = -0.4.
    logits, y = two_class_logits(0.25, 0.64), torch.tensor([0, 0])
    both = truncated_loss(logits, y, torch.ones(2), q=0.5, k=0.36)
    assert_close(both, torch.tensor(-0.1, dtype=torch.float64))  # mean(0.2, -0.4)
    # pruning the first sample: it contributes 0 but still counts in the batch mean (official torch.mean)
    pruned = truncated_loss(logits, y, torch.tensor([0.0, 1.0]), q=0.5, k=0.36)
    assert_close(pruned, torch.tensor(-0.2, dtype=torch.float64))


def test_truncated_loss_matches_formula_at_official_q_k():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (7,), generator=g)
    w = torch.tensor([1.0, 0, 1, 1, 0, 1, 1])
    p = torch.softmax(logits, 1)[torch.arange(7), y].tolist()
    ref = sum(wi * ((1 - pi**0.7) / 0.7 - (1 - 0.5**0.7) / 0.7) for wi, pi in zip(w.tolist(), p)) / 7
    assert_close(truncated_loss(logits, y, w), torch.tensor(ref, dtype=torch.float64))


def test_pruning_keeps_p_above_k():
    # official update_weight: w = [L_q(k) > L_q(p)] = [p > k]
    w = pruning_weights(two_class_logits(0.25, 0.64, 0.49, 0.51), torch.tensor([0, 0, 0, 0]), k=0.5)
    assert w.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_gradcheck_and_pruned_samples_get_no_gradient():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    w = torch.tensor([1.0, 0, 1, 1, 0, 1])
    check_gradients(lambda z: truncated_loss(z, y, w), logits)
    z = logits.clone().requires_grad_(True)
    truncated_loss(z, y, w).backward()
    assert torch.all(z.grad[w == 0] == 0) and torch.all(z.grad[w == 1].abs().sum(1) > 0)


def test_prune_schedule():
    # official CIFAR-100 run: before 1-based epochs 80, 90, ..., 150 (8 prunings); cpu: 24, 27, ..., 45
    assert [e + 1 for e in range(150) if is_prune_epoch(e, 80, 10)] == list(range(80, 151, 10))
    assert [e + 1 for e in range(45) if is_prune_epoch(e, 24, 3)] == list(range(24, 46, 3))
    assert not any(is_prune_epoch(e, 1, 0) for e in range(10))


def test_pairflip_noise_matrix_and_labels():
    # noisify_pairflip: P[i, i] = 1 - n, P[i, (i + 1) mod K] = n
    t = transition_matrix(10, 0.4, kind="class_dependent", mapping=next_class_mapping(10))
    assert_close(torch.from_numpy(t.sum(1)), torch.ones(10, dtype=torch.float64))
    for i in range(10):
        assert t[i, i] == pytest.approx(0.6) and t[i, (i + 1) % 10] == pytest.approx(0.4)
        assert np.count_nonzero(t[i]) == 2
    y = torch.arange(10).repeat(2000)
    noisy = noisy_labels(y, 10, 0.4, "pairflip", seed=3)
    changed = noisy != y
    assert torch.equal(noisy[changed], (y[changed] + 1) % 10)  # only the next class
    assert abs(changed.float().mean().item() - 0.4) < 0.02


def test_symmetric_noise_labels():
    # noisify_multiclass_symmetric: P[i, i] = 1 - n, P[i, j] = n / (K - 1)
    y = torch.arange(10).repeat(2000)
    noisy = noisy_labels(y, 10, 0.4, "symmetric", seed=3)
    changed = noisy != y
    assert abs(changed.float().mean().item() - 0.4) < 0.02
    shift = ((noisy[changed] - y[changed]) % 10).bincount(minlength=10)
    assert shift[0] == 0 and (shift[1:].float() / changed.sum() - 1 / 9).abs().max() < 0.02
    assert noisy_labels(y, 10, 0.0, "pairflip", seed=3) is y


def test_bad_inputs_raise():
    z, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="q must"):
        truncated_loss(z, y, torch.ones(3), q=0.0)
    with pytest.raises(ValueError, match="k must"):
        truncated_loss(z, y, torch.ones(3), k=1.0)
    with pytest.raises(ValueError, match="weights"):
        truncated_loss(z, y, torch.ones(2))
    with pytest.raises(ValueError, match="targets"):
        truncated_loss(z, y[:2], torch.ones(3))
    with pytest.raises(ValueError, match="noise_type"):
        RunConfig(noise_type="asymmetric")
    with pytest.raises(ValueError, match="loss"):
        RunConfig(loss="gce")
