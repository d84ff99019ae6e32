"""GRPO: group-normalised advantages, the clipped surrogate on a hand-computed example, the
token aggregations, and at ratio 1 the gradient equals the advantage-weighted log-prob gradient."""

from __future__ import annotations

import math

import pytest
import torch

from xentlab.rl.grpo import GRPOConfig, group_advantages, grpo_loss


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    a = group_advantages(r, 4)
    # group 1: mean 0.25, Bessel std sqrt(0.75 / 3) = 0.5 -> (1 - 0.25) / 0.5001, (0 - 0.25) / 0.5001
    torch.testing.assert_close(a[:4], torch.tensor([0.75, -0.25, -0.25, -0.25]) / (0.5 + 1e-4))
    assert torch.all(a[4:] == 0)  # identical rewards: no signal
    torch.testing.assert_close(
        group_advantages(r, 4, scale="none")[:4], torch.tensor([0.75, -0.25, -0.25, -0.25])
    )
    with pytest.raises(ValueError):
        group_advantages(r, 3)


def test_clipped_loss_hand_example():
    # two sequences; seq 0 has 2 response tokens, seq 1 has 1 (and one padding position)
    old = torch.zeros(2, 3)
    logp = torch.tensor([[0.0, math.log(1.5), math.log(0.9)], [0.0, math.log(0.5), 0.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    adv = torch.tensor([1.0, -2.0])
    # seq 0, A = 1: tok1 ratio 1.5 -> min(1.5, 1.2) = 1.2, tok2 ratio 0.9 -> min(0.9, 0.9) = 0.9
    # seq 1, A = -2: ratio 0.5 -> min(-1.0, 0.8 * -2 = -1.6) = -1.6
    loss, stats = grpo_loss(logp, old, adv, mask, GRPOConfig(loss_type="bnpo"))
    assert loss.item() == pytest.approx((-1.2 - 0.9 + 1.6) / 3)
    loss_g, _ = grpo_loss(logp, old, adv, mask, GRPOConfig(loss_type="grpo"))
    assert loss_g.item() == pytest.approx(((-1.2 - 0.9) / 2 + 1.6 / 1) / 2)
    loss_d, _ = grpo_loss(logp, old, adv, mask, GRPOConfig(loss_type="dapo"), num_items=6.0)
    assert loss_d.item() == pytest.approx((-1.2 - 0.9 + 1.6) / 6)
    loss_dr, _ = grpo_loss(logp, old, adv, mask, GRPOConfig(loss_type="dr_grpo"), max_completion_length=4)
    assert loss_dr.item() == pytest.approx((-1.2 - 0.9 + 1.6) / (2 * 4))
    assert stats["clip_frac"] == pytest.approx(
        2 / 3
    )  # tok (0,1) above 1.2 with A>0; seq 1 below 0.8 with A<0


def test_k3_kl_term():
    logp = torch.tensor([[0.0, -1.0]])
    ref = torch.tensor([[0.0, -1.5]])
    mask = torch.tensor([[0.0, 1.0]])
    loss, stats = grpo_loss(logp, logp.clone(), torch.zeros(1), mask, GRPOConfig(beta=0.1), ref_logprobs=ref)
    d = -0.5  # log pi_ref - log pi
    kl = math.exp(d) - d - 1
    assert loss.item() == pytest.approx(0.1 * kl) and stats["kl"] == pytest.approx(kl)
    # off-policy (ratio 2): trl's bias correction multiplies the KL by the ratio
    old = logp - math.log(2.0)
    cfg = GRPOConfig(beta=0.1)
    loss, _ = grpo_loss(logp, old, torch.zeros(1), mask, cfg, ref_logprobs=ref)
    assert loss.item() == pytest.approx(0.1 * kl * 2.0)
    loss, _ = grpo_loss(
        logp, old, torch.zeros(1), mask, GRPOConfig(beta=0.1, kl_correction=False), ref_logprobs=ref
    )
    assert loss.item() == pytest.approx(0.1 * kl)
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(logp, logp, torch.zeros(1), mask, GRPOConfig(beta=0.1))


def test_gradient_at_ratio_one_is_advantage_weighted_logprob_gradient():
    # at pi_theta = pi_old the clip is inactive and d/dtheta [-rho A] = -A d log pi / dtheta
    torch.manual_seed(0)
    theta = torch.randn(4, 5, 7, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 7, (4, 5))
    mask = torch.tensor(
        [[0, 1, 1, 1, 0], [0, 1, 1, 0, 0], [0, 1, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=torch.float64
    )
    adv = torch.tensor([0.5, -1.0, 2.0, -0.3], dtype=torch.float64)
    logp = torch.log_softmax(theta, -1).gather(-1, tokens[..., None])[..., 0] * mask
    loss, _ = grpo_loss(logp, logp.detach(), adv, mask, GRPOConfig(loss_type="bnpo"))
    (g,) = torch.autograd.grad(loss, theta)
    logp2 = torch.log_softmax(theta, -1).gather(-1, tokens[..., None])[..., 0] * mask
    target = -(adv[:, None] * logp2 * mask).sum() / mask.sum()
    (g_ref,) = torch.autograd.grad(target, theta)
    torch.testing.assert_close(g, g_ref)


def test_bad_config():
    with pytest.raises(ValueError, match="loss_type"):
        GRPOConfig(loss_type="ppo")
