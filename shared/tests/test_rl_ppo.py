"""xentlab.rl.ppo: KL-penalised returns, batch-mean baseline and the clipped surrogate, against a
hand derivation."""

import math

import pytest
import torch

from xentlab.rl.ppo import PPOConfig, kl_penalised_returns, ppo_advantages, ppo_loss

MASK = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
OLD = torch.tensor([[0.0, -1.0, -2.0], [0.0, -0.5, 0.0]])
REF = torch.tensor([[0.0, -1.5, -2.0], [0.0, -0.5, 0.0]])


def test_returns_and_advantages_by_hand():
    # KL_0 = (-1 + 1.5) + (-2 + 2) = 0.5, KL_1 = 0; R = r - 0.1 KL = [0.95, 0.0]
    ret, kl = kl_penalised_returns(torch.tensor([1.0, 0.0]), OLD, REF, MASK, beta=0.1)
    assert torch.allclose(kl, torch.tensor([0.5, 0.0]))
    assert torch.allclose(ret, torch.tensor([0.95, 0.0]))
    # centred: [0.475, -0.475]; unbiased std of 2 values = 0.95 / sqrt(2) -> +-1/sqrt(2)
    a = ppo_advantages(ret, whiten=True, eps=0.0)
    assert torch.allclose(a, torch.tensor([1.0, -1.0]) / math.sqrt(2))
    assert torch.allclose(ppo_advantages(ret, whiten=False), torch.tensor([0.475, -0.475]))


def test_clipped_surrogate_by_hand():
    a = 1 / math.sqrt(2)
    adv = torch.tensor([a, -a])
    # ratios: seq 0 -> 1.5 (A > 0, clipped to 1.2), 0.5 (A > 0, unclipped: min(0.5A, 0.8A) = 0.5A);
    # seq 1 -> 0.7 (A < 0, clipped: min(-0.7a, -0.8a) = -0.8a). Token losses -1.2a, -0.5a, +0.8a,
    # mean over the 3 response tokens = -0.3a.
    delta = torch.tensor([[0.0, math.log(1.5), math.log(0.5)], [0.0, math.log(0.7), 5.0]])
    logp = (OLD + delta).requires_grad_(True)
    loss, stats = ppo_loss(logp, OLD, adv, MASK, PPOConfig(clip=0.2))
    assert loss.item() == pytest.approx(-0.3 * a, abs=1e-6)
    assert stats["clip_frac"] == pytest.approx(2 / 3)
    loss.backward()
    # only the unclipped token has a gradient: d/dlogp [-(rho A)] / 3 = -rho A / 3 = -0.5a / 3
    expected = torch.zeros(2, 3)
    expected[0, 2] = -0.5 * a / 3
    assert torch.allclose(logp.grad, expected, atol=1e-6)


def test_on_policy_gradient_is_reinforce():
    # at ratio 1 (first mini-batch) the gradient is -A_i / #tokens on each response token
    adv = torch.tensor([0.3, -0.6])
    logp = OLD.clone().requires_grad_(True)
    loss, _ = ppo_loss(logp, OLD, adv, MASK)
    loss.backward()
    assert torch.allclose(logp.grad, -adv.unsqueeze(1) * MASK / 3)


def test_bad_inputs():
    with pytest.raises(ValueError):
        kl_penalised_returns(torch.zeros(2), OLD, None, MASK, beta=0.1)
    with pytest.raises(ValueError):
        ppo_advantages(torch.zeros(1))
    with pytest.raises(ValueError):
        ppo_loss(OLD, OLD, torch.zeros(3), MASK)
    with pytest.raises(ValueError):
        PPOConfig(clip=0.0)


def test_prompt_group_baseline_by_hand():
    # two prompts x two samples: R = [1, 3 | 10, 14]; group means 2 and 12 -> centred [-1, 1, -2, 2]
    ret = torch.tensor([1.0, 3.0, 10.0, 14.0])
    a = ppo_advantages(ret, whiten=False, group_size=2)
    assert torch.allclose(a, torch.tensor([-1.0, 1.0, -2.0, 2.0]))
    with pytest.raises(ValueError):
        ppo_advantages(ret, group_size=3)


