"""comp_sum_loss: the special cases of the family, the literal Phi^tau definition, stability, gradients."""

import pytest
import torch
import torch.nn.functional as F
from compsum.losses import comp_sum_loss, phi_tau, score_differences, smooth_adv_comp_sum_loss, smooth_term

from xentlab.testing import assert_close, check_gradients


def _data(n=7, k=5, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * scale, torch.randint(0, k, (n,), generator=g)


def test_tau0_is_sum_exponential():
    h, y = _data()
    hy = h.gather(1, y[:, None])
    mask = torch.ones_like(h).scatter_(1, y[:, None], 0.0)
    expected = (torch.exp(h - hy) * mask).sum(1)  # sum_{y' != y} e^{h_y' - h_y}
    assert_close(comp_sum_loss(h, y, 0.0, "none"), expected, name="tau=0")


def test_tau1_is_cross_entropy():
    h, y = _data()
    assert_close(comp_sum_loss(h, y, 1.0, "none"), F.cross_entropy(h, y, reduction="none"), name="tau=1")


@pytest.mark.parametrize("tau", [1.2, 1.5, 1.9])
def test_tau_in_1_2_is_generalised_ce(tau):
    # GCE (Zhang & Sabuncu 2018): (1 - p_y^q) / q with q = tau - 1
    h, y = _data()
    p = torch.softmax(h, 1).gather(1, y[:, None]).squeeze(1)
    q = tau - 1
    assert_close(comp_sum_loss(h, y, tau, "none"), (1 - p**q) / q, name=f"tau={tau}")


def test_tau2_is_mae():
    h, y = _data()
    p = torch.softmax(h, 1).gather(1, y[:, None]).squeeze(1)
    assert_close(comp_sum_loss(h, y, 2.0, "none"), 1 - p, name="tau=2")


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.0, 1.7, 2.0, 3.0])
def test_matches_literal_phi_definition(tau):
    h, y = _data(scale=1.0)
    u = (torch.exp(h - h.gather(1, y[:, None])) * torch.ones_like(h).scatter_(1, y[:, None], 0.0)).sum(1)
    assert_close(comp_sum_loss(h, y, tau, "none"), phi_tau(u, tau), name=f"Phi^{tau}")


def test_continuous_in_tau_at_1():
    h, y = _data()
    ce = comp_sum_loss(h, y, 1.0, "none")
    for tau in (1 - 1e-7, 1 + 1e-7):
        assert_close(comp_sum_loss(h, y, tau, "none"), ce, atol=1e-5, rtol=1e-5, name="tau->1")


def test_stable_for_large_logits():
    h = torch.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    y = torch.tensor([0, 0])
    # tau < 1 losses grow like exp(margin) and genuinely exceed float range at a 1e4 margin; tau >= 1 do not
    for tau in (1.0, 1.5, 2.0):
        out = comp_sum_loss(h, y, tau, "none")
        assert torch.isfinite(out).all(), tau
        assert out[0] == pytest.approx(0.0, abs=1e-6)  # correct with a huge margin: zero loss
    assert comp_sum_loss(h, y, 2.0, "none")[1] == pytest.approx(1.0)  # MAE is bounded by 1
    assert comp_sum_loss(h, y, 1.5, "none")[1] == pytest.approx(2.0)  # GCE bounded by 1/q
    # tau = 0.5 in float32 at margin 40: 2 (e^{20} - 1), computed without overflow or cancellation
    h32 = torch.tensor([[0.0, 40.0]])
    assert comp_sum_loss(h32, torch.tensor([0]), 0.5).item() == pytest.approx(2 * (torch.e**20 - 1), rel=1e-5)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_gradcheck(tau):
    h, y = _data(n=4, k=3, scale=1.0)
    assert check_gradients(lambda z: comp_sum_loss(z, y, tau), h)


def test_reductions_and_errors():
    h, y = _data()
    per = comp_sum_loss(h, y, 0.5, "none")
    assert_close(comp_sum_loss(h, y, 0.5, "sum"), per.sum())
    assert_close(comp_sum_loss(h, y, 0.5), per.mean())
    with pytest.raises(ValueError, match="tau must be >= 0"):
        comp_sum_loss(h, y, -0.1)
    with pytest.raises(ValueError, match="reduction"):
        comp_sum_loss(h, y, 1.0, "avg")
    with pytest.raises(ValueError, match="target must be int64"):
        comp_sum_loss(h, y.float(), 1.0)
    with pytest.raises(ValueError, match="logits must be"):
        comp_sum_loss(h[0], y[:1], 1.0)


def test_smooth_term():
    h, y = _data()
    d = score_differences(h, y)
    assert torch.all(d.gather(1, y[:, None]) == 0)
    assert smooth_term(h, h, y).max() < 1e-5  # zero at x' = x
    # shifting all scores of a row by a constant leaves every difference unchanged
    assert smooth_term(h + 3.0, h, y).max() < 1e-5
    # hand value: one row, class 0 labelled, adversarial scores move class 1 up by 2 -> ||(0, -2, 0)|| = 2
    h0 = torch.zeros(1, 3, dtype=torch.float64)
    assert smooth_term(
        torch.tensor([[0.0, 2.0, 0.0]], dtype=torch.float64), h0, torch.tensor([0])
    ).item() == (pytest.approx(2.0))
    h_adv = h + torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=h.dtype)
    total = smooth_adv_comp_sum_loss(h, h_adv, y, 1.0, 0.5, "none")
    assert_close(total, comp_sum_loss(h, y, 1.0, "none") + 0.5 * smooth_term(h_adv, h, y))
    with pytest.raises(ValueError, match="nu must be"):
        smooth_adv_comp_sum_loss(h, h, y, 1.0, -1.0)


def test_score_differences_hand_value_and_target_shape_error():
    # Dbar_h(x, y) = (h(x, y) - h(x, y'))_{y'}: h = (1, 3, 0), y = 0 -> (0, -2, 1)
    h = torch.tensor([[1.0, 3.0, 0.0]], dtype=torch.float64)
    assert_close(
        score_differences(h, torch.tensor([0])), torch.tensor([[0.0, -2.0, 1.0]], dtype=torch.float64)
    )
    # a target of the wrong length is an error, not a silent broadcast
    h7, y7 = _data()
    with pytest.raises(ValueError, match="target must be int64"):
        comp_sum_loss(h7, y7[:3], 1.0)


def test_smooth_term_gradient_is_finite_at_x_adv_equal_x():
    # PGD starts at x' = x; the plain norm has a 0/0 gradient there, the + 1e-12 under the sqrt gives 0
    h, y = _data(n=3, k=4)
    h_adv = h.clone().requires_grad_(True)
    smooth_term(h_adv, h, y).sum().backward()
    assert torch.isfinite(h_adv.grad).all() and h_adv.grad.abs().max() == 0


def test_smooth_adv_loss_uses_its_tau():
    h, y = _data()
    h_adv = h + torch.randn(h.shape, generator=torch.Generator().manual_seed(2), dtype=h.dtype)
    for tau in (0.5, 1.5):
        total = smooth_adv_comp_sum_loss(h, h_adv, y, tau, 0.3, "none")
        assert_close(
            total, comp_sum_loss(h, y, tau, "none") + 0.3 * smooth_term(h_adv, h, y), name=f"tau={tau}"
        )
