"""The PACS loss against hand computations, sklearn's balanced class weights, the first-step
gradient (0.5 - R) * grad psi, gradcheck, and the response-mask handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pacs.loss import PACSConfig, class_weights, grpo_advantage, implicit_reward, pacs_loss, rloo_advantage

from xentlab.testing import check_gradients


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_hand_example_reward_advantage_weights_loss():
    # one group of n = 4, one response token each at position 1 (position 2 is padding)
    old = torch.tensor([[0.0, -1.0, 0.0], [0.0, -2.0, 0.0], [0.0, -0.5, 0.0], [0.0, -1.0, 0.0]])
    delta = torch.tensor([0.2, -0.1, 0.0, 0.3])
    logp = old.clone()
    logp[:, 1] += delta
    logp[:, 2] = 5.0  # garbage at the padding position: masked out
    mask = torch.tensor([[0.0, 1.0, 0.0]] * 4)
    R = torch.tensor([1.0, 0.0, 0.0, 0.0])
    r = implicit_reward(logp, old, mask, beta=2.0)
    torch.testing.assert_close(r, 2.0 * delta)
    r = implicit_reward(logp, old, mask)  # beta = 1
    # RLOO: psi_i = r_i - (S - r_i) / 3, S = 0.4
    psi = [0.2 - 0.2 / 3, -0.1 - 0.5 / 3, 0.0 - 0.4 / 3, 0.3 - 0.1 / 3]
    torch.testing.assert_close(rloo_advantage(r, 4), torch.tensor(psi))
    # balanced weights: 1 positive -> 4 / (2 * 1) = 2, 3 negatives -> 4 / (2 * 3) = 2/3
    w = [2.0, 2 / 3, 2 / 3, 2 / 3]
    torch.testing.assert_close(class_weights(R, 4), torch.tensor(w))
    # BCE with logits: mean_i w_i [softplus(psi_i) - R_i psi_i]
    expected = sum(wi * (_softplus(p) - ri * p) for wi, p, ri in zip(w, psi, R.tolist())) / 4
    loss, _ = pacs_loss(logp, old, mask, R, 4)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # without weights
    loss_nw, _ = pacs_loss(logp, old, mask, R, 4, PACSConfig(use_weight=False))
    assert loss_nw.item() == pytest.approx(
        sum(_softplus(p) - ri * p for p, ri in zip(psi, R.tolist())) / 4, rel=1e-6
    )


def test_class_weights_match_sklearn_balanced():
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=8 * 6).astype(float)
    labels[:8] = 1.0  # a group with one class only -> weights 1
    got = class_weights(torch.tensor(labels), 8).numpy()
    for g in range(6):
        chunk = labels[g * 8 : (g + 1) * 8]
        if len(set(chunk)) > 1:
            cw = compute_class_weight("balanced", classes=np.unique(chunk), y=chunk)
            ref = np.array([dict(zip(np.unique(chunk), cw))[y] for y in chunk])
        else:
            ref = np.ones(8)
        np.testing.assert_allclose(got[g * 8 : (g + 1) * 8], ref, rtol=1e-6)
    torch.testing.assert_close(
        class_weights(torch.tensor([1.0, 0, 1, 0]), 4, "only_positive"), torch.tensor([1.0, 0, 1, 0])
    )
    torch.testing.assert_close(
        class_weights(torch.tensor([1.0, 0, 1, 0]), 4, "only_negative"), torch.tensor([0.0, 1, 0, 1])
    )


def test_grpo_and_naive_advantages():
    r = torch.tensor([1.0, 2.0, 3.0, 6.0])
    # mean 3, Bessel std sqrt((4 + 1 + 0 + 9) / 3)
    std = math.sqrt(14 / 3)
    torch.testing.assert_close(grpo_advantage(r, 4), (r - 3.0) / (std + 1e-6))
    torch.testing.assert_close(grpo_advantage(r, 4, norm_by_std=False), r - 3.0)
    logp = torch.tensor([[0.0, -1.0, -1.0], [0.0, -2.0, 0.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    # reward_method "2": beta * sum(log pi) / |y| (no old policy)
    torch.testing.assert_close(
        implicit_reward(logp, logp, mask, reward_method="2"), torch.tensor([-1.0, -2.0])
    )


def test_first_step_gradient_is_half_minus_R_times_grad_psi():
    # at pi_theta = pi_old: psi = 0, dBCE/dpsi = sigmoid(0) - R = 0.5 - R, so
    # grad L = (1/B) sum_i w_i (0.5 - R_i) grad psi_i, grad psi_i = grad r_i - mean_{j!=i} grad r_j
    torch.manual_seed(0)
    n, G, T, V = 4, 2, 5, 6
    B = n * G
    theta = torch.randn(B, T, V, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, V, (B, T))
    mask = (torch.rand(B, T) < 0.7).double()
    mask[:, 0] = 0
    R = torch.tensor([1, 0, 0, 0, 1, 1, 0, 1], dtype=torch.float64)

    def seq_logp():
        return torch.log_softmax(theta, -1).gather(-1, tokens[..., None])[..., 0] * mask

    lp = seq_logp()
    loss, _ = pacs_loss(lp, lp.detach(), mask, R, n)
    (g,) = torch.autograd.grad(loss, theta)
    w = class_weights(R, n).double()
    r = seq_logp().sum(-1)  # grad r_i = grad sum_t log pi (beta = 1)
    grads = torch.stack([torch.autograd.grad(r[i], theta, retain_graph=True)[0] for i in range(B)])
    expected = torch.zeros_like(theta)
    for i in range(B):
        g0 = (i // n) * n
        others = [j for j in range(g0, g0 + n) if j != i]
        grad_psi = grads[i] - grads[others].sum(0) / (n - 1)
        expected += w[i] * (0.5 - R[i]) * grad_psi / B
    torch.testing.assert_close(g, expected)


def test_gradcheck_float64():
    torch.manual_seed(1)
    old = -torch.rand(8, 4, dtype=torch.float64)
    logp = (old + 0.3 * torch.randn(8, 4, dtype=torch.float64)).requires_grad_(True)
    mask = torch.ones(8, 4, dtype=torch.float64)
    mask[:, 0] = 0
    mask[3, 3] = 0
    R = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0], dtype=torch.float64)
    for cfg in (
        PACSConfig(),
        PACSConfig(adv_estimator="grpo"),
        PACSConfig(reward_method="2", use_weight=False),
    ):
        check_gradients(lambda x, cfg=cfg: pacs_loss(x, old, mask, R, 4, cfg)[0], logp)


def test_mask_excludes_padding_and_official_sum_agrees_when_padding_is_zero():
    old = -torch.rand(4, 5)
    logp = old + 0.1 * torch.randn(4, 5)
    mask = torch.tensor(
        [[0, 1, 1, 0, 0], [0, 1, 1, 1, 1], [0, 1, 0, 0, 0], [0, 1, 1, 1, 0]], dtype=torch.float32
    )
    R = torch.tensor([1.0, 0, 1, 0])
    base, _ = pacs_loss(logp, old, mask, R, 4)
    noisy = logp + 3.0 * (1 - mask) * torch.randn(4, 5)  # change only padding / prompt positions
    again, _ = pacs_loss(noisy, old, mask, R, 4)
    assert again.item() == pytest.approx(base.item(), abs=1e-7)
    # the official unmasked sum equals ours when the log-ratio is 0 outside the response
    lp0, old0 = logp * mask, old * mask
    unmasked = (lp0 - old0).sum(-1)
    torch.testing.assert_close(implicit_reward(lp0, old0, mask), unmasked)


def test_errors():
    x = torch.zeros(4, 3)
    m = torch.ones(4, 3)
    with pytest.raises(ValueError, match="0 or 1"):
        pacs_loss(x, x, m, torch.tensor([0.5, 0, 1, 0]), 4)
    with pytest.raises(ValueError, match="multiple of n"):
        pacs_loss(x, x, m, torch.tensor([1.0, 0, 1, 0]), 3)
    with pytest.raises(ValueError, match="adv_estimator"):
        PACSConfig(adv_estimator="ppo")
    with pytest.raises(ValueError, match="RLOO"):
        rloo_advantage(torch.zeros(4), 1)


def test_config_reaches_the_loss_and_the_stats():
    # PACSConfig's norm_adv_by_std and weight_mode must reach pacs_loss; official defaults: norm_adv_by_std
    # True (compute_grpo_outcome_advantage), weight_mode "question" (compute_weight)
    assert PACSConfig().norm_adv_by_std is True and PACSConfig().weight_mode == "question"
    old = torch.zeros(4, 2, dtype=torch.float64)
    logp = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 6.0]], dtype=torch.float64)
    mask = torch.tensor([[0.0, 1.0]] * 4, dtype=torch.float64)
    R = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    # r = [1, 2, 3, 6]; grpo without std: psi = r - 3 = [-2, -1, 0, 3]; balanced weights are 1 (2 vs 2)
    psi = [-2.0, -1.0, 0.0, 3.0]
    cfg = PACSConfig(adv_estimator="grpo", norm_adv_by_std=False)
    loss, stats = pacs_loss(logp, old, mask, R, 4, cfg)
    expected = sum(_softplus(p) - y * p for p, y in zip(psi, R.tolist())) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert stats["psi_abs"] == pytest.approx(6.0 / 4) and stats["reward_hat"] == pytest.approx(3.0)
    # weight_mode "only_positive": w = [1, 0, 0, 1], still a mean over all 4 rows
    loss_pos, _ = pacs_loss(logp, old, mask, R, 4, PACSConfig(adv_estimator="grpo", norm_adv_by_std=False,
                                                             weight_mode="only_positive"))  # fmt: skip
    expected_pos = ((_softplus(-2.0) + 2.0) + (_softplus(3.0) - 3.0)) / 4
    assert loss_pos.item() == pytest.approx(expected_pos, rel=1e-12)


def test_reward_method_2_with_an_empty_response_is_zero_not_nan():
    # the |y| clamp: a response with no token scores 0 instead of 0 / 0
    logp = torch.tensor([[-1.0, -3.0], [-2.0, -2.0]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    r = implicit_reward(logp, logp, mask, reward_method="2")
    torch.testing.assert_close(r, torch.tensor([-2.0, 0.0]))
