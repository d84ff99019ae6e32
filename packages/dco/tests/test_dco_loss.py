"""The DCO loss (dco.loss): values against a float64 / high-precision hand computation, N = 1 is CE
exactly, gradcheck, the gradient is F * grad CE, stability at p -> 1 and p -> 0, clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from dco.loss import coverage_factor, dco_loss, log1mexp, log_coverage

from xentlab.testing import assert_close, check_gradients


def _naive(s: float, n: int) -> tuple[float, float]:
    """-log(1 - (1-p)^N) and F(N, p) from the definitions in float64 scalars, with (1-p)^N formed by
    pow and 1 - (1-p)^N by log1p / expm1 (no cancellation for the moderate p used here)."""
    p = math.exp(s)
    q_n = (1.0 - p) ** n
    cov = -math.expm1(n * math.log1p(-p))
    return -math.log1p(-q_n), n * p * (1.0 - p) ** (n - 1) / cov


@pytest.mark.parametrize("n", [2, 4, 32, 256])
def test_values_match_the_definition(n):
    s = torch.tensor([-0.01, -0.3, -0.69, -0.7, -1.5, -3.0, -6.0], dtype=torch.float64)
    got = dco_loss(s, n, reduction="none")
    want = torch.tensor([_naive(x, n)[0] for x in s.tolist()], dtype=torch.float64)
    assert_close(got, want, rtol=1e-9, atol=0, name="loss")
    f_want = torch.tensor([_naive(x, n)[1] for x in s.tolist()], dtype=torch.float64)
    assert_close(coverage_factor(s, n), f_want, rtol=1e-9, atol=1e-300, name="F")


def test_hand_values():
    # p = 1/2, N = 2: coverage 1 - 1/4 = 3/4, loss log(4/3); F = 2 * 1/2 * 1/2 / (3/4) = 2/3
    s = torch.tensor([math.log(0.5)], dtype=torch.float64)
    assert dco_loss(s, 2).item() == pytest.approx(math.log(4 / 3), rel=1e-14)
    assert coverage_factor(s, 2).item() == pytest.approx(2 / 3, rel=1e-14)
    # p = 0.1, N = 4: 1 - 0.9^4 = 0.3439; F = 4 * 0.1 * 0.729 / 0.3439
    s = torch.tensor([math.log(0.1)], dtype=torch.float64)
    assert dco_loss(s, 4).item() == pytest.approx(-math.log(0.3439), rel=1e-12)
    assert coverage_factor(s, 4).item() == pytest.approx(0.2916 / 0.3439, rel=1e-12)


def test_n1_is_cross_entropy_exactly():
    s = torch.tensor([-0.0, -1e-8, -0.5, -3.0, -80.0], dtype=torch.float32)
    assert torch.equal(dco_loss(s, 1, reduction="none"), -s)
    assert torch.equal(coverage_factor(s, 1), torch.ones(5, dtype=torch.float64))
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 1])
    log_p = torch.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)
    assert torch.equal(dco_loss(log_p, 1), torch.nn.functional.cross_entropy(logits, y))


@pytest.mark.parametrize("n", [2, 7, 256])
def test_gradcheck(n):
    s = torch.tensor([-0.02, -0.4, -0.9, -2.5, -7.0], dtype=torch.float64, requires_grad=True)
    check_gradients(lambda x: dco_loss(x, n, reduction="none"), s)


def test_gradient_is_f_times_ce_gradient():
    # a tiny softmax "model": grad of DCO w.r.t. the logits equals F(N, p) * grad of CE (per example)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    n = 16
    log_p = torch.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)
    (grad_dco,) = torch.autograd.grad(dco_loss(log_p, n, reduction="sum"), logits)
    log_p = torch.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)
    (grad_ce,) = torch.autograd.grad((-log_p).sum(), logits)
    f = coverage_factor(log_p, n)
    assert_close(grad_dco, f[:, None] * grad_ce, rtol=1e-12, atol=1e-15, name="F * grad CE")
    # the detached-weight form (F.detach() * CE) has the same gradient
    log_p = torch.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)
    (grad_w,) = torch.autograd.grad((coverage_factor(log_p, n) * -log_p).sum(), logits)
    assert_close(grad_dco, grad_w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stable_near_p_one_and_p_zero(dtype):
    n = 256
    s = torch.tensor([-1e-8, -80.0, 0.0, -800.0], dtype=dtype, requires_grad=True)
    loss = dco_loss(s, n, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), s)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    s64 = s.detach().double()
    # log p = -1e-8: 1 - p = 1e-8 (to 5e-9 relative), (1-p)^256 ~ 1e-2048 -> loss ~ 0; F ~ 256 (1e-8)^255 ~ 0
    assert 0.0 <= loss[0].item() < 1e-300 and grad[0].item() == 0.0
    # log p = -80: p ~ 1.8e-35, coverage ~ N p (1 - (N-1) p / 2) -> loss = -log N + 80; F ~ 1 - (N-1)p/2 ~ 1
    assert loss[1].item() == pytest.approx(80.0 - math.log(n), rel=1e-6 if dtype == torch.float32 else 1e-14)
    assert grad[1].item() == pytest.approx(-1.0, rel=1e-6)
    # p = 1: loss 0, F = 0; p = e^-800 (underflows even in float64): loss 800 - log N, F = 1
    assert loss[2].item() == 0.0 and grad[2].item() == 0.0
    assert loss[3].item() == pytest.approx(800.0 - math.log(n), rel=1e-6)
    assert coverage_factor(s64, n)[3].item() == pytest.approx(1.0, rel=1e-12)


def test_f_is_monotone_and_bounded():
    s = torch.linspace(-30, -1e-6, 2000, dtype=torch.float64)
    for n in (2, 32, 256):
        f = coverage_factor(s, n)
        assert (f <= 1).all() and (f >= 0).all()
        assert (f[1:] <= f[:-1] + 1e-12).all()  # decreasing in p
    # past p ~ 1/N the factor is ~0 for large N: F(256, 0.05) = 12.8 * 0.95^255 / (1 - 0.95^256) ~ 2.7e-5
    assert coverage_factor(torch.tensor([math.log(0.05)], dtype=torch.float64), 256).item() < 1e-4


def test_log_coverage_and_log1mexp():
    s = torch.tensor([-0.1, -2.0], dtype=torch.float64)
    p = s.exp()
    assert_close(log_coverage(s, 8), torch.log(1 - (1 - p) ** 8), rtol=1e-12)
    t = torch.tensor([-1e-10, -0.5, -0.8, -50.0], dtype=torch.float64)
    assert_close(
        log1mexp(t),
        torch.tensor(
            [math.log(1e-10), math.log(1 - math.exp(-0.5)), math.log(1 - math.exp(-0.8)), -math.exp(-50.0)],
            dtype=torch.float64,
        ),
        rtol=1e-6,
    )


def test_reductions_and_errors():
    s = torch.tensor([-0.5, -2.0], dtype=torch.float64)
    per = dco_loss(s, 4, reduction="none")
    assert dco_loss(s, 4).item() == pytest.approx(per.mean().item())
    assert dco_loss(s, 4, reduction="sum").item() == pytest.approx(per.sum().item())
    with pytest.raises(ValueError, match="positive integer"):
        dco_loss(s, 0)
    with pytest.raises(ValueError, match="positive integer"):
        dco_loss(s, 2.5)
    with pytest.raises(ValueError, match="positive integer"):
        dco_loss(s, True)
    with pytest.raises(ValueError, match="<= 0"):
        dco_loss(torch.tensor([0.1]), 4)
    with pytest.raises(ValueError, match="NaN"):
        dco_loss(torch.tensor([float("nan")]), 4)
    with pytest.raises(TypeError, match="floating-point"):
        dco_loss(torch.tensor([-1]), 4)
    with pytest.raises(ValueError, match="reduction"):
        dco_loss(s, 4, reduction="avg")


def test_rounding_above_zero_is_read_as_p_equal_one():
    """A float32 sequence log-prob of a near-certain answer may round to a tiny positive value (seen:
    1.9e-6); it is read as log p = 0: coverage 1, loss 0, F = 0 (no push), for DCO and CE alike."""
    from dco.loss import coverage_factor

    s = torch.tensor([2e-6, 0.0], requires_grad=True)
    per = dco_loss(s, 4, reduction="none")
    assert torch.equal(per.detach(), torch.zeros(2))
    per.sum().backward()
    assert torch.equal(s.grad, torch.zeros(2))
    assert torch.equal(coverage_factor(s.detach(), 256), torch.zeros(2, dtype=torch.float64))
    assert abs(dco_loss(s.detach(), 1).item()) < 1e-5


def test_coverage_and_factor_stay_exact_where_p_is_subnormal():
    # long answers have log p of several hundred: p = e^s is subnormal below s = -708.4, where the float64
    # ratio -log1p(-p) / p loses bits (at the smallest subnormal, s ~ -744.4, log1p(-p) rounds to 0 and the
    # loss was inf; at s = -743.2 F was 0.75). As p -> 0: log(1 - (1-p)^N) = log N + s + O(p) and F -> 1.
    s = -torch.linspace(316.0, 1000.0, 20001, dtype=torch.float64)
    for n in (2, 8, 256):
        f = coverage_factor(s, n)
        assert (f <= 1).all() and (f > 1 - 1e-9).all()
        assert_close(log_coverage(s, n), math.log(n) + s, atol=1e-9, rtol=0)
    loss = dco_loss(torch.tensor([-744.5, -2000.0], dtype=torch.float64), 8, reduction="none")
    assert_close(loss, torch.tensor([744.5, 2000.0], dtype=torch.float64) - math.log(8), atol=1e-9, rtol=0)


def test_n1_log_coverage_is_log_p_and_factor_checks_its_input():
    s = torch.tensor([-0.3, -4.0], dtype=torch.float64)
    assert_close(log_coverage(s, 1), s, atol=0, rtol=0)  # pass@1 = p
    assert_close(coverage_factor(s, 1), torch.ones(2, dtype=torch.float64), atol=0, rtol=0)
    with pytest.raises(ValueError, match="N must be"):
        coverage_factor(s, 0)
    with pytest.raises(ValueError, match="log_p must be <= 0"):
        coverage_factor(torch.tensor([0.5], dtype=torch.float64), 4)
