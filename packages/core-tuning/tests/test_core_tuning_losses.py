"""Focal SupCon against a float64 loop of the official code, a hand derivation, gradients, grouping, errors;
soft-label CE."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from core_tuning.focal_supcon import TEMPERATURE, focal_supcon_loss, soft_label_groups
from core_tuning.mixup import soft_cross_entropy

from xentlab.testing import assert_close, check_gradients


def official_loop(z, soft_labels, tau=0.07, base=0.07):
    """The official focal_SupConLoss spelled out in float64 loops: positives = identical soft-label rows, logits
    shifted by their row max, log-denominator over k != i, weight 1 - p_ij, the sum over positives divided by N
    (``.mean(1)``), then the sum over anchors divided by the number of anchors with a positive. Rows count as
    identical after rounding to 1e-6 (our guard against float noise: hp + (1 - hp) may be 1 - 1e-16)."""
    z = z.double().tolist()
    rows = [tuple(round(v, 6) for v in r) for r in soft_labels.double().tolist()]
    n = len(z)
    total, anchors = 0.0, 0
    for i in range(n):
        logits = [sum(a * b for a, b in zip(z[i], z[j], strict=True)) / tau for j in range(n)]
        m = max(logits)
        logits = [v - m for v in logits]
        log_den = math.log(sum(math.exp(logits[k]) for k in range(n) if k != i))
        acc, has_pos = 0.0, False
        for j in range(n):
            if j != i and rows[j] == rows[i]:
                lp = logits[j] - log_den
                acc += -math.expm1(lp) * lp  # 1 - p_ij, accurate when p_ij ~ 1
                has_pos = True
        total += -(tau / base) * acc / n
        anchors += has_pos
    return total / anchors


def _mixed_like_batch(seed, b=8, c=3, d=5):
    """A 3B batch shaped like Core-tuning's: one-hot rows, clamped-0.8 mixes (shared labels) and unique mixes."""
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(3 * b, d, generator=g, dtype=torch.float64), dim=1)
    y = torch.randint(0, c, (b,), generator=g)
    one = F.one_hot(y, c).double()
    perm = torch.randperm(b, generator=g)
    lam = torch.full((b, 1), 0.8, dtype=torch.float64)
    lam[::3] = 0.9
    hp = torch.rand(b, 1, generator=g, dtype=torch.float64)
    labels = torch.cat([one, (1 - lam) * one + lam * one[perm], hp * one + (1 - hp) * one[perm]])
    return z, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_official_loop_float64(seed):
    z, labels = _mixed_like_batch(seed)
    assert_close(
        focal_supcon_loss(z, labels),
        torch.tensor(official_loop(z, labels), dtype=torch.float64),
        rtol=1e-10,
        atol=1e-12,
    )
    assert_close(
        focal_supcon_loss(z.float(), labels.float()),
        torch.tensor(official_loop(z, labels), dtype=torch.float32),
        rtol=1e-4,
        atol=1e-5,
    )


def test_hand_derived_three_points():
    # z1 = z2 = e1 (same label), z3 = e2 (other label), tau = tau_base = 1. Anchor 1: logits 1 (to z2), 0 (to z3),
    # p = e / (e + 1), l_1 = -(1/3)(1 - p) log p = (1/3) log(1 + 1/e) / (1 + e); l_2 = l_1; anchor 3 has no
    # positive, so L = (l_1 + l_2) / 2 = l_1.
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    expected = math.log(1 + math.exp(-1)) / (1 + math.e) / 3
    assert_close(focal_supcon_loss(z, y, 1.0, 1.0), torch.tensor(expected, dtype=torch.float64))


def test_default_temperature_is_official():
    assert TEMPERATURE == 0.07
    z, labels = _mixed_like_batch(5)
    assert_close(
        focal_supcon_loss(z, labels), torch.tensor(official_loop(z, labels, 0.07, 0.07), dtype=torch.float64)
    )


def test_gradcheck_through_the_focal_weight():
    z, labels = _mixed_like_batch(3, b=4, d=3)
    z = z.clone().requires_grad_(True)
    check_gradients(lambda t: focal_supcon_loss(t, labels, 0.5, 0.5), z)


def test_groups_are_identical_rows_only():
    y = torch.tensor([[1.0, 0.0], [0.2, 0.8], [0.2 + 1e-9, 0.8 - 1e-9], [0.21, 0.79], [1.0, 0.0]])
    g = soft_label_groups(y).tolist()
    assert g[0] == g[4] and g[1] == g[2] and len({g[0], g[1], g[3]}) == 3


def test_no_positive_gives_zero_with_graph():
    z = F.normalize(torch.randn(3, 4), dim=1).requires_grad_(True)
    loss = focal_supcon_loss(z, torch.eye(3))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_clear_errors():
    with pytest.raises(ValueError, match="z must be"):
        focal_supcon_loss(torch.randn(4), torch.eye(4))
    with pytest.raises(ValueError, match="soft_labels must be"):
        focal_supcon_loss(torch.randn(4, 3), torch.eye(5))
    with pytest.raises(ValueError, match="temperature"):
        focal_supcon_loss(torch.randn(4, 3), torch.eye(4), 0.0)


def test_soft_cross_entropy():
    logits = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    assert_close(soft_cross_entropy(logits, F.one_hot(y, 4).double()), F.cross_entropy(logits, y))
    # a 0.3/0.7 soft label is the same mix of the two one-hot losses
    q = torch.tensor([[0.3, 0.7, 0.0, 0.0]], dtype=torch.float64)
    lp = F.log_softmax(logits[:1], dim=1)[0]
    assert_close(soft_cross_entropy(logits[:1], q), -(0.3 * lp[0] + 0.7 * lp[1]))
    assert np.isfinite(soft_cross_entropy(logits, F.one_hot(y, 4).double()).item())
