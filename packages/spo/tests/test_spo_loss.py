"""spo.spo_loss and spo.evaluate: pooling, the degree head, the combined objective, win rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from spo.evaluate import win_rate
from spo.spo_loss import DegreeHead, degree_loss, response_mean_pool, spo_objective

from xentlab.testing import assert_close, check_gradients


def test_mean_pool_over_response_tokens_only():
    h = torch.arange(2 * 4 * 3, dtype=torch.float64).view(2, 4, 3)
    labels = torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]])
    pooled = response_mean_pool(h, labels)
    assert_close(pooled[0], (h[0, 2] + h[0, 3]) / 2)  # mean of the two response positions
    assert_close(pooled[1], h[1, 1])
    with pytest.raises(ValueError, match="at least one response token"):
        response_mean_pool(h, torch.full((2, 4), -100))
    with pytest.raises(ValueError, match="disagree"):
        response_mean_pool(h, labels[:, :3])
    check_gradients(lambda x: response_mean_pool(x, labels), h.clone().requires_grad_(True))


def test_degree_loss_uniform_logits_is_log_k():
    # uniform logits over K classes: cross-entropy = log K whatever the labels
    logits = torch.zeros(5, 4, dtype=torch.float64)
    assert_close(
        degree_loss(logits, torch.tensor([0, 1, 2, 3, 0])), torch.tensor(math.log(4), dtype=torch.float64)
    )
    head = DegreeHead(3, 4).double()
    h = torch.randn(2, 4, 3, dtype=torch.float64)
    labels = torch.tensor([[-100, 1, 2, 3], [-100, -100, 2, 3]])
    assert head(h, labels).shape == (2, 4)
    with pytest.raises(ValueError, match="n_classes"):
        DegreeHead(3, 1)


def test_spo_objective():
    a, s = torch.tensor(0.7), torch.tensor(1.2)
    assert float(spo_objective(a, s, 0.5)) == pytest.approx(0.7 + 0.6)  # L_align + lambda * L_SSL
    assert spo_objective(a, None, 0.5) is a and spo_objective(a, s, 0.0) is a
    with pytest.raises(ValueError, match="lambda"):
        spo_objective(a, s, -1.0)


def test_win_rate_counts_ties_half():
    assert win_rate(np.array([2, 1, 0, 4]), np.array([1, 1, 3, 4])) == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    with pytest.raises(ValueError):
        win_rate(np.array([1, 2]), np.array([1]))


def test_degree_head_is_linear_on_the_response_pool_and_loss_is_plain_ce():
    # the head sees only the response tokens' mean state; L_SSL is the plain mean CE (no smoothing)
    torch.manual_seed(0)
    head = DegreeHead(3, 4).double()
    h = torch.randn(2, 4, 3, dtype=torch.float64)
    labels = torch.tensor([[-100, 1, 2, 3], [-100, -100, 2, -100]])
    pooled = torch.stack([h[0, 1:].mean(0), h[1, 2]])
    assert_close(head(h, labels), pooled @ head.proj.weight.T + head.proj.bias)
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    # row 0: -log(e^2 / (e^2 + 3)); row 1, label 3: -log(1 / (e + 3))
    want = (math.log(math.e**2 + 3) - 2 + math.log(math.e + 3)) / 2
    assert float(degree_loss(logits, torch.tensor([0, 3]))) == pytest.approx(want, rel=1e-12)
