"""The rho-controller: Adam's direction, the step-length cap and a capped step end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ghosts.controller import AdamDirection, capped_lr
from ghosts.models import build_model
from ghosts.radius import rho_a_along

from xentlab.testing import assert_close


def test_cap_binds_to_exactly_rho_when_the_step_is_too_long():
    lr, p_norm, rho = 1.0, 2.0, 0.5  # tau = 2 > rho
    lr_eff = capped_lr(lr, p_norm, rho)
    assert lr_eff == 0.25
    assert lr_eff * p_norm == rho  # tau_eff = rho_a exactly, r = 1


def test_cap_leaves_a_short_step_unchanged():
    assert capped_lr(0.1, 2.0, 0.5) == 0.1  # tau = 0.2 < rho
    assert capped_lr(0.25, 2.0, 0.5) == 0.25  # tau == rho is allowed (the cap is tau <= rho_a)
    assert capped_lr(0.3, 0.0, 0.5) == 0.3  # a zero step is never capped
    assert capped_lr(5.0, 1.0, math.inf) == 5.0  # logits that do not move: no radius


@pytest.mark.parametrize(
    "args, match",
    [
        ((-1.0, 1.0, 1.0), "lr"),
        ((float("nan"), 1.0, 1.0), "lr"),
        ((1.0, -1.0, 1.0), "p"),
        ((1.0, 1.0, 0.0), "rho_a"),
        ((1.0, 1.0, float("nan")), "rho_a"),
        ((1.0, 1.0, -2.0), "rho_a"),
    ],
)
def test_cap_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        capped_lr(*args)


def _loss_and_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def test_adam_direction_equals_torch_adam_float64():
    torch.manual_seed(0)
    model_a = build_model("mlp").double()
    model_b = build_model("mlp").double()
    model_b.load_state_dict(model_a.state_dict())
    opt = AdamDirection(model_a.parameters())
    ref = torch.optim.Adam(model_b.parameters(), lr=3e-3, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.rand(16, 64, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 10, (16,), generator=gen)
        _loss_and_grads(model_a, x, y)
        direction, _ = opt.propose()
        opt.apply(direction, 3e-3)
        ref.zero_grad()
        F.cross_entropy(model_b(x), y).backward()
        ref.step()
    for (n, pa), pb in zip(model_a.named_parameters(), model_b.parameters()):
        assert_close(pa, pb, rtol=1e-12, atol=1e-14, name=n)


def test_capped_step_has_length_rho_a_and_keeps_adam_moments():
    # Two copies take the same Adam step proposal; one is capped by the controller. The capped
    # displacement must have length exactly rho_a along -p/||p||, and the moments must be those of
    # plain Adam (only the step length is capped).
    torch.manual_seed(0)
    model = build_model("mlp").double()
    twin = build_model("mlp").double()
    twin.load_state_dict(model.state_dict())
    x = torch.rand(32, 64, dtype=torch.float64)
    y = torch.randint(0, 10, (32,))
    opt, opt_twin = AdamDirection(model.parameters()), AdamDirection(twin.parameters())
    _loss_and_grads(model, x, y)
    _loss_and_grads(twin, x, y)
    direction, p_norm = opt.propose()
    direction_twin, _ = opt_twin.propose()
    v = {n: d / p_norm for (n, _), d in zip(model.named_parameters(), direction)}
    rho = rho_a_along(model, x, v)
    lr = 10.0 * rho / p_norm  # a x10 spike beyond the radius
    lr_eff = capped_lr(lr, p_norm, rho)
    before = [p.detach().clone() for p in model.parameters()]
    opt.apply(direction, lr_eff)
    opt_twin.apply(direction_twin, lr)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert moved.norm().item() == pytest.approx(rho, rel=1e-10)
    expected = torch.cat([(-rho * v[n]).flatten() for n, _ in model.named_parameters()])
    assert_close(moved, expected, rtol=1e-9, atol=1e-15, name="capped displacement")
    for m1, m2, v1, v2 in zip(opt.m, opt_twin.m, opt.v, opt_twin.v):
        assert torch.equal(m1, m2) and torch.equal(v1, v2)
    twin_moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(twin.parameters(), before)])
    assert twin_moved.norm().item() == pytest.approx(10 * rho, rel=1e-10)  # uncapped: r = 10


def test_adam_direction_rejects_bad_settings():
    with pytest.raises(ValueError, match="trainable"):
        AdamDirection([])
    with pytest.raises(ValueError, match="betas"):
        AdamDirection([torch.zeros(2, requires_grad=True)], betas=(1.0, 0.999))
    opt = AdamDirection([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="direction"):
        opt.apply([], 0.1)
