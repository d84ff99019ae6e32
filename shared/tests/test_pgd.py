"""xentlab.attacks.pgd: the ball constraint, exactness on a linear model, custom objectives."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xentlab.attacks import pgd_linf, robust_accuracy


def _linear(w, b):
    m = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(b)
    return m


def test_stays_in_ball_and_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    x, y = torch.rand(32, 6), torch.randint(0, 3, (32,))
    xa = pgd_linf(model, x, y, eps=0.1, step_size=0.03, steps=7, clamp=(0.0, 1.0))
    assert (xa - x).abs().max() <= 0.1 + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1
    assert not xa.requires_grad
    assert all(p.grad is None for p in model.parameters())  # no gradient leaks into the model


def test_linear_binary_model_optimum():
    # Two classes, logits w_k.x + b: CE on class 0 increases fastest along sign(w_1 - w_0); for a
    # linear model the L_inf-constrained maximiser is exactly x + eps*sign(w_1 - w_0) (the margin
    # (w_1-w_0).x is linear, CE is monotone in it), reached after enough steps of size >= eps/steps.
    w = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]])
    model = _linear(w, torch.zeros(2))
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    xa = pgd_linf(model, x, y, eps=0.2, step_size=0.05, steps=10, random_start=None)
    expected = 0.2 * torch.sign(w[1] - w[0]).expand(4, 3)
    assert torch.allclose(xa, expected, atol=1e-6)


def test_custom_objective_and_loss_increases():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    x, y = torch.randn(64, 5), torch.randint(0, 4, (64,))
    clean = F.log_softmax(model(x), 1).detach().exp()

    def kl(logits_adv, _y):  # TRADES' inner objective
        return F.kl_div(F.log_softmax(logits_adv, 1), clean, reduction="sum")

    xa = pgd_linf(model, x, y, eps=0.3, step_size=0.1, steps=10, objective=kl, random_start="normal")
    assert kl(model(xa), y) > kl(model(x), y)
    xc = pgd_linf(model, x, y, eps=0.3, step_size=0.1, steps=10)
    assert F.cross_entropy(model(xc), y) > F.cross_entropy(model(x), y)


def test_robust_accuracy_and_determinism():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    x, y = torch.randn(50, 5), torch.randint(0, 3, (50,))
    a = robust_accuracy(model, x, y, eps=0.5, step_size=0.1, steps=10, batch_size=16, seed=3)
    b = robust_accuracy(model, x, y, eps=0.5, step_size=0.1, steps=10, batch_size=16, seed=3)
    assert a == b and a[1] <= a[0] and model.training  # mode restored
    zero = robust_accuracy(model, x, y, eps=0.0, step_size=0.1, steps=10)
    assert zero[0] == zero[1]


def test_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="eps"):
        pgd_linf(m, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), eps=-1, step_size=0.1, steps=1)
    with pytest.raises(ValueError, match="random_start"):
        pgd_linf(
            m,
            torch.zeros(1, 2),
            torch.zeros(1, dtype=torch.long),
            eps=0.1,
            step_size=0.1,
            steps=1,
            random_start="gauss",
        )
