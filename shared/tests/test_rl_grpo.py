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


def test_batch_scale_divides_group_centred_rewards_by_the_batch_std():
    # trl's scale_rewards="batch": the mean stays per group, the std is the Bessel std of the whole batch.
    # r = [1, 0, 0, 0 | 1, 1, 1, 1]: batch mean 5/8, squared deviations 3 (5/8)^2 + 5 (3/8)^2 = 1.875,
    # batch std sqrt(1.875 / 7)
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    std = math.sqrt(1.875 / 7)
    a = group_advantages(r, 4, scale="batch")
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 0.0, 0.0]) / (std + 1e-4)
    torch.testing.assert_close(a, expected)
    a = group_advantages(r, 4, scale="batch", eps=0.5)
    torch.testing.assert_close(a, torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]) / (std + 0.5))


def test_group_advantages_reject_a_single_sample_per_prompt_and_unknown_scale():
    # one sample: the Bessel std of one value is NaN, so n = 1 must be an error, not NaN advantages
    with pytest.raises(ValueError, match="n >= 2"):
        group_advantages(torch.tensor([1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.tensor([1.0, 0.0]), 2, scale="global")


def test_config_defaults_and_validation():
    # trl 1.16 defaults: loss_type "dapo", epsilon 0.2, beta 0, the KL bias correction on, group scaling,
    # the 1e-4 std constant of trl's advantage normalisation
    cfg = GRPOConfig()
    assert (cfg.epsilon, cfg.epsilon_high, cfg.beta, cfg.kl_correction) == (0.2, None, 0.0, True)
    assert (cfg.loss_type, cfg.scale, cfg.adv_eps) == ("dapo", "group", 1e-4)
    with pytest.raises(ValueError, match="scale"):
        GRPOConfig(scale="global")
    with pytest.raises(ValueError, match="beta"):
        GRPOConfig(beta=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        GRPOConfig(epsilon=-0.1)


HAND_OLD = torch.zeros(2, 3)
HAND_LOGP = torch.tensor([[0.0, math.log(1.5), math.log(0.9)], [0.0, math.log(0.5), 0.0]])
HAND_MASK = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
HAND_ADV = torch.tensor([1.0, -2.0])


def test_default_loss_type_divides_by_num_items():
    # the default ("dapo") uses the generation batch's token count when given (6 here), not this batch's 3
    loss, _ = grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK, num_items=6.0)
    assert loss.item() == pytest.approx((-1.2 - 0.9 + 1.6) / 6)


def test_masked_positions_do_not_leak_into_loss_or_stats():
    # log-probs at prompt/padding positions are garbage (huge): the ratio there must be 1, so the loss,
    # its gradient and the statistics equal those of the clean example (an unmasked exp(1000) is inf,
    # and inf * 0 is NaN)
    garbage = HAND_LOGP + 1000.0 * (1 - HAND_MASK)
    ref_loss, ref_stats = grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK, GRPOConfig(loss_type="bnpo"))
    loss, stats = grpo_loss(garbage, HAND_OLD, HAND_ADV, HAND_MASK, GRPOConfig(loss_type="bnpo"))
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(ref_loss.item())
    assert stats == pytest.approx(ref_stats)


def test_ratio_mean_is_over_response_tokens_only():
    # response-token ratios 1.5, 0.9, 0.5 (masked positions have ratio 1 and must not count)
    _, stats = grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK, GRPOConfig(loss_type="bnpo"))
    assert stats["ratio_mean"] == pytest.approx((1.5 + 0.9 + 0.5) / 3)


def test_asymmetric_clip_uses_epsilon_high_above_and_epsilon_below():
    # DAPO's clip-higher: ratio range [1 - 0.2, 1 + 0.28]. A = 1: ratio 1.5 -> 1.28, ratio 1.25 stays
    # (with a symmetric 0.2 it would be clipped to 1.2); A = -2: ratio 0.5 -> 0.8 * -2 = -1.6
    logp = torch.tensor([[0.0, math.log(1.5), math.log(1.25)], [0.0, math.log(0.5), 0.0]])
    cfg = GRPOConfig(epsilon=0.2, epsilon_high=0.28, loss_type="bnpo")
    loss, stats = grpo_loss(logp, HAND_OLD, HAND_ADV, HAND_MASK, cfg)
    assert loss.item() == pytest.approx((-1.28 - 1.25 + 1.6) / 3)
    assert stats["clip_frac"] == pytest.approx(2 / 3)  # 1.5 above 1.28 with A > 0, 0.5 below 0.8 with A < 0


def test_zero_advantage_tokens_are_not_counted_as_clipped():
    # trl: low-clipped means ratio < 1 - eps AND A < 0; a zero advantage has no clipped gradient
    logp = torch.tensor([[0.0, math.log(0.5)]])
    _, stats = grpo_loss(logp, torch.zeros(1, 2), torch.zeros(1), torch.tensor([[0.0, 1.0]]))
    assert stats["clip_frac"] == 0.0


def test_rows_without_response_tokens_give_a_finite_loss():
    # a row whose mask is all zero (e.g. an empty completion) counts as a 0 loss in the "grpo" mean, as
    # trl's clamp(min=1) of the per-sequence token count makes it; an all-empty "dapo" batch with
    # num_items = 0 is 0, not NaN
    mask = HAND_MASK.clone()
    mask[1] = 0.0
    loss, _ = grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, mask, GRPOConfig(loss_type="grpo"))
    assert loss.item() == pytest.approx(((-1.2 - 0.9) / 2 + 0.0) / 2)
    empty = torch.zeros(2, 3)
    loss, _ = grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, empty, GRPOConfig(loss_type="dapo"), num_items=0)
    assert loss.item() == 0.0


def test_bias_corrected_kl_gradient_flows_through_the_ratio():
    # trl 1.16 (use_bias_correction_kl): per_token_kl * coef_1 with coef_1 = exp(log pi - log pi_old)
    # NOT detached, so the KL term's gradient has the ratio's derivative too. float64 reference:
    # d/dlogp [rho (exp(d) - d - 1)] with d = ref - logp, rho = exp(logp - old).
    torch.manual_seed(0)
    logp = (torch.randn(2, 4, dtype=torch.float64) * 0.3).requires_grad_(True)
    old = logp.detach() + torch.randn(2, 4, dtype=torch.float64) * 0.2
    ref = logp.detach() + torch.randn(2, 4, dtype=torch.float64) * 0.2
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.float64)
    cfg = GRPOConfig(beta=0.1, loss_type="bnpo")
    loss, _ = grpo_loss(logp, old, torch.zeros(2, dtype=torch.float64), mask, cfg, ref_logprobs=ref)
    (g,) = torch.autograd.grad(loss, logp)
    d = ref - logp.detach()
    rho = torch.exp(logp.detach() - old)
    kl = torch.exp(d) - d - 1
    dkl = -torch.exp(d) + 1  # d/dlogp of kl
    expected = 0.1 * (rho * kl + rho * dkl) * mask / mask.sum()
    torch.testing.assert_close(g, expected, rtol=1e-10, atol=1e-12)


def test_loss_input_errors():
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(HAND_LOGP, HAND_OLD, torch.zeros(3), HAND_MASK)
    with pytest.raises(ValueError, match="same shape"):
        grpo_loss(HAND_LOGP, HAND_OLD[:, :2], HAND_ADV, HAND_MASK)
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(HAND_LOGP, HAND_OLD, HAND_ADV, HAND_MASK, GRPOConfig(loss_type="dr_grpo"))