def test_whitening_is_trls_masked_whiten_on_a_grouped_batch():
    # trl's PPOTrainer whitens its advantages with masked_whiten(advantages, mask), shift_mean=True
    # (trl/core.py): (A - mean A) * rsqrt(var_unbiased(A) + 1e-8), the statistics of the ADVANTAGES
    # themselves. Hand derivation in float64 on R = [1, 3 | 10, 14], groups of 2:
    #   A = [-1, 1, -2, 2] (group-centred), mean A = 0,
    #   unbiased var A = (1 + 1 + 4 + 4) / (4 - 1) = 10/3,
    #   whitened = A / sqrt(10/3 + eps).
    # The old code divided by the std of the RETURNS, sqrt(110/3) (mean 7, squared deviations
    # 36 + 16 + 9 + 49 = 110), i.e. a factor sqrt(11) too small on this batch.
    ret = torch.tensor([1.0, 3.0, 10.0, 14.0], dtype=torch.float64)
    centred = torch.tensor([-1.0, 1.0, -2.0, 2.0], dtype=torch.float64)
    w = ppo_advantages(ret, whiten=True, eps=0.0, group_size=2)
    assert w.dtype == torch.float64
    assert torch.allclose(w, centred / math.sqrt(10 / 3), rtol=0, atol=1e-15)
    # eps is added to the VARIANCE, under the square root, as in trl (1e-8 there and by default here)
    w_eps = ppo_advantages(ret, whiten=True, eps=0.5, group_size=2)
    assert torch.allclose(w_eps, centred / math.sqrt(10 / 3 + 0.5), rtol=0, atol=1e-15)
    w_def = ppo_advantages(ret, whiten=True, group_size=2)
    assert torch.allclose(w_def, centred / math.sqrt(10 / 3 + 1e-8), rtol=0, atol=1e-15)


def test_whitening_shifts_by_the_advantages_mean_and_has_unit_std():
    # trl's shift_mean=True subtracts the mean of the advantages (0 up to rounding after a batch or an
    # equal-size group baseline). A float64 random batch against the formula written out here, for the
    # batch baseline and two group sizes, and the whitened advantages' moments.
    g = torch.Generator().manual_seed(0)
    ret = torch.randn(12, generator=g, dtype=torch.float64) * 3.0 + 5.0
    for group_size in (None, 3, 4):
        if group_size is None:
            a = ret - ret.mean()
        else:
            r = ret.view(-1, group_size)
            a = (r - r.mean(1, keepdim=True)).reshape(-1)
        n = a.numel()
        mean = a.sum() / n
        var = ((a - mean) ** 2).sum() / (n - 1)  # Bessel, as trl's masked_var(unbiased=True)
        expected = (a - mean) / torch.sqrt(var + 1e-8)
        w = ppo_advantages(ret, whiten=True, group_size=group_size)
        assert torch.allclose(w, expected, rtol=0, atol=1e-14), group_size
        assert abs(float(w.mean())) < 1e-14
        assert float(w.std()) == pytest.approx(1.0, abs=1e-8)  # unit unbiased std (up to eps)


def test_masked_positions_do_not_leak_into_returns_loss_or_stats():
    # log-probs at prompt/padding positions are garbage: the KL sum and the ratio must ignore them
    garbage = 1000.0 * (1 - MASK)
    ret, kl = kl_penalised_returns(torch.tensor([1.0, 0.0]), OLD + garbage, REF - garbage, MASK, beta=0.1)
    assert torch.allclose(kl, torch.tensor([0.5, 0.0])) and torch.allclose(ret, torch.tensor([0.95, 0.0]))
    a = 1 / math.sqrt(2)
    adv = torch.tensor([a, -a])
    delta = torch.tensor([[0.0, math.log(1.5), math.log(0.5)], [0.0, math.log(0.7), 0.0]])
    ref_loss, ref_stats = ppo_loss(OLD + delta, OLD, adv, MASK)
    loss, stats = ppo_loss(OLD + delta + garbage, OLD, adv, MASK)
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(ref_loss.item())
    assert stats == pytest.approx(ref_stats)
    # the mean ratio is over the 3 response tokens: (1.5 + 0.5 + 0.7) / 3
    assert stats["ratio_mean"] == pytest.approx(2.7 / 3)


def test_zero_advantage_tokens_are_not_counted_as_clipped():
    logp = torch.tensor([[0.0, math.log(0.5)]])
    _, stats = ppo_loss(logp, torch.zeros(1, 2), torch.zeros(1), torch.tensor([[0.0, 1.0]]))
    assert stats["clip_frac"] == 0.0


def test_defaults():
    # trl's PPOConfig: cliprange 0.2, kl_coef 0.05; trl's PPOTrainer always whitens its advantages
    # (masked_whiten, eps 1e-8 inside the square root)
    assert PPOConfig() == PPOConfig(clip=0.2, beta=0.05, whiten=True, eps=1e-8)
    ret = torch.tensor([1.0, 3.0, 10.0, 14.0], dtype=torch.float64)
    assert torch.equal(ppo_advantages(ret), ppo_advantages(ret, whiten=True, eps=1e-8))
    assert not torch.equal(ppo_advantages(ret), ppo_advantages(ret, whiten=False))


def test_more_bad_inputs():
    with pytest.raises(ValueError, match="group_size"):
        ppo_advantages(torch.tensor([1.0, 2.0, 3.0, 4.0]), group_size=1)
    with pytest.raises(ValueError, match="same shape"):
        kl_penalised_returns(torch.zeros(2), OLD, REF[:, :2], MASK, beta=0.1)
    with pytest.raises(ValueError):
        PPOConfig(beta=-0.1)
    with pytest.raises(ValueError):
        PPOConfig(eps=0.0)
