"""bce_val's BatchNorm statistics over its 80% fit rows only (version 4): the hold-out rows on which its
threshold is chosen no longer enter its training at all, and the other networks are untouched bit for bit."""

import copy

import pytest
import torch
from anyloss.model import StackedMLP

from xentlab.testing import assert_close


def _pair(g=2, m=3, d=4, b=9, seed=0):
    torch.manual_seed(seed)
    net = StackedMLP(m, d, hidden=2, num_groups=g, init="keras").double()
    x = torch.randn(g, b, d, dtype=torch.float64)
    rows = torch.rand(g, b, generator=torch.Generator().manual_seed(seed + 1)) < 0.7
    rows[:, 0] = True  # at least one fit row per group
    rows[:, 1] = False  # at least one hold-out row per group
    return net, copy.deepcopy(net), x, rows


def _step(net, x, rows=None):
    net.train()
    p = net(x, last_bn_rows=rows) if rows is not None else net(x)
    (p * torch.linspace(0.5, 2.0, p.shape[-1], dtype=p.dtype)).sum().backward()
    return p


def test_other_networks_are_bit_identical():
    a, b, x, rows = _pair()
    pa, pb = _step(a, x), _step(b, x, rows)
    assert torch.equal(pa[:, :-1], pb[:, :-1])
    for (name, ta), tb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(ta.grad[:, :-1], tb.grad[:, :-1]), name
    assert torch.equal(a.running_mean[:, :-1], b.running_mean[:, :-1])
    assert torch.equal(a.running_var[:, :-1], b.running_var[:, :-1])
    # ... and the last network does change (the test could not pass with a mask that does nothing)
    assert not torch.equal(a.running_mean[:, -1], b.running_mean[:, -1])


def test_last_network_normalises_with_the_fit_rows_statistics_float64():
    _, net, x, rows = _pair()
    mom, eps = net.momentum, net.eps
    rm0, rv0 = net.running_mean.clone(), net.running_var.clone()
    p = _step(net, x, rows)
    for g in range(x.shape[0]):
        xf = x[g][rows[g]]  # the fit rows of group g
        h = xf @ net.w1[g, -1] + net.b1[g, -1, 0]  # [n_fit, hidden]
        mean, var = h.mean(0), h.var(0, unbiased=False)
        hall = x[g] @ net.w1[g, -1] + net.b1[g, -1, 0]
        z = torch.sigmoid(net.gamma[g, -1, 0] * (hall - mean) / torch.sqrt(var + eps) + net.beta[g, -1, 0])
        expected = torch.sigmoid(z @ net.w2[g, -1] + net.b2[g, -1])
        assert_close(p[g, -1], expected.detach(), atol=1e-12, name=f"bce_val output, group {g}")
        assert_close(net.running_mean[g, -1, 0], rm0[g, -1, 0] * mom + (1 - mom) * mean.detach(), atol=1e-12)
        assert_close(net.running_var[g, -1, 0], rv0[g, -1, 0] * mom + (1 - mom) * var.detach(), atol=1e-12)


def test_hold_out_rows_do_not_move_the_last_network():
    # Change only the hold-out rows' features: the last network's fit-row outputs, its BN statistics and
    # its gradient of a loss over the fit rows stay exactly the same.
    _, net, x, rows = _pair()
    other = copy.deepcopy(net)
    x2 = x.clone()
    x2[~rows] = x2[~rows] * 3.0 + 1.0
    grads = []
    for n, xx in ((net, x), (other, x2)):
        n.train()
        p = n(xx, last_bn_rows=rows)[:, -1]
        (p * rows).sum().backward()
        grads.append([t.grad[:, -1].clone() for t in n.parameters()])
        assert torch.isfinite(p).all()
    for ga, gb in zip(*grads):
        assert_close(ga, gb, atol=1e-12, name="bce_val gradient")
    assert_close(net.running_mean[:, -1], other.running_mean[:, -1], atol=1e-12)
    assert_close(net.running_var[:, -1], other.running_var[:, -1], atol=1e-12)


def test_a_batch_without_fit_rows_keeps_the_moving_statistics():
    _, net, x, rows = _pair()
    rows[1] = False  # group 1: every row is hold-out
    rm0, rv0 = net.running_mean.clone(), net.running_var.clone()
    p = _step(net, x, rows)
    assert torch.isfinite(p).all()
    assert torch.equal(net.running_mean[1, -1], rm0[1, -1])
    assert torch.equal(net.running_var[1, -1], rv0[1, -1])
    assert not torch.equal(net.running_mean[0, -1], rm0[0, -1])


def test_bad_mask_is_rejected():
    net, _, x, rows = _pair()
    with pytest.raises(ValueError, match="last_bn_rows"):
        net(x, last_bn_rows=rows[:, :-1])
