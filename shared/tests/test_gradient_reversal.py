import pytest
import torch

from xentlab.losses.gradient_reversal import GradientReversal, grad_reverse


def _numerical_jacobian(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central finite differences of fn's *forward* pass, float64: row j = d fn / d x_j."""
    x = x.detach().double()
    cols = []
    for j in range(x.numel()):
        d = torch.zeros_like(x).view(-1)
        d[j] = eps
        d = d.view_as(x)
        cols.append(((fn(x + d) - fn(x - d)) / (2 * eps)).reshape(-1))
    return torch.stack(cols)  # (n_in, n_out)


def _analytic_jacobian(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().double().requires_grad_(True)
    out = fn(x).reshape(-1)
    rows = [torch.autograd.grad(out[k], x, retain_graph=True)[0].reshape(-1) for k in range(out.numel())]
    return torch.stack(rows).T  # (n_in, n_out)


def test_forward_is_identity():
    x = torch.randn(3, 4)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("lambd", [0.0, 0.1, 1.0, 2.5])
def test_backward_is_minus_lambda_times_upstream(lambd):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, 3, dtype=torch.float64)
    grad_reverse(x, lambd).backward(upstream)
    assert torch.allclose(x.grad, -lambd * upstream, rtol=0, atol=1e-15)


@pytest.mark.parametrize("lambd", [0.1, 1.0])
def test_gradcheck_style_sign_and_scale(lambd):
    # f(x) = w . tanh(A x): the forward pass (what finite differences see) is unchanged by the GRL,
    # so autograd's Jacobian through the GRL must equal -lambda times the numerical one, element by
    # element, while without the GRL the two agree (that part is a plain gradcheck).
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64)
    w = torch.randn(4, generator=g, dtype=torch.float64)

    def f_plain(x):
        return (w * torch.tanh(a @ x)).sum(0, keepdim=True)

    def f_reversed(x):
        return (w * torch.tanh(a @ grad_reverse(x, lambd))).sum(0, keepdim=True)

    x = torch.randn(3, generator=g, dtype=torch.float64)
    numeric = _numerical_jacobian(f_plain, x)
    assert torch.allclose(_numerical_jacobian(f_reversed, x), numeric, atol=1e-9)  # forward unchanged
    assert torch.allclose(_analytic_jacobian(f_plain, x), numeric, atol=1e-7)
    assert torch.allclose(_analytic_jacobian(f_reversed, x), -lambd * numeric, atol=1e-7)


def test_only_the_branch_through_the_grl_is_reversed():
    # L = sum(x) + sum(GRL(x) * 3): dL/dx = 1 + (-lambda) * 3
    x = torch.zeros(4, requires_grad=True)
    (x.sum() + (grad_reverse(x, 0.5) * 3).sum()).backward()
    assert torch.allclose(x.grad, torch.full((4,), 1 - 1.5))


def test_module_follows_its_lambda():
    grl = GradientReversal(0.0)
    x = torch.ones(2, requires_grad=True)
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2))  # lambda = 0: no gradient reaches x
    grl.lambd = 0.25
    x.grad = None
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.full((2,), -0.25))
    assert "lambd=0.25" in repr(grl)


def test_lambda_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        grad_reverse(torch.ones(2), float("nan"))


def test_default_lambda_is_one():
    # Ganin & Lempitsky (Eq. 13) with the fixed lambda = 1 the callers rely on when they pass none:
    # both the function and the module then hand back exactly minus the upstream gradient.
    upstream = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    grad_reverse(x).backward(upstream)
    assert torch.equal(x.grad, -upstream)
    grl = GradientReversal()
    assert grl.lambd == 1.0 and "lambd=1" in repr(grl)
    x.grad = None
    grl(x).backward(upstream)
    assert torch.equal(x.grad, -upstream)
