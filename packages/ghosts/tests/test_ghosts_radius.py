"""The radius bound: JVP derivatives, rho_a, the binary exact radius and the complex zeros they predict."""

from __future__ import annotations

import cmath
import math

import pytest
import torch
from ghosts.models import ARCHITECTURES, build_model
from ghosts.radius import (
    binary_exact_radius,
    directional_logit_derivatives,
    logit_slope_spread,
    normalised_step,
    rho_a,
    rho_a_along,
    rho_from_spread,
    unit_direction,
)
from torch import nn
from torch.func import functional_call

from xentlab.testing import assert_close


def _random_unit_direction(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    raw = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in model.named_parameters()}
    return unit_direction(raw)[0]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_jvp_matches_central_finite_difference_float64(arch):
    # a_k = d z_k(theta + eps v) / d eps at 0; the central difference has error O(eps^2) (~1e-12
    # here) plus rounding ~1e-16 / eps, so 1e-6 is a loose bound (the brief asks for 1e-3).
    torch.manual_seed(0)
    model = build_model(arch).double()
    if arch == "cnn_bn":  # give BatchNorm non-trivial running statistics, as after training
        model.train()
        with torch.no_grad():
            model(torch.rand(64, 64, dtype=torch.float64))
    x = torch.rand(16, 64, dtype=torch.float64)
    v = _random_unit_direction(model)
    logits, a = directional_logit_derivatives(model, x, v)
    model.eval()
    base = {n: p.detach() for n, p in model.named_parameters()}
    eps = 1e-6
    with torch.no_grad():
        plus = functional_call(model, {n: base[n] + eps * v[n] for n in base}, (x,))
        minus = functional_call(model, {n: base[n] - eps * v[n] for n in base}, (x,))
        z0 = model(x)
    assert_close(logits, z0, atol=1e-12, rtol=0, name=f"{arch} logits")
    assert_close(a, (plus - minus) / (2 * eps), atol=1e-6, rtol=1e-6, name=f"{arch} JVP vs finite difference")


def test_jvp_restores_training_mode_and_leaves_batchnorm_buffers_alone():
    torch.manual_seed(0)
    model = build_model("cnn_bn")
    model.train()
    before = {n: b.clone() for n, b in model.named_buffers()}
    rho_a_along(model, torch.rand(8, 64), _random_unit_direction(model))
    assert model.training
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]), n


def test_rho_a_of_a_linear_model_is_hand_derived():
    # z = W x + b with 3 classes and 2 features; direction dW = [[1,0],[0,0],[0,1]] / sqrt(2),
    # db = 0, so a(x) = dW x:
    #   x1 = (1, 2):  a = (1, 0, 2)/sqrt2,  Delta_a = 2/sqrt2 = sqrt2
    #   x2 = (3, -1): a = (3, 0, -1)/sqrt2, Delta_a = 4/sqrt2 = 2 sqrt2
    # rho_a = pi / max Delta_a = pi / (2 sqrt2).
    model = nn.Linear(2, 3).double()
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    raw = {
        "weight": torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
        "bias": torch.zeros(3, dtype=torch.float64),
    }
    v, norm = unit_direction(raw)
    assert norm == pytest.approx(math.sqrt(2))
    _, a = directional_logit_derivatives(model, x, v)
    s2 = math.sqrt(2)
    assert_close(a, torch.tensor([[1 / s2, 0.0, 2 / s2], [3 / s2, 0.0, -1 / s2]], dtype=torch.float64))
    assert_close(logit_slope_spread(a), torch.tensor([s2, 2 * s2], dtype=torch.float64))
    assert rho_a(a) == pytest.approx(math.pi / (2 * s2), rel=1e-14)
    assert rho_a_along(model, x, v) == pytest.approx(math.pi / (2 * s2), rel=1e-14)
    assert normalised_step(math.pi / (2 * s2), rho_a(a)) == pytest.approx(1.0)


def _exp_sum_zeros(exponents, slopes, coeffs, radius: float, n: int = 12, iters: int = 60) -> list[complex]:
    """Zeros of F(t) = sum_k c_k exp(u_k(t)) with u_k affine (u_k' = slopes[k]), by Newton's method
    from an n x n grid of starts in the box |Re t|, |Im t| <= radius. Terms are rescaled by the
    largest exp(Re u_k) so that nothing overflows."""
    roots = []
    for i in range(n):
        for j in range(n):
            t = complex(-radius + 2 * radius * (i + 0.5) / n, -radius + 2 * radius * (j + 0.5) / n)
            residual = math.inf
            for _ in range(iters):
                u = exponents(t)
                top = max(z.real for z in u)
                terms = [c * cmath.exp(z - top) for c, z in zip(coeffs, u)]
                f = sum(terms)
                df = sum(k * term for k, term in zip(slopes, terms))
                residual = abs(f) / sum(abs(term) for term in terms)
                if df == 0 or residual < 1e-13:
                    break
                t -= f / df
            if residual < 1e-10 and all(abs(t - r) > 1e-7 for r in roots):
                roots.append(t)
    return roots


