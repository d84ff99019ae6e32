"""The five value losses: values, TD targets, gradients, and agreement with independent formulas."""

import pytest
import torch
import torch.nn.functional as F
from hlgauss_rl.losses import LOSS_NAMES, C51Loss, ClippedMSELoss, HLGaussLoss, TwoHotLoss, make_loss
from hlgauss_rl.targets import c51_project, hl_gauss_edges, hl_gauss_probs

from xentlab.testing import assert_close, check_gradients


def test_make_loss_output_sizes_and_unknown_name():
    sizes = {name: make_loss(name, -5.0, 5.0, 21).n_outputs for name in LOSS_NAMES}
    assert sizes == {"mse": 1, "huber": 1, "two_hot": 21, "c51": 21, "hl_gauss": 21}
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        make_loss("l1", -5.0, 5.0)
    with pytest.raises(ValueError, match="sigma_ratio"):
        HLGaussLoss(-1.0, 1.0, 11, sigma_ratio=0.0)


def test_regression_losses_by_hand():
    out = torch.tensor([[0.0], [3.0]])
    y = torch.tensor([1.0, 0.0])
    # MSE: ((0-1)^2 + (3-0)^2) / 2 = 5. Huber(delta=1): 0.5*1^2 and |3|-0.5 = 2.5 -> mean 1.5.
    assert make_loss("mse", 0, 1).loss(out, y).item() == pytest.approx(5.0)
    assert make_loss("huber", 0, 1).loss(out, y).item() == pytest.approx(1.5)


def test_hl_gauss_loss_is_cross_entropy_on_hl_gauss_targets_and_matches_package():
    torch.manual_seed(0)
    loss = HLGaussLoss(-10.0, 10.0, 51)
    logits, y = torch.randn(8, 51), torch.randn(8) * 4
    probs = hl_gauss_probs(y, hl_gauss_edges(-10.0, 10.0, 51), 0.75 * 20 / 51)
    assert_close(loss.loss(logits, y), F.cross_entropy(logits, probs), name="CE")
    hlg = pytest.importorskip("hl_gauss_pytorch")
    oracle = hlg.HLGaussLoss(-10.0, 10.0, 51, sigma_to_bin_ratio=0.75, clamp_to_range=True)
    assert_close(
        loss.loss(logits, y), oracle(logits, y), atol=1e-5, rtol=1e-5, name="vs hl-gauss-pytorch loss"
    )
    assert_close(
        loss.q_values(logits), oracle(logits), atol=1e-5, rtol=1e-5, name="vs hl-gauss-pytorch value"
    )


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_td_target_uses_greedy_target_value(name):
    torch.manual_seed(1)
    loss = make_loss(name, -10.0, 10.0, 31)
    next_out = torch.randn(6, 3, loss.n_outputs)
    # |r| < 1 = (1 - gamma) * v_max keeps every r + gamma * z_i inside the support (no clipping).
    r, d = torch.rand(6) * 1.8 - 0.9, torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    target = loss.td_target(next_out, r, d, 0.9)
    q_next = loss.q_values(next_out)  # (6, 3)
    if name == "c51":
        best = q_next.argmax(-1)
        p = next_out.softmax(-1)[torch.arange(6), best]
        assert_close(target, c51_project(p, r, d, 0.9, loss.values))
        # Away from the support's ends the projection's mean is exactly r + gamma (1 - d) Q(s', a*).
        assert_close(
            (target * loss.values).sum(-1), r + 0.9 * (1 - d) * q_next.max(-1).values, atol=1e-5, rtol=0
        )
    else:
        assert_close(target, r + 0.9 * (1 - d) * q_next.max(-1).values)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradients_float64(name):
    loss = make_loss(name, -3.0, 3.0, 9)
    for attr in ("values", "edges"):  # float64 supports for a float64 gradcheck
        if hasattr(loss, attr):
            setattr(loss, attr, getattr(loss, attr).double())
    torch.manual_seed(2)
    out = torch.randn(5, loss.n_outputs, dtype=torch.float64)
    y = torch.randn(5, dtype=torch.float64) * 2
    if name == "c51":
        y = torch.randn(5, 9, dtype=torch.float64).softmax(-1)  # a distributional target
    assert check_gradients(lambda o: loss.loss(o, y), out)


@pytest.mark.parametrize("name", ["two_hot", "c51", "hl_gauss"])
def test_minimising_the_loss_recovers_the_target_value(name):
    # A free logit vector trained on one scalar target: its value must approach y (within half a bin).
    loss = make_loss(name, -10.0, 10.0, 51)
    logits = torch.zeros(1, 51, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    y = torch.tensor([3.21])
    for _ in range(400):
        opt.zero_grad()
        loss.loss(logits, y).backward()
        opt.step()
    assert abs(loss.q_values(logits).item() - 3.21) < 0.5 * 20 / 51


def test_c51_scalar_target_is_two_hot():
    loss = C51Loss(0.0, 2.0, 3)
    assert_close(loss.target_probs(torch.tensor([1.5])), torch.tensor([[0.0, 0.5, 0.5]]))


def test_defaults_are_the_papers_m51_and_sigma_075_and_make_loss_passes_them_on():
    # m = 51 bins/atoms (C51's default, the paper's Atari setting) and sigma = 0.75 bin width (Sec. 3.1).
    for cls in (HLGaussLoss, TwoHotLoss, C51Loss):
        assert cls(-10.0, 10.0).n_outputs == 51
    assert HLGaussLoss(-10.0, 10.0).sigma == pytest.approx(0.75 * 20 / 51, rel=1e-12)
    # make_loss forwards a non-default sigma_ratio and builds the clipped ablation
    assert make_loss("hl_gauss", -10.0, 10.0, 51, sigma_ratio=0.5).sigma == pytest.approx(0.5 * 20 / 51)
    assert isinstance(make_loss("mse_clip", -1.0, 1.0), ClippedMSELoss)


def test_clipped_mse_clips_targets_in_prepare_and_in_loss():
    # MSE on targets clipped to [v_min, v_max] = [-1, 1]: targets (3, -0.5) -> (1, -0.5);
    # out (0, 0): ((0 - 1)^2 + (0 + 0.5)^2) / 2 = 0.625 (unclipped would give (9 + 0.25) / 2).
    loss = make_loss("mse_clip", -1.0, 1.0)
    y = torch.tensor([3.0, -0.5])
    assert_close(loss.prepare(y), torch.tensor([1.0, -0.5]))
    assert loss.loss(torch.zeros(2, 1), y).item() == pytest.approx(0.625)


def test_prepare_turns_scalars_into_probs_once_and_passes_distributions_through():
    # mdp.py calls prepare() on every TD target: a C51 target is already a distribution (B, m).
    loss = C51Loss(-1.0, 1.0, 5)
    dist = torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2]])
    assert torch.equal(loss.prepare(dist), dist)
    assert_close(loss.prepare(torch.tensor([0.25])), torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]]))


def test_to_moves_every_support_tensor():
    # dqn.py builds the loss then calls .to(device): both the centres and the HL-Gauss edges must move
    # ("meta" stands in for an accelerator on a CPU-only machine).
    loss = HLGaussLoss(-1.0, 1.0, 5).to("meta")
    assert loss.values.device.type == "meta" and loss.edges.device.type == "meta"
