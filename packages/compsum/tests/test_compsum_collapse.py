"""Why ADV-COMP-SUM collapses to a constant predictor for large nu (README, "Why nu >= 3 collapses").

The smooth term nu * sup ||Dbar_h(x', y) - Dbar_h(x, y)||_2 is positively 1-homogeneous in the scores
(scaling the score differences by s scales it by s), so it has a kink of slope nu * R at the constant
predictor, while the CE term's slope there is bounded. Above a critical nu the constant predictor wins.
TRADES' KL term is O(s^2) near the constant predictor (zero slope), so CE always wins there.

Hand derivation on a toy where the sup is exact (1-D, two classes, no pixel clamp):
    x = +1 with y = 0, x = -1 with y = 1; linear scores h(x) = (a x, -a x); L_inf ball of radius eps.
    score difference of the true class vs the other: 2 a x, so Dbar changes by 2 a delta, |delta| <= eps,
    and the sup of its l2 norm is 2 |a| eps. Both examples have CE = log(1 + e^{-2a}). So
        L(a) = log(1 + e^{-2a}) + 2 nu eps |a|.
    log(1 + e^{-2a}) is convex with tangent log 2 - a at a = 0, hence L(a) >= log 2 + (2 nu eps - 1)|a|:
    the constant predictor a = 0 (p = 1/2 for both classes, chance accuracy) is the global minimiser iff
    nu >= 1 / (2 eps) (= 5 at eps = 0.1). Below it, L'(a) = 0 gives a* = log(1 / (nu eps) - 1) / 2.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from compsum.adversarial import AttackConfig, adv_comp_sum_loss, trades_loss
from compsum.losses import smooth_term
from torch import nn

from xentlab.models.mlp import build_mlp
from xentlab.testing import assert_close

EPS = 0.1
# PGD reaches the boundary of the 1-D ball exactly (2 sign steps of 0.05 from the 0.001 N(0,1) start)
TOY_ATTACK = AttackConfig(eps=EPS, step_size=0.05, steps=5, clamp=None)
X = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
Y = torch.tensor([0, 1])


def _toy_model(a: float) -> nn.Module:
    model = nn.Linear(1, 2, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[a], [-a]], dtype=torch.float64))
    return model


def _acs(a: float, nu: float) -> float:
    return float(adv_comp_sum_loss(_toy_model(a), X, Y, TOY_ATTACK, tau=1.0, nu=nu).detach())


def _hand(a: float, nu: float) -> float:
    return math.log1p(math.exp(-2 * a)) + 2 * nu * EPS * abs(a)


def test_toy_loss_matches_the_hand_formula():
    torch.manual_seed(0)
    for nu in (1.0, 3.0, 6.0):
        for a in (-0.7, 0.3, 1.5):
            # 1e-12 inside the sqrt of smooth_term moves the value by < 1e-9 at these |a|
            assert_close(
                torch.tensor(_acs(a, nu)), torch.tensor(_hand(a, nu)), atol=1e-8, name=f"nu={nu} a={a}"
            )


@pytest.mark.parametrize("nu", [5.0, 6.0, 10.0])
def test_constant_predictor_is_the_minimiser_above_the_critical_nu(nu):
    # nu >= 1 / (2 eps) = 5: L(a) >= L(0) for every a (the sqrt smoothing adds nu * 1e-6 at a = 0 only)
    torch.manual_seed(0)
    at_zero = _acs(0.0, nu)
    assert abs(at_zero - math.log(2)) < 2e-5
    for a in (-1.0, 0.01, 0.1, 0.5, 2.0):
        assert _acs(a, nu) > at_zero, (nu, a)


@pytest.mark.parametrize("nu", [1.0, 3.0, 4.5])
def test_below_the_critical_nu_the_minimiser_is_the_closed_form(nu):
    torch.manual_seed(0)
    a_star = 0.5 * math.log(1 / (nu * EPS) - 1)  # 1.099, 0.424, 0.100
    best = _acs(a_star, nu)
    assert best < _acs(0.0, nu)
    for da in (-0.05, 0.05):
        assert best < _acs(a_star + da, nu), (nu, da)


@pytest.mark.parametrize("beta", [1.0, 10.0, 1000.0])
def test_trades_never_prefers_the_constant_predictor(beta):
    # The KL(p(x) || p(x')) term is ~ (1/2) p (1 - p) (2 a delta)^2 <= a^2 eps^2 / 2 near a = 0: zero
    # slope, so L'(0) = -1 (the CE slope) for every beta and a small a > 0 beats the constant predictor.
    torch.manual_seed(0)
    at_zero = float(trades_loss(_toy_model(0.0), X, Y, TOY_ATTACK, beta=beta).detach())
    small = float(trades_loss(_toy_model(0.01), X, Y, TOY_ATTACK, beta=beta).detach())
    assert small < at_zero - 0.009  # CE alone drops by ~0.01 (slope -1); the KL adds <= beta * 5e-7


def test_penalties_scale_linearly_vs_quadratically_in_the_scores():
    # The same mechanism on an MLP with 10 classes: scale the scores by s (e.g. the head's weights and
    # bias), x' held fixed. ADV-COMP-SUM's penalty is s * penalty(1) (1-homogeneous, a kink of slope
    # nu * penalty(1) at s = 0); TRADES' KL(p(x) || p(x')) is ~ c s^2 (zero slope at s = 0).
    torch.manual_seed(0)
    model = build_mlp(6, (8,), 10).double()
    x = torch.rand(5, 6, dtype=torch.float64)
    y = torch.randint(0, 10, (5,))
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        z, za = model(x), model(x_adv)

    def kl(s):
        p, q = F.softmax(s * z, 1), F.softmax(s * za, 1)
        return float((p * (p.log() - q.log())).sum(1).mean())

    base = smooth_term(za, z, y)
    for s in (0.1, 1.0, 3.0):
        assert_close(smooth_term(s * za, s * z, y), s * base, rtol=1e-6, name=f"s={s}")
    assert kl(1e-3) / 1e-6 == pytest.approx(kl(2e-3) / 4e-6, rel=1e-2)