def test_binary_radius_is_the_nearest_complex_zero_of_one_plus_exp_minus_margin():
    # Two classes, a linear model, so the logits are exactly linear along theta + t v and the loss
    # log(1 + exp(-m(t))) is singular where 1 + exp(-m(t)) = 0. We evaluate m(t) through the model
    # itself at complex t (complex parameters), find those zeros with Newton's method and compare
    # the nearest one with rho* = sqrt(delta^2 + pi^2) / Delta_a.
    torch.manual_seed(3)
    model = nn.Linear(4, 2).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    v = _random_unit_direction(model, seed=1)
    logits, a = directional_logit_derivatives(model, x, v)
    base = {n: p.detach().to(torch.complex128) for n, p in model.named_parameters()}
    vc = {n: t.to(torch.complex128) for n, t in v.items()}
    for i in range(x.shape[0]):
        yi, oi = int(y[i]), 1 - int(y[i])
        xi = x[i : i + 1].to(torch.complex128)

        def margin(t: complex, xi=xi, yi=yi, oi=oi) -> complex:
            z = functional_call(model, {n: base[n] + t * vc[n] for n in base}, (xi,))[0]
            return complex((z[yi] - z[oi]).item())

        m0 = margin(0.0)
        s = (margin(1.0) - m0).real  # m is affine in t: m(t) = m0 + s t; check it at a complex point
        t_check = complex(0.7, -1.3)
        assert abs(margin(t_check) - (m0 + s * t_check)) < 1e-12

        delta = float(logits[i, yi] - logits[i, oi])
        delta_a = abs(float(a[i, yi] - a[i, oi]))
        expected = binary_exact_radius(delta, delta_a)
        # 1 + exp(-m(t)) = exp(0) + exp(-m(t)), slopes 0 and -m'
        roots = _exp_sum_zeros(
            lambda t, margin=margin: [0j, -margin(t)], [0.0, -s], [1.0, 1.0], 2.5 * expected
        )
        assert roots, "Newton found no zero"
        nearest = min(abs(r) for r in roots)
        assert nearest == pytest.approx(expected, rel=1e-9), f"sample {i}"
        assert expected >= math.pi / delta_a  # the exact radius never undercuts the bound


@pytest.mark.parametrize("seed", range(4))
def test_no_zero_of_the_partition_function_lies_inside_rho_a(seed):
    # F(t) = sum_k w_k exp(a_k t) with w_k = softmax weights > 0. Inside |Im t| < pi / Delta_a all
    # terms have phases within an open half-turn, so F != 0: every zero has |t| >= pi / Delta_a.
    gen = torch.Generator().manual_seed(seed)
    k = 3 + seed
    w = torch.softmax(torch.randn(k, generator=gen, dtype=torch.float64) * 2, 0).tolist()
    a = (torch.randn(k, generator=gen, dtype=torch.float64) * 1.5).tolist()
    bound = rho_a(torch.tensor([a], dtype=torch.float64))
    roots = _exp_sum_zeros(lambda t: [ak * t for ak in a], a, w, radius=4 * bound)
    assert roots, "Newton found no zero"
    assert min(abs(r) for r in roots) >= bound * (1 - 1e-9)
    assert min(abs(r.imag) for r in roots) >= bound * (1 - 1e-9)


def test_binary_radius_tensor_form_and_bound():
    margin = torch.tensor([0.0, 2.0, 10.0], dtype=torch.float64)
    rho_star = binary_exact_radius(margin, torch.tensor(2.0, dtype=torch.float64))
    assert_close(rho_star, torch.sqrt(margin**2 + math.pi**2) / 2)
    assert rho_star[0].item() == pytest.approx(math.pi / 2)  # delta = 0: the bound is exact
    # README FAQ: at delta = 10 the exact radius exceeds pi / Delta_a by sqrt(1 + (10/pi)^2) ~ 3.3
    assert (rho_star[2] / rho_star[0]).item() == pytest.approx(math.sqrt(1 + (10 / math.pi) ** 2))


def test_rho_from_spread_edge_cases():
    assert rho_from_spread(0.0) == math.inf
    assert rho_from_spread(math.pi) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: logit_slope_spread(torch.zeros(5)), "shape"),
        (lambda: logit_slope_spread(torch.zeros(5, 1)), "K >= 2"),
        (lambda: logit_slope_spread(torch.tensor([[0.0, float("nan")]])), "non-finite"),
        (lambda: rho_from_spread(-1.0), ">= 0"),
        (lambda: normalised_step(-0.1, 1.0), "tau"),
        (lambda: normalised_step(0.1, 0.0), "rho"),
        (lambda: binary_exact_radius(1.0, 0.0), "delta_a"),
        (lambda: binary_exact_radius(torch.tensor([1.0]), torch.tensor([-1.0])), "delta_a"),
        (lambda: unit_direction({"w": torch.zeros(3)}), "norm"),
    ],
)
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_direction_must_match_the_parameters():
    model = nn.Linear(2, 3)
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="missing"):
        directional_logit_derivatives(model, x, {"weight": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match="shape"):
        directional_logit_derivatives(model, x, {"weight": torch.zeros(2, 3), "bias": torch.zeros(3)})
