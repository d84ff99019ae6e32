"""LDR-KL / ALDR-KL against their definitions (DRO dual, limits, the official update rule) and baselines."""

import math

import pytest
import torch
import torch.nn.functional as F
from ldr.losses import (
    ALDRKLLoss,
    crammer_singer_loss,
    gce_loss,
    l1_normalized,
    ldr_kl_from_scores,
    ldr_kl_loss,
    margin_differences,
    sce_loss,
    softplus_normalized,
)

from xentlab.testing import assert_close, check_gradients


def _data(n=6, k=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * scale, torch.randint(0, k, (n,), generator=g)


def test_dro_dual_form():
    # lambda log mean exp(d/lambda) = max_p <p, d> - lambda KL(p || uniform), attained at p = softmax(d/lambda)
    s, y = _data()
    for lam, c in ((0.5, 0.1), (10.0, 0.1), (2.0, 0.0)):
        d = margin_differences(s, y, c)
        p = torch.softmax(d / lam, 1)
        k = s.shape[1]
        dual = (p * d).sum(1) - lam * (p * torch.log(k * p)).sum(1)
        assert_close(ldr_kl_from_scores(s, y, lam, c), dual, name=f"lambda={lam}")


def test_lambda_to_zero_is_crammer_singer_hinge():
    # lambda log((1/K) sum exp(d/lambda)) is in [max d - lambda log K, max d]; max_k d_k >= 0 since d_y = 0,
    # so the limit is the Crammer-Singer hinge max(0, max_k s_k - s_y + c 1[k != y]).
    s, y = _data()
    c = 0.1
    hinge = margin_differences(s, y, c).max(1).values.clamp_min(0)
    for lam in (1e-2, 1e-4):
        got = ldr_kl_from_scores(s, y, lam, c)
        assert torch.all(got <= hinge + 1e-12) and torch.all(
            got >= hinge - lam * math.log(s.shape[1]) - 1e-12
        )
    assert_close(ldr_kl_from_scores(s, y, 1e-6, c).mean(), crammer_singer_loss(s, y, margin=c), atol=1e-4)


def test_lambda_one_no_margin_is_ce_minus_log_k():
    # log (1/K) sum_k e^{f_k - f_y} = CE(f, y) - log K on raw scores
    f, y = _data()
    assert_close(ldr_kl_from_scores(f, y, 1.0, 0.0), F.cross_entropy(f, y, reduction="none") - math.log(5))


def test_large_lambda_is_mean_difference():
    s, y = _data()
    assert_close(ldr_kl_from_scores(s, y, 1e6, 0.1), margin_differences(s, y, 0.1).mean(1), atol=1e-5)


def test_ldr_uses_softplus_normalised_scores():
    f, y = _data()
    s = softplus_normalized(f)
    assert torch.all(s > 0) and torch.allclose(s.mean(1), torch.ones(len(f), dtype=f.dtype))
    assert_close(ldr_kl_loss(f, y, lam=10.0, margin=0.1), ldr_kl_from_scores(s, y, 10.0, 0.1).mean())
    # softplus-normalised scores are invariant to nothing in general, but the loss is bounded:
    # d_k <= K - 0 + c, so the loss is at most K + c
    assert ldr_kl_loss(f * 100, y) <= 5 + 0.1 + 1e-9


def test_gradcheck():
    f, y = _data(n=4, k=3, scale=1.0)
    assert check_gradients(lambda z: ldr_kl_loss(z, y, lam=2.0, margin=0.1), f)
    aldr = ALDRKLLoss(4, lam0=10.0, alpha=2.0).double()
    ids = torch.arange(4)

    def aldr_fresh(z):  # reset the stored lambdas so every evaluation sees the same state
        aldr.lambdas.fill_(10.0)
        return aldr(z, y, ids)

    assert check_gradients(aldr_fresh, f)


def test_aldr_update_rule_by_hand():
    f, y = _data(n=6, k=5)
    lam0, alpha, k = 10.0, 2.0, 5
    aldr = ALDRKLLoss(10, lam0=lam0, alpha=alpha, margin=0.1).double()
    ids = torch.tensor([0, 2, 4, 6, 8, 9])
    loss = aldr(f, y, ids)
    # reference, step by step from the official rule
    s = f / (f.abs().sum(1, keepdim=True) / k)
    p = torch.softmax(s / lam0, 1) + 1e-5
    p = p / p.sum(1, keepdim=True)
    kl = (p * torch.log(k * p)).sum(1)
    lam = lam0 - lam0 * kl / (alpha * math.log(k))
    assert_close(aldr.lambdas[ids], lam)
    assert torch.all(aldr.lambdas[[1, 3, 5, 7]] == lam0)  # unvisited examples keep lambda_0
    expected = (
        ldr_kl_from_scores(s, y, lam[:, None], 0.1) - alpha * math.log(k) / (2 * lam0) * (lam - lam0) ** 2
    )
    assert_close(loss, expected.mean())
    # KL <= log K, so lambda stays in [lambda_0 (1 - 1/alpha), lambda_0]
    assert torch.all(aldr.lambdas >= lam0 / 2 - 1e-9) and torch.all(aldr.lambdas <= lam0)
    # uniform scores: KL = 0, lambda stays lambda_0 and the penalty vanishes
    aldr2 = ALDRKLLoss(2, lam0=lam0).double()
    flat = torch.ones(2, 5, dtype=torch.float64)
    out = aldr2(flat, torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert torch.allclose(aldr2.lambdas, torch.full((2,), lam0, dtype=torch.float64))
    assert_close(out, ldr_kl_from_scores(l1_normalized(flat), torch.tensor([0, 1]), lam0, 0.1).mean())


def test_aldr_state_is_a_buffer():
    aldr = ALDRKLLoss(3)
    assert "lambdas" in aldr.state_dict()
    with pytest.raises(ValueError, match="num_examples"):
        ALDRKLLoss(0)


def test_baselines():
    f, y = _data()
    p = torch.softmax(f, 1).gather(1, y[:, None]).squeeze(1)
    assert_close(gce_loss(f, y, q=0.7), ((1 - p**0.7) / 0.7).mean())
    ce = F.cross_entropy(f, y)
    assert_close(sce_loss(f, y, balance=0.5, a=4.0), 0.5 * ce + 0.5 * 4.0 * (1 - p).mean())
    # hand value of the CS hinge: scores (1, 0.5, 2), y = 0, margin 1 -> max(0, 0, 0.5, 2) = 2
    s = torch.tensor([[1.0, 0.5, 2.0]])
    assert crammer_singer_loss(s, torch.tensor([0]), margin=1.0).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="q must be"):
        gce_loss(f, y, q=0.0)
    with pytest.raises(ValueError, match="lambda must be"):
        ldr_kl_loss(f, y, lam=0.0)
    with pytest.raises(ValueError, match="target must be int64"):
        ldr_kl_loss(f, y.double())


def test_margin_differences_by_hand():
    # scores (1, 0.5, 2), y = 0, c = 0.1: d = (0, 0.5 - 1 + 0.1, 2 - 1 + 0.1) = (0, -0.4, 1.1); d_y = 0 (no margin)
    s = torch.tensor([[1.0, 0.5, 2.0]], dtype=torch.float64)
    expected = torch.tensor([[0.0, -0.4, 1.1]], dtype=torch.float64)
    assert_close(margin_differences(s, torch.tensor([0]), 0.1), expected, atol=1e-12)


def test_defaults_are_the_official_values():
    # The values of the module docstring / README: LDR-KL lambda = 10 (official parameter_set=[10]), c = 0.1;
    # ALDR-KL lambda_0 = 10, alpha = 2, c = 0.1; GCE q = 0.7; SCE b = 0.5, A = 4; and the Crammer-Singer
    # baseline's unit margin (the package default).
    f, y = _data()
    assert_close(ldr_kl_loss(f, y), ldr_kl_loss(f, y, lam=10.0, margin=0.1))
    aldr = ALDRKLLoss(3)
    assert (aldr.lam0, aldr.alpha, aldr.margin, aldr.softplus) == (10.0, 2.0, 0.1, False)
    assert torch.all(aldr.lambdas == 10.0)
    assert_close(crammer_singer_loss(f, y), crammer_singer_loss(f, y, margin=1.0))
    assert_close(gce_loss(f, y), gce_loss(f, y, q=0.7))
    assert_close(sce_loss(f, y), sce_loss(f, y, balance=0.5, a=4.0))


def test_clear_errors_for_shapes_and_aldr_hyperparameters():
    f, y = _data()
    with pytest.raises(ValueError, match="logits must be"):
        ldr_kl_loss(f[None], y)
    with pytest.raises(ValueError, match="logits must be"):
        ldr_kl_loss(f[0], y[:1])
    with pytest.raises(ValueError, match="lam0 > 0"):
        ALDRKLLoss(3, lam0=0.0)
    with pytest.raises(ValueError, match="alpha > 0"):
        ALDRKLLoss(3, alpha=0.0)


def test_aldr_second_visit_starts_from_the_stored_lambda():
    # The official update uses the example's CURRENT lambda_i (from its last visit) in p = softmax(s / lambda_i),
    # not lambda_0: on a second visit with new scores the reference is the rule applied with the stored value.
    f, y = _data(n=4, k=5, seed=3)
    f2, _ = _data(n=4, k=5, seed=4)
    lam0, alpha, k = 10.0, 2.0, 5
    aldr = ALDRKLLoss(4, lam0=lam0, alpha=alpha).double()
    ids = torch.arange(4)
    aldr(f, y, ids)
    stored = aldr.lambdas.clone()
    assert torch.all(stored < lam0)  # the first visit moved every lambda
    loss = aldr(f2, y, ids)
    s = f2 / (f2.abs().sum(1, keepdim=True) / k)
    p = torch.softmax(s / stored[:, None], 1) + 1e-5
    p = p / p.sum(1, keepdim=True)
    lam = lam0 - lam0 * (p * torch.log(k * p)).sum(1) / (alpha * math.log(k))
    assert_close(aldr.lambdas, lam)
    expected = (
        ldr_kl_from_scores(s, y, lam[:, None], 0.1) - alpha * math.log(k) / (2 * lam0) * (lam - lam0) ** 2
    )
    assert_close(loss, expected.mean())
